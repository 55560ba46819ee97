"""``Placement.diagnosis``: the numbers behind kube-scheduler's message for an unschedulable pod —
nodes, nodes per reason, the plugin behind each — agree with the message itself."""

from __future__ import annotations

from typing import Any

import pytest

import kube_engine as ke
from conftest import as_list, node, pod
from kube_engine.bench.synthetic import generate_cluster_json
from kube_engine.records import Diagnosis


def message_of(d: Diagnosis) -> str:
    """kube-scheduler's FitError text from a diagnosis: "count reason" parts sorted as strings."""
    text = f"0/{d['nodes']} nodes are available:"
    if d["pre_filter"]:
        text += f" {d['pre_filter']}"
    parts = sorted(f"{n} {reason}" for reason, n in d["reasons"].items())
    if parts:
        text += " " + ", ".join(parts)
    return text + "."


def test_a_small_cluster_counts_one_reason_per_node() -> None:
    taint = {"key": "gpu", "value": "true", "effect": "NoSchedule"}
    items: list[dict[str, Any]] = [
        node("small-1", cpu="1"),
        node("small-2", cpu="1"),
        node("tainted", taints=[taint]),
        node("cordoned", unschedulable=True),
        node("little-memory", memory="1Gi"),
        pod("web", requests={"cpu": "2", "memory": "2Gi"}),
        pod("fits", requests={"cpu": "100m"}, spec={"tolerations": [{"operator": "Exists"}]}),
    ]
    placement = ke.schedule(ke.Snapshot.from_bytes(as_list(*items)))
    assert list(placement.diagnosis) == ["default/web"]
    d = placement.diagnosis["default/web"]
    assert d == {
        "nodes": 5,
        "reasons": {
            "Insufficient cpu": 2,
            "Insufficient memory": 1,
            "node(s) had untolerated taint {gpu: true}": 1,
            "node(s) were unschedulable": 1,
        },
        "plugins": {
            "Insufficient cpu": "NodeResourcesFit",
            "Insufficient memory": "NodeResourcesFit",
            "node(s) had untolerated taint {gpu: true}": "TaintToleration",
            "node(s) were unschedulable": "NodeUnschedulable",
        },
        "pre_filter": None,
    }
    # Every node rejected the pod for one reason here.
    assert sum(d["reasons"].values()) == d["nodes"]
    assert message_of(d) == placement.unschedulable["default/web"]


def test_a_node_may_give_several_reasons_and_a_pre_filter_none() -> None:
    claim = {"name": "data", "persistentVolumeClaim": {"claimName": "missing"}}
    pvc = {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "metadata": {"name": "other", "namespace": "default"},
        "spec": {"storageClassName": "standard"},
    }
    items: list[dict[str, Any]] = [
        node("n1", cpu="1", memory="1Gi"),
        node("n2", cpu="8", memory="1Gi"),
        pod("big", requests={"cpu": "2", "memory": "2Gi"}),
        pod("claims", spec={"volumes": [claim]}),
        pvc,
    ]
    placement = ke.schedule(ke.Snapshot.from_bytes(as_list(*items)))
    big = placement.diagnosis["default/big"]
    assert big["reasons"] == {"Insufficient cpu": 1, "Insufficient memory": 2}
    assert message_of(big) == placement.unschedulable["default/big"]
    claims = placement.diagnosis["default/claims"]
    assert claims["reasons"] == {}
    assert claims["pre_filter"] == 'persistentvolumeclaim "missing" not found'
    assert claims["plugins"] == {claims["pre_filter"]: "VolumeBinding"}
    assert message_of(claims) == placement.unschedulable["default/claims"]


@pytest.mark.parametrize("seed", [1, 2])
def test_diagnoses_agree_with_the_messages_on_generated_clusters(seed: int) -> None:
    snapshot = ke.Snapshot.from_bytes(generate_cluster_json(40, 900, seed, pending_fraction=0.5))
    placement = ke.schedule(snapshot)
    assert placement.unschedulable, "the cluster should leave some pods out"
    assert placement.diagnosis.keys() == placement.unschedulable.keys()
    for name, d in placement.diagnosis.items():
        assert message_of(d) == placement.unschedulable[name]
        assert d["nodes"] == snapshot.num_nodes
        assert d["plugins"].keys() == d["reasons"].keys() | ({d["pre_filter"]} - {None})
        # Every node gives at least one reason, unless a PreFilter rejected the pod outright.
        if d["pre_filter"] is None:
            assert sum(d["reasons"].values()) >= d["nodes"]
