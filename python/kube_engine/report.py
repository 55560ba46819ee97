"""Human and machine renderings of a snapshot's quality (used by the CLI)."""

from __future__ import annotations

from typing import Any

from kube_engine._core import Evaluation, Snapshot
from kube_engine.records import RebalanceProblem

GPU_RESOURCE = "nvidia.com/gpu"


def evaluation_to_dict(snapshot: Snapshot, ev: Evaluation) -> dict[str, Any]:
    """Everything :func:`kube_engine.evaluate` measured, as JSON-ready data."""
    phases: dict[str, int] = {}
    for phase in snapshot.pod_phases():
        phases[phase] = phases.get(phase, 0) + 1
    return {
        "nodes": ev.nodes,
        "nodes_used": ev.nodes_used,
        "pods": ev.pods,
        "pods_by_phase": phases,
        "pods_active": ev.pods_active,
        "pods_bound": ev.pods_bound,
        "pods_pending": ev.pods_pending,
        "pdbs": snapshot.num_pdbs,
        "resources": ev.resources,
        "gpu": ev.gpu,
        "lower_bounds": ev.lower_bounds,
        "violation_counts": ev.violation_counts(),
        "violations": ev.violations,
    }


def _amount(resource: str, value: float) -> str:
    """Scheduler units (milli-cores, bytes, counts) in the units people read."""
    if resource == "cpu":
        return f"{value / 1000:,.1f}"
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return f"{value / 2**30:,.1f}Gi"
    if resource == GPU_RESOURCE:
        return f"{value / 1000:,.1f}"
    return f"{value:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        # The first column is a name (left-aligned), the rest are numbers.
        parts = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts)

    lines = [line(r) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_inspection(name: str, snapshot: Snapshot, ev: Evaluation) -> str:
    d = evaluation_to_dict(snapshot, ev)
    phases = ", ".join(f"{n:,} {p}" for p, n in sorted(d["pods_by_phase"].items()))
    gpu = ev.gpu
    bounds = ev.lower_bounds
    out = [
        f"Cluster: {name}",
        f"  nodes        {ev.nodes:,} ({ev.nodes_used:,} in use)",
        f"  pods         {ev.pods:,} ({phases}); {ev.pods_pending:,} pending",
        f"  PDBs         {snapshot.num_pdbs:,}",
        f"  lower bound  {bounds['strong']:,} nodes (L1 {bounds['l1']:,})"
        + ("  [pods exceed what any node / the cluster offers]" if bounds["infeasible"] else ""),
        "",
    ]
    rows = []
    for resource, use in ev.resources.items():
        if use["allocatable"] == 0 and use["requested"] == 0 and use["pending"] == 0:
            continue
        rows.append(
            [
                resource,
                _amount(resource, use["requested"]),
                _amount(resource, use["pending"]),
                _amount(resource, use["allocatable"]),
                f"{100 * use['utilisation']:.1f}%",
                f"{100 * use['node_mean']:.0f}% ± {100 * use['node_std']:.0f}",
                f"{100 * use['node_max']:.0f}%",
            ]
        )
    if gpu["devices"]:
        rows.append(
            [
                GPU_RESOURCE,
                _amount(GPU_RESOURCE, gpu["allocated_milli"]),
                _amount(GPU_RESOURCE, gpu["pending_milli"]),
                _amount(GPU_RESOURCE, 1000 * gpu["devices"]),
                f"{100 * gpu['utilisation']:.1f}%",
                "",
                "",
            ]
        )
    header = ["resource", "requested", "pending", "allocatable", "used", "per node", "max"]
    out.append(_table(header, rows))
    if gpu["devices"]:
        out += [
            "",
            f"GPUs: {gpu['devices']:,} devices, {gpu['whole_free']:,} entirely free; "
            f"fragmentation (FGD) {gpu['fragmentation_milli'] / 1000:,.1f} GPUs = "
            f"{gpu['fragmentation_pct']:.1f}% of all GPUs, "
            f"{100 * gpu['fragmentation_ratio']:.1f}% of idle GPU capacity",
        ]
    counts = ev.violation_counts()
    out.append("")
    if counts:
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        out.append(f"Constraint violations: {summary}")
        for v in ev.violations[:5]:
            who = v["pod"] or "(node)"
            out.append(f"  {v['kind']:<18} {v['node']:<24} {who}: {v['detail']}")
        if len(ev.violations) > 5:
            out.append(f"  ... {len(ev.violations) - 5} more (-o json lists all)")
    else:
        out.append("Constraint violations: none")
    return "\n".join(out)


def problem_summary(problem: RebalanceProblem) -> dict[str, Any]:
    """What a rebalance may change: movable pods, their classes, what stays and why, budgets."""
    reasons: dict[str, int] = {}
    for why in problem["pinned"].values():
        reasons[why] = reasons.get(why, 0) + 1
    classes = problem["classes"]
    return {
        "movable_pods": sum(len(c["pods"]) for c in classes),
        "classes": len(classes),
        "interacting_classes": sum(c["interacts"] for c in classes),
        "without_candidates": sum(not c["candidates"] for c in classes),
        "pinned_pods": len(problem["pinned"]),
        "pinned_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "budgets": [{"name": b["name"], "allowed": b["allowed"]} for b in problem["budgets"]],
    }


def render_problem(problem: RebalanceProblem, explain: bool = False) -> str:
    """What may move and what stays; with ``explain``, every pod that stays, with why."""
    s = problem_summary(problem)
    lines = [
        "",
        f"Rebalance: {s['movable_pods']:,} movable pods in {s['classes']:,} classes of "
        f"interchangeable pods ({s['interacting_classes']} with inter-pod constraints, "
        f"{s['without_candidates']} with no other node to go to)",
        f"Staying put: {s['pinned_pods']:,} pods",
    ]
    lines += [f"  {n:>7,}  {why}" for why, n in s["pinned_by_reason"].items()]
    if explain and problem["pinned"]:
        width = max(len(p) for p in problem["pinned"])
        lines += [f"    {pod:<{width}}  {why}" for pod, why in sorted(problem["pinned"].items())]
    if s["budgets"]:
        lines.append("Disruption budgets (evictions allowed now):")
        lines += [f"  {b['allowed']:>7,}  {b['name']}" for b in s["budgets"]]
    return "\n".join(lines)
