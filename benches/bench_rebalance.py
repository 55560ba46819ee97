"""Nodes freed by the rebalancer's packing plan, against the move budget and the lower bound.

    python benches/bench_rebalance.py [--nodes 5000 --pods 40000 --seed 1] [-o json]

Two clusters, each from its current placement: the bundled openb example (bare pods allowed to
move: the trace has no controllers) and a seeded synthetic cluster
(`kube_engine.workloads.generate_cluster`: node pools, zones, taints, selectors, anti-affinity,
spread constraints, PDBs, DaemonSets; most of its pods have emptyDir volumes, which are allowed
to move here, as cluster-autoscaler's scale-down allows by default). For budgets of 5 %, 10 %
and 20 % of the movable pods and no budget, the plan's nodes in use are compared with the nodes
in use before and with the strongest lower bound kube-engine knows for the cluster's pods
(`evaluate().lower_bounds`: it ignores which pods must stay and the disruption budgets, and
counts pending pods too, so no plan need reach it). `--plot` draws nodes freed against pods
moved (matplotlib). `cpsat` runs CP-SAT
on the heuristic's plan for `--time-limit` seconds of deterministic time (about wall seconds).
Seconds: wall time of planning only.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import kube_engine
from kube_engine._core import rebalance_problem
from kube_engine.workloads.synthetic import generate_cluster_json

BUDGETS = (0.05, 0.10, 0.20, None)
SOLVERS = ("heuristic", "cpsat")


def rows_for(
    name: str, snap: kube_engine.Snapshot, time_limit: float, **allow: bool
) -> list[dict[str, Any]]:
    movable = sum(len(c["pods"]) for c in rebalance_problem(snap, **allow)["classes"])
    bound = kube_engine.evaluate(snap).lower_bounds["strong"]
    rows = []
    for share, solver in ((s, v) for s in BUDGETS for v in SOLVERS):
        budget = None if share is None else int(share * movable)
        start = time.perf_counter()
        r = kube_engine.rebalance(
            snap, max_moves=budget, solver=solver, time_limit=time_limit, **allow
        )
        seconds = time.perf_counter() - start
        rows.append(
            {
                "cluster": name,
                "solver": solver,
                "movable_pods": movable,
                "budget_share": share,
                "max_moves": budget,
                "moves": len(r.moves),
                "nodes_freed": len(r.nodes_freed),
                "nodes_used_before": r.nodes_used_before,
                "nodes_used_after": r.nodes_used_after,
                "lower_bound": bound,
                "seconds": seconds,
            }
        )
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = list(dict.fromkeys(r["cluster"] for r in rows))
    fig, axes = plt.subplots(1, len(clusters), figsize=(6 * len(clusters), 4.5), squeeze=False)
    for ax, cluster in zip(axes[0], clusters, strict=True):
        mine = [r for r in rows if r["cluster"] == cluster]
        for i, solver in enumerate(SOLVERS):
            points = sorted((r["moves"], r["nodes_freed"]) for r in mine if r["solver"] == solver)
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", color=f"C{i}", label=solver)
        first = mine[0]
        reachable = first["nodes_used_before"] - first["lower_bound"]
        if reachable > 0:
            ax.axhline(reachable, color="0.5", ls="--", lw=1, label="in use - lower bound")
        ax.set(xlabel="pods moved", ylabel="nodes freed", title=cluster)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=40000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=60.0, help="CP-SAT seconds per plan")
    ap.add_argument("--plot", type=Path, help="write a PNG of nodes freed against moves here")
    ap.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = ap.parse_args(argv)
    example = kube_engine.Snapshot.from_file(kube_engine.bundled_example())
    rows = rows_for("openb example", example, args.time_limit, allow_bare=True)
    synthetic = kube_engine.Snapshot.from_bytes(
        generate_cluster_json(args.nodes, args.pods, args.seed)
    )
    name = f"synthetic {args.nodes}/{args.pods} (seed {args.seed})"
    rows += rows_for(name, synthetic, args.time_limit, allow_local_storage=True)
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    if args.output == "json":
        print(json.dumps({"python": platform.python_version(), "rows": rows}, indent=2))
        return 0
    head = ("cluster", "budget", "solver", "moves", "freed", "in use", "bound", "seconds")
    print("{:<32} {:>7} {:>9} {:>7} {:>6} {:>15} {:>6} {:>8}".format(*head))
    for r in rows:
        budget = "none" if r["budget_share"] is None else f"{r['budget_share']:.0%}"
        in_use = f"{r['nodes_used_before']:,} -> {r['nodes_used_after']:,}"
        print(
            f"{r['cluster']:<32} {budget:>7} {r['solver']:>9} {r['moves']:>7,} "
            f"{r['nodes_freed']:>6,} {in_use:>15} {r['lower_bound']:>6,} {r['seconds']:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
