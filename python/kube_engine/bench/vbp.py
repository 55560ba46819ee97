"""Vector bin packing: VPSolver ``.vbp`` files, and a solver that packs their items into the fewest
bins — the rebalancer's pack objective on its own, measured on the Caprara–Toth instances.

The Rust core computes the lower bounds (L1, Martello–Toth L2 per dimension), the best of the
greedy packings from the literature, and a local search that empties bins of it; CP-SAT then
searches below that packing, with the bound as a constraint and the packing as its hint. Every
packing is checked by the core before it is returned.

>>> inst = read_vbp("CL_1_25_1.vbp")                       # doctest: +SKIP
>>> solve(inst, solver="cpsat", time_limit=5).bins         # doctest: +SKIP
6
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kube_engine._core import (
    KubeEngineError,
    vbp_check,
    vbp_heuristic,
    vbp_local_search,
    vbp_lower_bounds,
)

__all__ = [
    "Solver",
    "VbpError",
    "VbpInstance",
    "VbpResult",
    "find_vbp_dir",
    "read_vbp",
    "solve",
    "verify",
]

Solver = Literal["heuristic", "cpsat"]
SOLVERS: tuple[Solver, ...] = ("heuristic", "cpsat")

# Local-search work units per second of `time_limit`: about a third of it on one core of the
# benchmark machine (a 2-core Xeon VM, ~1.6e8 units/s), leaving the rest to CP-SAT even when a
# neighbour's build halves the speed. A count, not a clock, so the packing does not depend on load.
LOCAL_SEARCH_WORK_PER_SECOND = 50_000_000


class VbpError(KubeEngineError):
    """A ``.vbp`` file is not valid; the message names the file, the line and the value."""


@dataclass(frozen=True)
class VbpInstance:
    name: str
    capacity: tuple[int, ...]
    # One row of sizes per item; an item type with demand q appears q times.
    items: tuple[tuple[int, ...], ...]

    @property
    def dims(self) -> int:
        return len(self.capacity)


@dataclass(frozen=True)
class VbpResult:
    instance: str
    solver: Solver
    # Bins used by `assignment`, which `verify` has accepted.
    bins: int
    # max(L1, L2, CP-SAT's proven objective bound).
    lower_bound: int
    # "OPTIMAL" when bins == lower_bound, else "FEASIBLE".
    status: str
    seconds: float
    # Bin index per item, bins numbered from 0.
    assignment: tuple[int, ...]
    l1: int
    l2: int
    heuristic: str
    heuristic_bins: int
    # Bins after the local search, None when it did not run (heuristic solver, or the greedy
    # packing already met the bound).
    local_search_bins: int | None = None
    # CP-SAT's own status name, None when CP-SAT did not run (heuristic solver, or a packing
    # already met the bound).
    cpsat_status: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "instance": self.instance,
            "solver": self.solver,
            "bins": self.bins,
            "lower_bound": self.lower_bound,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "l1": self.l1,
            "l2": self.l2,
            "heuristic": self.heuristic,
            "heuristic_bins": self.heuristic_bins,
            "local_search_bins": self.local_search_bins,
            "cpsat_status": self.cpsat_status,
        }


def find_vbp_dir() -> Path | None:
    """Where the reference instances are: `$KUBE_ENGINE_VBP_DIR` (a folder with `INDEX.csv`);
    None when it is unset or has none."""
    env = os.environ.get("KUBE_ENGINE_VBP_DIR")
    return Path(env) if env and (Path(env) / "INDEX.csv").is_file() else None


def read_vbp(path: str | os.PathLike[str]) -> VbpInstance:
    """Reads a VPSolver file: `d`, then `d` capacities, then `m`, then `m` item types of `d`
    sizes and a demand. Numbers are whitespace-separated, as VPSolver reads them."""
    p = Path(path)
    try:
        text = p.read_text()
    except UnicodeDecodeError as e:
        raise VbpError(f"{p}: not a text file ({e.reason})") from None
    tokens = [(n, tok) for n, line in enumerate(text.splitlines(), 1) for tok in line.split()]
    pos = 0

    def number(what: str, minimum: int) -> int:
        nonlocal pos
        if pos >= len(tokens):
            raise VbpError(f"{p}: ends before {what}")
        line, tok = tokens[pos]
        pos += 1
        try:
            value = int(tok)
        except ValueError:
            raise VbpError(f"{p}:{line}: {what}: {tok!r} is not an integer") from None
        if value < minimum:
            raise VbpError(f"{p}:{line}: {what}: {value} is below {minimum}")
        return value

    dims = number("number of dimensions", 1)
    capacity = tuple(number(f"capacity {d + 1}", 1) for d in range(dims))
    types = number("number of item types", 0)
    items: list[tuple[int, ...]] = []
    for t in range(types):
        line = tokens[pos][0] if pos < len(tokens) else 0
        sizes = tuple(number(f"item type {t + 1} size {d + 1}", 0) for d in range(dims))
        demand = number(f"item type {t + 1} demand", 0)
        for d, (w, c) in enumerate(zip(sizes, capacity, strict=True)):
            if w > c:
                raise VbpError(
                    f"{p}:{line}: item type {t + 1} size {d + 1}: {w} exceeds the capacity {c}"
                )
        items.extend([sizes] * demand)
    if pos < len(tokens):
        line, tok = tokens[pos]
        raise VbpError(f"{p}:{line}: unexpected {tok!r} after the {types} item types")
    return VbpInstance(p.name, capacity, tuple(items))


def verify(instance: VbpInstance, assignment: Sequence[int]) -> int:
    """Bins used by `assignment` (bin per item); `ValueError` naming the item or the bin when an
    item has no bin or a bin is over capacity in some dimension."""
    return vbp_check([list(i) for i in instance.items], list(instance.capacity), list(assignment))


def solve(
    instance: VbpInstance,
    solver: Solver = "heuristic",
    time_limit: float = 5.0,
    workers: int | None = None,
    seed: int = 0,
) -> VbpResult:
    """Packs `instance` into as few bins as `solver` finds within `time_limit` seconds.

    ``heuristic`` is the best greedy packing. ``cpsat`` improves on it with the core's local search
    (a work budget in proportion to `time_limit`, see `LOCAL_SEARCH_WORK_PER_SECOND`), then, if
    that is still above the bound, with CP-SAT on ``min(workers or cores, cores)`` workers for
    the remaining time, hinted with the local search's packing. The local search is deterministic
    for a seed; with one worker CP-SAT follows the same search every run too (only the wall-clock
    cut-off can differ on a loaded machine)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver: {solver!r} is not one of {', '.join(SOLVERS)}")
    if time_limit <= 0:
        raise ValueError(f"time_limit: {time_limit} is not positive")
    if workers is not None and workers < 1:
        raise ValueError(f"workers: {workers} is below 1")
    t0 = time.perf_counter()
    sizes = [list(i) for i in instance.items]
    capacity = list(instance.capacity)
    l1, l2 = vbp_lower_bounds(sizes, capacity)
    greedy, heuristic = vbp_heuristic(sizes, capacity)
    best = list(greedy)
    lower = max(l1, l2)
    local_search_bins = cpsat_status = None
    greedy_bins = verify(instance, greedy)
    if solver == "cpsat" and greedy_bins > lower:
        budget = round(LOCAL_SEARCH_WORK_PER_SECOND * time_limit)
        best, _ = vbp_local_search(sizes, capacity, greedy, lower, budget, seed)
        local_search_bins = verify(instance, best)
    if solver == "cpsat" and verify(instance, best) > lower:
        from kube_engine.bench import vbp_cpsat

        threads = os.cpu_count() or 1
        found = vbp_cpsat.improve(
            instance,
            best,
            lower,
            deadline=t0 + time_limit,
            workers=min(workers or threads, threads),
            seed=seed,
        )
        cpsat_status = found.status
        lower = max(lower, found.bound)
        if found.assignment is not None:
            best = found.assignment
    bins = verify(instance, best)
    return VbpResult(
        instance=instance.name,
        solver=solver,
        bins=bins,
        lower_bound=lower,
        status="OPTIMAL" if bins == lower else "FEASIBLE",
        seconds=time.perf_counter() - t0,
        assignment=tuple(best),
        l1=l1,
        l2=l2,
        heuristic=heuristic,
        heuristic_bins=greedy_bins,
        local_search_bins=local_search_bins,
        cpsat_status=cpsat_status,
    )
