#!/usr/bin/env python3
"""GPU packing on openb, the FGD paper's protocol: our policies against the published results.

    python benches/bench_fgd.py [--pods default] [--seeds 42-51] [--plot fgd.png] [-o json]
        [--results benches/results/fgd.json]

The cluster is openb's 1213 GPU nodes (6212 GPUs). For each seed the pod list is shuffled, topped up
by draws with replacement to 1.3 × the cluster's GPUs, and placed one pod at a time, never deleted,
by each policy — the six the paper compares (Random, DotProd, GpuClustering, GpuPacking, BestFit,
FGD), each a kube-engine score plugin in a profile with kube-scheduler's default filters. The KPI
is the GPU allocation ratio as the arrived load grows to 130 %; the table compares the mean over
seeds at 130 % with the authors' published means (`shared/data/fgd_expected`, the same seeds
42–51 of their simulator — seeds do not carry over between simulators, means do).

Timing: building the cluster (CSV → Kubernetes objects → snapshot) once, then the whole
policies × seeds sweep in one call, in parallel in Rust (`RAYON_NUM_THREADS` threads, default:
all cores). The plot (`--plot`) needs matplotlib.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import results_file

from kube_engine.bench import fgd


def sweep(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    policies: list[str] = args.policies
    seeds = fgd.parse_seeds(args.seeds)
    t0 = time.perf_counter()
    snapshot = fgd.openb_gpu_snapshot(args.pods, args.nodes)
    t1 = time.perf_counter()
    curves = fgd.run(snapshot, policies, seeds, args.load)
    t2 = time.perf_counter()
    paper = fgd.published(args.pods)
    gpus = sum(snapshot.node_allocatable(n)["gpu_devices"] for n in snapshot.node_names())
    rows: dict[str, Any] = {}
    for policy in policies:
        at_130 = [c["130"] for c in curves[policy].values() if c["130"] is not None]
        mean = statistics.fmean(at_130)
        theirs = [c["130"] for c in paper.get(policy, {}).values() if c["130"] is not None]
        paper_mean = statistics.fmean(theirs) if theirs else None
        rows[policy] = {
            "plugin": fgd.policy_name(policy),
            "mean_130": round(mean, 2),
            "sd_130": round(statistics.stdev(at_130), 2) if len(at_130) > 1 else 0.0,
            "min_130": min(at_130),
            "max_130": max(at_130),
            "idle_gpus_130": round((100 - mean) / 100 * gpus),
            "paper_mean_130": None if paper_mean is None else round(paper_mean, 2),
            "paper_idle_gpus_130": None
            if paper_mean is None
            else round((100 - paper_mean) / 100 * gpus),
            "delta_pp": None if paper_mean is None else round(mean - paper_mean, 2),
            "curve": fgd.mean_curve(curves[policy].values()),
            "paper_curve": fgd.mean_curve(paper[policy].values()) if policy in paper else None,
        }
    return {
        **results_file.envelope("fgd", __file__, argv),
        "pods": args.pods,
        "seeds": seeds,
        "load": args.load,
        "nodes": snapshot.num_nodes,
        "gpus": gpus,
        "pod_list": snapshot.num_pods,
        "threads": int(os.environ.get("RAYON_NUM_THREADS") or results_file.cores()),
        "timing_s": {
            "cluster": round(t1 - t0, 2),
            "sweep": round(t2 - t1, 2),
            "runs": len(policies) * len(seeds),
        },
        "policies": rows,
    }


def render(report: dict[str, Any]) -> str:
    t = report["timing_s"]
    lines = [
        f"openb {report['pods']}: {report['nodes']} GPU nodes, {report['gpus']} GPUs, "
        f"{report['pod_list']} pods in the list; load {report['load']}, "
        f"seeds {report['seeds'][0]}-{report['seeds'][-1]}",
        "GPU allocation (%) at 130 % arrived, mean over seeds:",
        f"{'policy':<14} {'ours':>6} {'sd':>5} {'paper':>6} {'delta':>6} "
        f"{'idle GPUs':>9} {'paper':>6}  within 1 pp",
    ]
    for name, r in report["policies"].items():
        paper = "-" if r["paper_mean_130"] is None else f"{r['paper_mean_130']:.2f}"
        delta = "-" if r["delta_pp"] is None else f"{r['delta_pp']:+.2f}"
        idle = "-" if r["paper_idle_gpus_130"] is None else str(r["paper_idle_gpus_130"])
        ok = "-" if r["delta_pp"] is None else ("yes" if abs(r["delta_pp"]) <= 1 else "NO")
        lines.append(
            f"{name:<14} {r['mean_130']:>6.2f} {r['sd_130']:>5.2f} {paper:>6} {delta:>6} "
            f"{r['idle_gpus_130']:>9} {idle:>6}  {ok}"
        )
    lines.append(
        f"time: cluster {t['cluster']:.1f} s, sweep of {t['runs']} runs {t['sweep']:.1f} s "
        f"({report['threads']} threads on {report['machine']['cores']} cores)"
    )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (full, tail) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    for i, (name, r) in enumerate(report["policies"].items()):
        color = f"C{i}"
        for ax in (full, tail):
            xs = [int(k) for k, v in r["curve"].items() if v is not None]
            ys = [v for v in r["curve"].values() if v is not None]
            ax.plot(xs, ys, color=color, lw=1.6, label=f"{name} (kube-engine)")
            if r["paper_curve"]:
                px = [int(k) for k, v in r["paper_curve"].items() if v is not None]
                py = [v for v in r["paper_curve"].values() if v is not None]
                ax.plot(px, py, color=color, lw=1.2, ls="--", label=f"{name} (paper)")
    full.plot([0, 100], [0, 100], color="0.7", lw=0.8, ls=":")
    full.set(xlim=(0, 130), ylim=(0, 100), xlabel="arrived GPU load (% of cluster GPUs)")
    full.set(ylabel="GPU allocation (% of cluster GPUs)")
    full.set_title(
        f"openb {report['pods']}: mean of seeds {report['seeds'][0]}-{report['seeds'][-1]}"
    )
    tail.set(xlim=(80, 130), ylim=(80, 100), xlabel="arrived GPU load (%)")
    tail.set_title("80-130 % arrived")
    tail.legend(fontsize=7, ncol=2, loc="lower right")
    for ax in (full, tail):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", default="default", help="openb pod list name or CSV path")
    ap.add_argument("--nodes", help="node list CSV (default: openb's GPU nodes)")
    ap.add_argument("--seeds", default="42-51")
    ap.add_argument(
        "--policies",
        type=lambda s: [p for p in s.split(",") if p],
        default=list(fgd.PAPER_POLICIES),
        help="comma-separated; paper names or score plugins (default: the paper's six)",
    )
    ap.add_argument("--load", type=float, default=fgd.LOAD)
    ap.add_argument("--plot", type=Path, help="write a PNG of the curves here (matplotlib)")
    results_file.add_options(ap)
    args = ap.parse_args(argv)
    report = sweep(args, argv)
    results_file.emit(report, args, render)
    if args.plot:
        try:
            plot(report, args.plot)
        except ImportError:
            print("matplotlib is not installed: no plot", file=sys.stderr)
            return 1
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
