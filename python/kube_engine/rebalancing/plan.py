"""Rebalancing a cluster: which pods to move where, so that nodes can be removed.

So far the ``pack`` objective. The Rust packing heuristic empties the cheapest nodes first,
placing each of their pods with the scheduler's own filters (GPU devices included) on nodes that
stay, within the move budget and the PodDisruptionBudgets; with ``solver="cpsat"`` CP-SAT then
improves its plan neighbourhood by neighbourhood (:mod:`kube_engine.rebalancing.pack_lns`). The
result is checked against every rule before it is returned. Nothing in a cluster is changed: this
is the plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kube_engine._core import Evaluation, InternalError, Snapshot, drain_plan, evaluate

GPU_RESOURCE = "nvidia.com/gpu"
OBJECTIVES = ("pack",)
SOLVERS = ("heuristic", "cpsat")


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
    solver: str
    moves: list[Move]
    nodes_freed: list[str]
    nodes_used_before: int
    nodes_used_after: int
    #: Per resource: requested over allocatable of the nodes in use, before and after.
    utilisation_before: dict[str, float]
    utilisation_after: dict[str, float]
    seconds: float
    #: ``FEASIBLE``: checked against every rule, not proven optimal. ``HEURISTIC_FALLBACK``:
    #: CP-SAT's plan broke a rule the search does not model, so this is the heuristic's plan.
    status: str = "FEASIBLE"
    max_moves: int | None = None

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
            "solver": self.solver,
            "status": self.status,
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
            "nodes_freed": self.nodes_freed,
            "nodes_used": {"before": self.nodes_used_before, "after": self.nodes_used_after},
            "utilisation": {"before": self.utilisation_before, "after": self.utilisation_after},
            "seconds": self.seconds,
        }

    def table(self, limit: int = 20) -> str:
        lines = [
            f"Plan ({self.objective}, {self.solver}): {len(self.moves):,} moves free "
            f"{len(self.nodes_freed):,} nodes; nodes in use {self.nodes_used_before:,} -> "
            f"{self.nodes_used_after:,}"
            + (f" (at most {self.max_moves:,} moves)" if self.max_moves is not None else ""),
            "utilisation of the nodes in use: "
            + ", ".join(
                f"{r} {self.utilisation_before[r]:.1%} -> {self.utilisation_after[r]:.1%}"
                for r in self.utilisation_before
            ),
        ]
        if self.moves:
            width = max(len(m.pod) for m in self.moves[:limit])
            lines.append("")
            lines += [
                f"  {m.pod:<{width}}  {m.from_node} -> {m.to_node}" for m in self.moves[:limit]
            ]
            if len(self.moves) > limit:
                lines.append(f"  ... {len(self.moves) - limit:,} more (-o json lists all)")
        return "\n".join(lines)


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


def rebalance(
    snapshot: Snapshot,
    objective: str = "pack",
    max_moves: int | None = None,
    *,
    solver: str = "heuristic",
    time_limit: float = 60.0,
    workers: int | None = None,
    allow_local_storage: bool = False,
    allow_bare: bool = False,
    seed: int = 0,
) -> RebalanceResult:
    """A plan that frees nodes by moving pods, at most ``max_moves`` of them.

    Pods that must stay (DaemonSet, static, system-critical, annotated
    ``kube-engine.io/evict: "false"``, with local storage unless ``allow_local_storage``, without a
    controller unless ``allow_bare``) stay; PodDisruptionBudgets bound the moves of their pods.
    The snapshot is not changed.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not available; choose one of {OBJECTIVES}")
    if solver not in SOLVERS:
        raise ValueError(f"solver {solver!r} is not available; choose one of {SOLVERS}")
    if time_limit <= 0:
        raise ValueError(f"time_limit must be > 0, got {time_limit}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if max_moves is not None and max_moves < 0:
        raise ValueError(f"max_moves must be >= 0, got {max_moves}")
    started = time.perf_counter()
    plan = drain_plan(
        snapshot,
        max_moves=max_moves,
        allow_local_storage=allow_local_storage,
        allow_bare=allow_bare,
        seed=seed,
    )
    heuristic = [Move(m["pod"], m["from"], m["to"], tuple(m["gpu_devices"])) for m in plan["moves"]]
    before = evaluate(snapshot)
    moves, after = heuristic, _after(snapshot, heuristic)
    status = "FEASIBLE"
    if solver == "cpsat":
        from kube_engine._core import rebalance_problem
        from kube_engine.rebalancing.pack_lns import improve_pack

        problem = rebalance_problem(
            snapshot, allow_local_storage=allow_local_storage, allow_bare=allow_bare
        )
        left = time_limit - (time.perf_counter() - started)
        found = improve_pack(snapshot, problem, plan, max_moves, left, workers, seed)
        improved = [Move(p, frm, to, devs) for p, frm, to, devs in found]
        checked = _after(snapshot, improved)
        if _breaks_more(before, checked):
            # The search keeps pods with inter-pod rules where they are, but not the rules
            # other pods' placement feeds (e.g. another pod's spread constraint counting them).
            status = "HEURISTIC_FALLBACK"
        else:
            moves, after = improved, checked
    seconds = time.perf_counter() - started
    if _breaks_more(before, after):
        raise InternalError(
            f"the plan would break rules more often ({before.violation_counts()} before, "
            f"{after.violation_counts()} after); not returned"
        )
    gone = set(before.nodes_in_use()).difference(after.nodes_in_use())
    return RebalanceResult(
        objective=objective,
        solver=solver,
        moves=moves,
        # The heuristic's in the order it emptied them, then any more the solver emptied.
        nodes_freed=[n for n in plan["freed"] if n in gone]
        + sorted(gone.difference(plan["freed"])),
        nodes_used_before=before.nodes_used,
        nodes_used_after=after.nodes_used,
        utilisation_before=_utilisation(snapshot, before),
        utilisation_after=_utilisation(snapshot, after),
        seconds=seconds,
        status=status,
        max_moves=max_moves,
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
