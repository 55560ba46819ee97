"""Benchmark workloads: synthetic clusters, the openb conversion and the example cluster."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from kubernetes import client

import kube_engine
from conftest import EXAMPLE
from kube_engine.bench import objects as k
from kube_engine.bench.openb import QOS_LABEL, find_openb_dir, openb_cluster
from kube_engine.bench.synthetic import generate_cluster, generate_cluster_json

OPENB = find_openb_dir()
needs_openb = pytest.mark.skipif(OPENB is None, reason="openb trace CSVs not found")


@cache
def synthetic(nodes: int, pods: int, seed: int, pending_fraction: float = 0.0) -> dict[str, Any]:
    return generate_cluster(nodes, pods, seed, pending_fraction=pending_fraction)


@cache
def openb(pod_list: str = "openb_pod_list_default.csv", seed: int = 0) -> dict[str, Any]:
    assert OPENB is not None
    return openb_cluster(OPENB / "openb_node_list_all_node.csv", OPENB / pod_list, seed)


def of_kind(lst: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [i for i in lst["items"] if i["kind"] == kind]


def pod_key(p: dict[str, Any]) -> str:
    return f"{p['metadata']['namespace']}/{p['metadata']['name']}"


CLUSTERS = [
    pytest.param((50, 1000, 3, 0.05), id="50n-1000p"),
    pytest.param((200, 4000, 1, 0.0), id="200n-4000p"),
    pytest.param((10, 600, 2, 0.1), id="10n-600p-overloaded"),
    pytest.param((3, 40, 4, 0.0), id="3n-40p-tiny"),
]


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_bytes() -> None:
    a = generate_cluster_json(30, 500, seed=11, pending_fraction=0.1)
    b = generate_cluster_json(30, 500, seed=11, pending_fraction=0.1)
    assert a == b
    assert generate_cluster_json(30, 500, seed=12, pending_fraction=0.1) != a
    assert json.loads(a) == generate_cluster(30, 500, 11, pending_fraction=0.1)


def test_same_bytes_across_processes() -> None:
    """No dependence on str hashing (PYTHONHASHSEED) or anything else of one process."""
    code = (
        "import sys; from kube_engine.bench.synthetic import generate_cluster_json as g; "
        "sys.stdout.buffer.write(g(20, 300, seed=3, pending_fraction=0.1))"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]
    assert outs[0] == outs[1] == generate_cluster_json(20, 300, seed=3, pending_fraction=0.1)


def test_indent_is_kubectl_style() -> None:
    text = generate_cluster_json(3, 20, seed=1, indent=4).decode()
    assert text.startswith('{\n    "apiVersion": "v1",\n    "items": [')
    assert json.loads(text) == generate_cluster(3, 20, 1)


@pytest.mark.parametrize("shape", CLUSTERS)
def test_counts_and_pending(shape: tuple[int, int, int, float]) -> None:
    nodes, pods, seed, pending = shape
    lst = synthetic(*shape)
    assert lst["kind"] == "List" and lst["apiVersion"] == "v1"
    assert len(of_kind(lst, "Node")) == nodes
    all_pods = of_kind(lst, "Pod")
    assert len(all_pods) == pods
    assert len({pod_key(p) for p in all_pods}) == pods
    assert len({p["metadata"]["uid"] for p in all_pods}) == pods
    unbound = [p for p in all_pods if not p["spec"].get("nodeName")]
    assert len(unbound) >= round(pending * pods)
    assert all(p["status"]["phase"] == "Pending" for p in unbound)
    kinds = [i["kind"] for i in lst["items"]]
    assert kinds == sorted(kinds, key=["Node", "Pod", "PodDisruptionBudget"].index)


def test_empty_and_degenerate() -> None:
    assert generate_cluster(0, 0)["items"] == []
    lst = generate_cluster(0, 5)
    assert len(of_kind(lst, "Pod")) == 5
    assert all(not p["spec"].get("nodeName") for p in of_kind(lst, "Pod"))
    assert len(of_kind(generate_cluster(4, 0), "Node")) == 4
    with pytest.raises(ValueError):
        generate_cluster(1, 1, pending_fraction=1.5)


# --- the official client ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [CLUSTERS[0], CLUSTERS[3]])
def test_official_client_deserializes(shape: tuple[int, int, int, float]) -> None:
    lst = synthetic(*shape)
    api = client.ApiClient()
    parts = k.split_list(lst)
    nodes = k.client_deserialize(api, k.dumps(parts["V1NodeList"]), "V1NodeList")
    pods = k.client_deserialize(api, k.dumps(parts["V1PodList"]), "V1PodList")
    pdbs = k.client_deserialize(
        api, k.dumps(parts["V1PodDisruptionBudgetList"]), "V1PodDisruptionBudgetList"
    )
    assert len(nodes.items) == shape[0]
    assert len(pods.items) == shape[1]
    assert len(pdbs.items) == len(of_kind(lst, "PodDisruptionBudget")) > 0
    expected = {pod_key(p): p["spec"].get("nodeName") for p in of_kind(lst, "Pod")}
    got = {f"{p.metadata.namespace}/{p.metadata.name}": p.spec.node_name for p in pods.items}
    assert got == expected
    assert all(p.metadata.creation_timestamp is not None for p in pods.items)
    if shape[0] >= 50:  # big enough to have every feature; the client reads them typed
        sidecars = [
            c
            for p in pods.items
            for c in (p.spec.init_containers or [])
            if c.restart_policy == "Always"
        ]
        assert sidecars
        assert any(p.spec.overhead for p in pods.items)
        assert any(n.spec.unschedulable for n in nodes.items)


@pytest.mark.slow
def test_official_client_deserializes_openb_and_example() -> None:
    lst = json.loads(gzip.decompress(EXAMPLE.read_bytes()))
    api = client.ApiClient()
    parts = k.split_list(lst)
    pods = k.client_deserialize(api, k.dumps(parts["V1PodList"]), "V1PodList")
    nodes = k.client_deserialize(api, k.dumps(parts["V1NodeList"]), "V1NodeList")
    assert len(pods.items) == 8152 and len(nodes.items) == 1523


# --- what a realistic cluster has -------------------------------------------------------------


# The namespaces of the add-ons every synthetic cluster has (coredns, an ingress controller).
ADD_ONS = ("kube-system", "ingress-nginx")


def test_many_small_deployments() -> None:
    lst = generate_cluster(150, 8000, 5, pending_fraction=1.0, small_deployments=True)
    pods = of_kind(lst, "Pod")
    deployments: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pods:
        owner = p["metadata"]["ownerReferences"][0]
        if owner["kind"] == "ReplicaSet" and p["metadata"]["namespace"] not in ADD_ONS:
            deployments[owner["name"]].append(p)
    replicas = Counter(len(ps) for ps in deployments.values())
    n = len(deployments)
    assert n > 1000  # many
    # Heavy-tailed: nearly all 1-5, yet a few in the hundreds.
    assert sum(c for r, c in replicas.items() if r <= 5) / n > 0.8
    assert max(replicas) >= 100
    first = [ps[0]["spec"] for ps in deployments.values()]
    anti = sum("podAntiAffinity" in s.get("affinity", {}) for s in first) / n
    spread = sum(bool(s.get("topologySpreadConstraints")) for s in first) / n
    assert 0.12 < anti < 0.18 and 0.12 < spread < 0.18
    for ps in deployments.values():
        spec = ps[0]["spec"]
        terms = spec.get("affinity", {}).get("podAntiAffinity", {})
        for t in terms.get("requiredDuringSchedulingIgnoredDuringExecution", []):
            assert t["topologyKey"] == k.HOSTNAME_LABEL
        for c in spec.get("topologySpreadConstraints", []):
            assert (c["topologyKey"], c["whenUnsatisfiable"]) == (k.ZONE_LABEL, "DoNotSchedule")
        # All Pending, created in one burst by their ReplicaSet, alike but for their names.
        assert all("nodeName" not in p["spec"] for p in ps)
        assert len({p["metadata"]["creationTimestamp"] for p in ps}) == 1
        assert len({json.dumps(p["spec"]["containers"][0]["resources"]) for p in ps}) == 1
    # Together they ask for about what the nodes without taints have (a little more).
    nodes = [x for x in of_kind(lst, "Node") if not x["spec"].get("taints")]
    for r in ("cpu", "memory"):
        have = sum(k.resource_units(r, x["status"]["allocatable"][r]) for x in nodes)
        asked = sum(
            k.resource_units(r, p["spec"]["containers"][0]["resources"]["requests"][r])
            for ps in deployments.values()
            for p in ps
        )
        assert 1.0 < asked / have < 1.05, r


def test_realistic_features() -> None:
    lst = synthetic(200, 4000, 1)
    nodes = of_kind(lst, "Node")
    pods = of_kind(lst, "Pod")
    pdbs = of_kind(lst, "PodDisruptionBudget")
    labels = [n["metadata"]["labels"] for n in nodes]
    assert {lab[k.ZONE_LABEL] for lab in labels} == {"us-west-2a", "us-west-2b", "us-west-2c"}
    assert all(
        lab[k.HOSTNAME_LABEL] == n["metadata"]["name"] for lab, n in zip(labels, nodes, strict=True)
    )
    assert len({lab[k.INSTANCE_TYPE_LABEL] for lab in labels}) >= 5
    assert any(lab.get(k.GPU_PRODUCT_LABEL) for lab in labels)
    taints = Counter(t["key"] for n in nodes for t in n["spec"].get("taints", []))
    for key in ("nvidia.com/gpu", "dedicated", "node.kubernetes.io/unschedulable"):
        assert taints[key] > 0, key
    assert taints["node.kubernetes.io/unreachable"] > 0
    not_ready = [
        n
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] != "True" for c in n["status"]["conditions"])
    ]
    assert not_ready

    owners = Counter(p["metadata"]["ownerReferences"][0]["kind"] for p in pods)
    assert set(owners) == {"DaemonSet", "ReplicaSet", "StatefulSet", "Job"}
    ds_nodes = Counter(
        p["spec"]["nodeName"]
        for p in pods
        if p["metadata"]["ownerReferences"][0]["name"] == "kube-proxy"
    )
    assert set(ds_nodes) == {n["metadata"]["name"] for n in nodes} and max(ds_nodes.values()) == 1
    rs = [p for p in pods if p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"]
    assert all("pod-template-hash" in p["metadata"]["labels"] for p in rs)
    assert all("app" in p["metadata"]["labels"] for p in rs)

    specs = [p["spec"] for p in pods]

    def some(pred: Any) -> bool:
        return any(pred(s) for s in specs)

    assert some(lambda s: len(s["containers"]) > 1)
    assert some(
        lambda s: any(c.get("restartPolicy") == "Always" for c in s.get("initContainers", []))
    )
    assert some(lambda s: any("restartPolicy" not in c for c in s.get("initContainers", [])))
    assert some(lambda s: s.get("overhead"))
    assert some(lambda s: all(not c["resources"] for c in s["containers"]))
    assert some(lambda s: any("limits" in c["resources"] for c in s["containers"]))
    assert some(lambda s: s.get("nodeSelector"))
    assert some(
        lambda s: (
            "requiredDuringSchedulingIgnoredDuringExecution"
            in s.get("affinity", {}).get("nodeAffinity", {})
        )
    )
    assert some(
        lambda s: (
            "preferredDuringSchedulingIgnoredDuringExecution"
            in s.get("affinity", {}).get("nodeAffinity", {})
        )
    )
    assert some(
        lambda s: (
            "requiredDuringSchedulingIgnoredDuringExecution"
            in s.get("affinity", {}).get("podAntiAffinity", {})
        )
    )
    spread = {c["whenUnsatisfiable"] for s in specs for c in s.get("topologySpreadConstraints", [])}
    assert spread == {"DoNotSchedule", "ScheduleAnyway"}
    for p in pods:  # DaemonSet pods tolerate NoExecute taints forever, others for 5 minutes
        seconds = {t.get("tolerationSeconds") for t in p["spec"]["tolerations"]}
        daemon = p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
        assert (300 in seconds) != daemon
    assert some(
        lambda s: any(p.get("hostPort") for c in s["containers"] for p in c.get("ports", []))
    )
    assert some(lambda s: any("emptyDir" in v for v in s["volumes"]))
    assert some(lambda s: any("hostPath" in v for v in s["volumes"]))
    assert all(any("projected" in v for v in s["volumes"]) for s in specs)
    assert len({s["priority"] for s in specs}) >= 4
    requests = [k.effective_requests(s) for s in specs]
    assert any(r.get(k.GPU_RESOURCE) for r in requests)
    assert any(r.get(k.GPU_MILLI_RESOURCE) for r in requests)

    policies = Counter(
        (key, type(p["spec"][key]).__name__)
        for p in pdbs
        for key in ("minAvailable", "maxUnavailable")
        if key in p["spec"]
    )
    assert set(policies) == {
        ("minAvailable", "int"),
        ("minAvailable", "str"),
        ("maxUnavailable", "int"),
        ("maxUnavailable", "str"),
    }
    phases = Counter(p["status"]["phase"] for p in pods)
    assert phases["Running"] > 0.8 * len(pods) and phases["Succeeded"] > 0

    sizes = [len(k.dumps(p)) for p in pods]
    assert 3000 <= sum(sizes) / len(sizes) <= 6500


# --- placements respect capacity and constraints ----------------------------------------------


def check_placement(lst: dict[str, Any]) -> int:
    """Assert the core finds nothing its filters would reject where the pods are bound (capacity,
    GPU devices, node affinity, taints, inter-pod rules, spread, ports), and that devices are
    recorded for bound GPU pods only; return how many bound pods there are."""
    snap = kube_engine.Snapshot.from_bytes(k.dumps(lst))
    assert kube_engine.evaluate(snap).violations == []
    checked = 0
    for p in of_kind(lst, "Pod"):
        ann = p["metadata"].get("annotations", {}).get(k.GPU_DEVICES_ANNOTATION)
        if not p["spec"].get("nodeName") or p["status"]["phase"] in k.TERMINAL_PHASES:
            assert ann is None
            continue
        count, _ = k.gpu_need(k.effective_requests(p["spec"]))
        assert (ann is not None) == bool(count), pod_key(p)
        if ann is not None:
            assert len(ann.split(",")) == count
        checked += 1
    return checked


@pytest.mark.parametrize("shape", CLUSTERS)
def test_synthetic_placement_breaks_no_filter(shape: tuple[int, int, int, float]) -> None:
    assert check_placement(synthetic(*shape)) > 0


def test_synthetic_pod_constraints_are_exercised() -> None:
    """The cluster has workloads with required anti-affinity, hard zone spread and host ports,
    placed (check_placement asks the core whether they hold)."""
    lst = synthetic(200, 4000, 1)
    by_app: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for p in of_kind(lst, "Pod"):
        if p["spec"].get("nodeName") and p["status"]["phase"] == "Running":
            by_app[(p["metadata"]["namespace"], p["metadata"]["labels"].get("app", ""))].append(p)
    anti = spread = 0
    for group in by_app.values():
        spec = group[0]["spec"]
        required = spec.get("affinity", {}).get("podAntiAffinity", {})
        if required.get("requiredDuringSchedulingIgnoredDuringExecution"):
            hosts = [p["spec"]["nodeName"] for p in group]
            assert len(hosts) == len(set(hosts))
            anti += 1
        hard = spec.get("topologySpreadConstraints", [])
        spread += any(c["whenUnsatisfiable"] == "DoNotSchedule" for c in hard) and len(group) > 1
    assert anti > 0 and spread > 0
    ports: dict[str, Counter[int]] = defaultdict(Counter)
    for p in of_kind(lst, "Pod"):
        if p["spec"].get("nodeName"):
            for c in p["spec"]["containers"]:
                for port in c.get("ports", []):
                    if port.get("hostPort"):
                        ports[p["spec"]["nodeName"]][port["hostPort"]] += 1
    assert ports and all(max(c.values()) == 1 for c in ports.values())
    check_placement(lst)


def test_unschedulable_pods_carry_the_schedulers_message() -> None:
    lst = synthetic(10, 600, 2, 0.1)
    messages = [
        c["message"]
        for p in of_kind(lst, "Pod")
        for c in p["status"].get("conditions", [])
        if c.get("reason") == "Unschedulable"
    ]
    assert messages and all(m.startswith("0/10 nodes are available: ") for m in messages)


def test_pdb_status_is_consistent() -> None:
    lst = synthetic(50, 1000, 3, 0.05)
    pods = of_kind(lst, "Pod")
    for pdb in of_kind(lst, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        ns = pdb["metadata"]["namespace"]
        matching = [
            p
            for p in pods
            if p["metadata"]["namespace"] == ns
            and all(p["metadata"]["labels"].get(a) == b for a, b in sel.items())
        ]
        st = pdb["status"]
        active = [p for p in matching if p["status"]["phase"] not in k.TERMINAL_PHASES]
        assert st["expectedPods"] == len(active)
        healthy = sum(
            1 for p in matching if p["status"]["phase"] == "Running" and p["spec"].get("nodeName")
        )
        assert st["currentHealthy"] == healthy
        assert st["disruptionsAllowed"] == max(0, healthy - st["desiredHealthy"])


def test_rust_snapshot_agrees_with_generator() -> None:
    lst = synthetic(50, 1000, 3, 0.05)
    snap = kube_engine.Snapshot.from_bytes(k.dumps(lst))
    assert (snap.num_nodes, snap.num_pods) == (50, 1000)
    assert snap.num_pdbs == len(of_kind(lst, "PodDisruptionBudget"))
    expected = {pod_key(p): p["spec"].get("nodeName") for p in of_kind(lst, "Pod")}
    assert dict(zip(snap.pod_names(), snap.pod_nodes(), strict=True)) == expected
    assert snap.gpu_devices_inferred() == []
    for p in of_kind(lst, "Pod")[:200]:
        if p["status"]["phase"] in k.TERMINAL_PHASES:
            continue
        want = k.effective_requests(p["spec"])
        got = snap.pod_request(pod_key(p))
        for r in ("cpu", "memory", "pods"):
            assert got["resources"].get(r, 0) == want.get(r, 0), (pod_key(p), r)


# --- objects helpers --------------------------------------------------------------------------


def test_quantity_formatting_round_trips() -> None:
    for milli in (1, 250, 1000, 2500, 96000):
        assert k.resource_units("cpu", k.cpu_quantity(milli)) == milli
    for n in (1, 1023, 1024, 3 * 2**20, 5 * 2**30 + 2**20):
        assert k.resource_units("memory", k.memory_quantity(n)) == n


def _c(name: str, cpu: str, *, sidecar: bool = False, limit: bool = False) -> dict[str, Any]:
    res = {"limits" if limit else "requests": {"cpu": cpu}}
    c: dict[str, Any] = {"name": name, "image": "x", "resources": res}
    if sidecar:
        c["restartPolicy"] = "Always"
    return c


def test_effective_requests_with_sidecars_and_overhead() -> None:
    # kube-scheduler's example: app containers + sidecars vs the init peak with earlier sidecars.
    spec = {
        "containers": [_c("app", "100m")],
        "initContainers": [
            _c("sidecar-1", "200m", sidecar=True),
            _c("init-big", "1"),  # runs next to sidecar-1: 1200m
            _c("sidecar-2", "300m", sidecar=True),
        ],
        "overhead": {"cpu": "50m"},
    }
    assert k.effective_requests(spec) == {"cpu": 1250, "pods": 1}
    spec["initContainers"] = [_c("init", "100m")]
    assert k.effective_requests(spec) == {"cpu": 150, "pods": 1}
    assert k.effective_requests({"containers": [_c("a", "2", limit=True)]})["cpu"] == 2000


def test_qos_class() -> None:
    assert k.qos_class({"containers": [{"resources": {}}]}) == "BestEffort"
    both = {"cpu": "1", "memory": "1Gi"}
    guaranteed = {"resources": {"requests": both, "limits": both}}
    assert k.qos_class({"containers": [guaranteed]}) == "Guaranteed"
    burst = {"resources": {"requests": both}}
    assert k.qos_class({"containers": [guaranteed, burst]}) == "Burstable"


def test_gpu_need_refuses_whole_and_share_together() -> None:
    assert k.gpu_need({k.GPU_MILLI_RESOURCE: 600}) == (1, 600)
    assert k.gpu_need({k.GPU_RESOURCE: 2}) == (2, 1000)
    with pytest.raises(ValueError):
        k.gpu_need({k.GPU_RESOURCE: 1, k.GPU_MILLI_RESOURCE: 500})


def test_split_list_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match=r"items\[0\]\.kind"):
        k.split_list({"items": [{"kind": "Service"}]})


# --- openb ------------------------------------------------------------------------------------


def read_csv(name: str) -> list[dict[str, str]]:
    assert OPENB is not None
    with (OPENB / name).open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@needs_openb
def test_openb_counts_match_csv() -> None:
    lst = openb()
    nodes, pods = of_kind(lst, "Node"), of_kind(lst, "Pod")
    assert (len(nodes), len(pods)) == (1523, 8152)
    assert of_kind(lst, "PodDisruptionBudget") == []
    node_rows = read_csv("openb_node_list_all_node.csv")
    pod_rows = read_csv("openb_pod_list_default.csv")
    for n, row in zip(nodes, node_rows, strict=True):
        alloc = k.node_allocatable(n)
        assert n["metadata"]["name"] == row["sn"]
        assert alloc["cpu"] == int(row["cpu_milli"])
        assert n["status"]["allocatable"]["memory"] == f"{row['memory_mib']}Mi"
        assert alloc.get(k.GPU_RESOURCE, 0) == int(row["gpu"])
        assert n["metadata"]["labels"].get(k.GPU_PRODUCT_LABEL, "") == row["model"]
    assert sum(1 for n in nodes if k.node_allocatable(n).get(k.GPU_RESOURCE)) == 1213
    phases = Counter(r["pod_phase"] for r in pod_rows)
    got = Counter(p["status"]["phase"] for p in pods)
    assert got["Succeeded"] == phases["Succeeded"] and got["Failed"] == phases["Failed"]
    assert got["Running"] + got["Pending"] == phases["Running"] + phases["Pending"]
    for p, row in zip(pods, pod_rows, strict=True):
        assert p["metadata"]["name"] == row["name"] and p["metadata"]["namespace"] == "openb"
        assert p["metadata"]["labels"][QOS_LABEL] == row["qos"]
        created = k.epoch("2023-01-01T00:00:00Z") + int(row["creation_time"])
        assert p["metadata"]["creationTimestamp"] == k.timestamp(created)
        req = p["spec"]["containers"][0]["resources"]["requests"]
        if int(row["cpu_milli"]):
            assert req["cpu"] == f"{row['cpu_milli']}m"
        if int(row["memory_mib"]):
            assert req["memory"] == f"{row['memory_mib']}Mi"
        num, milli = int(row["num_gpu"]), int(row["gpu_milli"])
        if num and milli == 1000:
            assert req[k.GPU_RESOURCE] == str(num) and k.GPU_MILLI_RESOURCE not in req
        elif num:
            assert req[k.GPU_MILLI_RESOURCE] == str(milli) and k.GPU_RESOURCE not in req
        else:
            assert k.GPU_RESOURCE not in req and k.GPU_MILLI_RESOURCE not in req
        bound = bool(p["spec"].get("nodeName"))
        if row["pod_phase"] == "Pending":
            assert not bound
        elif row["pod_phase"] in ("Succeeded", "Failed"):
            assert bound
        else:
            assert bound == (p["status"]["phase"] == "Running")
    assert check_placement(lst) > 5000


@pytest.mark.slow
@needs_openb
def test_openb_gpu_spec_becomes_node_affinity() -> None:
    lst = openb("openb_pod_list_gpuspec33.csv")
    rows = {r["name"]: r for r in read_csv("openb_pod_list_gpuspec33.csv")}
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"] for n in of_kind(lst, "Node")}
    with_spec = 0
    for p in of_kind(lst, "Pod"):
        spec = rows[p["metadata"]["name"]]["gpu_spec"]
        aff = p["spec"].get("affinity")
        if not spec:
            assert aff is None
            continue
        with_spec += 1
        terms = aff["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        assert terms == [
            {
                "matchExpressions": [
                    {"key": k.GPU_PRODUCT_LABEL, "operator": "In", "values": spec.split("|")}
                ]
            }
        ]
        node = p["spec"].get("nodeName")
        if node:
            assert nodes[node][k.GPU_PRODUCT_LABEL] in spec.split("|")
    assert with_spec == sum(1 for r in rows.values() if r["gpu_spec"])
    check_placement(lst)


@pytest.mark.slow
@needs_openb
def test_openb_is_seeded() -> None:
    # Same seed, same bytes: test_the_example_is_current compares with another process's run.
    a = openb()
    b = openb(seed=1)
    assert [p["spec"].get("nodeName") for p in of_kind(a, "Pod")] != [
        p["spec"].get("nodeName") for p in of_kind(b, "Pod")
    ]


@pytest.mark.slow
@needs_openb
def test_openb_lists_without_phase_are_pending() -> None:
    lst = openb("openb_pod_list_multigpu50.csv")
    pods = of_kind(lst, "Pod")
    assert len(pods) == len(read_csv("openb_pod_list_multigpu50.csv"))
    assert all(p["status"]["phase"] == "Pending" and "nodeName" not in p["spec"] for p in pods)


# --- the example cluster ------------------------------------------------------------------------


def example_items() -> Iterator[dict[str, Any]]:
    yield from json.loads(gzip.decompress(EXAMPLE.read_bytes()))["items"]


def test_the_example_loads() -> None:
    raw = EXAMPLE.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # gzip, mtime 0
    snap = kube_engine.Snapshot.from_file(EXAMPLE)
    assert (snap.num_nodes, snap.num_pods, snap.num_pdbs) == (1523, 8152, 0)
    pods = [i for i in example_items() if i["kind"] == "Pod"]
    expected = {pod_key(p): p["spec"].get("nodeName") for p in pods}
    assert dict(zip(snap.pod_names(), snap.pod_nodes(), strict=True)) == expected
    assert snap.gpu_devices_inferred() == []


@pytest.mark.slow
@needs_openb
def test_the_example_is_current() -> None:
    """The shipped file is what `examples/openb/build_example.py` writes today."""
    shipped = json.loads(gzip.decompress(EXAMPLE.read_bytes()))
    assert k.dumps(shipped) == k.dumps(openb())
