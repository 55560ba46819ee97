"""Objects for tests of the Kubernetes API emulator: minimal nodes, pods and PDBs as the API
stores them (no kind/apiVersion), and kubeconfig files pointing at emulators.

Re-exported by ``k8s_emulator``; tests import from there.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from k8s_emulator_protocol import JSON

__all__ = ["node", "owner_reference", "pdb", "pod", "write_kubeconfig"]


# --------------------------------------------------------------------------------------------------
# Test objects


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    labels: Mapping[str, str] | None = None,
    extra_allocatable: Mapping[str, str] | None = None,
    unschedulable: bool = False,
    taints: Sequence[Mapping[str, str]] | None = None,
) -> JSON:
    """A minimal Node as the API returns it (no kind/apiVersion)."""
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra_allocatable or {})}
    spec: JSON = {"unschedulable": True} if unschedulable else {}
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    obj: JSON = {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
        },
        "spec": spec,
        "status": {"capacity": dict(allocatable), "allocatable": allocatable},
    }
    return obj


def pod(
    namespace: str,
    name: str,
    *,
    node_name: str | None = None,
    cpu: str = "100m",
    memory: str = "128Mi",
    labels: Mapping[str, str] | None = None,
    phase: str | None = None,
    ready: bool | None = None,
    owner: tuple[str, str] | None = None,
    scheduler_name: str = "default-scheduler",
    annotations: Mapping[str, str] | None = None,
) -> JSON:
    """A minimal single-container Pod (no kind/apiVersion). Phase defaults to Running when bound;
    a Running pod is Ready unless ``ready=False``. ``owner`` is its controller, ``(kind, name)``
    (e.g. ``("ReplicaSet", "web-7d9f")``), with a uid derived from the two."""
    spec: JSON = {
        "containers": [
            {
                "name": "app",
                "image": "registry.example/app:1",
                "resources": {"requests": {"cpu": cpu, "memory": memory}},
            }
        ],
        "schedulerName": scheduler_name,
    }
    if node_name is not None:
        spec["nodeName"] = node_name
    metadata: JSON = {
        "namespace": namespace,
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{namespace}/{name}")),
        "labels": dict(labels or {}),
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    if owner is not None:
        kind, owner_name = owner
        metadata["ownerReferences"] = [owner_reference(namespace, kind, owner_name)]
    status: JSON = {"phase": phase or ("Running" if node_name else "Pending")}
    if status["phase"] == "Running" or ready is not None:
        is_ready = "True" if (status["phase"] == "Running" if ready is None else ready) else "False"
        status["conditions"] = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": is_ready},
            {"type": "Ready", "status": is_ready},
        ]
    return {"metadata": metadata, "spec": spec, "status": status}


def owner_reference(namespace: str, kind: str, name: str) -> JSON:
    """A controller owner reference to an apps/v1 ``kind`` named ``name`` (uid derived)."""
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{namespace}/{name}")),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pdb(
    namespace: str,
    name: str,
    *,
    match_labels: Mapping[str, str],
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
    disruptions_allowed: int | None = None,
    current_healthy: int | None = None,
    desired_healthy: int | None = None,
    expected_pods: int | None = None,
) -> JSON:
    """A PodDisruptionBudget (policy/v1, no kind/apiVersion).

    Without ``disruptions_allowed`` it has no status, as before the disruption controller saw it
    (the eviction subresource then answers 429 with ``Retry-After: 10``); with it, a status as
    the controller would have published it for generation 1 (healthy counts default to
    consistent values).
    """
    spec: JSON = {"selector": {"matchLabels": dict(match_labels)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    obj: JSON = {"metadata": {"namespace": namespace, "name": name, "generation": 1}, "spec": spec}
    if disruptions_allowed is not None:
        desired = desired_healthy if desired_healthy is not None else 1
        healthy = current_healthy if current_healthy is not None else desired + disruptions_allowed
        obj["status"] = {
            "observedGeneration": 1,
            "disruptionsAllowed": disruptions_allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected_pods if expected_pods is not None else healthy,
        }
    return obj


# --------------------------------------------------------------------------------------------------
# Kubeconfig


def write_kubeconfig(
    path: str | os.PathLike[str],
    servers: Mapping[str, str],
    *,
    current_context: str | None = None,
    token: str | None = None,
    namespace: str = "default",
) -> Path:
    """Write a kubeconfig with one context (cluster + user of the same name) per ``servers`` entry.

    Plain http, no credentials unless ``token`` is given (then a bearer token for every user).
    JSON is valid YAML, so the file is written as JSON.
    """
    if not servers:
        raise ValueError("at least one context is needed")
    user: JSON = {"token": token} if token else {}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": ctx, "cluster": {"server": url}} for ctx, url in servers.items()],
        "users": [{"name": ctx, "user": dict(user)} for ctx in servers],
        "contexts": [
            {"name": ctx, "context": {"cluster": ctx, "user": ctx, "namespace": namespace}}
            for ctx in servers
        ],
        "current-context": current_context or next(iter(servers)),
    }
    out = Path(path)
    out.write_text(json.dumps(doc, indent=2))
    return out
