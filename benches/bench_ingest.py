#!/usr/bin/env python3
"""Ingestion benchmark: kube-engine's Rust snapshot parser against the official Python client.

    python benches/bench_ingest.py --nodes 5000 --pods 100000 --seed 1 [-o json]
        [--results benches/results/ingest.json]

One run generates one synthetic cluster (`kube_engine.bench.synthetic.generate_cluster`) as a `List`
file and, outside any timing, splits its items into the NodeList, PodList and
PodDisruptionBudgetList the API server would serve. Then each contender runs in its own fresh
subprocess, one after the other:

- kube-engine: `kube_engine.Snapshot.from_bytes(data)` on the `List` bytes (best of N runs);
- kubernetes client: `ApiClient().deserialize(...)` of the three typed lists into `V1NodeList`,
  `V1PodList` and `V1PodDisruptionBudgetList` (what `list_*` calls do with preloaded content;
  one run by default, it is slow).

Wall time is measured around the call only. Peak memory is the growth of the subprocess's
`ru_maxrss` during its first run over a baseline taken after the imports and after the input
bytes were read. (The inputs are generated in a subprocess too: Linux carries a process's
`ru_maxrss` across fork+exec, so the parent that spawns the contenders must stay small.)
Both contenders' results are then compared (node, pod and PDB counts, and a
digest of every pod's `namespace/name` → node assignment) so the numbers are for the same work.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import results_file

CONTENDERS: dict[str, str] = {
    "kube-engine": "kube_engine.Snapshot.from_bytes",
    "kubernetes-client": "kubernetes ApiClient.deserialize (3 lists)",
}
LIST_FILE = "cluster.json"
PART_MODELS = ("V1NodeList", "V1PodList", "V1PodDisruptionBudgetList")


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def assignment_digest(pairs: Iterable[tuple[str, str | None]]) -> str:
    """sha256 over the sorted `namespace/name<TAB>node` lines (an empty node when unbound)."""
    lines = sorted(f"{key}\t{node or ''}\n" for key, node in pairs)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# --- inputs -----------------------------------------------------------------------------------


def write_inputs(
    workdir: Path, nodes: int, pods: int, seed: int, pending_fraction: float, data: Path | None
) -> dict[str, Any]:
    """Write the `List` file and the three typed lists; returns what was written.

    `data` is an existing `List` file (plain or gzip) to use instead of a generated cluster."""
    from kube_engine.bench.objects import dumps, split_list
    from kube_engine.bench.synthetic import generate_cluster

    t0 = time.perf_counter()
    if data is not None:
        raw = data.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            import gzip

            raw = gzip.decompress(raw)
        cluster = json.loads(raw)
        source = str(data)
    else:
        cluster = generate_cluster(nodes, pods, seed, pending_fraction=pending_fraction)
        raw = dumps(cluster)
        source = "generate_cluster"
    generated_s = time.perf_counter() - t0
    (workdir / LIST_FILE).write_bytes(raw)
    info: dict[str, Any] = {
        "source": source,
        "generate_seconds": round(generated_s, 3),
        "list_bytes": len(raw),
        "parts": {},
    }
    for model, lst in split_list(cluster).items():
        part = dumps(lst)
        (workdir / f"{model}.json").write_bytes(part)
        info["parts"][model] = {"items": len(lst["items"]), "bytes": len(part)}
    del cluster, raw
    gc.collect()
    return info


# --- one contender, in its own process --------------------------------------------------------


def _kube_engine(workdir: Path) -> tuple[Callable[[], Any], Callable[[Any], dict[str, Any]]]:
    import kube_engine

    data = (workdir / LIST_FILE).read_bytes()

    def run() -> Any:
        return kube_engine.Snapshot.from_bytes(data)

    def summary(snap: Any) -> dict[str, Any]:
        return {
            "nodes": snap.num_nodes,
            "pods": snap.num_pods,
            "pdbs": snap.num_pdbs,
            "bound": sum(1 for n in snap.pod_nodes() if n),
            "assignments": assignment_digest(zip(snap.pod_names(), snap.pod_nodes(), strict=True)),
            "version": getattr(kube_engine, "__version__", "?"),
        }

    return run, summary


def _kubernetes_client(
    workdir: Path, part_times: dict[str, list[float]]
) -> tuple[Callable[[], Any], Callable[[Any], dict[str, Any]]]:
    import kubernetes
    from kubernetes import client

    from kube_engine.bench.objects import client_deserialize

    api = client.ApiClient()
    parts = {m: (workdir / f"{m}.json").read_bytes() for m in PART_MODELS}

    def run() -> Any:
        out = {}
        for model, data in parts.items():
            t0 = time.perf_counter()
            out[model] = client_deserialize(api, data, model)
            part_times.setdefault(model, []).append(time.perf_counter() - t0)
        return out

    def summary(objs: Any) -> dict[str, Any]:
        pods = objs["V1PodList"].items
        pairs = [(f"{p.metadata.namespace}/{p.metadata.name}", p.spec.node_name) for p in pods]
        return {
            "nodes": len(objs["V1NodeList"].items),
            "pods": len(pods),
            "pdbs": len(objs["V1PodDisruptionBudgetList"].items),
            "bound": sum(1 for _, n in pairs if n),
            "assignments": assignment_digest(pairs),
            "version": getattr(kubernetes, "__version__", "?"),
        }

    return run, summary


def run_worker(name: str, workdir: Path, repeat: int, budget_s: float) -> dict[str, Any]:
    part_times: dict[str, list[float]] = {}
    if name == "kube-engine":
        run, summary = _kube_engine(workdir)
    elif name == "kubernetes-client":
        run, summary = _kubernetes_client(workdir, part_times)
    else:
        raise SystemExit(f"unknown contender {name!r}")
    gc.collect()
    baseline = _maxrss_bytes()
    times: list[float] = []
    peak = baseline
    result: Any = None
    for i in range(max(1, repeat)):
        result = None  # free the previous result before the next run
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
        if i == 0:
            peak = _maxrss_bytes()
        if sum(times) > budget_s:
            break
    out = {
        "contender": name,
        "call": CONTENDERS[name],
        "runs": len(times),
        "seconds": [round(t, 4) for t in times],
        "best_seconds": min(times),
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_delta_bytes": peak - baseline,
        **summary(result),
    }
    if part_times:
        out["part_seconds"] = {m: round(min(ts), 4) for m, ts in part_times.items()}
    return out


def _spawn(args: list[str], what: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def spawn_worker(name: str, workdir: Path, repeat: int, budget_s: float) -> dict[str, Any]:
    args = ["--worker", name, "--workdir", str(workdir), "--repeat", str(repeat)]
    return _spawn([*args, "--time-budget", str(budget_s)], f"{name} worker")


def spawn_prepare(
    workdir: Path, nodes: int, pods: int, seed: int, pending_fraction: float, data: Path | None
) -> dict[str, Any]:
    args = ["--prepare", "--workdir", str(workdir), "--nodes", str(nodes), "--pods", str(pods)]
    args += ["--seed", str(seed), "--pending-fraction", str(pending_fraction)]
    if data is not None:
        args += ["--data", str(data)]
    return _spawn(args, "generating the input")


# --- report -----------------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def render_table(report: dict[str, Any]) -> str:
    p = report["params"]
    inp = report["input"]
    counts = inp["parts"]
    lines = [
        f"kube-engine ingestion benchmark: {counts['V1NodeList']['items']} nodes, "
        f"{counts['V1PodList']['items']} pods, {counts['V1PodDisruptionBudgetList']['items']} "
        f"PDBs (seed {p['seed']}, pending_fraction {p['pending_fraction']})",
        f"input: {_mb(inp['list_bytes'])} MiB JSON List ({inp['source']}, "
        f"{inp['generate_seconds']:.1f} s); {report['machine']['cores']} cores, "
        f"Python {report['machine']['python']}",
        "",
        f"{'contender':<46} {'runs':>4} {'wall s (best)':>14} {'peak RSS Δ MiB':>15}",
    ]
    for r in report["results"].values():
        lines.append(
            f"{r['call']:<46} {r['runs']:>4} {r['best_seconds']:>14.3f} "
            f"{_mb(r['peak_delta_bytes']):>15}"
        )
    client = report["results"].get("kubernetes-client")
    if client and "part_seconds" in client:
        parts = ", ".join(f"{m} {s:.2f} s" for m, s in client["part_seconds"].items())
        lines.append(f"{'':<4}client per list: {parts}")
    if "speedup" in report:
        lines.append("")
        ratio = report["memory_ratio"]
        memory = (
            f"uses {ratio:,.1f}x less memory"
            if ratio is not None
            else "its memory growth is below ru_maxrss resolution"
        )
        lines.append(
            f"kube-engine is {report['speedup']:,.1f}x faster and {memory}; results "
            + ("AGREE" if report["agree"] else "DISAGREE")
            + f" ({report['results']['kube-engine']['pods']} pods, "
            f"{report['results']['kube-engine']['bound']} bound, same pod->node digest: "
            f"{report['agree']})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pending-fraction", type=float, default=0.02)
    ap.add_argument("--data", type=Path, help="use this List file instead of generating one")
    ap.add_argument("--repeat", type=int, default=5, help="runs of the fast contender (best of)")
    ap.add_argument("--client-repeat", type=int, default=1, help="runs of the official client")
    ap.add_argument(
        "--time-budget", type=float, default=60.0, help="stop repeating after this many seconds"
    )
    ap.add_argument(
        "--contenders", default=",".join(CONTENDERS), help="comma-separated subset to run"
    )
    ap.add_argument("--workdir", type=Path, help="keep the input files here")
    results_file.add_options(ap)
    ap.add_argument("--worker", choices=tuple(CONTENDERS), help=argparse.SUPPRESS)
    ap.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(run_worker(args.worker, args.workdir, args.repeat, args.time_budget)))
        return 0
    if args.prepare:
        info = write_inputs(
            args.workdir, args.nodes, args.pods, args.seed, args.pending_fraction, args.data
        )
        print(json.dumps(info))
        return 0

    names = [n for n in args.contenders.split(",") if n]
    for n in names:
        if n not in CONTENDERS:
            ap.error(f"unknown contender {n!r}")
    tmp = None
    if args.workdir is None:
        tmp = Path(tempfile.mkdtemp(prefix="kube-engine-bench-"))
        workdir = tmp
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.output == "table":
            what = args.data or f"{args.nodes} nodes / {args.pods} pods"
            print(f"preparing the input ({what}) ...", file=sys.stderr)
        info = spawn_prepare(
            workdir, args.nodes, args.pods, args.seed, args.pending_fraction, args.data
        )
        results: dict[str, Any] = {}
        for n in names:
            if args.output == "table":
                print(f"running {n} ...", file=sys.stderr)
            repeat = args.repeat if n == "kube-engine" else args.client_repeat
            results[n] = spawn_worker(n, workdir, repeat, args.time_budget)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    report: dict[str, Any] = {
        **results_file.envelope("ingest", __file__, argv, packages=("kubernetes",)),
        "params": {
            "nodes": args.nodes,
            "pods": args.pods,
            "seed": args.seed,
            "pending_fraction": args.pending_fraction,
            "repeat": args.repeat,
            "client_repeat": args.client_repeat,
        },
        "input": info,
        "results": results,
    }
    if "kube-engine" in results and "kubernetes-client" in results:
        ke, kc = results["kube-engine"], results["kubernetes-client"]
        report["speedup"] = kc["best_seconds"] / ke["best_seconds"]
        # ru_maxrss is a high-water mark: below ~1 MiB the delta is noise, so no ratio then.
        resolution = 2**20
        report["memory_ratio"] = (
            kc["peak_delta_bytes"] / ke["peak_delta_bytes"]
            if ke["peak_delta_bytes"] >= resolution
            else None
        )
        keys = ("nodes", "pods", "pdbs", "bound", "assignments")
        report["agree"] = all(ke[k] == kc[k] for k in keys)
    results_file.emit(report, args, render_table)
    return 0 if report.get("agree", True) else 1


if __name__ == "__main__":
    sys.exit(main())
