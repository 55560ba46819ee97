"""CP-SAT by large neighbourhood search, from a starting plan, for any weighting of the objective
terms (:mod:`kube_engine.rebalancing.objective`).

The whole cluster is too big for one model on two cores, so CP-SAT re-places the movable pods of
a small set of nodes at a time (the neighbourhood) and leaves the rest as it is. Neighbourhoods
alternate between targeted ones (for ``pack`` a few of the lightest nodes in use with the roomiest
nodes their pods may go to; for ``balance`` the hottest nodes with the coolest nodes their pods may
go to; for ``defrag`` nodes with partly used GPUs with the GPU nodes their pods may go to) and
nodes drawn at random.

Within a neighbourhood the model is exact where it must be: each movable pod goes to one of its
class's candidate nodes (the scheduler's filters, computed in Rust) or back where it started; every
resource and every GPU device holds; a pod that ends where it started keeps its GPU devices, a
moved pod (a new pod) gets any that fit; moves count against ``max_moves`` and each
PodDisruptionBudget together with the moves outside. The objective is modelled per term: node
prices of the nodes in use; for balance the peak utilisation per resource and the squared
deviations from the mean (tangent lines, scaled to the standard deviation's rate of change);
wholly free GPU devices. An answer is taken when the whole placement's objective value, measured
exactly, improves, or stays with fewer moves. The model's hint is the current answer, complete.

The inter-pod rules (required pod affinity and anti-affinity, DoNotSchedule topology spread, host
ports) come from Rust as counts per topology domain (``RebalanceProblem["rules"]``: which classes
carry a rule, which it counts, and the pinned pods of both per domain); the model only adds pods
up per domain (:class:`_Rules`). Pods outside the neighbourhood are constants there. A rule the
current placement breaks already in a domain is held to no worse than now there. As the parts of
a round are solved side by side and a zone may span two of them, an answer is also taken only if
no rule then breaks for more of its carriers than before.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from kube_engine._core import Snapshot
from kube_engine.rebalancing.objective import (
    BALANCED,
    FULL_GPU,
    Allocatable,
    Scorer,
    Terms,
    balance_of,
    pinned_in_use,
    utilisation,
)
from kube_engine.records import RebalanceProblem

# (pod, from node, to node, GPU devices on it)
PodMove = tuple[str, str, str, tuple[int, ...]]
# Utilisation in the model: basis points.
BP = 10_000
# Where the tangent lines of the squared deviation from the mean touch (basis points).
TANGENTS = (0, 100, 300, 700, 1500, 3000, 6000)
# The highest utilisation the balance model tells apart (basis points): a node above it (only
# an over-committed one can be) counts as at it.
UTIL_CAP = 100 * BP
# The most a capacity constraint's terms may add up to: CP-SAT refuses a constraint whose terms
# could pass 2^63 (MODEL_INVALID), and its LP reasons in doubles, exact below 2^53. Amounts as
# large are only possible near the snapshot's limit of 2^62 per resource.
CAPACITY_MAGNITUDE = 1 << 53


@dataclass
class Pod:
    """A pod the search places: where it started (with its GPU devices there) and where it is."""

    name: str
    cls: int
    origin: int
    devices_at_origin: tuple[int, ...]
    node: int
    devices: tuple[int, ...]
    budgets: list[int] = field(default_factory=list)


def _share(amount: int, alloc: int) -> int:
    """``amount`` in basis points of ``alloc``; past ``UTIL_CAP`` only its first step (a sum
    with it is past the cap too)."""
    return min(round(amount * BP / alloc), UTIL_CAP + 1)


def capacity_row(demands: Sequence[int], free: int) -> tuple[list[int], int]:
    """The requests of the pods that may be on a node and its free amount of a resource, for
    the constraint that the pods there fit, in units that keep the terms within
    ``CAPACITY_MAGNITUDE``: as they are when they are small; else divided by their greatest common
    divisor, exactly; else requests rounded up and the free amount down, so that pods that fit
    in the model fit in fact (the model may then miss a placement that fits to the last unit)."""
    total = sum(demands)
    if total + abs(free) <= CAPACITY_MAGNITUDE:
        return list(demands), free
    # More room than all of them ask is as good as their sum (with the node not in use, still
    # none of them).
    free = min(free, total)
    unit = math.gcd(free, *demands)
    demands, free, total = [d // unit for d in demands], free // unit, total // unit
    if total + abs(free) <= CAPACITY_MAGNITUDE:
        return demands, free
    unit = -(-(total + abs(free)) // CAPACITY_MAGNITUDE) * 2
    return [-(-d // unit) for d in demands], free // unit


class Search:
    """The placement being improved: movable pods where they are now, the rest folded into what
    the nodes have left."""

    def __init__(
        self,
        snapshot: Snapshot,
        problem: RebalanceProblem,
        start: Sequence[PodMove],
        scorer: Scorer,
        prices: Sequence[float] | None,
        allocatable: Allocatable,
    ) -> None:
        self.problem = problem
        self.scorer = scorer
        nodes = problem["nodes"]
        self.prices = list(prices) if prices is not None else [1.0] * len(nodes)
        index = {name: i for i, name in enumerate(nodes)}
        moved = {p: (index[to], tuple(devs)) for p, _, to, devs in start}
        pod_node = dict(zip(snapshot.pod_names(), snapshot.pod_nodes(), strict=True))
        self.kept_in_use = pinned_in_use(problem, pod_node)
        budget_of: dict[str, list[int]] = defaultdict(list)
        for b, budget in enumerate(problem["budgets"]):
            for p in budget["pods"]:
                budget_of[p].append(b)
        classes = problem["classes"]
        self.resources = sorted({r for c in classes for r in c["request"]} | {"pods"})
        # What is left for the searched pods: allocatable less pinned pods.
        self.free = {r: list(problem["free"].get(r, [0] * len(nodes))) for r in self.resources}
        self.gpu_free = [list(d) for d in problem["gpu_free"]]
        self.demand: list[dict[str, int]] = []
        self.pods: list[Pod] = []
        for ci, c in enumerate(classes):
            request = {r: c["request"].get(r, 0) for r in self.resources}
            request["pods"] = max(request["pods"], 1)
            self.demand.append(request)
            for p, n in zip(c["pods"], c["nodes"], strict=True):
                origin = index[n]
                devs = tuple(snapshot.pod_request(p)["gpu_devices"]) if c["gpu_count"] else ()
                node, now = moved.get(p, (origin, devs))
                self.pods.append(Pod(p, ci, origin, devs, node, now, budget_of.get(p, [])))
        # One set per shared list (see `PodClass.candidates`).
        sets: dict[int, set[int]] = {}
        for c in classes:
            if id(c["candidates"]) not in sets:
                sets[id(c["candidates"])] = set(c["candidates"])
        self.candidates = [sets[id(c["candidates"])] for c in classes]
        self.rules = _Rules(problem, self.pods)
        self.allowed = [b["allowed"] for b in problem["budgets"]]
        self.alloc = allocatable.balanced
        self.base: dict[str, list[int]] = {}
        for r in BALANCED:
            free = problem["free"].get(r, [0] * len(nodes))
            self.base[r] = [a - f for a, f in zip(allocatable.total[r], free, strict=True)]

    # --- measuring a placement -------------------------------------------------------------

    def load(self) -> dict[str, list[int]]:
        out = {r: list(self.base[r]) for r in BALANCED}
        for p in self.pods:
            for r in BALANCED:
                out[r][p.node] += self.demand[p.cls].get(r, 0)
        return out

    def terms(self) -> Terms:
        used = self.kept_in_use | {p.node for p in self.pods}
        devices: set[tuple[int, int]] = {
            (n, d)
            for n, free in enumerate(self.gpu_free)
            for d, f in enumerate(free)
            if f < FULL_GPU
        }
        devices.update((p.node, d) for p in self.pods for d in p.devices)
        return Terms(
            pack=sum(self.prices[n] for n in used),
            balance=balance_of(self.load(), self.alloc),
            defrag=float(len(devices)),
        )

    def moves_made(self) -> int:
        return sum(p.node != p.origin for p in self.pods)

    def value(self) -> float:
        return self.scorer.value(self.terms(), self.moves_made())

    def moves(self) -> list[PodMove]:
        nodes = self.problem["nodes"]
        return [
            (p.name, nodes[p.origin], nodes[p.node], p.devices)
            for p in self.pods
            if p.node != p.origin
        ]

    # --- neighbourhoods --------------------------------------------------------------------

    def hosting(self) -> list[int]:
        """Nodes with movable pods on them."""
        return sorted({p.node for p in self.pods})

    def neighbourhood(
        self, rng: random.Random, size: int, kind: str, taken: set[int] | None = None
    ) -> list[int]:
        """Nodes to re-place the movable pods of, none of them in ``taken``."""
        taken = taken or set()
        hosting = [n for n in self.hosting() if n not in taken]
        if kind == "random":
            chosen = set(rng.sample(hosting, min(size, len(hosting))))
            # Few nodes in use: add nodes their pods may go to.
            reach = self._reach(self.pods)
            others = sorted(reach - chosen - taken)
            chosen.update(rng.sample(others, min(size - len(chosen), len(others))))
            return sorted(chosen)
        if kind == "pack":
            load: dict[int, float] = defaultdict(float)
            dims = [r for r in BALANCED if r in self.free]
            for p in self.pods:
                for r in dims:
                    load[p.node] += self.demand[p.cls].get(r, 0) / max(self.free[r][p.node], 1)
            in_use = [n for n in hosting if n not in self.kept_in_use]
            seeds = sorted(in_use, key=lambda n: load[n])[: max(3, len(in_use) // 10)]
            # Their pods go to the roomiest nodes in use; with prices, then to the cheapest nodes
            # not in use (an empty node costs nothing to keep out of use otherwise).
            order = sorted(in_use, key=lambda n: load[n])
            if len(set(self.prices)) > 1:
                empty = set(range(len(self.prices))) - set(in_use) - self.kept_in_use
                order += sorted(empty, key=lambda n: (self.prices[n], n))
            targets = order
        elif kind == "balance":
            share = self._peak_share()
            seeds = sorted(hosting, key=lambda n: -share[n])[: max(3, len(hosting) // 20)]
            # Their pods go to the coolest nodes they may use, empty ones included.
            targets = [n for n in range(len(share)) if share[n] >= 0]
            order = sorted(targets, key=lambda n: share[n])
        else:  # defrag
            partial = self._partly_used_gpu_nodes()
            seeds = [n for n in hosting if n in partial]
            targets = sorted(partial | {n for n, f in enumerate(self.gpu_free) if f})
            order = sorted(targets, key=lambda n: (n not in partial, n))
            if not seeds:
                return self.neighbourhood(rng, size, "random", taken)
        chosen = set(rng.sample(seeds, min(len(seeds), 1 + rng.randrange(3))))
        wanted = self._reach(p for p in self.pods if p.node in chosen)
        allowed = (set(targets) & wanted) - taken
        for n in order:
            if len(chosen) >= size:
                break
            if n in allowed:
                chosen.add(n)
        return sorted(chosen)

    def _reach(self, pods: Iterable[Pod]) -> set[int]:
        """The nodes any of ``pods`` may go to."""
        distinct = {id(s): s for s in (self.candidates[p.cls] for p in pods)}
        return set().union(*distinct.values())

    def _peak_share(self) -> list[float]:
        """Per node: its highest utilisation over the balanced resources (-1: not counted)."""
        load = self.load()
        out = [-1.0] * len(self.problem["nodes"])
        for r in BALANCED:
            for n, (x, a) in enumerate(zip(load[r], self.alloc[r], strict=True)):
                if a > 0:
                    out[n] = max(out[n], x / a)
        return out

    def _partly_used_gpu_nodes(self) -> set[int]:
        used: dict[tuple[int, int], int] = defaultdict(int)
        classes = self.problem["classes"]
        for p in self.pods:
            for d in p.devices:
                used[p.node, d] += classes[p.cls]["gpu_milli"]
        out = set()
        for n, free in enumerate(self.gpu_free):
            for d, f in enumerate(free):
                taken = FULL_GPU - f + used.get((n, d), 0)
                if 0 < taken < FULL_GPU:
                    out.add(n)
        return out

    # --- one neighbourhood -----------------------------------------------------------------

    def caps(
        self, parts: Sequence[Sequence[int]], max_moves: int | None
    ) -> list[tuple[int | None, dict[int, int]]]:
        """Per part (disjoint sets of nodes): how many of its pods may end moved, in all and per
        disruption budget. What the budgets have left is shared out, so that the parts' answers
        together keep them."""
        k = len(parts)

        def share(slack: int, j: int) -> int:
            return max(slack, 0) // k + (j < max(slack, 0) % k)

        spent = [0] * len(self.allowed)
        for p in self.pods:
            if p.node != p.origin:
                for b in p.budgets:
                    spent[b] += 1
        out = []
        for j, chosen in enumerate(parts):
            here = set(chosen)
            inside = [p for p in self.pods if p.node in here]
            moved = [p for p in inside if p.node != p.origin]
            cap = None
            if max_moves is not None:
                cap = len(moved) + share(max_moves - self.moves_made(), j)
            budgets = {}
            for b in {b for p in inside for b in p.budgets}:
                mine = sum(b in p.budgets for p in moved)
                budgets[b] = mine + share(self.allowed[b] - spent[b], j)
            out.append((cap, budgets))
        return out

    def solve(
        self,
        chosen: Sequence[int],
        caps: tuple[int | None, dict[int, int]],
        seconds: float,
        workers: int,
        seed: int,
        until: float | None = None,
    ) -> list[tuple[int, tuple[int, ...]]] | None:
        """(node, GPU devices) per pod on the chosen nodes, or None if CP-SAT found nothing;
        ``caps``: how many of these pods may end moved, in all and per disruption budget;
        ``seconds`` of deterministic time, cut at ``until`` (a ``time.perf_counter()``) if
        given."""
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
            m.add_hint(u, n in self.kept_in_use or any(p.node == n for p in inside))
            if n in self.kept_in_use:
                m.add(u == 1)
        # Per device of the chosen nodes: the terms that take from it.
        per_device: dict[tuple[int, int], list[tuple[int, cp_model.IntVar]]] = defaultdict(list)
        for n in chosen:
            on = [(i, p) for i, p in enumerate(inside) if (i, n) in x]
            for r in self.resources:
                coeffs, room = capacity_row([self.demand[p.cls][r] for _, p in on], self.free[r][n])
                m.add(
                    sum(c * x[i, n] for c, (i, _) in zip(coeffs, on, strict=True)) <= room * used[n]
                )
            for i, p in on:
                c = classes[p.cls]
                if not c["gpu_count"]:
                    continue
                if n == p.origin:
                    for d in p.devices_at_origin:
                        per_device[n, d].append((c["gpu_milli"], x[i, n]))
                    continue
                ys = [m.new_bool_var(f"y{i}_{n}_{d}") for d in range(len(self.gpu_free[n]))]
                m.add(sum(ys) == c["gpu_count"] * x[i, n])
                for d, y in enumerate(ys):
                    dev[i, n, d] = y
                    per_device[n, d].append((c["gpu_milli"], y))
                    m.add_hint(y, n == p.node and d in p.devices)
        for (n, d), terms in per_device.items():
            m.add(sum(milli * v for milli, v in terms) <= self.gpu_free[n][d])
        self.rules.model(m, chosen, inside, x)
        moved: list[cp_model.LinearExprT] = [
            1 - x[i, p.origin] if (i, p.origin) in x else 1 for i, p in enumerate(inside)
        ]
        cap, budgets = caps
        if cap is not None:
            m.add(sum(moved) <= cap)
        for b, room in budgets.items():
            m.add(sum(moved[i] for i, p in enumerate(inside) if b in p.budgets) <= room)

        # The objective: float coefficients per variable, made integer below.
        cost: list[tuple[float, cp_model.LinearExprT]] = []
        weights, scale = self.scorer.weights, self.scorer.scale
        if "pack" in weights:
            k = weights["pack"] / scale["pack"]
            cost += [(k * self.prices[n], used[n]) for n in chosen if n not in self.kept_in_use]
        if "balance" in weights:
            cost += self._balance_cost(m, chosen, inside, x, weights["balance"] / scale["balance"])
        if "defrag" in weights:
            k = weights["defrag"] / scale["defrag"]
            cost += self._defrag_cost(m, chosen, inside, x, per_device, k)
        if self.scorer.move_cost:
            cost += [(self.scorer.move_cost, mv) for mv in moved]
        # Integer coefficients, scaled so that the smallest step of the objective outweighs every
        # move the neighbourhood could make; moves then break ties.
        steps = [abs(c) for c, _ in cost if c]
        factor = (len(inside) + 1) / min(steps) if steps else 1.0
        factor = min(factor, 1e12 / max(steps, default=1.0))
        m.minimize(
            cp_model.LinearExpr.sum([round(c * factor) * v for c, v in cost if round(c * factor)])
            + cp_model.LinearExpr.sum(moved)
        )
        solver = cp_model.CpSolver()
        # Deterministic time, so that one worker and a seed give the same plan on any machine,
        # unless the clock cuts it.
        solver.parameters.max_deterministic_time = seconds
        if until is not None:
            # Building the model took part of the round: the clock counts from here.
            solver.parameters.max_time_in_seconds = max(until - time.perf_counter(), 0.01)
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

    def _balance_cost(
        self,
        m: cp_model.CpModel,
        chosen: Sequence[int],
        inside: Sequence[Pod],
        x: dict[tuple[int, int], cp_model.IntVar],
        weight: float,
    ) -> list[tuple[float, cp_model.LinearExprT]]:
        """Per balanced resource: the peak over the chosen nodes (at least the peak elsewhere),
        and the squared deviations of their utilisation from the mean, as tangent lines scaled
        so that a step changes the term as the standard deviation would."""
        load = self.load()
        cost: list[tuple[float, cp_model.LinearExprT]] = []
        dims = [r for r in BALANCED if any(self.alloc[r])]
        here = set(chosen)
        for r in dims:
            alloc = self.alloc[r]
            _, mean, std = utilisation(load[r], alloc)
            std = max(std, 1e-4)
            count = sum(a > 0 for a in alloc)
            counted = [n for n in range(len(alloc)) if alloc[n] > 0 and n not in here]
            elsewhere = max((load[r][n] / alloc[n] for n in counted), default=0.0)
            peak = m.new_int_var(0, UTIL_CAP, f"peak_{r}")
            m.add(peak >= min(int(elsewhere * BP), UTIL_CAP))
            centre = min(round(mean * BP), UTIL_CAP)
            for n in chosen:
                if alloc[n] <= 0:
                    continue
                base = _share(self.base[r][n], alloc[n])
                terms = [
                    (_share(self.demand[p.cls].get(r, 0), alloc[n]), x[i, n])
                    for i, p in enumerate(inside)
                    if (i, n) in x
                ]
                util: cp_model.LinearExprT = base + sum(c * v for c, v in terms)
                if base + sum(c for c, _ in terms) > UTIL_CAP:
                    capped = m.new_int_var(0, UTIL_CAP, f"util_{r}_{n}")
                    m.add_min_equality(capped, [util, UTIL_CAP])
                    util = capped
                m.add(peak >= util)
                square = m.new_int_var(0, UTIL_CAP**2, f"sq_{r}_{n}")
                for t in TANGENTS:
                    for s in {t, -t}:
                        m.add(square >= 2 * s * (util - centre) - s * s)
                # d std = d(sum of squares) / (2 * count * std), in fractions: squares are BP^2.
                cost.append((weight / len(dims) / (2 * count * std * BP * BP), square))
            cost.append((weight / len(dims) / BP, peak))
        return cost

    def _defrag_cost(
        self,
        m: cp_model.CpModel,
        chosen: Sequence[int],
        inside: Sequence[Pod],
        x: dict[tuple[int, int], cp_model.IntVar],
        per_device: dict[tuple[int, int], list[tuple[int, cp_model.IntVar]]],
        weight: float,
    ) -> list[tuple[float, cp_model.LinearExprT]]:
        """-1 per wholly free GPU device of the chosen nodes (the devices in use, less a
        constant)."""
        cost: list[tuple[float, cp_model.LinearExprT]] = []
        for n in chosen:
            for d, free in enumerate(self.gpu_free[n]):
                if free < FULL_GPU:
                    continue
                whole = m.new_bool_var(f"w{n}_{d}")
                for _, v in per_device.get((n, d), []):
                    m.add_implication(whole, v.negated())
                m.add_hint(whole, not any(p.node == n and d in p.devices for p in inside))
                cost.append((-weight, whole))
        return cost

    def take(self, chosen: Sequence[int], answer: list[tuple[int, tuple[int, ...]]]) -> bool:
        """Takes the answer if the whole placement's value then improves, or stays with fewer
        moves — and no inter-pod rule breaks more often: the parts of a round are solved side by
        side, each with the others' pods where they were, and a zone may span two parts."""
        inside = [p for p in self.pods if p.node in chosen]
        before = [(p.node, p.devices) for p in inside]
        was = (self.value(), self.moves_made())
        rules = self.rules.of_pods(inside)
        broken = self.rules.broken(rules)
        for p, (n, devs) in zip(inside, answer, strict=True):
            p.node, p.devices = n, devs
        now = (self.value(), self.moves_made())
        better = now[0] < was[0] - 1e-12 or (now[0] <= was[0] + 1e-12 and now[1] < was[1])
        if better and self.rules.broken(rules) <= broken:
            return True
        for p, (n, devs) in zip(inside, before, strict=True):
            p.node, p.devices = n, devs
        return False


@dataclass
class _Tally:
    """One rule's pods per domain within a neighbourhood: constants for the pods outside it,
    a variable per (pod inside, node of the domain) for those inside, and the counts now."""

    owned: dict[int, int]
    count: dict[int, int]
    owned_now: dict[int, int]
    count_now: dict[int, int]
    carry: dict[int, list[cp_model.IntVar]] = field(default_factory=lambda: defaultdict(list))
    terms: dict[int, list[cp_model.IntVar]] = field(default_factory=lambda: defaultdict(list))

    def total(self, d: int) -> cp_model.LinearExprT:
        """The counted pods in domain ``d``."""
        return cp_model.LinearExpr.sum(self.terms[d]) + self.count.get(d, 0)

    def held(self, m: cp_model.CpModel, d: int, name: str) -> list[cp_model.IntVar] | None:
        """The literals under which domain ``d`` holds a carrier (``[]``: it always does; None:
        it never does)."""
        if self.owned.get(d, 0) > 0:
            return []
        if not self.carry[d]:
            return None
        b = m.new_bool_var(f"{name}_{d}")
        for v in self.carry[d]:
            m.add_implication(v, b)
        m.add_hint(b, self.owned_now.get(d, 0) > 0)
        return [b]


class _Rules:
    """The inter-pod rules as counting constraints (see ``InterPodRule`` in
    :mod:`kube_engine.records` for what each kind asks of every domain holding a carrier)."""

    def __init__(self, problem: RebalanceProblem, pods: Sequence[Pod]) -> None:
        self.list = problem["rules"]
        self.domains = problem["domains"]
        self.count = [max(d, default=-1) + 1 for d in self.domains]
        self.by_class: list[list[Pod]] = [[] for _ in problem["classes"]]
        for p in pods:
            self.by_class[p.cls].append(p)
        # Per class: the rules it carries or is counted by.
        self.of_class: list[set[int]] = [set() for _ in problem["classes"]]
        self.owners: list[set[int]] = []
        self.counted: list[set[int]] = []
        for r, rule in enumerate(self.list):
            self.owners.append(set(rule["owners"]))
            self.counted.append(set(rule["counted"]))
            for c in self.owners[r] | self.counted[r]:
                self.of_class[c].add(r)

    def model(
        self,
        m: cp_model.CpModel,
        chosen: Sequence[int],
        inside: Sequence[Pod],
        x: dict[tuple[int, int], cp_model.IntVar],
    ) -> None:
        """Adds to ``m`` every rule the pods of the neighbourhood carry or are counted by."""
        for r in self.of_pods(inside):
            dom = self.domains[self.list[r]["domains"]]
            t = self._tally(r, set(chosen), inside)
            for i, p in enumerate(inside):
                mine, counts = p.cls in self.owners[r], p.cls in self.counted[r]
                if not (mine or counts):
                    continue
                for n in chosen:
                    if (i, n) in x and dom[n] >= 0:
                        if mine:
                            t.carry[dom[n]].append(x[i, n])
                        if counts:
                            t.terms[dom[n]].append(x[i, n])
            touched = sorted({dom[n] for n in chosen if dom[n] >= 0})
            if self.list[r]["kind"] == "spread":
                self._spread(m, r, touched, t)
            else:
                self._near(m, r, touched, t)

    def of_pods(self, pods: Sequence[Pod]) -> list[int]:
        """The rules ``pods`` carry or are counted by."""
        return sorted(set().union(*(self.of_class[p.cls] for p in pods)))

    def broken(self, rules: Sequence[int]) -> int:
        """How many carriers of ``rules`` the placement as it is breaks them for."""
        out = 0
        for r in rules:
            rule = self.list[r]
            t = self._tally(r, set(), [])
            carried = [(d, k) for d, k in t.owned.items() if k]
            s = int(rule["counts_itself"])
            if rule["kind"] == "spread":
                domains = self.count[rule["domains"]]
                few = domains < rule["min_domains"]
                low = 0 if few else _least(t.count, domains, set()) or 0
                out += sum(k for d, k in carried if t.count.get(d, 0) - low > rule["max_skew"])
            elif rule["kind"] == "affinity":
                if not (s and sum(t.count.values()) <= 1):
                    out += sum(k for d, k in carried if t.count.get(d, 0) < 1 + s)
            else:
                out += sum(k for d, k in carried if t.count.get(d, 0) > s)
        return out

    def _tally(self, r: int, here: set[int], inside: Sequence[Pod]) -> _Tally:
        """Rule ``r``'s carriers and counted pods per domain: pinned pods and pods on nodes not
        in ``here`` (constants), and with the pods ``inside`` where they are now."""
        rule = self.list[r]
        dom = self.domains[rule["domains"]]
        sides = []
        for classes, fixed in (
            (self.owners[r], rule["fixed_owners"]),
            (self.counted[r], rule["fixed_counted"]),
        ):
            out: dict[int, int] = defaultdict(int, dict(fixed))
            for c in classes:
                for p in self.by_class[c]:
                    if p.node not in here and dom[p.node] >= 0:
                        out[dom[p.node]] += 1
            now = dict(out)
            for p in inside:
                if p.cls in classes and dom[p.node] >= 0:
                    now[dom[p.node]] = now.get(dom[p.node], 0) + 1
            sides.append((dict(out), now))
        (owned, owned_now), (count, count_now) = sides
        return _Tally(owned, count, owned_now, count_now)

    def _near(self, m: cp_model.CpModel, r: int, touched: list[int], t: _Tally) -> None:
        """Anti-affinity and host ports: at most ``s`` counted pods in a domain with a carrier;
        affinity: at least ``1 + s`` (``s``: the carriers count themselves)."""
        rule = self.list[r]
        s = int(rule["counts_itself"])
        if rule["kind"] == "affinity" and s and sum(t.count_now.values()) <= 1:
            return  # the first pod of a group may go anywhere: nothing else matches
        for d in touched:
            if (lits := t.held(m, d, f"r{r}")) is None:
                continue
            now = t.count_now.get(d, 0) if t.owned_now.get(d, 0) else None
            # Broken already here: no worse than now.
            if rule["kind"] == "affinity":
                need = 1 + s if now is None else min(1 + s, now)
                m.add(t.total(d) >= need).only_enforce_if(lits)
            else:
                limit = s if now is None else max(s, now)
                m.add(t.total(d) <= limit).only_enforce_if(lits)

    def _spread(self, m: cp_model.CpModel, r: int, touched: list[int], t: _Tally) -> None:
        """Per domain with a carrier: its count at most ``max_skew`` over the emptiest eligible
        domain's (0 with fewer domains than ``min_domains``)."""
        rule = self.list[r]
        domains = self.count[rule["domains"]]
        few = domains < rule["min_domains"]
        low_now = 0 if few else _least(t.count_now, domains, set()) or 0
        carried = [d for d, k in t.owned_now.items() if k]
        worst = max((t.count_now.get(d, 0) - low_now for d in carried), default=0)
        skew = max(rule["max_skew"], worst)  # broken already: no worse than now
        floor: cp_model.IntVar | None = None
        if not few:
            floor = m.new_int_var(0, sum(t.count_now.values()), f"min{r}")
            m.add_hint(floor, low_now)
            for d in touched:
                m.add(floor <= t.total(d))
            elsewhere = _least(t.count, domains, set(touched))
            if elsewhere is not None:
                m.add(floor <= elsewhere)
            # Carriers in domains the neighbourhood does not reach hold the floor up.
            fixed = [t.count.get(d, 0) for d, k in t.owned.items() if k and d not in touched]
            if fixed:
                m.add(floor >= max(fixed) - skew)
        for d in touched:
            if (lits := t.held(m, d, f"r{r}")) is None:
                continue
            if floor is None:
                m.add(t.total(d) <= skew).only_enforce_if(lits)
            else:
                m.add(t.total(d) <= floor + skew).only_enforce_if(lits)


def _least(counts: dict[int, int], domains: int, without: set[int]) -> int | None:
    """The fewest pods in one of ``domains`` domains not in ``without`` (None: there is none),
    ``counts`` giving the pods per domain."""
    if domains - len(without) <= 0:
        return None
    rest = [k for d, k in counts.items() if d not in without and k > 0]
    return 0 if len(rest) < domains - len(without) else min(rest)


def improve(
    search: Search,
    max_moves: int | None,
    time_limit: float,
    workers: int | None,
    seed: int,
    neighbourhood: int = 24,
    round_seconds: float = 1.0,
    rounds: int | None = None,
    deterministic: bool = False,
) -> None:
    """Improves the search's placement in ``rounds`` rounds (default ``time_limit /
    round_seconds``; a caller that spent part of its time gives the rounds of its own budget, so
    they do not depend on how long that took). Each round
    re-places ``workers`` disjoint neighbourhoods in parallel (default: one per core), each by a
    one-worker CP-SAT for ``round_seconds`` of its deterministic time, with the move and
    disruption budgets' slack shared out among them; their answers are then taken one by one if
    they improve the whole placement. The wall clock stops the search at ``time_limit``, within a
    round if need be, so on a slow or busy machine the plan depends on its speed; with
    ``deterministic`` it does not (the clock is not read: rounds run to their deterministic time),
    and with a seed the plan depends neither on the machine's speed nor on thread timing. Rounds
    alternate between the weighted terms' targeted neighbourhoods and random ones."""
    started = time.perf_counter()
    rng = random.Random(seed)
    parallel = max(1, min(workers or os.cpu_count() or 1, os.cpu_count() or 1))
    kinds = [k for k in ("pack", "balance", "defrag") if k in search.scorer.weights]
    # Taking an answer measures the whole placement (in Python): the solves stop early enough
    # for the round's answers to be taken within the limit.
    # A round also builds its models (in Python) before CP-SAT starts: after the first, none
    # starts with less than the shortest round left, which it would overrun.
    take_seconds, shortest = 0.0, float("inf")
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for i in range(max(1, rounds or int(time_limit / round_seconds))):
            began = time.perf_counter()
            left = None if deterministic else time_limit - (began - started)
            enough = 0.0 if shortest == float("inf") else shortest
            if not search.hosting() or (left is not None and left <= enough):
                break
            kind = kinds[(i // 2) % len(kinds)] if i % 2 == 0 else "random"
            parts: list[list[int]] = []
            taken: set[int] = set()
            for j in range(parallel):
                part_kind = kind if j == 0 else "random"
                chosen = search.neighbourhood(rng, neighbourhood, part_kind, taken)
                if len(chosen) >= 2:
                    parts.append(chosen)
                    taken.update(chosen)
            caps = search.caps(parts, max_moves)
            seeds = [rng.randrange(1 << 30) for _ in parts]
            # CP-SAT lets go of the GIL while it solves: the parts run side by side.
            answers = list(
                pool.map(
                    search.solve,
                    parts,
                    caps,
                    [round_seconds] * len(parts),
                    [1] * len(parts),
                    seeds,
                    [None if left is None else started + time_limit - take_seconds * len(parts)]
                    * len(parts),
                )
            )
            for chosen, answer in zip(parts, answers, strict=True):
                if answer is not None:
                    taking = time.perf_counter()
                    search.take(chosen, answer)
                    take_seconds = max(take_seconds, time.perf_counter() - taking)
            shortest = min(shortest, time.perf_counter() - began)
