"""A lower bound on the pack term proven by CP-SAT, on an aggregated relaxation of the problem.

The whole problem is too big for one exact model, so CP-SAT solves a smaller one that every plan
maps into, and its proven objective bound is a bound for every plan:

- Nodes are grouped into types: the same classes may go there (candidates, or the node a pod is
  on now), the same price, and whether a pin keeps them in use anyway. A type counts how many of
  its nodes are in use (``y``); pods of a class are counted per type, not per node.
- Capacity, per resource and per type: the free capacity of its nodes in use now that stay in
  use, plus for the others it opens at most the sum of that many largest free capacities of the
  type, a concave function bounded from above by a few of its secant lines. (Pods may split
  across nodes in the sums: that is the relaxation.)
  GPU devices count as their free milli summed. Where a node is over-committed now, its capacity
  in that resource is unbounded, as a plan may keep an over-commitment it found.
- Which nodes in use now leave use, node by node: one leaves only when all its movable pods move,
  so their pods count against ``max_moves`` and against each PodDisruptionBudget's allowance;
  with ``max_moves`` also the pods of each class group that leave a type count as moves.
- Classes that may use the same types and ask the same amounts are counted together.
- Inter-pod rules, the evictions PodDisruptionBudgets allow for pods that move without their node
  leaving use, and the per-node packing are left out: all relax the problem, never tighten it.

Quantities are scaled to at most ~2^20 per node and the movable pods' requests to at most ~2^40
in all (requests rounded down, capacities up), and prices to integers (thousandths, rounded
down; fewer steps where all the nodes' prices would pass 2^53 of them), which relaxes further,
so the bound stays proven.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from kube_engine.records import RebalanceProblem

# Largest capacity per node after scaling: keeps the model's coefficients small.
SCALE_TO = 1 << 20
# Largest total request after scaling: an over-committed node's capacity is that total, and a
# type's capacities are summed, which must stay far from 2^63 (the snapshot allows 2^62 per
# resource, on nodes of any size).
TOTAL_TO = 1 << 40
# Price resolution for a priced objective (prices are rounded down to it).
PRICE_STEPS = 1000
# Largest objective coefficients times their variables' bounds, summed, after scaling prices.
OBJECTIVE_TO = float(1 << 53)
# Secant lines kept per concave capacity function.
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
    deterministic: bool = False,
) -> float | None:
    """CP-SAT's proven bound on the pack term (nodes in use, or their price), or ``None`` if it
    proved none within ``time_limit`` (see :func:`proven_bound`)."""
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
    scale = np.maximum(scale, -(-(sizes[:, None] * demand).sum(axis=0) // TOTAL_TO))
    capacity = -(-capacity // scale[:, None])
    demand = demand // scale[None, :]
    total = (sizes[:, None] * demand).sum(axis=0)
    capacity[over] = np.broadcast_to(total[:, None] + 1, capacity.shape)[over]

    # Node types: nodes with the same classes allowed, price and pin.
    signature, allowed_nodes = allowed_classes(problem, now)
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
    stays = _closing(m, problem, index, type_list, used, max_moves)
    on_type: dict[int, list[int]] = {}
    for g, t in x:
        on_type.setdefault(t, []).append(g)
    for t, gs in on_type.items():
        ty = type_list[t]
        caps = capacity[:, ty.nodes]
        y = used[t]
        if y is None:
            for r in range(len(caps)):
                lhs = sum(x[g, t] * int(group_demand[g][r]) for g in gs)
                m.add(lhs <= int(caps[r].sum()))
            continue
        # The nodes in use now that stay in use, and how many more are opened.
        staying = stays.get(t, [])
        opened = m.new_int_var(0, len(ty.nodes), f"opened{t}")
        m.add(opened == y - sum(1 - z for _, z in staying))
        for r in range(len(caps)):
            coeffs = [(x[g, t], int(group_demand[g][r])) for g in gs if group_demand[g][r] > 0]
            if not coeffs:
                continue
            lhs = whole = sum(v * a for v, a in coeffs)
            room = sum(int(capacity[r, n]) * (1 - z) for n, z in staying)
            # The opened ones hold at most F(j), the j largest capacities of the type summed:
            # F(opened) <= F(j) + s_j (opened - j), F being concave.
            desc = np.sort(caps[r])[::-1]
            prefix = np.concatenate(([0], np.cumsum(desc)))
            if staying:
                held = m.new_int_var(0, int(prefix[-1]), f"room{t}_{r}")
                m.add(held == room)
                lhs = lhs - held
            for j in _breakpoints(len(desc)):
                slope = int(desc[j]) if j < len(desc) else 0
                m.add(lhs - slope * opened <= int(prefix[j]) - slope * j)
                # Also all its nodes in use together hold at most F(y).
                m.add(whole - slope * y <= int(prefix[j]) - slope * j)

    if max_moves is not None:
        _leaving(m, x, group_now, max_moves)

    scale_price = 1.0 if unit else float(PRICE_STEPS)
    # The objective's terms together within 2^53 (exact in the LP's doubles, far from
    # overflowing): huge prices get fewer steps.
    priciest = sum(
        ty.price * len(ty.nodes) for ty, y in zip(type_list, used, strict=True) if y is not None
    )
    if priciest * scale_price > OBJECTIVE_TO:
        scale_price = OBJECTIVE_TO / priciest
    m.minimize(
        sum(
            int(math.floor(ty.price * scale_price)) * y
            for ty, y in zip(type_list, used, strict=True)
            if y is not None
        )
    )
    proven = proven_bound(m, time_limit, workers, seed, deterministic)
    if proven is None:
        return None
    bound = proven / scale_price + sum(float(price[n]) for n in kept)
    return float(math.ceil(bound - 1e-9)) if unit else bound


def proven_bound(
    m: cp_model.CpModel, time_limit: float, workers: int, seed: int, deterministic: bool = False
) -> float | None:
    """CP-SAT's proven bound on ``m``'s (minimised) objective within ``time_limit`` of
    deterministic time (so it does not depend on the machine's speed), and unless
    ``deterministic`` twice that of the clock, or ``None``. The bound holds whether or not a
    solution was found in time; INFEASIBLE would mean no plan at all, which cannot be (the
    current placement maps into the models)."""
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = max(time_limit, 0.1)
    if not deterministic:
        solver.parameters.max_time_in_seconds = 2 * max(time_limit, 0.1)
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(m)
    # MODEL_INVALID would be a bug here; its "bound" proves nothing either.
    if status in (cp_model.INFEASIBLE, cp_model.MODEL_INVALID) or not math.isfinite(
        solver.best_objective_bound
    ):
        return None
    return float(solver.best_objective_bound)


def allowed_classes(
    problem: RebalanceProblem, now: list[Counter[int]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per node, a signature of the classes that may go there (equal signatures, equal sets,
    but for a 2^-63 chance); per class, those nodes: its candidates and where its pods are
    (``now``: per class, its pods per node)."""
    rng = np.random.default_rng(0x5EED)
    signature = np.zeros(len(problem["nodes"]), dtype=np.uint64)
    allowed_nodes = []
    arrays: dict[int, np.ndarray] = {}  # per shared candidates list
    for k, c in enumerate(problem["classes"]):
        nodes = c["candidates"]
        if id(nodes) not in arrays:
            arrays[id(nodes)] = np.asarray(nodes, dtype=np.int64)
        allowed = _with(arrays[id(nodes)], list(now[k]))
        allowed_nodes.append(allowed)
        signature[allowed] ^= rng.integers(1, 2**63, dtype=np.uint64)
    return signature, allowed_nodes


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


def _leaving(
    m: cp_model.CpModel,
    x: dict[tuple[int, int], cp_model.IntVar],
    group_now: list[Counter[int]],
    max_moves: int,
) -> None:
    """At most ``max_moves`` moves: at least the pods of each group that leave a type move (a
    group may use the types its pods are on now)."""
    leaving = []
    for g, per_type in enumerate(group_now):
        for t, count in per_type.items():
            gone = m.new_int_var(0, count, f"gone{g}_{t}")
            m.add(gone >= count - x[g, t])
            leaving.append(gone)
    m.add(sum(leaving) <= max_moves)


def _closing(
    m: cp_model.CpModel,
    problem: RebalanceProblem,
    index: dict[str, int],
    type_list: list[_Type],
    used: list[cp_model.IntVar | None],
    max_moves: int | None,
) -> dict[int, list[tuple[int, cp_model.IntVar]]]:
    """Which nodes in use now leave use (per type, each such node with a literal that it does):
    one does only when all its movable pods move, so the pods of the nodes that leave count
    against ``max_moves`` and against each PodDisruptionBudget's allowance."""
    pod_node = {
        p: index[n] for c in problem["classes"] for p, n in zip(c["pods"], c["nodes"], strict=True)
    }
    movable = Counter(pod_node.values())
    budget_pods: dict[int, Counter[int]] = defaultdict(Counter)
    for b, budget in enumerate(problem["budgets"]):
        for p in budget["pods"]:
            if (n := pod_node.get(p)) is not None:
                budget_pods[n][b] += 1
    moved: list[cp_model.LinearExprT] = []
    evicted: dict[int, list[cp_model.LinearExprT]] = defaultdict(list)
    leaving: dict[int, list[tuple[int, cp_model.IntVar]]] = {}
    for t, ty in enumerate(type_list):
        in_use = [n for n in ty.nodes if movable[n] > 0]
        if used[t] is None or not in_use:
            continue
        leaving[t] = [(n, m.new_bool_var(f"leaves{n}")) for n in in_use]
        for n, z in leaving[t]:
            moved.append(movable[n] * z)
            for b, count in budget_pods[n].items():
                evicted[b].append(count * z)
    for b, terms in evicted.items():
        m.add(sum(terms) <= problem["budgets"][b]["allowed"])
    if max_moves is not None:
        m.add(sum(moved) <= max_moves)
    return leaving
