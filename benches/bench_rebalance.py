"""The rebalancer's objectives against the move budget and the proven bound.

    python benches/bench_rebalance.py [--nodes 5000 --pods 40000 --seed 1] [--time-limit 60]
        [--objectives pack,balance,defrag] [--plot nodes_freed.png] [-o json]
        [--results benches/results/rebalance.json]

Two clusters, each from its current placement: the openb example (bare pods allowed to
move: the trace has no controllers) and a seeded synthetic cluster
(`kube_engine.bench.synthetic.generate_cluster`:
node pools, zones, taints, selectors, anti-affinity,
spread constraints, PDBs, DaemonSets; most of its pods have emptyDir volumes, which are allowed
to move here, as cluster-autoscaler's scale-down allows by default). For budgets of 5 %, 10 %
and 20 % of the movable pods (and, for pack, no budget), each objective is planned by the
heuristics alone and by CP-SAT from their plan for `--time-limit` seconds. Each row gives the
objective before and after, the plan's proven bound (`RebalanceResult.bound`: pins, candidate
nodes, the move budget), what proved it (`by`: a relaxation, or for pack and defrag with CP-SAT
the solver's bound on an aggregated model) and the gap to it; for pack also the strongest lower
bound `evaluate` knows for the cluster's pods (`lower_bounds.strong`: it ignores which pods must
stay and the move budget, so no plan need reach it). `--plot` draws nodes freed against pods
moved (matplotlib). Seconds: wall time of planning only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import results_file

import kube_engine
from kube_engine._core import rebalance_problem
from kube_engine.bench.synthetic import generate_cluster_json

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "openb" / "openb-example.json.gz"
BUDGETS = (0.05, 0.10, 0.20, None)
SOLVERS = ("heuristic", "cpsat")


def rows_for(
    name: str, snap: kube_engine.Snapshot, objectives: list[str], time_limit: float, **allow: bool
) -> list[dict[str, Any]]:
    movable = sum(len(c["pods"]) for c in rebalance_problem(snap, **allow)["classes"])
    strong = kube_engine.evaluate(snap).lower_bounds["strong"]
    rows = []
    for objective in objectives:
        # Without a budget, balance and defrag would move nearly every pod: not a plan to run.
        budgets = BUDGETS if objective == "pack" else BUDGETS[:-1]
        for share, solver in ((s, v) for s in budgets for v in SOLVERS):
            budget = None if share is None else int(share * movable)
            start = time.perf_counter()
            r = kube_engine.rebalance(
                snap, objective, max_moves=budget, solver=solver, time_limit=time_limit, **allow
            )
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "cluster": name,
                    "objective": objective,
                    "solver": solver,
                    "status": r.status,
                    "movable_pods": movable,
                    "budget_share": share,
                    "max_moves": budget,
                    "moves": len(r.moves),
                    "before": r.terms_before[objective],
                    "after": r.terms_after[objective],
                    "bound": r.bound,
                    "bound_source": r.bound_source,
                    "gap": r.gap,
                    "nodes_freed": len(r.nodes_freed),
                    "nodes_used_before": r.nodes_used_before,
                    "nodes_used_after": r.nodes_used_after,
                    "lower_bound": strong,
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
        mine = [r for r in rows if r["cluster"] == cluster and r["objective"] == "pack"]
        for i, solver in enumerate(SOLVERS):
            points = sorted((r["moves"], r["nodes_freed"]) for r in mine if r["solver"] == solver)
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", color=f"C{i}", label=solver)
        first = mine[0]
        # The most nodes any plan within the budget can free (the plan's proven bound), at the
        # moves the solvers made; and what evaluate's bound for all pods leaves.
        ceiling = sorted(
            (r["moves"], r["nodes_used_before"] - r["bound"])
            for r in mine
            if r["solver"] == "cpsat"
        )
        xs, ys = zip(*ceiling, strict=True)
        ax.plot(xs, ys, ls=":", marker="v", color="0.3", label="at most (proven bound)")
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
    ap.add_argument("--objectives", default="pack,balance,defrag", help="comma-separated")
    ap.add_argument("--plot", type=Path, help="write a PNG of nodes freed against moves here")
    results_file.add_options(ap)
    args = ap.parse_args(argv)
    example = kube_engine.Snapshot.from_file(EXAMPLE)
    objectives = args.objectives.split(",")
    rows = rows_for("openb example", example, objectives, args.time_limit, allow_bare=True)
    synthetic = kube_engine.Snapshot.from_bytes(
        generate_cluster_json(args.nodes, args.pods, args.seed)
    )
    name = f"synthetic {args.nodes}/{args.pods} (seed {args.seed})"
    rows += rows_for(name, synthetic, objectives, args.time_limit, allow_local_storage=True)
    if args.plot and "pack" in objectives:
        plot(rows, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    result = {
        **results_file.envelope("rebalance", __file__, argv, packages=("ortools",)),
        "time_limit": args.time_limit,
        "rows": rows,
    }
    results_file.emit(result, args, render)
    return 0


def render(result: dict[str, Any]) -> str:
    head = ("cluster", "objective", "budget", "solver", "moves", "before", "after", "bound")
    head += ("by", "gap", "pack LB", "seconds")
    line = "{:<32} {:>9} {:>6} {:>9} {:>6} {:>9} {:>9} {:>9} {:>5} {:>6} {:>7} {:>7}"
    lines = [line.format(*head)]
    for r in result["rows"]:
        budget = "none" if r["budget_share"] is None else f"{r['budget_share']:.0%}"
        shown = [_term(r["objective"], r[k]) for k in ("before", "after", "bound")]
        strong = f"{r['lower_bound']:,}" if r["objective"] == "pack" else ""
        lines.append(
            line.format(
                r["cluster"],
                r["objective"],
                budget,
                r["solver"],
                f"{r['moves']:,}",
                *shown,
                "cpsat" if r["bound_source"] == "cpsat" else "relax",
                f"{r['gap']:.1%}",
                strong,
                f"{r['seconds']:.1f}",
            )
        )
    return "\n".join(lines)


def _term(objective: str, value: float) -> str:
    return f"{value:.1%}" if objective == "balance" else f"{value:,.0f}"


if __name__ == "__main__":
    sys.exit(main())
