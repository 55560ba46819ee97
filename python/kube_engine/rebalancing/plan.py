"""Rebalancing a cluster: which pods to move where, and what that gains.

Objectives (:mod:`kube_engine.rebalancing.objective`): ``pack`` (fewest nodes in use, or the
lowest node cost when nodes carry prices), ``balance`` (lowest peak and spread of utilisation),
``defrag`` (fewest GPUs not wholly free), or a weighted combination; each move may carry a cost.
The Rust packing heuristic starts ``pack``: it empties the cheapest nodes first, placing each of
their pods with the scheduler's own filters (GPU devices included) on nodes that stay, within the
move budget and the PodDisruptionBudgets. Greedy starts in Rust (``rebalance::greedy`` of the
core) move pods off the hottest nodes for ``balance`` and off the least used GPU devices for
``defrag``, within the same budgets. CP-SAT then improves the best start neighbourhood by
neighbourhood (:mod:`kube_engine.rebalancing.lns`). The result is checked against every rule
before it is returned, and carries a proven lower bound (:mod:`kube_engine.rebalancing.bounds`;
with CP-SAT also ``pack_bound`` and ``defrag_bound``) and the gap to it.
Nothing in a cluster is changed: this is the plan.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from kube_engine import arguments
from kube_engine._core import (
    Evaluation,
    InternalError,
    RebalanceSpace,
    Snapshot,
    drain_plan,
    evaluate,
    greedy_start,
    rebalance_space,
)
from kube_engine.rebalancing.bounds import bounds, kept_in_use
from kube_engine.rebalancing.objective import (
    TERMS,
    Allocatable,
    Scorer,
    Terms,
    ceiling_of,
    node_prices,
    parse_objective,
    terms_of,
)
from kube_engine.records import GreedyStart, RebalanceProblem

GPU_RESOURCE = "nvidia.com/gpu"
OBJECTIVES = TERMS
SOLVERS = ("cpsat", "heuristic")
#: The most CP-SAT ``workers`` :func:`rebalance` takes: each is a thread, and its portfolio of
#: strategies repeats long before this many.
MAX_WORKERS = 256
# The share of `time_limit` CP-SAT spends proving bounds on the pack and defrag terms.
BOUND_SHARE = 0.1


@dataclass(frozen=True)
class Move:
    pod: str
    from_node: str
    to_node: str
    gpu_devices: tuple[int, ...] = ()


@dataclass(frozen=True)
class RebalanceResult:
    """A rebalancing plan and what it changes."""

    objective: str
    #: The objective's terms with their weights.
    weights: dict[str, float]
    solver: str
    moves: list[Move]
    #: The objective value of the plan, and a value no plan within the move budget goes below
    #: (proven by relaxations, see :mod:`kube_engine.rebalancing.bounds`, and with the CP-SAT
    #: solver also by CP-SAT, see :mod:`kube_engine.rebalancing.pack_bound` and
    #: :mod:`kube_engine.rebalancing.defrag_bound`).
    value: float
    bound: float
    #: Each term before and after (pack: nodes in use or their price; balance: peak plus standard
    #: deviation of cpu and memory utilisation; defrag: GPUs not wholly free).
    terms_before: dict[str, float]
    terms_after: dict[str, float]
    nodes_freed: list[str]
    nodes_used_before: int
    nodes_used_after: int
    #: Per resource: requested over allocatable of the nodes in use, before and after.
    utilisation_before: dict[str, float]
    utilisation_after: dict[str, float]
    #: GPU devices wholly free, before and after.
    whole_free_gpus_before: int
    whole_free_gpus_after: int
    seconds: float
    #: ``OPTIMAL``: the value meets the bound. ``FEASIBLE``: checked against every rule, not
    #: proven optimal. ``HEURISTIC_FALLBACK``: CP-SAT's plan broke a rule more often than the
    #: cluster does now (see :mod:`kube_engine.rebalancing.lns` for what it models and where it
    #: relaxes), so this is the starting plan.
    status: str = "FEASIBLE"
    max_moves: int | None = None
    #: What proved the bound: ``"cpsat"`` when CP-SAT's bound on an aggregated model (of pack or
    #: defrag) is the higher one for some term, else ``"relaxation"``.
    bound_source: str = "relaxation"
    #: Every pod's node after the plan (None: not placed).
    target: dict[str, str | None] = field(default_factory=dict, repr=False)
    #: What the plan decided over, and the cluster as it was: a caller that reports them need
    #: not work them out again (on a large cluster each takes seconds).
    problem: RebalanceProblem | None = field(default=None, repr=False, compare=False)
    before: Evaluation | None = field(default=None, repr=False, compare=False)

    @property
    def gap(self) -> float:
        """How far above the bound the value may be, relative to the value (0: proven optimal)."""
        if self.value <= self.bound or self.value == 0:
            return 0.0
        return (self.value - self.bound) / abs(self.value)

    @property
    def placement(self) -> dict[str, str | None]:
        """The moved pods' new nodes, as :func:`kube_engine.evaluate` takes them."""
        return {m.pod: m.to_node for m in self.moves}

    @property
    def gpu_devices(self) -> dict[str, list[int]]:
        """The GPU devices the moved GPU pods take on their new node (``evaluate`` takes these
        too; without them it would pick devices itself)."""
        return {m.pod: list(m.gpu_devices) for m in self.moves if m.gpu_devices}

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "weights": self.weights,
            "solver": self.solver,
            "status": self.status,
            "value": self.value,
            "bound": self.bound,
            "bound_source": self.bound_source,
            "gap": self.gap,
            "max_moves": self.max_moves,
            "moves": [
                {
                    "pod": m.pod,
                    "from": m.from_node,
                    "to": m.to_node,
                    "gpu_devices": list(m.gpu_devices),
                }
                for m in self.moves
            ],
            "terms": {"before": self.terms_before, "after": self.terms_after},
            "nodes_freed": self.nodes_freed,
            "nodes_used": {"before": self.nodes_used_before, "after": self.nodes_used_after},
            "utilisation": {"before": self.utilisation_before, "after": self.utilisation_after},
            "whole_free_gpus": {
                "before": self.whole_free_gpus_before,
                "after": self.whole_free_gpus_after,
            },
            "seconds": self.seconds,
        }

    def table(self, limit: int = 20) -> str:
        terms = ", ".join(
            f"{k} {_term(k, self.terms_before[k])} -> {_term(k, self.terms_after[k])}"
            for k in self.weights
        )
        lines = [
            f"Plan ({self.objective}, {self.solver}, {self.status}): {len(self.moves):,} moves"
            + (f" (at most {self.max_moves:,})" if self.max_moves is not None else "")
            + f"; {terms}",
            f"objective {self.value:,.4g}, bound {self.bound:,.4g} ({self.bound_source}), "
            f"gap {self.gap:.1%}",
            f"nodes in use {self.nodes_used_before:,} -> {self.nodes_used_after:,} "
            f"({len(self.nodes_freed):,} freed); whole free GPUs "
            f"{self.whole_free_gpus_before:,} -> {self.whole_free_gpus_after:,}",
            "utilisation of the nodes in use: "
            + ", ".join(
                f"{r} {self.utilisation_before[r]:.1%} -> {self.utilisation_after[r]:.1%}"
                for r in self.utilisation_before
            ),
        ]
        limit = max(limit, 0)
        if shown := self.moves[:limit]:
            width = max(len(m.pod) for m in shown)
            lines.append("")
            lines += [f"  {m.pod:<{width}}  {m.from_node} -> {m.to_node}" for m in shown]
        if len(self.moves) > limit:
            lines.append(f"  ... {len(self.moves) - limit:,} more (-o json lists all)")
        return "\n".join(lines)


def _term(name: str, value: float) -> str:
    return f"{value:.1%}" if name == "balance" else f"{value:,.6g}"


def _utilisation(snapshot: Snapshot, ev: Evaluation) -> dict[str, float]:
    used = set(ev.nodes_in_use())
    allocatable = {name: snapshot.node_allocatable(name) for name in used}
    out: dict[str, float] = {}
    for resource in ("cpu", "memory", GPU_RESOURCE):

        def capacity(name: str, resource: str = resource) -> int:
            node = allocatable[name]
            if resource == GPU_RESOURCE:
                return node["gpu_devices"] * 1000
            return node["resources"].get(resource, 0)

        total = sum(capacity(name) for name in used)
        if total == 0:
            continue
        shares = ev.node_utilisation(resource)
        requested = sum(
            share * capacity(name)
            for name, share in zip(snapshot.node_names(), shares, strict=True)
            if name in used and share is not None
        )
        out[resource] = requested / total
    return out


#: Seconds after kube-engine moved a pod (its replacement carries ``kube-engine.io/moved-at``)
#: during which a rebalance or a plan leaves it where it landed: moving it straight back or on
#: would be churn.
DEFAULT_COOLDOWN = 3600.0


def moved_since_for(cooldown: float) -> int | None:
    """The earliest ``moved-at`` (seconds since the epoch) that still pins a pod; None: none.
    ``cooldown`` may be infinite: every pod kube-engine ever moved stays."""
    cooldown = arguments.number("cooldown", cooldown, infinite=True)
    if cooldown == 0:
        return None
    # Before any clock a cluster has (and within the core's 64-bit seconds).
    return max(int(time.time() - min(cooldown, 2.0**62)), -(2**62))


def greedy_start_for(
    space: RebalanceSpace,
    term: Literal["balance", "defrag"],
    scorer: Scorer,
    allocatable: Allocatable,
    *,
    prices: Sequence[float] | None = None,
    max_moves: int | None = None,
    time_limit: float | None = None,
) -> GreedyStart:
    """The core's greedy start for ``term``, measured by ``scorer``'s objective."""
    return greedy_start(
        space,
        term,
        weights=scorer.weights,
        scale=scorer.scale,
        move_cost=scorer.move_cost,
        allocatable=allocatable.total,
        balanced=allocatable.balanced,
        prices=prices,
        max_moves=max_moves,
        time_limit=time_limit,
    )


def rebalance(
    snapshot: Snapshot,
    objective: str | Mapping[str, float] = "pack",
    max_moves: int | None = None,
    *,
    time_limit: float = 60.0,
    workers: int | None = None,
    seed: int = 0,
    solver: str = "cpsat",
    move_cost: float = 0.0,
    prices: Mapping[str, float] | None = None,
    price_label: str | None = None,
    keep_nodes: Sequence[str] = (),
    exclude_nodes: Sequence[str] = (),
    allow_local_storage: bool | Sequence[str] = False,
    allow_bare: bool = False,
    deterministic: bool = False,
    cooldown: float = DEFAULT_COOLDOWN,
) -> RebalanceResult:
    """A plan that moves at most ``max_moves`` pods to improve ``objective``.

    ``objective`` is ``"pack"``, ``"balance"``, ``"defrag"`` or weights such as
    ``"pack=1,balance=0.5"`` (or a mapping); ``move_cost`` is added per move, in the objective's
    units. ``prices`` (node name to price) or ``price_label`` (a node label holding the price) make
    ``pack`` minimise the price of the nodes in use. ``solver="heuristic"`` returns the best plan
    of the heuristics for the weighted terms (the Rust packing heuristic and greedy starts; they
    stop when ``time_limit`` runs out, with their best so far); ``"cpsat"`` improves it for what
    is left of ``time_limit`` seconds (the starts then have half of it), with ``workers`` CP-SAT
    workers (default: the machine's cores). Everything counts against ``time_limit``: building
    the problem, the starts, CP-SAT and the final check of the plan. CP-SAT works in its
    deterministic time, ``time_limit`` units of it, and stops at ``time_limit`` seconds of the
    clock, so on a slow or busy machine the plan depends on its speed; with ``deterministic`` the
    clock is not read (the starts run to their end, the plan may take longer) and one worker and
    a seed give the same plan on any machine.

    Pods that must stay (DaemonSet, static, system-critical, annotated not to be evicted, with
    local storage unless ``allow_local_storage``, without a controller unless ``allow_bare``, on a
    node in ``keep_nodes`` or a control-plane node, moved by kube-engine less than ``cooldown``
    seconds ago) stay; nodes in
    ``exclude_nodes`` take no pods (theirs may leave); PodDisruptionBudgets bound the moves of
    their pods. The snapshot is not changed.

    Arguments are checked first (:class:`~kube_engine.InvalidArgumentError` names the one at
    fault): ``seed`` 0 to 2**31-1 (CP-SAT's), ``workers`` 1 to :data:`MAX_WORKERS`,
    ``max_moves`` any count (more than the pods is no limit), ``time_limit`` finite.
    """
    # OR-Tools (and the search built on it) loads on first use, not with the package: a second
    # and more of import time that inspecting or planning never needs.
    from kube_engine.rebalancing.defrag_bound import defrag_bound
    from kube_engine.rebalancing.lns import Search, improve
    from kube_engine.rebalancing.pack_bound import pack_bound

    snapshot = arguments.snapshot(snapshot)
    weights = parse_objective(objective)
    solver = arguments.choice("solver", solver, SOLVERS)
    time_limit = arguments.number("time_limit", time_limit, positive=True)
    workers = arguments.optional_integer("workers", workers, low=1, high=MAX_WORKERS)
    seed = arguments.integer("seed", seed, high=arguments.I32)
    # More moves than pods is no limit at all: the same plan, and numbers the solvers can hold.
    max_moves = arguments.optional_integer("max_moves", max_moves, high=None)
    if max_moves is not None:
        max_moves = min(max_moves, snapshot.num_pods)
    move_cost = arguments.number("move_cost", move_cost)
    price_label = arguments.optional_text("price_label", price_label)
    keep = arguments.names("keep_nodes", keep_nodes)
    exclude = arguments.names("exclude_nodes", exclude_nodes)
    allow_local_storage = arguments.local_storage("allow_local_storage", allow_local_storage)
    allow_bare = arguments.flag("allow_bare", allow_bare)
    deterministic = arguments.flag("deterministic", deterministic)
    price = node_prices(snapshot, prices, price_label)
    started = time.perf_counter()

    def left(share: float = 1.0) -> float | None:
        """What is left of ``share`` of ``time_limit`` (None: the plan must not depend on the
        clock)."""
        if deterministic:
            return None
        return max(share * time_limit - (time.perf_counter() - started), 0.0)

    # The heuristic starts may take half of the limit when CP-SAT follows them, all of it when
    # their plan is the answer.
    starts_share = 1.0 if solver == "heuristic" else 0.5

    moved_since = moved_since_for(cooldown)
    space = rebalance_space(
        snapshot,
        allow_local_storage=allow_local_storage,
        allow_bare=allow_bare,
        keep_nodes=keep,
        exclude_nodes=exclude,
        moved_since=moved_since,
    )
    problem = space.problem()
    evaluated = time.perf_counter()
    before = evaluate(snapshot)
    utilisation_before = _utilisation(snapshot, before)
    # The plan found is evaluated and measured so once more at the end: that much of the time is
    # kept for it, and a little for the result's bookkeeping.
    closing = 1.5 * (time.perf_counter() - evaluated) + 0.2
    terms_before = terms_of(before, snapshot, price)
    scorer = Scorer.of(weights, move_cost, terms_before)
    allocatable = Allocatable.of(snapshot, before)
    movable = sum(len(c["pods"]) for c in problem["classes"])
    scorer.check_finite(
        ceiling_of(before, allocatable, price),
        movable if max_moves is None else min(max_moves, movable),
        price is not None,
    )

    # The start: the best of the heuristics for the weighted terms, or the placement as it is.
    starts: list[tuple[list[Move], list[str]]] = [([], [])]
    if "pack" in weights:
        plan = drain_plan(
            snapshot,
            max_moves=max_moves,
            allow_local_storage=allow_local_storage,
            allow_bare=allow_bare,
            seed=seed,
            keep_nodes=keep,
            exclude_nodes=exclude,
            moved_since=moved_since,
            time_limit=left(starts_share),
        )
        drained = [
            Move(m["pod"], m["from"], m["to"], tuple(m["gpu_devices"])) for m in plan["moves"]
        ]
        starts.append((drained, plan["freed"]))
    greedy_terms: tuple[Literal["balance", "defrag"], ...] = ("balance", "defrag")
    for start_term in greedy_terms:
        if start_term in weights:
            # The greedy moves check no inter-pod rule: pods that carry one stay.
            greedy = greedy_start_for(
                space,
                start_term,
                scorer,
                allocatable,
                prices=price,
                max_moves=max_moves,
                time_limit=left(starts_share),
            )
            found = [
                Move(m["pod"], m["from"], m["to"], tuple(m["gpu_devices"])) for m in greedy["moves"]
            ]
            starts.append((found, []))
    best: tuple[float, int] | None = None
    moves, after, freed_order = [], before, []
    for start, freed in starts:
        checked = _after(snapshot, start) if start else before
        if _breaks_more(before, checked):
            continue
        rank = (scorer.value(terms_of(checked, snapshot, price), len(start)), len(start))
        if best is None or rank < best:
            best, moves, after, freed_order = rank, start, checked, freed
    status = "FEASIBLE"
    pod_nodes = dict(zip(snapshot.pod_names(), snapshot.pod_nodes(), strict=True))
    floor = bounds(problem, pod_nodes, before.nodes_in_use(), price, allocatable, max_moves)
    # CP-SAT proves bounds on the pack and defrag terms in a share of the time, deterministic
    # time keeping them the same on any machine.
    proven: dict[str, float | None] = {}
    if solver == "cpsat":
        bounded = [t for t in ("pack", "defrag") if t in weights]
        budget = left()
        share = BOUND_SHARE * (time_limit if budget is None else budget) / max(len(bounded), 1)
        cores = workers or os.cpu_count() or 1
        if "pack" in bounded:
            node_price = [1.0] * len(problem["nodes"]) if price is None else price
            kept = kept_in_use(problem, pod_nodes)
            proven["pack"] = pack_bound(
                problem,
                kept,
                node_price,
                price is None,
                max_moves,
                share,
                cores,
                seed,
                deterministic,
            )
        if "defrag" in bounded:
            devices = {
                p: snapshot.pod_request(p)["gpu_devices"]
                for c in problem["classes"]
                if c["gpu_count"]
                for p in c["pods"]
            }
            proven["defrag"] = defrag_bound(
                problem, devices, max_moves, share, cores, seed, deterministic
            )
        begin = [(m.pod, m.from_node, m.to_node, m.gpu_devices) for m in moves]
        s = Search(snapshot, problem, begin, scorer, price, allocatable)
        search_time = time_limit - (time.perf_counter() - started) - closing
        # One round per second of the budget the bounds left, whatever the heuristics took.
        rounds = int(time_limit * (1 - BOUND_SHARE) if bounded else time_limit)
        improve(
            s,
            max_moves,
            max(search_time, 0.1),
            workers,
            seed,
            rounds=max(rounds, 1),
            deterministic=deterministic,
        )
        found = [Move(*m) for m in s.moves()]
        checked = _after(snapshot, found)
        if _breaks_more(before, checked):
            # The search models every rule evaluate checks, but a rule broken already is only
            # held to no worse per domain, and affinity's first-pod case is read off the
            # placement before the round: should that let a rule break more often, the start
            # stands.
            status = "HEURISTIC_FALLBACK"
        elif scorer.value(terms_of(checked, snapshot, price), len(found)) <= scorer.value(
            terms_of(after, snapshot, price), len(moves)
        ):
            moves, after = found, checked
    _check_budgets(problem, moves, max_moves)
    if _breaks_more(before, after):
        raise InternalError(
            f"the plan would break rules more often ({before.violation_counts()} before, "
            f"{after.violation_counts()} after); not returned"
        )
    terms_after = terms_of(after, snapshot, price)
    value = scorer.value(terms_after, len(moves))
    bound_source = "relaxation"
    for term, proof in proven.items():
        if proof is not None and proof > floor.get(term):
            floor, bound_source = replace(floor, **{term: proof}), "cpsat"
    bound = scorer.value(floor, 0)
    # `check_finite` keeps both finite; a NaN or infinity is never a proof.
    proven_optimal = math.isfinite(value) and math.isfinite(bound)
    if status == "FEASIBLE" and proven_optimal and value <= bound + 1e-9 * max(1.0, abs(value)):
        status = "OPTIMAL"
    gone = set(before.nodes_in_use()).difference(after.nodes_in_use())
    target = pod_nodes | {m.pod: m.to_node for m in moves}
    return RebalanceResult(
        objective=",".join(f"{k}={w:g}" for k, w in weights.items())
        if len(weights) > 1
        else next(iter(weights)),
        weights=weights,
        solver=solver,
        moves=moves,
        value=value,
        bound=bound,
        terms_before=_terms_dict(terms_before, weights),
        terms_after=_terms_dict(terms_after, weights),
        # The heuristic's in the order it emptied them, then any more the solver emptied.
        nodes_freed=[n for n in freed_order if n in gone] + sorted(gone.difference(freed_order)),
        nodes_used_before=before.nodes_used,
        nodes_used_after=after.nodes_used,
        utilisation_before=utilisation_before,
        utilisation_after=_utilisation(snapshot, after),
        whole_free_gpus_before=before.gpu["whole_free"],
        whole_free_gpus_after=after.gpu["whole_free"],
        seconds=time.perf_counter() - started,
        status=status,
        max_moves=max_moves,
        bound_source=bound_source,
        target=target,
        problem=problem,
        before=before,
    )


def _terms_dict(terms: Terms, weights: dict[str, float]) -> dict[str, float]:
    """All three terms, the weighted ones first."""
    order = list(weights) + [k for k in TERMS if k not in weights]
    return {k: terms.get(k) for k in order}


def _check_budgets(problem: RebalanceProblem, moves: list[Move], max_moves: int | None) -> None:
    """The last word before a plan is returned: no pinned pod moves, no budget is overspent."""
    moved = {m.pod for m in moves}
    if len(moved) != len(moves):
        raise InternalError("the plan moves a pod twice; not returned")
    if max_moves is not None and len(moves) > max_moves:
        raise InternalError(f"the plan makes {len(moves)} moves, over max_moves={max_moves}")
    if pinned := sorted(moved.intersection(problem["pinned"])):
        raise InternalError(f"the plan moves pods that must stay: {pinned[:5]}; not returned")
    for b in problem["budgets"]:
        spent = len(moved.intersection(b["pods"]))
        if spent > b["allowed"]:
            raise InternalError(
                f"the plan evicts {spent} pods of {b['name']}, which allows {b['allowed']}"
            )


def _after(snapshot: Snapshot, moves: list[Move]) -> Evaluation:
    return evaluate(
        snapshot,
        {m.pod: m.to_node for m in moves},
        {m.pod: list(m.gpu_devices) for m in moves if m.gpu_devices},
    )


def _breaks_more(before: Evaluation, after: Evaluation) -> bool:
    was = before.violation_counts()
    return any(n > was.get(kind, 0) for kind, n in after.violation_counts().items())
