"""Snapshot ingestion through the Python API: shapes, semantics, and errors with paths."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

import kube_engine
from conftest import as_list, node, pod
from kube_engine import Snapshot, SnapshotError


def load(*items: dict[str, Any]) -> Snapshot:
    return Snapshot.from_bytes(as_list(*items))


def error_of(*items: dict[str, Any]) -> SnapshotError:
    with pytest.raises(SnapshotError) as info:
        load(*items)
    return info.value


def test_pod_on_a_node_the_input_lacks_is_left_out_unless_strict() -> None:
    data = as_list(node("n1"), pod("a", "ghost"), pod("b", "n1"), pod("c"))
    snapshot = Snapshot.from_bytes(data)
    assert snapshot.pod_names() == ["default/b", "default/c"]
    assert snapshot.pod_nodes() == ["n1", None]
    assert snapshot.left_out == [("default/a", "ghost")]
    with pytest.raises(SnapshotError) as info:
        Snapshot.from_bytes(data, strict=True)
    assert info.value.path == "items[1].spec.nodeName"
    assert 'pod "default/a" is bound to unknown node "ghost"' in info.value.message


def test_list_file_plain_and_gzip(tmp_path: Path) -> None:
    data = as_list(node("n1"), pod("a", "n1", requests={"cpu": "1"}), pod("b"))
    plain = tmp_path / "c.json"
    plain.write_bytes(data)
    packed = tmp_path / "c.json.gz"
    packed.write_bytes(gzip.compress(data))
    for path in (plain, packed, str(plain)):
        s = Snapshot.from_file(path)
        assert (s.num_nodes, s.num_pods, s.num_pdbs) == (1, 2, 0)
        assert s.pod_names() == ["default/a", "default/b"]
        assert s.pod_nodes() == ["n1", None]
        assert s.pod_phases() == ["Running", "Pending"]


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Snapshot.from_file(tmp_path / "nope.json")


def test_separate_typed_lists() -> None:
    nodes = {"kind": "NodeList", "apiVersion": "v1", "items": [node("n1")]}
    pods = {"kind": "PodList", "apiVersion": "v1", "items": [pod("a", "n1")]}
    pdbs = {
        "kind": "PodDisruptionBudgetList",
        "apiVersion": "policy/v1",
        "items": [
            {
                "metadata": {"name": "a", "namespace": "default"},
                "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "a"}}},
                "status": {"disruptionsAllowed": 0},
            }
        ],
    }
    for item in nodes["items"] + pods["items"]:
        del item["kind"], item["apiVersion"]  # API list responses omit them
    s = Snapshot.from_documents([json.dumps(d).encode() for d in (nodes, pods, pdbs)])
    assert (s.num_nodes, s.num_pods, s.num_pdbs) == (1, 1, 1)
    assert s.pod_nodes() == ["n1"]


def test_effective_request_with_init_containers_sidecars_and_overhead() -> None:
    spec = {
        "initContainers": [
            {"name": "setup", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
            {
                "name": "proxy",
                "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}},
            },
            {"name": "migrate", "resources": {"requests": {"cpu": "1", "memory": "64Mi"}}},
        ],
        "containers": [
            {"name": "app", "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "512Mi"}}}
        ],
        "overhead": {"cpu": "100m", "memory": "32Mi"},
    }
    s = load(node("n1"), pod("p", "n1", spec=spec))
    req = s.pod_request("default/p")
    # cpu: apps 1 + sidecar 0.5 = 1.5; init steps: setup 2, migrate 1 + sidecar 0.5 = 1.5
    # -> max 2, + overhead 0.1.
    assert req["resources"]["cpu"] == 2100
    # memory: app limit defaults its request (512Mi) + sidecar 128Mi = 640Mi; setup 1Gi -> 1Gi,
    # + overhead 32Mi.
    assert req["resources"]["memory"] == (1024 + 32) * 2**20
    assert req["resources"]["pods"] == 1


def test_terminal_pods_hold_nothing() -> None:
    s = load(
        node("n1", cpu="1"),
        pod("done", "n1", requests={"cpu": "1"}, phase="Succeeded"),
        pod("run", "n1", requests={"cpu": "1"}),
    )
    ev = kube_engine.evaluate(s)
    assert ev.resources["cpu"]["requested"] == 1000
    assert ev.pods_active == 1
    assert ev.violations == []


def test_gpu_encoding_whole_and_shared() -> None:
    s = load(
        node("g", gpus=4, model="A100"),
        pod("share", "g", requests={"kube-engine.io/gpu-milli": "250"}),
        pod(
            "whole",
            "g",
            requests={"nvidia.com/gpu": "2"},
            annotations={"kube-engine.io/gpu-devices": "2,3"},
        ),
    )
    assert s.node_allocatable("g") == {
        "resources": {"cpu": 4000, "memory": 16 * 2**30, "pods": 110},
        "gpu_devices": 4,
        "gpu_model": "A100",
    }
    assert s.pod_request("default/share")["gpu_milli"] == 250
    assert s.pod_request("default/share")["gpu_devices"] == [0]
    assert s.pod_request("default/whole") == {
        "resources": {"pods": 1},
        "gpu_count": 2,
        "gpu_milli": 1000,
        "gpu_devices": [2, 3],
    }
    assert s.gpu_devices_inferred() == ["default/share"]
    gpu = kube_engine.evaluate(s).gpu
    assert gpu["allocated_milli"] == 2250
    assert gpu["whole_free"] == 1


def test_selectors_affinity_spread_and_tolerations_parse() -> None:
    spec = {
        "nodeSelector": {"disk": "ssd"},
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]}
                    ]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 10,
                        "preference": {
                            "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]
                        },
                    }
                ],
            },
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {
                            "matchExpressions": [{"key": "app", "operator": "In", "values": ["w"]}]
                        },
                    }
                ]
            },
        },
        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "w"}},
                "minDomains": 2,
            }
        ],
    }
    good = node("n1", labels={"disk": "ssd", "cores": "16", "zone": "a"})
    s = load(good, pod("w", "n1", labels={"app": "w"}, spec=spec))
    assert kube_engine.evaluate(s).violation_counts() == {}
    # The same pod on a node without the selected labels violates its node affinity.
    s = load(node("n1"), pod("w", "n1", labels={"app": "w"}, spec=spec))
    assert kube_engine.evaluate(s).violation_counts() == {"node-affinity": 1}


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (
            lambda p: p["spec"]["containers"][0]["resources"]["requests"].update(cpu="12x"),
            "items[1].spec.containers[0].resources.requests.cpu",
            'invalid quantity "12x"',
        ),
        (
            lambda p: p["spec"].update(tolerations=[{"key": "k", "operator": "Sometimes"}]),
            "items[1].spec.tolerations[0].operator",
            "unknown variant `Sometimes`",
        ),
        (
            lambda p: p["spec"].update(
                affinity={
                    "podAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [
                            {"labelSelector": {"matchLabels": {"a": "b"}}}
                        ]
                    }
                }
            ),
            "items[1].spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]",
            "topologyKey must not be empty",
        ),
        (
            lambda p: p["spec"].update(
                topologySpreadConstraints=[
                    {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
                ]
            ),
            "items[1].spec.topologySpreadConstraints[0]",
            "maxSkew must be at least 1, got 0",
        ),
        (
            lambda p: p["spec"].update(priority="high"),
            "items[1].spec.priority",
            'invalid type: string "high", expected i32',
        ),
        (
            lambda p: p["metadata"].update(labels=["app"]),
            "items[1].metadata.labels",
            "invalid type: sequence, expected an object",
        ),
        (
            lambda p: p["spec"]["containers"][0]["resources"]["requests"].update(
                {"nvidia.com/gpu": "1", "kube-engine.io/gpu-milli": "100"}
            ),
            "items[1].spec",
            "requests both nvidia.com/gpu (1) and kube-engine.io/gpu-milli (100)",
        ),
    ],
)
def test_bad_input_names_path_and_value(mutate: Any, path: str, message: str) -> None:
    p = pod("p", "n1", requests={"cpu": "1"})
    mutate(p)
    err = error_of(node("n1"), p)
    assert err.path == path
    assert message in err.message
    assert str(err).startswith(f"{path}: ")
    assert isinstance(err, kube_engine.KubeEngineError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"kind": "List", "items": [', "malformed JSON"),
        (b"\x00\x01", "malformed JSON"),
        (b'{"kind": "ConfigMap"}', 'unsupported document kind "ConfigMap"'),
        (b"\x1f\x8bnot gzip", "invalid gzip data"),
    ],
)
def test_bad_documents(data: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        Snapshot.from_bytes(data)


def test_duplicates_are_rejected() -> None:
    err = error_of(node("n1"), node("n1"))
    assert (err.path, err.message) == (
        "items[1].metadata.name",
        'duplicate node "n1" (first at items[0])',
    )
    err = error_of(node("n1"), pod("a"), pod("a", namespace="other"), pod("a"))
    assert err.path == "items[3].metadata.name"
