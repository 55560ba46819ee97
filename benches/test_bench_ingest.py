"""Ingestion, kube-engine vs the official client, on a small cluster (pytest-benchmark).

With `--benchmark-disable` (the project's default) each benchmark runs once, as a test that both
contenders read the same objects; `python benches/bench_ingest.py` is the timed, full-size run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import report
import results_file
from kubernetes import client

import kube_engine
from kube_engine.bench.objects import client_deserialize, dumps, split_list
from kube_engine.bench.synthetic import generate_cluster

# A benchmark run end to end (small, but whole): `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow

NODES, PODS, SEED = 50, 1000, 5


@dataclass(frozen=True)
class Cluster:
    data: bytes  # the List
    parts: dict[str, bytes]  # the typed lists the API serves, by client model name
    items: dict[str, int]  # expected item counts by model
    assignments: dict[str, str | None]  # pod "namespace/name" -> node, from the generator


@dataclass(frozen=True)
class View:
    nodes: int
    pods: int
    pdbs: int
    assignments: dict[str, str | None]


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    lst = generate_cluster(NODES, PODS, SEED, pending_fraction=0.05)
    parts = split_list(lst)
    pods = parts["V1PodList"]["items"]
    return Cluster(
        data=dumps(lst),
        parts={m: dumps(p) for m, p in parts.items()},
        items={m: len(p["items"]) for m, p in parts.items()},
        assignments={
            f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["spec"].get("nodeName")
            for p in pods
        },
    )


def deserialize_all(api: client.ApiClient, parts: dict[str, bytes]) -> dict[str, Any]:
    return {m: client_deserialize(api, data, m) for m, data in parts.items()}


def client_view(objs: dict[str, Any]) -> View:
    pods = objs["V1PodList"].items
    return View(
        nodes=len(objs["V1NodeList"].items),
        pods=len(pods),
        pdbs=len(objs["V1PodDisruptionBudgetList"].items),
        assignments={f"{p.metadata.namespace}/{p.metadata.name}": p.spec.node_name for p in pods},
    )


def engine_view(snap: kube_engine.Snapshot) -> View:
    return View(
        nodes=snap.num_nodes,
        pods=snap.num_pods,
        pdbs=snap.num_pdbs,
        assignments=dict(zip(snap.pod_names(), snap.pod_nodes(), strict=True)),
    )


def record(benchmark: Any, view: View, other: View) -> None:
    benchmark.extra_info.update(
        {
            "nodes": view.nodes,
            "pods": view.pods,
            "pdbs": view.pdbs,
            "bound": sum(1 for n in view.assignments.values() if n),
            "agrees_with_other_contender": view == other,
        }
    )


def test_ingest_kube_engine(benchmark: Any, cluster: Cluster) -> None:
    snap = benchmark(kube_engine.Snapshot.from_bytes, cluster.data)
    mine = engine_view(snap)
    theirs = client_view(deserialize_all(client.ApiClient(), cluster.parts))
    record(benchmark, mine, theirs)
    assert mine == theirs
    assert (mine.nodes, mine.pods) == (NODES, PODS)
    assert mine.pdbs == cluster.items["V1PodDisruptionBudgetList"] > 0
    assert mine.assignments == cluster.assignments
    assert any(n is None for n in mine.assignments.values())


def test_ingest_kubernetes_client(benchmark: Any, cluster: Cluster) -> None:
    api = client.ApiClient()
    objs = benchmark(deserialize_all, api, cluster.parts)
    mine = client_view(objs)
    theirs = engine_view(kube_engine.Snapshot.from_bytes(cluster.data))
    record(benchmark, mine, theirs)
    assert mine == theirs
    assert mine.assignments == cluster.assignments


def test_bench_script_small_run(tmp_path: Path) -> None:
    """The benchmark script end to end, tiny, with its results file."""
    script = Path(__file__).with_name("bench_ingest.py")
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "--nodes",
            "20",
            "--pods",
            "300",
            "--seed",
            "2",
            "--repeat",
            "2",
            "-o",
            "json",
            "--results",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = results_file.read(out)
    assert result == json.loads(proc.stdout) and result["benchmark"] == "ingest"
    assert result["machine"]["kubernetes"] == kubernetes.__version__
    assert result["agree"] is True
    ke, kc = result["results"]["kube-engine"], result["results"]["kubernetes-client"]
    assert ke["pods"] == kc["pods"] == 300 and ke["runs"] == 2 and kc["runs"] == 1
    assert ke["peak_delta_bytes"] >= 0 and kc["peak_delta_bytes"] > 0
    page = report.render([result])
    assert "## Ingestion" in page and "faster than the official client" in page
