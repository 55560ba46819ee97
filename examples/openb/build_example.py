#!/usr/bin/env python3
"""Write the example openb snapshot (examples/openb/openb-example.json.gz).

    python examples/openb/build_example.py [--pod-csv openb_pod_list_default.csv] [--seed 0]

Converts the openb trace (Alibaba cluster-trace-gpu-v2023; see examples/openb/README.md)
with `kube_engine.bench.openb_cluster` and writes it as compact, key-sorted JSON, gzip'ed
deterministically (no timestamp, no file name), so the same inputs always give the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
from collections import Counter
from pathlib import Path

from kube_engine.bench.objects import GPU_RESOURCE, dumps, node_allocatable
from kube_engine.bench.openb import find_openb_dir, openb_cluster

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO / "examples" / "openb" / "openb-example.json.gz"


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--openb-dir", type=Path, default=None, help="folder with the trace CSVs")
    ap.add_argument("--node-csv", default="openb_node_list_all_node.csv")
    ap.add_argument("--pod-csv", default="openb_pod_list_default.csv")
    ap.add_argument("--seed", type=int, default=0, help="seed of the initial placement")
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = ap.parse_args(argv)

    base = args.openb_dir or find_openb_dir()
    if base is None:
        ap.error("openb CSVs not found: pass --openb-dir or set KUBE_ENGINE_OPENB_DIR")
    cluster = openb_cluster(base / args.node_csv, base / args.pod_csv, args.seed)
    data = gzip_bytes(dumps(cluster))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)

    nodes = [i for i in cluster["items"] if i["kind"] == "Node"]
    pods = [i for i in cluster["items"] if i["kind"] == "Pod"]
    gpu_nodes = sum(1 for n in nodes if node_allocatable(n).get(GPU_RESOURCE))
    phases = Counter(
        (p["status"]["phase"], "bound" if p["spec"].get("nodeName") else "unbound") for p in pods
    )
    print(f"wrote {args.output} ({len(data):,} bytes)")
    print(f"  {len(nodes)} nodes ({gpu_nodes} with GPUs), {len(pods)} pods, seed {args.seed}")
    for (phase, bound), n in sorted(phases.items()):
        print(f"  {phase:<10} {bound:<8} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
