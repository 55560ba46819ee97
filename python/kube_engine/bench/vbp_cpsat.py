"""The CP-SAT model for vector bin packing, started from a packing and a lower bound.

x[i, b] puts item i in bin b, y[b] opens bin b, for b below the starting packing's bin count.
What makes it stronger than the textbook model:

* The lower bound is a constraint, so CP-SAT stops as soon as it reaches it.
* Symmetry: a set of items that pairwise cannot share a bin (in some dimension their sizes add up
  to more than the capacity) is fixed to bins 0, 1, ...; the other items, largest first, may only
  use a bin up to their rank past those, and bins open in order. Any packing can be relabelled to
  satisfy this, so no optimum is lost, and the hint is relabelled the same way.
* The hint is complete (every x and y), so CP-SAT starts from a feasible packing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from kube_engine.bench.vbp import VbpInstance


@dataclass(frozen=True)
class Found:
    # Bin per item when CP-SAT found a packing with fewer bins than the starting one, else None.
    assignment: list[int] | None
    # CP-SAT's proven lower bound on the bins (at least the bound it was given).
    bound: int
    status: str


def _conflict(inst: VbpInstance, i: int, j: int) -> bool:
    a, b = inst.items[i], inst.items[j]
    return any(x + y > c for x, y, c in zip(a, b, inst.capacity, strict=True))


def _order(inst: VbpInstance) -> list[int]:
    """Items by decreasing normalised size (sum over dimensions), ties by index."""

    def size(i: int) -> float:
        return sum(w / c for w, c in zip(inst.items[i], inst.capacity, strict=True))

    return sorted(range(len(inst.items)), key=lambda i: (-size(i), i))


def _clique(inst: VbpInstance, order: Sequence[int]) -> list[int]:
    """Items that pairwise conflict, greedily from the largest: each needs a bin of its own."""
    clique: list[int] = []
    for i in order:
        if all(_conflict(inst, i, k) for k in clique):
            clique.append(i)
    return clique


def _relabel(assignment: Sequence[int], clique: Sequence[int], rank: dict[int, int]) -> list[int]:
    """The same packing with bins numbered as the symmetry breaking demands: clique item k's bin
    is bin k, the other bins follow by the smallest rank of an item in them."""
    label: dict[int, int] = {assignment[i]: k for k, i in enumerate(clique)}
    first: dict[int, int] = {}
    for i, b in enumerate(assignment):
        if b not in label:
            first[b] = min(first.get(b, len(assignment)), rank[i])
    for b in sorted(first, key=lambda b: first[b]):
        label[b] = len(label)
    return [label[b] for b in assignment]


class _Model:
    """x[i, b] for the bins item i may use under the symmetry breaking; y[b] bins in use."""

    def __init__(
        self,
        inst: VbpInstance,
        clique: Sequence[int],
        rank: dict[int, int],
        bins: int,
    ) -> None:
        n, q = len(inst.items), len(clique)
        self.allowed: list[range] = [range(0)] * n
        for k, i in enumerate(clique):
            self.allowed[i] = range(k, k + 1)
        for i, r in rank.items():
            self.allowed[i] = range(min(q + r + 1, bins))
        m = self.model = cp_model.CpModel()
        # Bins that may stay empty get a variable; the others are open by construction.
        self.open = {b: m.new_bool_var(f"y{b}") for b in range(bins) if b >= q}
        self.y = [self.open[b] if b in self.open else m.new_constant(1) for b in range(bins)]
        self.x: dict[tuple[int, int], cp_model.IntVar] = {}
        for i in range(n):
            for b in self.allowed[i]:
                if not (b < q and i in rank and _conflict(inst, i, clique[b])):
                    self.x[i, b] = m.new_bool_var(f"x{i}_{b}")
        for i in range(n):
            m.add_exactly_one(self.x[i, b] for b in self.allowed[i] if (i, b) in self.x)
        for b in range(bins):
            members = [i for i in range(n) if (i, b) in self.x]
            for d, c in enumerate(inst.capacity):
                m.add(sum(inst.items[i][d] * self.x[i, b] for i in members) <= c * self.y[b])
            if b >= q:
                for i in members:
                    m.add_implication(self.x[i, b], self.y[b])
        for b in range(max(q, 1), bins):
            m.add_implication(self.y[b], self.y[b - 1])

    def hint(self, assignment: Sequence[int]) -> None:
        """Hints every x and y from a packing numbered as the symmetry breaking demands."""
        for (i, b), var in self.x.items():
            self.model.add_hint(var, assignment[i] == b)
        used = set(assignment)
        for b, y in self.open.items():
            self.model.add_hint(y, b in used)

    def solve(
        self, time_limit: float, workers: int, seed: int
    ) -> tuple[cp_model.CpSolver, cp_model.CpSolverStatus]:
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = time_limit
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = seed
        return solver, solver.solve(self.model)

    def assignment(self, solver: cp_model.CpSolver) -> list[int]:
        return [
            next(b for b in allowed if (i, b) in self.x and solver.value(self.x[i, b]))
            for i, allowed in enumerate(self.allowed)
        ]


def improve(
    inst: VbpInstance,
    start: Sequence[int],
    lower: int,
    deadline: float,
    workers: int,
    seed: int,
) -> Found:
    """Searches for a packing in fewer bins than `start` and at least `lower` until `deadline` (a
    `time.perf_counter()` instant): building the model counts against the caller's time too."""
    ub = len(set(start))
    order = _order(inst)
    clique = _clique(inst, order)
    in_clique = set(clique)
    rank = {i: r for r, i in enumerate(i for i in order if i not in in_clique)}
    # The clique is a bound of its own, sometimes above L2 (its conflicts mix dimensions).
    lower = max(lower, len(clique))
    if lower >= ub:
        return Found(None, lower, "CLIQUE_BOUND")
    full = _Model(inst, clique, rank, ub)
    full.model.add(sum(full.y) >= lower)
    full.model.minimize(sum(full.y))
    full.hint(_relabel(start, clique, rank))
    solver, status = full.solve(max(deadline - time.perf_counter(), 0.01), workers, seed)
    name = solver.status_name(status)
    bound = lower
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    if found and math.isfinite(solver.best_objective_bound):
        # CP-SAT's bound is a float over an integer objective; a tiny slack must not round up.
        bound = max(lower, math.ceil(solver.best_objective_bound - 1e-6))
    if not found or solver.objective_value >= ub:
        return Found(None, bound, name)
    return Found(full.assignment(solver), bound, name)
