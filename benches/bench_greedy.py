"""Speed of the rebalancer's greedy starts for balance and defrag on a large cluster.

    python benches/bench_greedy.py --nodes 5000 --pods 100000 --seed 1 \
        [--repeat 3] [--data PATH] [--results benches/results/greedy.json]

One seeded synthetic cluster (`kube_engine.bench.synthetic.generate_cluster`; pods with local
storage may move, as in `bench_rebalance.py`). Its rebalance space (`rebalance_space`: pins,
classes of interchangeable pods, their candidate nodes, disruption budgets) is computed once and
timed on its own; then each start (`greedy_start`, the objective that term alone), without a move
budget and with one of 10 % of the movable pods, is timed as `kube_engine.rebalance` runs it: wall
clock, the best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Literal

import results_file

import kube_engine as ke
from kube_engine._core import RebalanceSpace, evaluate, rebalance_space
from kube_engine.bench.synthetic import cluster_json_at
from kube_engine.rebalancing.objective import Allocatable, Scorer, terms_of
from kube_engine.rebalancing.plan import greedy_start_for
from kube_engine.records import GreedyStart

Term = Literal["balance", "defrag"]
STARTS: tuple[Term, ...] = ("balance", "defrag")


def run(
    space: RebalanceSpace,
    term: Term,
    scorer: Scorer,
    allocatable: Allocatable,
    max_moves: int | None,
) -> GreedyStart:
    return greedy_start_for(space, term, scorer, allocatable, max_moves=max_moves)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, help="reuse (or write) the generated cluster here")
    results_file.add_options(ap)
    args = ap.parse_args(argv)

    data = cluster_json_at(args.data, args.nodes, args.pods, args.seed)
    snapshot = ke.Snapshot.from_bytes(data)
    del data
    begin = time.perf_counter()
    space = rebalance_space(snapshot, allow_local_storage=True)
    space_seconds = time.perf_counter() - begin
    movable = sum(len(c["pods"]) for c in space.problem()["classes"])
    before = evaluate(snapshot)
    allocatable = Allocatable.of(snapshot, before)
    rows = []
    for term in STARTS:
        scorer = Scorer.of({term: 1.0}, 0.0, terms_of(before, snapshot, None))
        for max_moves in (None, movable // 10):
            seconds, found = float("inf"), None
            for _ in range(args.repeat):
                begin = time.perf_counter()
                found = run(space, term, scorer, allocatable, max_moves)
                seconds = min(seconds, time.perf_counter() - begin)
            assert found is not None
            row: dict[str, Any] = {
                "start": term,
                "max_moves": max_moves,
                "moves": len(found["moves"]),
                "value": found["value"],
                "complete": found["complete"],
                "seconds": round(seconds, 4),
            }
            rows.append(row)
    result = {
        **results_file.envelope("greedy", __file__, argv),
        "cluster": {
            "nodes": snapshot.num_nodes,
            "pods": snapshot.num_pods,
            "movable pods": movable,
            "seed": args.seed,
        },
        "space_seconds": round(space_seconds, 3),
        "rows": rows,
    }
    results_file.emit(result, args, render)
    return 0


def render(result: dict[str, Any]) -> str:
    c = result["cluster"]
    lines = [
        f"{c['nodes']:,} nodes, {c['pods']:,} pods, {c['movable pods']:,} movable "
        f"(seed {c['seed']}); rebalance space {result['space_seconds']:.2f} s",
        f"{'start':<8} {'max moves':>9} {'moves':>7} {'value':>10} {'seconds':>8}",
    ]
    for r in result["rows"]:
        budget = "none" if r["max_moves"] is None else f"{r['max_moves']:,}"
        lines.append(
            f"{r['start']:<8} {budget:>9} {r['moves']:>7,} {r['value']:>10.4g} {r['seconds']:>8.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
