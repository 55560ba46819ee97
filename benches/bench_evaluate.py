"""Evaluation speed: `kube_engine.evaluate` of a large cluster, as a rebalance calls it.

    python benches/bench_evaluate.py --nodes 5000 --pods 100000 --seed 1 --repeat 3 \
        [--results benches/results/evaluate.json]

One seeded synthetic cluster (`kube_engine.bench.synthetic.generate_cluster`, every pod bound;
Deployments, StatefulSets, DaemonSets pinned to their nodes, PDBs, node affinity, pod
anti-affinity and spread constraints) evaluated in two placements: the snapshot's own (*current*)
and the packing heuristic's drain plan of about `--moves` moves (*moved*: bench_plan's *pack*
target, the kind of placement a rebalance evaluates after its search). A rebalance calls
`evaluate` three times (before, after its start, after its search), all within its time limit:
the bar (issue 19) is 0.5 s per call on 100,000 pods / 5,000 nodes, one thread. Each time is the
best of `--repeat` calls, wall clock, the conversion of the placement from Python included; the
first call of a snapshot is timed apart, since it also computes what the snapshot keeps for later
calls (its pods' constraint classes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import results_file
from bench_plan import best, pack_target

import kube_engine as ke
from kube_engine.bench.synthetic import cluster_json_at

BAR_SECONDS = 0.5
"""Issue 19: per call, on 100,000 pods / 5,000 nodes, one thread."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=100000)
    ap.add_argument("--moves", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, help="reuse (or write) the generated cluster here")
    results_file.add_options(ap)
    args = ap.parse_args(argv)

    data = cluster_json_at(args.data, args.nodes, args.pods, args.seed)
    snapshot = ke.Snapshot.from_bytes(data)
    del data
    _, first = best(lambda: ke.evaluate(snapshot), 1)
    placements = {"current": ({}, {}), "moved": pack_target(snapshot, args.moves)}
    rows = []
    for name, (placement, gpu_devices) in placements.items():
        ev, seconds = best(
            lambda p=placement, d=gpu_devices: ke.evaluate(snapshot, dict(p), dict(d)),
            args.repeat,
        )
        rows.append(
            {
                "placement": name,
                "moves": len(placement),
                "seconds": round(seconds, 4),
                "nodes_used": ev.nodes_used,
                "violations": len(ev.violations),
            }
        )
    result = {
        **results_file.envelope("evaluate", __file__, argv),
        "cluster": {
            "nodes": snapshot.num_nodes,
            "pods": snapshot.num_pods,
            "seed": args.seed,
        },
        "bar_seconds": BAR_SECONDS,
        "first_call_seconds": round(first, 4),
        "rows": rows,
    }
    results_file.emit(result, args, render)
    return 0


def render(result: dict[str, Any]) -> str:
    c = result["cluster"]
    fmt = "{:<9} {:>6} {:>8} {:>10} {:>10}"
    lines = [
        f"{c['nodes']:,} nodes, {c['pods']:,} pods (seed {c['seed']}); "
        f"first call {result['first_call_seconds']:.3f} s",
        fmt.format("placement", "moves", "seconds", "nodes used", "violations"),
    ]
    for r in result["rows"]:
        lines.append(
            fmt.format(
                r["placement"], r["moves"], f"{r['seconds']:.3f}", r["nodes_used"], r["violations"]
            )
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
