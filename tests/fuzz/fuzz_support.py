"""What every fuzz test shares: the run's knobs, the hypothesis profiles, the only outcomes a
hostile input may have, and the walk through the public API a snapshot that loads is put through.

The knobs (environment variables; ``make fuzz`` sets them for the long run):

- ``FUZZ_LONG=1``: the long run: hypothesis profile ``long`` (random, many examples) instead of
  ``short`` (derandomized, few examples: the same cases on every run, as CI needs).
- ``FUZZ_SEED``: the mutation corpus's seed (default 0); hypothesis takes its seed from
  ``--hypothesis-seed``.
- ``FUZZ_CASES``: mutants per run (default 100 short, 3000 long).
- ``FUZZ_TIMEOUT``: seconds one mutant may take, load and API calls together (default 30).
- ``FUZZ_MEMORY_MB``: address-space cap of the process that runs the mutants (default 4096).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from hypothesis import HealthCheck, settings

import kube_engine as ke

LONG = os.environ.get("FUZZ_LONG", "") not in ("", "0")
SEED = int(os.environ.get("FUZZ_SEED", "0"))
CASES = int(os.environ.get("FUZZ_CASES", "3000" if LONG else "100"))
TIMEOUT = float(os.environ.get("FUZZ_TIMEOUT", "30"))
MEMORY_MB = int(os.environ.get("FUZZ_MEMORY_MB", "4096"))

# Error messages quote what was written, cut to about a hundred characters (issue 20's rule); a
# path may be long, so this leaves room, but a message that quotes a whole huge value is caught.
MAX_MESSAGE = 2000

# Generated snapshots are small but each example runs the scheduler and the rebalancer: wall-clock
# deadlines would flake on a shared 2-core machine, so time is bounded per mutant instead (see
# mutants.py), and hypothesis' example database is off so a run depends on its seed alone.
for _name in ("short", "long"):
    settings.register_profile(
        _name,
        derandomize=_name == "short",
        # The short run stops at its first bug; the long one reports every one it finds.
        report_multiple_bugs=_name == "long",
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
settings.load_profile("long" if LONG else "short")


def examples(short: int) -> settings:
    """Settings for a property: ``short`` examples in ``make test``, 20 times as many in
    ``make fuzz``."""
    return settings(max_examples=20 * short if LONG else short)


# The rebalancer's limits in a fuzz case: small enough that a case takes about a second, with
# one CP-SAT worker so the 2-core machine is not oversubscribed.
REBALANCE_TIME_LIMIT = 0.5
REBALANCE_WORKERS = 1


class Finding(AssertionError):
    """A hostile input had an outcome it must not have (the message says which)."""


def check_error(exc: BaseException) -> None:
    """Raises :class:`Finding` unless ``exc`` is an acceptable way to refuse an input: a
    :class:`kube_engine.KubeEngineError` other than :class:`kube_engine.InternalError` (a panic
    or a failed consistency check), with a message of bounded length."""
    if isinstance(exc, ke.InternalError):
        raise Finding(f"InternalError: {head(str(exc))}") from exc
    if not isinstance(exc, ke.KubeEngineError):
        raise Finding(f"leaked {type(exc).__name__}: {head(str(exc))}") from exc
    if len(str(exc)) > MAX_MESSAGE:
        # Not chained: the report would print the whole message it complains of.
        raise Finding(
            f"{type(exc).__name__} message of {len(str(exc)):,} characters: {head(str(exc))}"
        ) from None


def head(text: str, size: int = 300) -> str:
    """``text`` on one line (findings are grouped by their first words), cut to ``size``."""
    text = text.replace("\n", " ")
    return text if len(text) <= size else text[:size] + f"... ({len(text):,} characters)"


@dataclass
class Walk:
    """What :func:`walk` computed, for properties to check."""

    before: ke.Evaluation
    placement: ke.Placement
    scheduled: ke.Evaluation
    rebalanced: ke.RebalanceResult


def pending_pods(snap: ke.Snapshot) -> list[str]:
    rows = zip(snap.pod_names(), snap.pod_nodes(), snap.pod_phases(), strict=True)
    return [p for p, node, phase in rows if node is None and phase not in ("Succeeded", "Failed")]


def walk(snap: ke.Snapshot, *, solver: str = "cpsat") -> Walk:
    """Every read-only entry point of the public API on ``snap``, as a user would call them: the
    metrics, the budgets, a schedule and its evaluation, one explained cycle, a rebalancing plan.
    Exceptions propagate (callers judge them with :func:`check_error`)."""
    before = ke.evaluate(snap)
    ke.budget_status(snap)
    placement = ke.schedule(snap)
    scheduled = ke.evaluate(snap, dict(placement.assignments), placement.gpu_devices)
    pending = pending_pods(snap)
    if pending:
        ke.explain(snap, pending[0])
    result = ke.rebalance(
        snap,
        time_limit=REBALANCE_TIME_LIMIT,
        workers=REBALANCE_WORKERS,
        solver=solver,
        allow_bare=True,
        allow_local_storage=True,
    )
    if not (math.isfinite(result.value) and math.isfinite(result.bound)):
        raise Finding(
            f"rebalance reported {result.status} with value {result.value}, bound {result.bound}"
        )
    return Walk(before, placement, scheduled, result)


def over_capacity(ev: ke.Evaluation) -> set[tuple[str, str]]:
    """(node, what) of every over-committed resource or GPU device ``ev`` reports."""
    return {
        (v["node"], v["detail"].split(" requested")[0].split(" holds")[0])
        for v in ev.violations
        if v["kind"] in ("capacity", "gpu-devices")
    }
