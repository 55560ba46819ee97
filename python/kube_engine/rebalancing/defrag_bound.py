"""A lower bound on the defrag term (GPU devices not wholly free) proven by CP-SAT, on an
aggregated relaxation of the problem that every plan maps into:

- A device a pinned pod uses stays in use.
- A device only movable pods use may become wholly free, which moves every pod on it to another
  node (a pod that stays on its node keeps its devices): device by device, their pods count
  against ``max_moves`` and each PodDisruptionBudget's allowance, a pod on ``k`` devices for
  ``1/k`` on each, so a pod is never counted more than once.
- A device wholly free now may be taken.
- GPU pods are counted per node type (nodes the same classes may go to, see
  :func:`kube_engine.rebalancing.pack_bound.allowed_classes`) and their milli summed: what a type
  holds is at most the milli its pinned devices have left, plus a whole device for each of its
  devices in use that stays so and each it takes. (Per-device packing and the other resources
  are left out: that is the relaxation.)

CP-SAT's proven bound on the devices in use is then a bound for every plan.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from ortools.sat.python import cp_model

from kube_engine.rebalancing.objective import FULL_GPU
from kube_engine.rebalancing.pack_bound import allowed_classes, proven_bound
from kube_engine.records import RebalanceProblem

Device = tuple[int, int]


def defrag_bound(
    problem: RebalanceProblem,
    devices: Mapping[str, Sequence[int]],
    max_moves: int | None,
    time_limit: float,
    workers: int,
    seed: int,
    deterministic: bool = False,
) -> float | None:
    """CP-SAT's proven bound on the GPU devices not wholly free after any plan, or ``None`` if
    it proved none (or a movable GPU pod's devices are not known). ``devices``: each movable GPU
    pod's devices on its node."""
    classes = problem["classes"]
    gpu_free = problem["gpu_free"]
    index = {n: i for i, n in enumerate(problem["nodes"])}
    gpu = [k for k, c in enumerate(classes) if c["gpu_count"] > 0 and c["gpu_milli"] > 0]
    if not gpu:
        return None
    # Per device, the movable pods on it, each with its share of a move (of `whole`).
    whole = math.lcm(*(classes[k]["gpu_count"] for k in gpu))
    users: dict[Device, list[tuple[str, int]]] = defaultdict(list)
    for k in gpu:
        c = classes[k]
        for p, at in zip(c["pods"], c["nodes"], strict=True):
            n, devs = index[at], list(devices.get(p, ()))
            if len(devs) != c["gpu_count"] or not all(0 <= d < len(gpu_free[n]) for d in devs):
                return None
            for d in devs:
                users[n, d].append((p, whole // c["gpu_count"]))

    now = [Counter(index[n] for n in c["nodes"]) for c in classes]
    signature, allowed_nodes = allowed_classes(problem, now)
    types: dict[int, int] = {}
    type_of = np.full(len(gpu_free), -1, dtype=np.int64)
    pinned_room: list[int] = []
    in_use: list[list[Device]] = []
    idle: list[int] = []
    pinned = 0
    for n, free in enumerate(gpu_free):
        if not free:
            continue
        t = types.setdefault(int(signature[n]), len(types))
        if t == len(pinned_room):
            pinned_room.append(0)
            in_use.append([])
            idle.append(0)
        type_of[n] = t
        for d, f in enumerate(free):
            if f < FULL_GPU:
                pinned += 1
                pinned_room[t] += max(f, 0)
            elif (n, d) in users:
                in_use[t].append((n, d))
            else:
                idle[t] += 1

    m = cp_model.CpModel()
    freed = {dev: m.new_bool_var(f"freed{dev[0]}_{dev[1]}") for devs in in_use for dev in devs}
    taken = [m.new_int_var(0, idle[t], f"taken{t}") for t in range(len(types))]
    # GPU classes that may use the same types and ask the same milli count together.
    groups: dict[tuple[tuple[int, ...], int], int] = {}
    sizes: list[int] = []
    for k in gpu:
        c = classes[k]
        allowed = type_of[allowed_nodes[k]]
        key = (tuple(np.unique(allowed[allowed >= 0]).tolist()), c["gpu_count"] * c["gpu_milli"])
        g = groups.setdefault(key, len(groups))
        if g == len(sizes):
            sizes.append(0)
        sizes[g] += len(c["pods"])
    held: dict[int, list[cp_model.LinearExprT]] = defaultdict(list)
    for (allowed_types, milli), g in groups.items():
        if not allowed_types:
            return None  # a GPU pod with no GPU node to be on: not a cluster this bounds
        x = [m.new_int_var(0, sizes[g], f"x{g}_{t}") for t in allowed_types]
        m.add(sum(x) == sizes[g])
        for t, v in zip(allowed_types, x, strict=True):
            held[t].append(milli * v)
    for t, load in held.items():
        kept = sum(1 - freed[dev] for dev in in_use[t])
        m.add(sum(load) <= pinned_room[t] + FULL_GPU * (kept + taken[t]))

    # Freeing a device moves its pods: against the move budget and every disruption budget.
    budgets_of: dict[str, list[int]] = defaultdict(list)
    for b, budget in enumerate(problem["budgets"]):
        for p in budget["pods"]:
            budgets_of[p].append(b)
    moved: list[cp_model.LinearExprT] = []
    evicted: dict[int, list[cp_model.LinearExprT]] = defaultdict(list)
    for dev, z in freed.items():
        moved.append(sum(share for _, share in users[dev]) * z)
        for p, share in users[dev]:
            for b in budgets_of[p]:
                evicted[b].append(share * z)
    if max_moves is not None:
        m.add(sum(moved) <= max_moves * whole)
    for b, terms in evicted.items():
        m.add(sum(terms) <= problem["budgets"][b]["allowed"] * whole)

    m.minimize(sum(1 - z for z in freed.values()) + sum(taken))
    proven = proven_bound(m, time_limit, workers, seed, deterministic)
    return None if proven is None else float(pinned + math.ceil(proven - 1e-9))
