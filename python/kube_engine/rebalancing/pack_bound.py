"""A lower bound on the pack term proven by CP-SAT, on an aggregated relaxation of the problem.

The whole problem is too big for one exact model, so CP-SAT solves a smaller one that every plan
maps into, and its proven objective bound is a bound for every plan:

- Nodes are grouped into types: the same classes may go there (candidates, or the node a pod is
  on now), the same price, and whether a pin keeps them in use anyway. A type counts how many of
  its nodes are in use (``y``); pods of a class are counted per type, not per node.
- Capacity, per resource and per type: what ``y`` nodes of the type can hold is at most the sum of
  the ``y`` largest free capacities among them, a concave function of ``y`` bounded from above by
  a few of its secant lines. (Pods may split across nodes in the sum: that is the relaxation.)
  GPU devices count as their free milli summed. Where a node is over-committed now, its capacity
  in that resource is unbounded, as a plan may keep an over-commitment it found.
- Moves, with ``max_moves``: at least the pods of each class that leave a type, and at least the
  movable pods of the nodes of each type that leave use (the fewest such pods per node first).
- Classes that may use the same types and ask the same amounts are counted together.
- Inter-pod rules, PodDisruptionBudgets (beyond the nodes they keep in use) and the per-node
  packing are left out: all relax the problem, never tighten it.

Quantities are scaled to at most ~2^20 per node (requests rounded down, capacities up) and
prices to integers (rounded down), which relaxes further, so the bound stays proven.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from kube_engine.records import RebalanceProblem

# Largest capacity per node after scaling: keeps the model's coefficients small.
SCALE_TO = 1 << 20
# Price resolution for a priced objective (prices are rounded down to it).
PRICE_STEPS = 1000
# Secant lines kept per concave capacity (and convex move) function.
LINES = 12


@dataclass
class _Type:
    nodes: list[int]
    kept: bool
    price: float


def pack_bound(
    problem: RebalanceProblem,
    kept: set[int],
    price: Sequence[float],
    unit: bool,
    max_moves: int | None,
    time_limit: float,
    workers: int,
    seed: int,
) -> float | None:
    """CP-SAT's proven bound on the pack term (nodes in use, or their price), or ``None`` if it
    proved none within ``time_limit``."""
    classes = problem["classes"]
    nodes = problem["nodes"]
    if not classes or not nodes:
        return None
    index = {n: i for i, n in enumerate(nodes)}
    n_nodes = len(nodes)
    resources = sorted(problem["free"])
    free = np.array(
        [problem["free"][r] for r in resources] + [[sum(d) for d in problem["gpu_free"]]],
        dtype=np.int64,
    )
    demand = np.array(
        [
            [c["request"].get(r, 0) for r in resources] + [c["gpu_count"] * c["gpu_milli"]]
            for c in classes
        ],
        dtype=np.int64,
    )
    # Where the classes' pods are now, and the load they put on each node.
    now: list[Counter[int]] = [Counter(index[n] for n in c["nodes"]) for c in classes]
    load = np.zeros_like(free)
    for k, here in enumerate(now):
        for n, count in here.items():
            load[:, n] += count * demand[k]
    sizes = np.array([len(c["pods"]) for c in classes], dtype=np.int64)
    capacity = np.maximum(free, 0)
    over = (free < 0) | (load > free)
    # Scale each resource: requests down, capacities up.
    scale = np.maximum(1, -(-np.where(over, 0, capacity).max(axis=1, initial=1) // SCALE_TO))
    capacity = -(-capacity // scale[:, None])
    demand = demand // scale[None, :]
    total = (sizes[:, None] * demand).sum(axis=0)
    capacity[over] = np.broadcast_to(total[:, None] + 1, capacity.shape)[over]

    # Node types: nodes with the same classes allowed, price and pin.
    rng = np.random.default_rng(0x5EED)
    signature = np.zeros(n_nodes, dtype=np.uint64)
    allowed_nodes = []
    for k, c in enumerate(classes):
        allowed = _with(np.asarray(c["candidates"], dtype=np.int64), list(now[k]))
        allowed_nodes.append(allowed)
        signature[allowed] ^= rng.integers(1, 2**63, dtype=np.uint64)
    types: dict[tuple[int, float, bool], _Type] = {}
    for n in range(n_nodes):
        key = (int(signature[n]), float(price[n]), n in kept)
        types.setdefault(key, _Type([], key[2], key[1])).nodes.append(n)
    type_list = list(types.values())
    type_of = np.empty(n_nodes, dtype=np.int64)
    for t, ty in enumerate(type_list):
        type_of[ty.nodes] = t

    # Classes that may use the same types and ask the same (scaled) amounts are one group: the
    # model counts pods, so merging them loses nothing but the moves between them.
    groups: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
    group_size: list[int] = []
    group_demand: list[np.ndarray] = []
    group_now: list[Counter[int]] = []
    for k, allowed in enumerate(allowed_nodes):
        group_key = (tuple(np.unique(type_of[allowed]).tolist()), tuple(demand[k].tolist()))
        g = groups.setdefault(group_key, len(groups))
        if g == len(group_size):
            group_size.append(0)
            group_demand.append(demand[k])
            group_now.append(Counter())
        group_size[g] += int(sizes[k])
        for n, count in now[k].items():
            group_now[g][int(type_of[n])] += count

    m = cp_model.CpModel()
    used = [
        None if ty.kept else m.new_int_var(0, len(ty.nodes), f"y{t}")
        for t, ty in enumerate(type_list)
    ]
    # Pods of each group per type it may use.
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for (types_allowed, _), g in groups.items():
        for t in types_allowed:
            x[g, t] = m.new_int_var(0, group_size[g], f"x{g}_{t}")
        m.add(sum(x[g, t] for t in types_allowed) == group_size[g])
    on_type: dict[int, list[int]] = {}
    for g, t in x:
        on_type.setdefault(t, []).append(g)
    for t, gs in on_type.items():
        ty = type_list[t]
        caps = capacity[:, ty.nodes]
        for r in range(len(caps)):
            coeffs = [(x[g, t], int(group_demand[g][r])) for g in gs if group_demand[g][r] > 0]
            if not coeffs:
                continue
            lhs = sum(v * a for v, a in coeffs)
            y = used[t]
            if y is None:
                m.add(lhs <= int(caps[r].sum()))
                continue
            # Secants of F(j) = the j largest capacities summed: F(y) <= F(j) + s_j (y - j).
            desc = np.sort(caps[r])[::-1]
            prefix = np.concatenate(([0], np.cumsum(desc)))
            for j in _breakpoints(len(desc)):
                slope = int(desc[j]) if j < len(desc) else 0
                m.add(lhs - slope * y <= int(prefix[j]) - slope * j)

    if max_moves is not None:
        _move_budget(m, problem, index, type_list, used, x, group_now, max_moves)

    scale_price = 1 if unit else PRICE_STEPS
    m.minimize(
        sum(
            int(math.floor(ty.price * scale_price)) * y
            for ty, y in zip(type_list, used, strict=True)
            if y is not None
        )
    )
    solver = cp_model.CpSolver()
    # Deterministic time, so the bound does not depend on the machine's speed; the wall clock
    # only as a guard.
    solver.parameters.max_deterministic_time = max(time_limit, 0.1)
    solver.parameters.max_time_in_seconds = 2 * max(time_limit, 0.1)
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(m)
    # The bound is proven whether or not a solution was found in time; INFEASIBLE would mean no
    # plan at all, which cannot be (the current placement maps into the model), so no bound.
    if status == cp_model.INFEASIBLE or not math.isfinite(solver.best_objective_bound):
        return None
    kept_price = sum(float(price[n]) for n in kept)
    bound = solver.best_objective_bound / scale_price + kept_price
    return float(math.ceil(bound - 1e-9)) if unit else bound


def _with(ascending: np.ndarray, more: list[int]) -> np.ndarray:
    """The ascending node indices ``ascending`` (a class's candidates) with ``more`` added."""
    extra = np.asarray(more, dtype=np.int64)
    at = np.searchsorted(ascending, extra)
    found = at < len(ascending)
    found[found] = ascending[at[found]] == extra[found]
    return np.union1d(ascending, extra[~found]) if not found.all() else ascending


def _breakpoints(count: int) -> list[int]:
    """Where the secant lines of a function over ``0..=count`` start: 0, ``count`` and points in
    between, denser near 0 (a few nodes in use is where the lines matter most)."""
    points = {0, count}
    for i in range(1, LINES):
        points.add(min(count, round(count * (i / LINES) ** 2)))
    return sorted(points)


def _move_budget(
    m: cp_model.CpModel,
    problem: RebalanceProblem,
    index: dict[str, int],
    type_list: list[_Type],
    used: list[cp_model.IntVar | None],
    x: dict[tuple[int, int], cp_model.IntVar],
    group_now: list[Counter[int]],
    max_moves: int,
) -> None:
    """At most ``max_moves`` moves: at least the pods of each group that leave a type move (a
    group may use the types its pods are on now), and, as a separate count, at least every
    movable pod of a node that leaves use."""
    leaving = []
    for g, per_type in enumerate(group_now):
        for t, count in per_type.items():
            gone = m.new_int_var(0, count, f"gone{g}_{t}")
            m.add(gone >= count - x[g, t])
            leaving.append(gone)
    m.add(sum(leaving) <= max_moves)

    movable = Counter(index[n] for c in problem["classes"] for n in c["nodes"])
    emptied = []
    for t, ty in enumerate(type_list):
        y = used[t]
        if y is None:
            continue
        pods = sorted(movable[n] for n in ty.nodes if movable[n] > 0)
        if not pods:
            continue
        # Closing j of the nodes in use costs at least the j smallest counts: G(j), convex, so
        # each secant's line lies below it on the integers.
        closed = m.new_int_var(0, len(pods), f"closed{t}")
        m.add(closed >= len(pods) - y)
        prefix = np.concatenate(([0], np.cumsum(pods)))
        cost = m.new_int_var(0, int(prefix[-1]), f"emptied{t}")
        for j in _breakpoints(len(pods) - 1) if len(pods) > 1 else [0]:
            slope = int(pods[j])
            m.add(cost >= int(prefix[j]) + slope * (closed - j))
        emptied.append(cost)
    m.add(sum(emptied) <= max_moves)
