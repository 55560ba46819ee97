"""The FGD paper's benchmark on the openb trace (Weng et al., "Beware of Fragmentation: Scheduling
GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC '23).

The cluster is openb's 1213 GPU nodes (6212 GPUs); a pod list becomes a stream of arrivals —
shuffled, topped up by draws with replacement to 1.3 × the cluster's GPUs, placed one at a time
and never deleted — and the KPI is the GPU allocation ratio as the arrived load grows from 0 to
130 %. The protocol, the packing policies and the curve all live in the Rust core
(``kube_engine_core::bench::replay``); this module builds the cluster, runs policies × seeds, and
reads the published results to compare with.

>>> snap = openb_gpu_snapshot("default")            # doctest: +SKIP
>>> curves = run(snap, ["FGD", "BestFit"], [42, 43])  # doctest: +SKIP
>>> curves["FGD"][42]["130"]                          # doctest: +SKIP
95.3
"""

from __future__ import annotations

import csv
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

from kube_engine._core import Snapshot, fgd_replay
from kube_engine.bench.objects import dumps
from kube_engine.bench.openb import find_openb_dir, openb_cluster

__all__ = [
    "GPU_NODE_LIST",
    "LOAD",
    "MAX_PCT",
    "PAPER_POLICIES",
    "Curve",
    "find_expected_dir",
    "mean_curve",
    "openb_gpu_snapshot",
    "parse_seeds",
    "policy_name",
    "pod_list_path",
    "published",
    "run",
]

GPU_NODE_LIST = "openb_node_list_gpu_node.csv"
LOAD = 1.3
"""Arrivals stop at this multiple of the cluster's GPUs (the paper's 130 %)."""
MAX_PCT = 130
EXPECTED_CSV = "analysis_allo_discrete.csv"

PAPER_POLICIES: dict[str, str] = {
    "Random": "Random",
    "DotProd": "DotProduct",
    "GpuClustering": "GpuClustering",
    "GpuPacking": "GpuPacking",
    "BestFit": "BestFit",
    "FGD": "FGD",
}
"""The six policies of the paper, by the paper's names, and the score plugins that implement
them."""

Curve = dict[str, float | None]
"""GPU allocation (%) by arrived load ("0" … "130" %); None where no arrival was near."""


def policy_name(name: str) -> str:
    """The score plugin for a paper name (``DotProd`` → ``DotProduct``); other names unchanged."""
    return PAPER_POLICIES.get(name, name)


def pod_list_path(pods: str | os.PathLike[str]) -> Path:
    """A pod list by name (``default`` → ``openb_pod_list_default.csv`` in the openb folder) or
    path."""
    path = Path(pods)
    if path.suffix == ".csv" or path.exists():
        return path
    base = find_openb_dir()
    if base is None:
        raise FileNotFoundError(
            f"openb data not found for pod list {str(pods)!r}: set KUBE_ENGINE_OPENB_DIR"
        )
    return base / f"openb_pod_list_{pods}.csv"


def openb_gpu_snapshot(
    pods: str | os.PathLike[str] = "default",
    nodes: str | os.PathLike[str] | None = None,
) -> Snapshot:
    """openb's GPU nodes and a pod list with every pod Pending and unbound (each an arrival)."""
    node_csv = Path(nodes) if nodes is not None else None
    if node_csv is None:
        base = find_openb_dir()
        if base is None:
            raise FileNotFoundError("openb data not found: set KUBE_ENGINE_OPENB_DIR")
        node_csv = base / GPU_NODE_LIST
    cluster = openb_cluster(node_csv, pod_list_path(pods), pending=True)
    return Snapshot.from_bytes(dumps(cluster))


def parse_seeds(spec: str) -> list[int]:
    """``"42-51"`` → 42 … 51; ``"1,5,7-9"`` → 1, 5, 7, 8, 9."""
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"invalid seeds {spec!r}: use e.g. 42-51 or 1,2,3") from None
        if last < first:
            raise ValueError(f"invalid seeds {spec!r}: {first}-{last} is empty")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise ValueError(f"invalid seeds {spec!r}: no seed given")
    return seeds


def run(
    snapshot: Snapshot,
    policies: Sequence[str],
    seeds: Sequence[int],
    load: float = LOAD,
    max_pct: int = MAX_PCT,
) -> dict[str, dict[int, Curve]]:
    """The protocol for every policy × seed (in parallel, in Rust): ``{policy: {seed: curve}}``,
    policies by the names given (paper names allowed)."""
    plugins = [policy_name(p) for p in policies]
    replays = fgd_replay(snapshot, plugins, list(seeds), load)
    return {
        given: {
            seed: {
                str(pct): value
                for pct, value in enumerate(replays[(plugin, seed)].allocation_curve(max_pct))
            }
            for seed in seeds
        }
        for given, plugin in zip(policies, plugins, strict=True)
    }


def mean_curve(curves: Iterable[Curve]) -> Curve:
    """Point-wise mean over seeds (None where any seed has no value)."""
    rows = list(curves)
    if not rows:
        return {}
    out: Curve = {}
    for key in rows[0]:
        values = [r.get(key) for r in rows]
        numbers = [v for v in values if v is not None]
        out[key] = statistics.fmean(numbers) if len(numbers) == len(values) else None
    return out


def find_expected_dir() -> Path | None:
    """The published results (``fgd_expected``): ``$KUBE_ENGINE_FGD_EXPECTED_DIR``, else beside
    the openb folder."""
    env = os.environ.get("KUBE_ENGINE_FGD_EXPECTED_DIR")
    candidates = [Path(env)] if env else []
    base = find_openb_dir()
    if base is not None:
        candidates.append(base.parent / "fgd_expected")
    for c in candidates:
        if (c / EXPECTED_CSV).is_file():
            return c
    return None


def published(pods: str = "default", directory: Path | None = None) -> dict[str, dict[int, Curve]]:
    """The authors' results for pod list ``pods``: ``{paper policy: {seed: curve}}``; empty when
    the data is not found."""
    directory = directory or find_expected_dir()
    if directory is None:
        return {}
    workload = f"openb_pod_list_{Path(pods).stem.removeprefix('openb_pod_list_')}"
    out: dict[str, dict[int, Curve]] = {}
    with (directory / EXPECTED_CSV).open(newline="") as f:
        for row in csv.DictReader(f):
            if row["workload"] != workload:
                continue
            policy = row["sc_policy"].split("-", 1)[-1]  # "06-FGD" -> "FGD"
            curve: Curve = {
                str(pct): float(row[str(pct)]) if row.get(str(pct)) else None
                for pct in range(MAX_PCT + 1)
            }
            out.setdefault(policy, {})[int(row["seed"])] = curve
    return out
