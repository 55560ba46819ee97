"""The `kube-engine-bench` command (also `python -m kube_engine.bench`): the lab's benchmarks.

- `fgd`: the FGD paper's online GPU packing protocol on the openb trace;
- `vbp`: vector bin packing of VPSolver `.vbp` files against their lower bounds;
- `generate`: a seeded synthetic cluster, as `kubectl get nodes,pods,pdb -A -o json` prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kube_engine import KubeEngineError


def _add_commands(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = bench.add_parser(
        "fgd",
        help="online GPU packing on openb: allocation vs arrived load, as the FGD paper measures",
    )
    p.add_argument("--pods", default="default", help="openb pod list name or CSV path")
    p.add_argument("--nodes", help="node list CSV (default: openb's GPU nodes)")
    p.add_argument(
        "--policy", default="FGD", help="score plugin or paper name (FGD, BestFit, DotProd, ...)"
    )
    p.add_argument("--seeds", default="42-51", help="e.g. 42-51 or 1,2,3")
    p.add_argument("--load", type=float, default=1.3, help="arrivals up to this × cluster GPUs")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")
    p.set_defaults(func=_bench_fgd)
    p = bench.add_parser(
        "vbp", help="vector bin packing of VPSolver .vbp files: bins used against the lower bound"
    )
    p.add_argument("files", nargs="+", type=Path, help=".vbp files")
    p.add_argument("--solver", choices=["heuristic", "cpsat"], default="cpsat")
    p.add_argument("--time-limit", type=float, default=5.0, help="CP-SAT seconds per instance")
    p.add_argument("--workers", type=int, help="CP-SAT workers (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="CP-SAT random seed")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")
    p.set_defaults(func=_bench_vbp)


def _bench_fgd(args: argparse.Namespace) -> None:
    from kube_engine.bench import fgd

    try:
        seeds = fgd.parse_seeds(args.seeds)
    except ValueError as e:
        raise SystemExit(f"kube-engine-bench: error: {e}") from None
    snapshot = fgd.openb_gpu_snapshot(args.pods, args.nodes)
    policy = fgd.policy_name(args.policy)
    curves = fgd.run(snapshot, [policy], seeds, args.load)[policy]
    if args.output == "json":
        print(
            json.dumps(
                {"policy": policy, "pods": args.pods, "seeds": {str(s): curves[s] for s in seeds}}
            )
        )
        return
    points = ["50", "90", "100", "110", "130"]
    fmt = "{:>8}" + " {:>7}" * len(points)
    print(f"{policy} on {args.pods}: GPU allocation (%) at arrived load (%)")
    print(fmt.format("seed", *points))
    for s in seeds:
        print(fmt.format(s, *(_pct(curves[s][p]) for p in points)))
    mean = fgd.mean_curve(curves.values())
    print(fmt.format("mean", *(_pct(mean[p]) for p in points)))
    paper = {v: k for k, v in fgd.PAPER_POLICIES.items()}.get(policy)
    theirs = fgd.published(args.pods).get(paper or "", {})
    if theirs:
        ref = fgd.mean_curve(theirs.values())
        print(fmt.format("paper", *(_pct(ref[p]) for p in points)))


def _bench_vbp(args: argparse.Namespace) -> None:
    from kube_engine.bench.vbp import read_vbp, solve

    try:
        results = [
            solve(
                read_vbp(f),
                args.solver,
                time_limit=args.time_limit,
                workers=args.workers,
                seed=args.seed,
            )
            for f in args.files
        ]
    except ValueError as e:
        raise SystemExit(f"kube-engine-bench: error: {e}") from None
    if args.output == "json":
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return
    fmt = "{:<24} {:>5} {:>11} {:>9} {:>8}"
    print(fmt.format("instance", "bins", "lower bound", "status", "seconds"))
    for r in results:
        print(fmt.format(r.instance, r.bins, r.lower_bound, r.status, f"{r.seconds:.2f}"))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _generate(args: argparse.Namespace) -> None:
    from kube_engine.bench.synthetic import generate_cluster_json

    data = generate_cluster_json(
        args.nodes,
        args.pods,
        args.seed,
        pending_fraction=args.pending_fraction,
        gpu_fraction=args.gpu_fraction,
        small_deployments=args.small_deployments,
        indent=4 if args.indent else None,
    )
    sys.stdout.buffer.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kube-engine-bench",
        description="kube-engine's lab: placement benchmarks and workload generators.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_commands(sub)
    p = sub.add_parser("generate", help="a seeded synthetic cluster as a Kubernetes List (JSON)")
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--pods", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pending-fraction", type=float, default=0.0)
    p.add_argument("--gpu-fraction", type=float, default=0.12)
    p.add_argument(
        "--small-deployments",
        action="store_true",
        help="many small Deployments (heavy-tailed replicas), about a tenth of them not fitting",
    )
    p.add_argument("--indent", action="store_true", help="indent as kubectl does")
    p.set_defaults(func=_generate)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (KubeEngineError, OSError, ValueError) as e:
        print(f"kube-engine-bench: error: {e}", file=sys.stderr)
        return 1
    return 0
