"""Planning speed: a target placement of a large cluster into waves of actions.

    python benches/bench_plan.py --nodes 5000 --pods 100000 --moves 5000 --seed 1 \
        [--results benches/results/plan.json]

One seeded synthetic cluster (`kube_engine.bench.synthetic.generate_cluster`, every pod bound;
Deployments, StatefulSets, DaemonSets, PDBs, affinity and spread constraints) and two targets of
about `--moves` moves each:

- pack: the packing heuristic's drain plan (`drain_plan`, pods with local storage allowed to move),
  which empties nodes: the plan cordons them and moves their pods, within the PDBs;
- swap: pairs of interchangeable pods (same controller, requests and constraints) on different nodes
  trade places, so every move waits on another: the planner must break the cycles through free room,
  spend each PDB's allowance wave by wave, and report what it cannot sequence.

`kube_engine.plan` is timed (wall clock, the best of `--repeat` runs, one thread: the planner is
single-threaded). The same run times `kube_engine.evaluate` of the target placement — one pass of
the engine's metrics over the whole cluster — as a yardstick of what a pass over 100,000 pods costs
on this machine at this moment. The bar (issue 17) is 1 s for 100,000 pods / 5,000 nodes / 5,000
moves on one core.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import results_file

import kube_engine as ke
from kube_engine import _core
from kube_engine.bench.synthetic import cluster_json_at


def pack_target(snapshot: ke.Snapshot, moves: int) -> tuple[dict[str, str], dict[str, list[int]]]:
    plan = _core.drain_plan(snapshot, max_moves=moves, allow_local_storage=True)
    target = {m["pod"]: m["to"] for m in plan["moves"]}
    devices = {m["pod"]: list(m["gpu_devices"]) for m in plan["moves"] if m["gpu_devices"]}
    return target, devices


def swap_target(snapshot: ke.Snapshot, moves: int, seed: int) -> dict[str, str]:
    problem = _core.rebalance_problem(snapshot, allow_local_storage=True)
    nodes = dict(zip(snapshot.pod_names(), snapshot.pod_nodes(), strict=True))
    rng = random.Random(seed)
    classes = [c["pods"] for c in problem["classes"] if len(c["pods"]) >= 2]
    rng.shuffle(classes)
    target: dict[str, str] = {}
    for pods in classes:
        pods = list(pods)
        rng.shuffle(pods)
        for a, b in zip(pods[::2], pods[1::2], strict=False):
            if len(target) + 2 > moves:
                return target
            na, nb = nodes[a], nodes[b]
            if na is not None and nb is not None and na != nb:
                target[a], target[b] = nb, na
    return target


def best(fn: Any, repeat: int) -> tuple[Any, float]:
    out, times = None, []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, min(times)


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
    pack, pack_devices = pack_target(snapshot, args.moves)
    targets = {
        "pack": (pack, pack_devices),
        "swap": (swap_target(snapshot, args.moves, args.seed), {}),
    }
    rows = []
    for name, (target, devices) in targets.items():
        plan, seconds = best(
            lambda t=target, d=devices: ke.plan(
                snapshot, t, gpu_devices=d, allow_local_storage=True
            ),
            args.repeat,
        )
        _, yardstick = best(lambda t=target: ke.evaluate(snapshot, dict(t)), args.repeat)
        s = plan.summary()
        rows.append(
            {
                "target": name,
                "moves": len(target),
                "plan_seconds": round(seconds, 4),
                "evaluate_seconds": round(yardstick, 4),
                **s,
                "kept_by_kind": _count(k.kind for k in plan.kept),
            }
        )
    result = {
        **results_file.envelope("plan", __file__, argv),
        "cluster": {
            "nodes": snapshot.num_nodes,
            "pods": snapshot.num_pods,
            "pdbs": snapshot.num_pdbs,
            "seed": args.seed,
        },
        "rows": rows,
    }
    results_file.emit(result, args, render)
    return 0


def render(result: dict[str, Any]) -> str:
    c = result["cluster"]
    fmt = "{:<6} {:>6} {:>9} {:>10} {:>6} {:>10} {:>8} {:>8} {:>6}"
    head = ("target", "moves", "plan (s)", "evaluate", "waves", "evictions", "cordons")
    lines = [
        f"{c['nodes']:,} nodes, {c['pods']:,} pods, {c['pdbs']:,} PDBs (seed {c['seed']})",
        fmt.format(*head, "detours", "kept"),
    ]
    for r in result["rows"]:
        seconds = (f"{r['plan_seconds']:.3f}", f"{r['evaluate_seconds']:.3f}")
        counts = (r[k] for k in ("waves", "evictions", "cordons", "detours", "kept"))
        lines.append(fmt.format(r["target"], r["moves"], *seconds, *counts))
    return "\n".join(lines)


def _count(kinds: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in kinds:
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))


if __name__ == "__main__":
    sys.exit(main())
