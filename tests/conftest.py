"""Shared helpers: small Kubernetes objects as JSON-ready dicts, and where the data is."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "openb" / "openb-example.json.gz"
"""The example cluster `make demo` rebalances (openb trace; research and study use only)."""

# The lab finds its data by environment variable; in a checkout it sits beside the repository.
for _var, _folder in (
    ("KUBE_ENGINE_OPENB_DIR", "openb"),
    ("KUBE_ENGINE_VBP_DIR", "vbp"),
    ("KUBE_ENGINE_FGD_EXPECTED_DIR", "fgd_expected"),
):
    if (REPO.parent / "shared" / "data" / _folder).is_dir():
        os.environ.setdefault(_var, str(REPO.parent / "shared" / "data" / _folder))


def node(
    name: str,
    cpu: str = "4",
    memory: str = "16Gi",
    *,
    gpus: int = 0,
    model: str | None = None,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    all_labels = {"kubernetes.io/hostname": name, **(labels or {})}
    if model:
        all_labels["nvidia.com/gpu.product"] = model
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": all_labels},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod(
    name: str,
    node_name: str | None = None,
    *,
    namespace: str = "default",
    requests: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "containers": [
            {"name": "main", "image": "nginx", "resources": {"requests": requests or {}}}
        ]
    }
    if node_name:
        body["nodeName"] = node_name
    body.update(spec or {})
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "labels": labels or {},
            "annotations": annotations or {},
        },
        "spec": body,
        "status": {"phase": phase if node_name or phase != "Running" else "Pending"},
    }


def owned(p: dict[str, Any], owner: str = "web-1") -> dict[str, Any]:
    """``p`` as a pod of ReplicaSet ``owner`` (its controller)."""
    p["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": owner,
            "uid": owner,
            "controller": True,
        }
    ]
    return p


def as_list(*items: dict[str, Any]) -> bytes:
    return json.dumps({"kind": "List", "apiVersion": "v1", "items": list(items)}).encode()


@pytest.fixture
def no_real_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No proxies, no in-cluster detection, no user kubeconfig: a test that talks to a cluster
    talks to the one it set up, never to the developer's. Modules that talk to clusters use it
    for every test: ``pytestmark = pytest.mark.usefixtures("no_real_cluster")``."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
