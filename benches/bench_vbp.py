#!/usr/bin/env python3
"""Vector bin packing on the Caprara–Toth instances: bins against the optimum, per class.

    python benches/bench_vbp.py [--time-limit 5] [--class 1,4] [--limit 3] [-o json]
        [--results benches/results/vbp.json]

The 400 two-dimensional instances (`shared/data/vbp/ct01`, 10 classes × n = 25, 50, 100, 200 ×
10) are packed twice: by the best greedy heuristic from the Rust core, and by the `cpsat` solver
(the core's local search from that packing, then CP-SAT from its result) with `--time-limit`
seconds per instance, everything included. Each answer is compared with the optimum in
`INDEX.csv`; for the instances whose optimum is still open there (17: CL_4_200_1..7 and
CL_9_200_*) the best proven lower bound stands in, so their "% above" is an upper bound on the
truth and they count as optimal only when the packing meets that bound.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import results_file

from kube_engine.bench.vbp import SOLVERS, find_vbp_dir, read_vbp, solve


def _reference(row: dict[str, str]) -> tuple[int, bool]:
    """(optimum, or the best lower bound when the optimum is unknown; whether it is known)."""
    if row["optimum"]:
        return int(row["optimum"]), True
    return int(row["best_LB"]), False


def _instances(base: Path, classes: set[int] | None, limit: int | None) -> list[dict[str, str]]:
    with (base / "INDEX.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["instance"].startswith("ct01/")]
    if classes:
        rows = [r for r in rows if int(r["cls"]) in classes]
    if limit is not None:
        kept: dict[int, int] = {}
        picked = []
        for r in rows:
            c = int(r["cls"])
            if kept.get(c, 0) < limit:
                kept[c] = kept.get(c, 0) + 1
                picked.append(r)
        rows = picked
    return rows


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"instances": len(results)}
    for s in SOLVERS:
        above = [r[s]["pct_above"] for r in results]
        out[s] = {
            "mean_pct_above": round(statistics.fmean(above), 3) if above else None,
            "optimal_share": round(sum(r[s]["optimal"] for r in results) / len(results), 3)
            if results
            else None,
            "bins": sum(r[s]["bins"] for r in results),
            "seconds": round(sum(r[s]["seconds"] for r in results), 1),
        }
    out["reference_bins"] = sum(r["reference"] for r in results)
    out["open"] = sum(not r["optimum_known"] for r in results)
    return out


def sweep(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    base = args.data or find_vbp_dir()
    if base is None:
        raise SystemExit("vbp data not found: pass --data or set KUBE_ENGINE_VBP_DIR")
    rows = _instances(base, args.classes, args.limit)
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for row in rows:
        inst = read_vbp(base / row["instance"])
        reference, known = _reference(row)
        entry: dict[str, Any] = {
            "instance": inst.name,
            "cls": int(row["cls"]),
            "n": len(inst.items),
            "reference": reference,
            "optimum_known": known,
        }
        for s in SOLVERS:
            r = solve(inst, s, time_limit=args.time_limit, workers=args.workers, seed=args.seed)
            if r.bins < reference or (known and r.lower_bound > reference):
                raise SystemExit(f"{inst.name}: {s} contradicts the optimum {reference}: {r}")
            entry[s] = {
                "bins": r.bins,
                "lower_bound": r.lower_bound,
                "status": r.status,
                "seconds": round(r.seconds, 3),
                "pct_above": 100.0 * (r.bins - reference) / reference,
                "optimal": r.bins == reference,
            }
        results.append(entry)
        if args.progress:
            print(
                f"{inst.name:<18} ref {reference:>3} heuristic {entry['heuristic']['bins']:>3} "
                f"cpsat {entry['cpsat']['bins']:>3} ({entry['cpsat']['seconds']:.1f} s)",
                file=sys.stderr,
            )
    classes = sorted({r["cls"] for r in results})
    return {
        **results_file.envelope("vbp", __file__, argv, packages=("ortools",)),
        "time_limit": args.time_limit,
        "workers": args.workers,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "classes": {str(c): _summary([r for r in results if r["cls"] == c]) for c in classes},
        "total": _summary(results),
        "instances": results,
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"Caprara–Toth 2-D vector packing, CP-SAT {report['time_limit']:g} s per instance "
        f"(ortools {report['machine']['ortools']}, {report['machine']['cores']} cores)",
        f"{'class':>5} {'inst':>4} {'open':>4} | {'heuristic':^19} | {'cpsat':^19} | cpsat time",
        f"{'':>5} {'':>4} {'':>4} | {'% above':>9} {'optimal':>9} | {'% above':>9} "
        f"{'optimal':>9} | {'total s':>10}",
    ]
    rows = [*report["classes"].items(), ("all", report["total"])]
    for name, s in rows:
        h, c = s["heuristic"], s["cpsat"]
        lines.append(
            f"{name:>5} {s['instances']:>4} {s['open']:>4} | {h['mean_pct_above']:>9.2f} "
            f"{100 * h['optimal_share']:>8.1f}% | {c['mean_pct_above']:>9.2f} "
            f"{100 * c['optimal_share']:>8.1f}% | {c['seconds']:>10.1f}"
        )
    lines.append(f"wall time {report['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="folder with INDEX.csv and ct01/ (default: found)")
    ap.add_argument(
        "--class",
        dest="classes",
        type=lambda s: {int(c) for c in s.split(",") if c},
        help="comma-separated classes 1-10 (default: all)",
    )
    ap.add_argument("--limit", type=int, help="at most this many instances per class")
    ap.add_argument("--time-limit", type=float, default=5.0, help="cpsat seconds per instance")
    ap.add_argument("--workers", type=int, help="CP-SAT workers (default: all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--progress", action="store_true", help="a line per instance on stderr")
    results_file.add_options(ap)
    args = ap.parse_args(argv)
    results_file.emit(sweep(args, argv), args, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
