"""Lower bounds on each objective term that no plan can beat, from relaxations of the problem.

They are proven by construction (each relaxes the rules, never tightens them), so the gap between
a plan and its bound is an honest measure of how far from optimal it can be. Every pod of a class
counts as movable here, those with inter-pod rules included; their classes' candidate nodes leave
the inter-pod filters out (the search models those rules itself), so using them relaxes too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from kube_engine.rebalancing.objective import (
    BALANCED,
    FULL_GPU,
    Allocatable,
    Terms,
    pinned_in_use,
)
from kube_engine.records import RebalanceProblem


def bounds(
    problem: RebalanceProblem,
    pod_nodes: dict[str, str | None],
    in_use_before: Iterable[str],
    prices: Sequence[float] | None,
    allocatable: Allocatable,
    max_moves: int | None,
) -> Terms:
    """Per term, a value no plan within ``max_moves`` goes below."""
    nodes = problem["nodes"]
    index = {n: i for i, n in enumerate(nodes)}
    price = list(prices) if prices is not None else [1.0] * len(nodes)
    kept = kept_in_use(problem, pod_nodes)
    pack = max(
        _pack_by_capacity(problem, kept, price, prices is None),
        _pack_by_moves(problem, kept, price, [index[n] for n in in_use_before], max_moves),
    )
    return Terms(
        # Without prices the term counts nodes: a whole number.
        pack=float(math.ceil(pack - 1e-9)) if prices is None else pack,
        balance=_balance(problem, allocatable),
        defrag=float(_defrag(problem)),
    )


def kept_in_use(problem: RebalanceProblem, pod_nodes: dict[str, str | None]) -> set[int]:
    """The nodes (by index) in use after any plan: a pinned pod keeps them, or emptying them
    would evict more pods of a disruption budget than the budget allows."""
    index = {n: i for i, n in enumerate(problem["nodes"])}
    kept = pinned_in_use(problem, pod_nodes)
    movable = {p for c in problem["classes"] for p in c["pods"]}
    for b in problem["budgets"]:
        on: dict[int, int] = {}
        for p in movable.intersection(b["pods"]):
            if (n := pod_nodes[p]) is not None:
                on[index[n]] = on.get(index[n], 0) + 1
        kept.update(n for n, count in on.items() if count > b["allowed"])
    return kept


def _pack_by_capacity(
    problem: RebalanceProblem, kept: set[int], price: list[float], unit: bool
) -> float:
    """The nodes that stay in use anyway, plus the cheapest capacity that holds, resource by
    resource, what the movable pods need beyond what those nodes have free (fractionally: a
    node's capacity may be bought in part)."""
    classes = problem["classes"]
    distinct = {id(c["candidates"]): c["candidates"] for c in classes}
    usable: set[int] = set().union(*distinct.values())
    index = {n: i for i, n in enumerate(problem["nodes"])}
    usable |= {index[n] for c in classes for n in c["nodes"]}
    usable -= kept
    gpu_room = [sum(f for f in free) for free in problem["gpu_free"]]
    supply = dict(problem["free"]) | {"gpu": gpu_room}
    best = 0.0
    for r, free_now in supply.items():
        asks = [
            c["gpu_count"] * c["gpu_milli"] if r == "gpu" else c["request"].get(r, 0)
            for c in classes
        ]
        need: float = sum(len(c["pods"]) * a for c, a in zip(classes, asks, strict=True))
        load = [0] * len(free_now)
        for c, a in zip(classes, asks, strict=True):
            for n in c["nodes"]:
                load[index[n]] += a
        # A plan may keep an over-commitment it found: where one is now, the node's room in
        # this resource has no bound (as in the CP-SAT bound's relaxation).
        free: list[float] = [
            math.inf if f < 0 or used > f else f for f, used in zip(free_now, load, strict=True)
        ]
        need -= sum(max(free[n], 0) for n in kept)
        if need <= 0:
            continue
        offers = sorted(
            ((price[n], free[n]) for n in usable if free[n] > 0), key=lambda o: o[0] / o[1]
        )
        cost, full = 0.0, 0
        for p, room in offers:
            if need <= 0:
                break
            take = min(room, need)
            # The share first: a price times an amount could pass the largest float.
            cost += p * (take / room)
            full += 1
            need -= take
        best = max(best, float(full) if unit else cost)
    return sum(price[n] for n in kept) + best


def _pack_by_moves(
    problem: RebalanceProblem,
    kept: set[int],
    price: list[float],
    in_use: list[int],
    max_moves: int | None,
) -> float:
    """With at most ``max_moves`` moves, a node leaves use only when all its movable pods move:
    what is in use before less the most (fractional knapsack) that many moves can empty."""
    if max_moves is None:
        return 0.0
    index = {n: i for i, n in enumerate(problem["nodes"])}
    movable: dict[int, int] = {}
    for c in problem["classes"]:
        for n in c["nodes"]:
            movable[index[n]] = movable.get(index[n], 0) + 1
    before = sum(price[n] for n in in_use)
    emptiable = sorted(
        ((price[n], movable.get(n, 0)) for n in in_use if n not in kept),
        key=lambda o: -o[0] / o[1] if o[1] else -math.inf,
    )
    gained, left = 0.0, max_moves
    for p, count in emptiable:
        if count <= left:
            gained += p
            left -= count
        else:
            gained += p * (left / count)
            break
    return before - gained


def _balance(problem: RebalanceProblem, allocatable: Allocatable) -> float:
    """Per resource, the peak is at least the utilisation of the counted nodes taken together
    (with the pinned pods and the movable pods that can only be on them), and at least any
    node's utilisation by its pinned pods alone; the spread is at least 0."""
    index = {n: i for i, n in enumerate(problem["nodes"])}
    parts = []
    for r in BALANCED:
        alloc = allocatable.balanced[r]
        if not any(alloc):
            continue
        counted = {n for n, a in enumerate(alloc) if a > 0}
        free = problem["free"].get(r, [0] * len(alloc))
        pinned = [allocatable.total[r][n] - free[n] for n in range(len(alloc))]
        load = sum(pinned[n] for n in counted)
        inside: dict[int, bool] = {}  # per shared candidates list
        for c in problem["classes"]:
            nodes = c["candidates"]
            if id(nodes) not in inside:
                inside[id(nodes)] = counted.issuperset(nodes)
            if inside[id(nodes)] and all(index[n] in counted for n in c["nodes"]):
                load += len(c["pods"]) * c["request"].get(r, 0)
        together = load / sum(alloc[n] for n in counted)
        alone = max(pinned[n] / alloc[n] for n in counted)
        parts.append(max(together, alone))
    return sum(parts) / len(parts) if parts else 0.0


def _defrag(problem: RebalanceProblem) -> int:
    """The devices pinned pods use, one device per whole GPU a movable pod asks for, and the
    GPUs the movable shares fill beyond what the pinned pods' devices have left."""
    partly = [f for free in problem["gpu_free"] for f in free if f < FULL_GPU]
    whole = shares = 0
    for c in problem["classes"]:
        if c["gpu_milli"] >= FULL_GPU:
            whole += len(c["pods"]) * c["gpu_count"]
        else:
            shares += len(c["pods"]) * c["gpu_count"] * c["gpu_milli"]
    spill = max(0, shares - sum(partly))
    return len(partly) + whole + math.ceil(spill / FULL_GPU)
