"""Profiles' plugin args through the public API (the plugins' own tables are Rust tests)."""

from __future__ import annotations

from typing import Any

from conftest import as_list, node, pod
from kube_engine import Snapshot, schedule


def profile(**node_affinity_args: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "profiles": [
            {
                "schedulerName": "default-scheduler",
                "pluginConfig": [{"name": "NodeAffinity", "args": node_affinity_args}],
            }
        ],
    }


def test_added_affinity_applies_to_every_pod_of_the_profile() -> None:
    zone_b = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}
            ]
        }
    }
    s = Snapshot.from_bytes(
        as_list(
            node("a1", labels={"zone": "a"}),
            node("a2", labels={"zone": "a"}),
            node("b1", labels={"zone": "b"}),
            *(pod(f"p{i}", requests={"cpu": "1"}, phase="Pending") for i in range(3)),
        )
    )
    placed = schedule(s, profile=profile(addedAffinity=zone_b))
    assert set(placed.assignments.values()) == {"b1"}
    assert len(set(schedule(s).assignments.values())) > 1  # without it they spread
    full = Snapshot.from_bytes(
        as_list(
            node("a1", labels={"zone": "a"}),
            node("b1", cpu="1", labels={"zone": "b"}),
            pod("big", requests={"cpu": "2"}, phase="Pending"),
        )
    )
    placement = schedule(full, profile=profile(addedAffinity=zone_b))
    assert placement.unschedulable == {
        "default/big": "0/2 nodes are available: 1 Insufficient cpu, "
        "1 node(s) didn't match scheduler-enforced node affinity."
    }
    assert placement.diagnosis["default/big"]["plugins"] == {
        "Insufficient cpu": "NodeResourcesFit",
        "node(s) didn't match scheduler-enforced node affinity": "NodeAffinity",
    }
