"""CP-SAT for the ``pack`` objective, by large neighbourhood search from the heuristic's plan.

The whole cluster is too big for one model on two cores, so CP-SAT re-packs a small set of nodes
at a time (the neighbourhood) and leaves the rest as it is. Neighbourhoods alternate between one
to three of the lightest nodes in use with the roomiest nodes their pods may go to (to empty the
light ones, rearranging the others if need be), and nodes drawn at random. Within a neighbourhood
the model is exact: each movable pod goes to one of its class's candidate nodes (the scheduler's
filters, computed in Rust) or back where it started; every resource and every GPU device holds; a
pod that ends where it started keeps its GPU devices, a moved pod (a new pod) gets any that fit;
moves count against ``max_moves`` and each PodDisruptionBudget together with the moves outside.
An answer is taken when the neighbourhood then uses fewer nodes, or as many with fewer moves; the
model's hint is the current answer, complete, so CP-SAT starts from a feasible one. Pods of
classes with inter-pod rules (required (anti-)affinity, DoNotSchedule spread, host ports) stay
where the heuristic put them.
"""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from kube_engine._core import Snapshot
from kube_engine.records import DrainPlan, RebalanceProblem

RIDES_ALONG = ("DaemonSet pod", "static (mirror) pod")
# (pod, from node, to node, GPU devices on it)
PodMove = tuple[str, str, str, tuple[int, ...]]


@dataclass
class _Pod:
    name: str
    cls: int
    origin: int
    devices_at_origin: tuple[int, ...]
    node: int
    devices: tuple[int, ...]
    budgets: list[int] = field(default_factory=list)


class _Search:
    def __init__(self, snapshot: Snapshot, problem: RebalanceProblem, heuristic: DrainPlan) -> None:
        self.problem = problem
        nodes = problem["nodes"]
        index = {name: i for i, name in enumerate(nodes)}
        moved = {m["pod"]: (index[m["to"]], tuple(m["gpu_devices"])) for m in heuristic["moves"]}
        pod_node = dict(zip(snapshot.pod_names(), snapshot.pod_nodes(), strict=True))
        self.kept_in_use = {
            index[n]
            for p, why in problem["pinned"].items()
            if why not in RIDES_ALONG and (n := pod_node[p]) is not None
        }
        budget_of: dict[str, list[int]] = defaultdict(list)
        for b, budget in enumerate(problem["budgets"]):
            for p in budget["pods"]:
                budget_of[p].append(b)
        classes = problem["classes"]
        self.resources = sorted({r for c in classes for r in c["request"]} | {"pods"})
        # What is left for the searched pods: allocatable less pinned and fixed pods.
        self.free = {r: list(problem["free"].get(r, [0] * len(nodes))) for r in self.resources}
        self.gpu_free = [list(d) for d in problem["gpu_free"]]
        self.demand: list[dict[str, int]] = []
        self.pods: list[_Pod] = []
        self.fixed: list[tuple[_Pod, list[int]]] = []
        for ci, c in enumerate(classes):
            request = {r: c["request"].get(r, 0) for r in self.resources}
            request["pods"] = max(request["pods"], 1)
            self.demand.append(request)
            for p, n in zip(c["pods"], c["nodes"], strict=True):
                origin = index[n]
                devs = tuple(snapshot.pod_request(p)["gpu_devices"]) if c["gpu_count"] else ()
                node, now = moved.get(p, (origin, devs))
                pod = _Pod(p, ci, origin, devs, node, now, budget_of.get(p, []))
                if not c["interacts"]:
                    self.pods.append(pod)
                    continue
                for r in self.resources:
                    self.free[r][node] -= request[r]
                for d in now:
                    self.gpu_free[node][d] -= c["gpu_milli"]
                self.kept_in_use.add(node)
                self.fixed.append((pod, pod.budgets))
        self.candidates = [set(c["candidates"]) for c in classes]
        self.allowed = [b["allowed"] for b in problem["budgets"]]

    def in_use(self) -> list[int]:
        return sorted({p.node for p in self.pods} - self.kept_in_use)

    def neighbourhood(self, rng: random.Random, size: int, targeted: bool) -> set[int]:
        in_use = self.in_use()
        if not targeted:
            return set(rng.sample(in_use, min(size, len(in_use))))
        load: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for p in self.pods:
            for r in ("cpu", "memory"):
                load[p.node][r] += self.demand[p.cls].get(r, 0)
        dims = [r for r in ("cpu", "memory") if r in self.free]

        def share(n: int) -> float:
            return sum(load[n][r] / max(self.free[r][n], 1) for r in dims)

        light = sorted(in_use, key=share)[: max(3, len(in_use) // 10)]
        chosen = set(rng.sample(light, min(len(light), 1 + rng.randrange(3))))
        wanted = set().union(*(self.candidates[p.cls] for p in self.pods if p.node in chosen))
        roomiest = sorted((n for n in in_use if n in wanted and n not in chosen), key=share)
        chosen.update(roomiest[: size - len(chosen)])
        return chosen

    def solve(
        self,
        chosen: Sequence[int],
        max_moves: int | None,
        seconds: float,
        workers: int,
        seed: int,
    ) -> list[tuple[int, tuple[int, ...]]] | None:
        """(node, GPU devices) per pod on the chosen nodes, or None if CP-SAT found nothing."""
        inside = [p for p in self.pods if p.node in chosen]
        classes = self.problem["classes"]
        m = cp_model.CpModel()
        x: dict[tuple[int, int], cp_model.IntVar] = {}
        dev: dict[tuple[int, int, int], cp_model.IntVar] = {}
        for i, p in enumerate(inside):
            for n in chosen:
                if n == p.origin or n in self.candidates[p.cls]:
                    x[i, n] = m.new_bool_var(f"x{i}_{n}")
                    m.add_hint(x[i, n], n == p.node)
            m.add_exactly_one(x[i, n] for n in chosen if (i, n) in x)
        used = {n: m.new_bool_var(f"u{n}") for n in chosen}
        for n, u in used.items():
            m.add_hint(u, any(p.node == n for p in inside))
        for n in chosen:
            on = [(i, p) for i, p in enumerate(inside) if (i, n) in x]
            for r in self.resources:
                m.add(
                    sum(self.demand[p.cls][r] * x[i, n] for i, p in on) <= self.free[r][n] * used[n]
                )
            per_device: dict[int, list[cp_model.LinearExprT]] = defaultdict(list)
            for i, p in on:
                c = classes[p.cls]
                if not c["gpu_count"]:
                    continue
                if n == p.origin:
                    for d in p.devices_at_origin:
                        per_device[d].append(c["gpu_milli"] * x[i, n])
                    continue
                ys = [m.new_bool_var(f"y{i}_{n}_{d}") for d in range(len(self.gpu_free[n]))]
                m.add(sum(ys) == c["gpu_count"] * x[i, n])
                for d, y in enumerate(ys):
                    dev[i, n, d] = y
                    per_device[d].append(c["gpu_milli"] * y)
                    m.add_hint(y, n == p.node and d in p.devices)
            for d, terms in per_device.items():
                m.add(sum(terms) <= self.gpu_free[n][d])
        moved: list[cp_model.LinearExprT] = [
            1 - x[i, p.origin] if (i, p.origin) in x else 1 for i, p in enumerate(inside)
        ]
        outside = [p for p in self.pods if p.node not in chosen and p.node != p.origin]
        outside += [p for p, _ in self.fixed if p.node != p.origin]
        if max_moves is not None:
            m.add(sum(moved) + len(outside) <= max_moves)
        for b, room in enumerate(self.allowed):
            mine = [moved[i] for i, p in enumerate(inside) if b in p.budgets]
            if mine:
                spent = sum(b in p.budgets for p in outside)
                m.add(sum(mine) + spent <= room)
        # Nodes first, then moves: one node outweighs every move the neighbourhood could make.
        nodes_used = cp_model.LinearExpr.sum(list(used.values()))
        m.minimize(nodes_used * (len(inside) + 1) + cp_model.LinearExpr.sum(moved))
        solver = cp_model.CpSolver()
        # Deterministic time, so that one worker and a seed give the same plan on any machine;
        # the wall-clock limit only guards against a starved machine.
        solver.parameters.max_deterministic_time = seconds
        solver.parameters.max_time_in_seconds = 4 * seconds
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = seed
        # Rounds are short: presolve's probing and symmetry search would take all of one.
        solver.parameters.cp_model_probing_level = 0
        solver.parameters.symmetry_level = 0
        if solver.solve(m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        out = []
        for i, p in enumerate(inside):
            n = next(n for n in chosen if (i, n) in x and solver.value(x[i, n]))
            if n == p.origin:
                devs = p.devices_at_origin
            else:
                gpus = range(len(self.gpu_free[n]))
                devs = tuple(d for d in gpus if (i, n, d) in dev and solver.value(dev[i, n, d]))
            out.append((n, devs))
        return out

    def take(self, chosen: Sequence[int], answer: list[tuple[int, tuple[int, ...]]]) -> None:
        """Takes the answer if the chosen nodes then use fewer nodes, or fewer moves."""
        inside = [p for p in self.pods if p.node in chosen]

        def cost(where: Sequence[int]) -> tuple[int, int]:
            return len(set(where)), sum(n != p.origin for p, n in zip(inside, where, strict=True))

        if cost([n for n, _ in answer]) < cost([p.node for p in inside]):
            for p, (n, devs) in zip(inside, answer, strict=True):
                p.node, p.devices = n, devs

    def moves(self) -> list[PodMove]:
        nodes = self.problem["nodes"]
        everyone = self.pods + [p for p, _ in self.fixed]
        return [
            (p.name, nodes[p.origin], nodes[p.node], p.devices)
            for p in everyone
            if p.node != p.origin
        ]


def improve_pack(
    snapshot: Snapshot,
    problem: RebalanceProblem,
    heuristic: DrainPlan,
    max_moves: int | None,
    time_limit: float,
    workers: int | None,
    seed: int,
    neighbourhood: int = 24,
    round_seconds: float = 1.0,
) -> list[PodMove]:
    """Improves the heuristic's plan in ``time_limit / round_seconds`` rounds of about
    ``round_seconds`` each (CP-SAT's deterministic time, so the plan does not depend on the
    machine's speed; only on a machine starved to a third of its speed does the wall clock stop
    the search early)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    search = _Search(snapshot, problem, heuristic)
    cores = os.cpu_count() or 1
    for i in range(max(1, int(time_limit / round_seconds))):
        if len(search.in_use()) < 2 or time.perf_counter() - started > 3 * time_limit:
            break
        chosen = sorted(search.neighbourhood(rng, neighbourhood, targeted=i % 2 == 0))
        answer = search.solve(
            chosen, max_moves, round_seconds, min(workers or cores, cores), rng.randrange(1 << 30)
        )
        if answer is not None:
            search.take(chosen, answer)
    return search.moves()
