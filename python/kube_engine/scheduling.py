"""Batch scheduling: place pending pods with kube-scheduler's framework and plugins (in Rust)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from kube_engine import arguments
from kube_engine._core import Placement, Snapshot
from kube_engine._core import explain as _explain
from kube_engine._core import schedule as _schedule
from kube_engine.option_files import load_mapping, to_json
from kube_engine.records import Explanation

ProfileSpec = str | os.PathLike[str] | Mapping[str, Any]

#: The most ``threads`` :func:`schedule` takes (the core starts no more than the machine's cores).
MAX_THREADS = 2**16


def load_config(profile: ProfileSpec) -> str | None:
    """A KubeSchedulerConfiguration as JSON for the core: ``"default"`` (None), a YAML or JSON
    file (read within the bounds of :mod:`kube_engine.option_files`), or an already-parsed
    mapping. A file that cannot be read or holds no mapping is a :class:`ConfigError`, a value
    of another type an :class:`InvalidArgumentError`."""
    if isinstance(profile, Mapping):
        return to_json(dict(profile), "profile")
    if not isinstance(profile, str | os.PathLike):
        raise arguments.invalid(
            "profile",
            'profile must be "default", a file or a KubeSchedulerConfiguration mapping, '
            f"got {arguments.shown(profile)}",
        )
    if isinstance(profile, str) and profile == "default":
        return None
    name = os.fspath(profile)
    return to_json(load_mapping(name, "a KubeSchedulerConfiguration"), name)


def schedule(
    snapshot: Snapshot,
    pods: Sequence[str] | None = None,
    profile: ProfileSpec = "default",
    order: str = "queue",
    threads: int | None = None,
    seed: int = 0,
) -> Placement:
    """Place pending pods as a batch, one at a time as kube-scheduler would.

    ``pods``: ``namespace/name`` of pending pods (default: every active pending pod). ``profile``:
    ``"default"`` (kube-scheduler's default profile) or a KubeSchedulerConfiguration (file path or
    mapping); each pod uses the profile named by its ``schedulerName`` (pods naming no profile
    are left alone, as kube-scheduler leaves them: ``placement.skipped``).
    ``order``: ``"queue"`` (priority, then creation time), ``"dominant-share"`` (largest first) or
    ``"input"``. Ties between equally good nodes are broken by a generator seeded with ``seed``.
    ``threads``: worker threads for the work that spans every node (the node-constraint plugins
    of each new group of pods, the reasons of an unschedulable pod); a pod's own filtering and
    scoring is a few microseconds and stays on one thread (None: 1). The placement is the same
    for any number; no more start than the machine's cores. ``seed``: 0 to 2**64-1. The
    snapshot is not changed; ``snapshot.apply(placement)`` binds the pods in it.
    """
    return _schedule(
        arguments.snapshot(snapshot),
        None if pods is None else arguments.names("pods", pods),
        load_config(profile),
        arguments.text("order", order),
        arguments.integer("seed", seed),
        1 if threads is None else arguments.integer("threads", threads, low=1, high=MAX_THREADS),
    )


def explain(snapshot: Snapshot, pod: str, profile: ProfileSpec = "default") -> Explanation:
    """What one scheduling cycle finds for pending pod ``pod`` (``namespace/name``): every node's
    filter verdict (the first filter in profile order that rejects it, with its reasons, as
    kube-scheduler's Filter status) and every score plugin's normalised score per feasible node,
    with the weighted totals selectHost compares.

    It runs the cycle :func:`schedule` would run first for the pod, under the profile its
    ``schedulerName`` names, except that every node is filtered and every feasible node scored
    (as with ``percentageOfNodesToScore: 100``) and no node is chosen. The snapshot is not
    changed.
    """
    return _explain(arguments.snapshot(snapshot), arguments.text("pod", pod), load_config(profile))
