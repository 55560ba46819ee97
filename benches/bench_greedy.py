"""The rebalancer on a large cluster: its problem build, its heuristic starts, and whole plans
within their time limit.

    python benches/bench_greedy.py --nodes 5000 --pods 100000 --seed 1 \
        [--repeat 3] [--plan-moves 2000] [--time-limit 10] [--data PATH] \
        [--results benches/results/greedy.json]

One seeded synthetic cluster (`kube_engine.bench.synthetic.generate_cluster`, placed by the core
as the generator places it, so as it drifted; pods with local storage may move, as in
`bench_rebalance.py`).

- The problem build, timed on its own: the rebalance space (`rebalance_space`: pins, classes of
  interchangeable pods, their candidate nodes, disruption budgets, inter-pod rules) and its
  conversion to the Python model's data (`RebalanceSpace.problem()`).
- Each heuristic start as `kube_engine.rebalance` runs it (the packing heuristic `drain_plan` for
  pack, `greedy_start` for balance and defrag), without a move budget and with one of 10 % of the
  movable pods: wall clock, the best of `--repeat` runs.
- Each objective planned whole, as `kube-engine rebalance` does after reading the cluster:
  `kube_engine.rebalance(..., max_moves=--plan-moves, time_limit=--time-limit)` and then the
  actions (`kube_engine.plan`); wall clock of each, against the time limit. For balance also the
  peak and standard deviation of cpu and memory utilisation before and after.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Literal

import results_file

import kube_engine as ke
from kube_engine._core import Evaluation, RebalanceSpace, drain_plan, evaluate, rebalance_space
from kube_engine.bench.synthetic import cluster_json_at
from kube_engine.cli import PLANNING_SHARE
from kube_engine.rebalancing.objective import Allocatable, Scorer, terms_of
from kube_engine.rebalancing.plan import greedy_start_for
from kube_engine.records import GreedyStart

Term = Literal["balance", "defrag"]
STARTS = ("pack", "balance", "defrag")


def run(
    snapshot: ke.Snapshot,
    space: RebalanceSpace,
    term: str,
    scorer: Scorer,
    allocatable: Allocatable,
    max_moves: int | None,
) -> tuple[int, float | None, bool]:
    """(moves, value, complete) of one start; pack's measures no value of its own."""
    if term == "pack":
        drained = drain_plan(snapshot, max_moves=max_moves, allow_local_storage=True)
        return len(drained["moves"]), None, drained["complete"]
    greedy_term: Term = "balance" if term == "balance" else "defrag"
    found: GreedyStart = greedy_start_for(
        space, greedy_term, scorer, allocatable, max_moves=max_moves
    )
    return len(found["moves"]), found["value"], found["complete"]


def spread(ev: Evaluation) -> dict[str, float]:
    """Peak and standard deviation of node utilisation, per balanced resource."""
    return {
        f"{r} {k}": ev.resources[r][f"node_{k}"]
        for r in ("cpu", "memory")
        if r in ev.resources
        for k in ("max", "std")
    }


def whole_plans(
    snapshot: ke.Snapshot, before: Evaluation, max_moves: int, time_limit: float
) -> list[dict[str, Any]]:
    rows = []
    for objective in STARTS:
        begin = time.perf_counter()
        # As `kube-engine rebalance` plans: the rest of the limit is for the actions.
        planning = PLANNING_SHARE * time_limit
        result = ke.rebalance(
            snapshot, objective, max_moves, time_limit=planning, allow_local_storage=True
        )
        seconds = time.perf_counter() - begin
        begin = time.perf_counter()
        actions = ke.plan(snapshot, result, allow_local_storage=True)
        plan_seconds = time.perf_counter() - begin
        row: dict[str, Any] = {
            "objective": objective,
            "status": result.status,
            "moves": len(result.moves),
            "actions": len(actions.actions),
            "before": result.terms_before[objective],
            "after": result.terms_after[objective],
            "seconds": round(seconds, 3),
            "plan_seconds": round(plan_seconds, 3),
        }
        if objective == "balance":
            after = evaluate(snapshot, result.placement, result.gpu_devices)
            row["spread_before"] = spread(before)
            row["spread_after"] = spread(after)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, help="reuse (or write) the generated cluster here")
    ap.add_argument("--plan-moves", type=int, default=2000, help="move budget of whole plans")
    ap.add_argument("--time-limit", type=float, default=10.0, help="of each whole plan")
    results_file.add_options(ap)
    args = ap.parse_args(argv)

    data = cluster_json_at(args.data, args.nodes, args.pods, args.seed)
    snapshot = ke.Snapshot.from_bytes(data)
    del data
    begin = time.perf_counter()
    space = rebalance_space(snapshot, allow_local_storage=True)
    space_seconds = time.perf_counter() - begin
    begin = time.perf_counter()
    problem = space.problem()
    problem_seconds = time.perf_counter() - begin
    movable = sum(len(c["pods"]) for c in problem["classes"])
    del problem
    before = evaluate(snapshot)
    allocatable = Allocatable.of(snapshot, before)
    rows = []
    for term in STARTS:
        scorer = Scorer.of({term: 1.0}, 0.0, terms_of(before, snapshot, None))
        for max_moves in (None, movable // 10):
            seconds, found = float("inf"), None
            for _ in range(args.repeat):
                begin = time.perf_counter()
                found = run(snapshot, space, term, scorer, allocatable, max_moves)
                seconds = min(seconds, time.perf_counter() - begin)
            assert found is not None
            moves, value, complete = found
            row: dict[str, Any] = {
                "start": term,
                "max_moves": max_moves,
                "moves": moves,
                "value": value,
                "complete": complete,
                "seconds": round(seconds, 4),
            }
            rows.append(row)
    plans = whole_plans(snapshot, before, args.plan_moves, args.time_limit)
    result = {
        **results_file.envelope("greedy", __file__, argv),
        "cluster": {
            "nodes": snapshot.num_nodes,
            "pods": snapshot.num_pods,
            "movable pods": movable,
            "seed": args.seed,
        },
        "space_seconds": round(space_seconds, 3),
        "problem_seconds": round(problem_seconds, 3),
        "rows": rows,
        "time_limit": args.time_limit,
        "plan_moves": args.plan_moves,
        "plans": plans,
    }
    results_file.emit(result, args, render)
    return 0


def render(result: dict[str, Any]) -> str:
    c = result["cluster"]
    lines = [
        f"{c['nodes']:,} nodes, {c['pods']:,} pods, {c['movable pods']:,} movable "
        f"(seed {c['seed']}); rebalance space {result['space_seconds']:.2f} s, "
        f"as Python data {result['problem_seconds']:.2f} s",
        f"{'start':<8} {'max moves':>9} {'moves':>7} {'value':>10} {'seconds':>8}",
    ]
    for r in result["rows"]:
        budget = "none" if r["max_moves"] is None else f"{r['max_moves']:,}"
        value = "" if r["value"] is None else f"{r['value']:.4g}"
        lines.append(
            f"{r['start']:<8} {budget:>9} {r['moves']:>7,} {value:>10} {r['seconds']:>8.3f}"
        )
    budget, limit = result["plan_moves"], result["time_limit"]
    lines.append(f"whole plans, at most {budget:,} moves, time limit {limit:g} s")
    for r in result["plans"]:
        lines.append(
            f"{r['objective']:<8} {r['status']:<18} {r['moves']:>6,} moves "
            f"{r['before']:>10.4g} -> {r['after']:<10.4g} {r['seconds']:>6.2f} s "
            f"+ actions {r['plan_seconds']:.2f} s"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
