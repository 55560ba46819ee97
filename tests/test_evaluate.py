"""Placement quality: hand-computed expectations on small clusters."""

from __future__ import annotations

from typing import Any

import pytest

import kube_engine
from conftest import as_list, node, pod
from kube_engine import Snapshot, evaluate


def load(*items: dict[str, Any]) -> Snapshot:
    return Snapshot.from_bytes(as_list(*items))


def zoned(name: str, zone: str, **kw: Any) -> dict[str, Any]:
    return node(name, labels={"topology.kubernetes.io/zone": zone}, **kw)


def test_utilisation_balance_and_nodes_used() -> None:
    ds_owner = {
        "ownerReferences": [{"kind": "DaemonSet", "name": "agent", "uid": "d", "controller": True}]
    }
    agent = pod("agent", "n2", requests={"cpu": "100m"})
    agent["metadata"].update(ds_owner)
    s = load(
        node("n1", cpu="4"),
        node("n2", cpu="4"),
        pod("a", "n1", requests={"cpu": "3"}),
        agent,
        pod("pending", requests={"cpu": "1"}),
    )
    ev = evaluate(s)
    cpu = ev.resources["cpu"]
    assert (cpu["requested"], cpu["pending"], cpu["allocatable"]) == (3100, 1000, 8000)
    assert cpu["utilisation"] == pytest.approx(3100 / 8000)
    assert cpu["node_mean"] == pytest.approx((0.75 + 0.025) / 2)
    assert cpu["node_std"] == pytest.approx((0.75 - 0.025) / 2)
    assert cpu["node_max"] == pytest.approx(0.75)
    # A node running only a DaemonSet pod is not "used": removing it frees the agent too.
    assert ev.nodes_used == 1
    assert (ev.pods_active, ev.pods_bound, ev.pods_pending) == (3, 2, 1)
    assert ev.node_utilisation("cpu") == [pytest.approx(0.75), pytest.approx(0.025)]


def test_capacity_and_taint_violations() -> None:
    s = load(
        node("n1", cpu="2", taints=[{"key": "gpu", "value": "true", "effect": "NoExecute"}]),
        node("n2", cpu="2", taints=[{"key": "soft", "value": "x", "effect": "PreferNoSchedule"}]),
        pod("big", "n1", requests={"cpu": "3"}),
        pod(
            "tolerant",
            "n1",
            requests={"cpu": "100m"},
            spec={"tolerations": [{"key": "gpu", "operator": "Exists"}]},
        ),
        pod("soft", "n2", requests={"cpu": "1"}),
    )
    ev = evaluate(s)
    assert ev.violation_counts() == {"capacity": 1, "taint": 1}
    taint = next(v for v in ev.violations if v["kind"] == "taint")
    assert (taint["pod"], taint["node"]) == ("default/big", "n1")
    cap = next(v for v in ev.violations if v["kind"] == "capacity")
    assert cap["detail"] == "cpu requested 3100 > allocatable 2000"


def anti(app: str, key: str) -> dict[str, Any]:
    return {
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": key, "labelSelector": {"matchLabels": {"app": app}}}
                ]
            }
        }
    }


def test_pod_anti_affinity_by_hostname_and_by_zone() -> None:
    host = "kubernetes.io/hostname"
    zone = "topology.kubernetes.io/zone"
    s = load(
        zoned("a1", "a"),
        zoned("a2", "a"),
        zoned("b1", "b"),
        pod("w1", "a1", labels={"app": "w"}, spec=anti("w", host)),
        pod("w2", "a2", labels={"app": "w"}, spec=anti("w", host)),
        pod("w3", "b1", labels={"app": "w"}, spec=anti("w", host)),
    )
    assert evaluate(s).violations == []
    s = load(
        zoned("a1", "a"),
        zoned("a2", "a"),
        zoned("b1", "b"),
        pod("w1", "a1", labels={"app": "w"}, spec=anti("w", zone)),
        pod("w2", "a2", labels={"app": "w"}, spec=anti("w", zone)),
        pod("w3", "b1", labels={"app": "w"}, spec=anti("w", zone)),
    )
    bad = sorted(v["pod"] for v in evaluate(s).violations if v["kind"] == "pod-anti-affinity")
    assert bad == ["default/w1", "default/w2"]
    # Pods in another namespace are not selected (the term defaults to its own namespace).
    s = load(
        zoned("a1", "a"),
        pod("w1", "a1", labels={"app": "w"}, spec=anti("w", host)),
        pod("w2", "a1", namespace="other", labels={"app": "w"}),
    )
    assert evaluate(s).violations == []


def test_pod_affinity_lets_the_first_pod_of_a_group_in() -> None:
    spec = {
        "affinity": {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "topology.kubernetes.io/zone",
                        "labelSelector": {"matchLabels": {"app": "cache"}},
                    }
                ]
            }
        }
    }
    first = load(zoned("a1", "a"), pod("c1", "a1", labels={"app": "cache"}, spec=spec))
    assert evaluate(first).violations == []
    split = load(
        zoned("a1", "a"),
        zoned("b1", "b"),
        pod("cache", "a1", labels={"app": "cache"}),
        pod("web", "b1", labels={"app": "web"}, spec=spec),
    )
    assert [(v["kind"], v["pod"]) for v in evaluate(split).violations] == [
        ("pod-affinity", "default/web")
    ]


def spread(max_skew: int, when: str = "DoNotSchedule", **extra: Any) -> dict[str, Any]:
    return {
        "topologySpreadConstraints": [
            {
                "maxSkew": max_skew,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": when,
                "labelSelector": {"matchLabels": {"app": "s"}},
                **extra,
            }
        ]
    }


def test_topology_spread_skew() -> None:
    # The docs' example: 2 pods in zoneA, 1 in zoneB; maxSkew 1 is satisfied.
    nodes = [zoned("a1", "A"), zoned("a2", "A"), zoned("b1", "B"), zoned("b2", "B")]
    ok = load(
        *nodes,
        pod("p1", "a1", labels={"app": "s"}, spec=spread(1)),
        pod("p2", "a2", labels={"app": "s"}, spec=spread(1)),
        pod("p3", "b1", labels={"app": "s"}, spec=spread(1)),
    )
    assert evaluate(ok).violations == []
    # Three in A and none in B: skew 3 > 1 for each pod in A.
    bad = load(
        *nodes,
        *[pod(f"p{i}", "a1", labels={"app": "s"}, spec=spread(1)) for i in range(3)],
    )
    counts = evaluate(bad).violation_counts()
    assert counts == {"topology-spread": 3}
    # ScheduleAnyway is a preference, never a violation.
    soft = load(
        *nodes,
        *[
            pod(f"p{i}", "a1", labels={"app": "s"}, spec=spread(1, "ScheduleAnyway"))
            for i in range(3)
        ],
    )
    assert evaluate(soft).violations == []
    # minDomains 3 with only two zones: the global minimum counts as 0.
    md = load(
        *nodes,
        pod("p1", "a1", labels={"app": "s"}, spec=spread(1, minDomains=3)),
        pod("p2", "a2", labels={"app": "s"}, spec=spread(1, minDomains=3)),
        pod("p3", "b1", labels={"app": "s"}, spec=spread(1, minDomains=3)),
    )
    assert evaluate(md).violation_counts() == {"topology-spread": 2}


def test_host_port_conflicts() -> None:
    ports = {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}
    udp = {
        "containers": [
            {"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}
        ]
    }
    s = load(
        node("n1"), pod("a", "n1", spec=ports), pod("b", "n1", spec=ports), pod("c", "n1", spec=udp)
    )
    assert evaluate(s).violation_counts() == {"host-port": 1}


def test_gpu_fragmentation_hand_computed() -> None:
    # One node, 2 GPUs. Pod a holds 300 milli of device 0. The workload (all active pods): a
    # (share 300), b (CPU only), c (one whole GPU, pending), each 1/3.
    # Free devices: [700, 1000]. Fragments: a -> 0 (both devices fit 300); b -> all idle 1700;
    # c -> device 0's 700 (< 1000). Expected (0 + 1700 + 700) / 3 = 800 milli.
    s = load(
        node("g", gpus=2, model="T4"),
        node("cpu"),
        pod("a", "g", requests={"cpu": "1", "kube-engine.io/gpu-milli": "300"}),
        pod("b", "cpu", requests={"cpu": "1"}),
        pod("c", requests={"cpu": "1", "nvidia.com/gpu": "1"}),
    )
    gpu = evaluate(s).gpu
    assert gpu["fragmentation_milli"] == pytest.approx(800)
    assert gpu["fragmentation_ratio"] == pytest.approx(800 / 1700)
    assert gpu["fragmentation_pct"] == pytest.approx(100 * 0.8 / 2)
    assert (gpu["devices"], gpu["allocated_milli"], gpu["pending_milli"]) == (2, 300, 1000)
    assert gpu["whole_free"] == 1


def test_gpu_model_constraints_count_as_no_access() -> None:
    only_v100 = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "nvidia.com/gpu.product",
                                    "operator": "In",
                                    "values": ["V100"],
                                }
                            ]
                        }
                    ]
                }
            }
        }
    }
    s = load(
        node("t4", gpus=1, model="T4"),
        pod("v", requests={"kube-engine.io/gpu-milli": "100"}, spec=only_v100),
    )
    # The only workload shape cannot use the T4 at all: its whole idle GPU is a fragment.
    assert evaluate(s).gpu["fragmentation_milli"] == pytest.approx(1000)


def test_lower_bounds_l1_and_martello_toth() -> None:
    # Six pods of 60% of a node: L1 = ceil(3.6) = 4, but no two fit together -> 6.
    s = load(
        *[node(f"n{i}", cpu="10") for i in range(8)],
        *[pod(f"p{i}", requests={"cpu": "6"}) for i in range(6)],
    )
    assert evaluate(s).lower_bounds == {"l1": 4, "strong": 6, "infeasible": False}
    # Heterogeneous nodes: L1 takes the largest first (16 + 8 >= 20 -> 2 nodes).
    s = load(
        node("big", cpu="16"),
        node("mid", cpu="8"),
        node("small", cpu="2"),
        *[pod(f"p{i}", requests={"cpu": "5"}) for i in range(4)],
    )
    assert evaluate(s).lower_bounds["l1"] == 2
    # GPU devices: five 600-milli shares cannot pair on a device -> 5 devices -> two 4-GPU nodes.
    s = load(
        *[node(f"g{i}", gpus=4) for i in range(3)],
        *[pod(f"s{i}", requests={"kube-engine.io/gpu-milli": "600"}) for i in range(5)],
    )
    assert evaluate(s).lower_bounds == {"l1": 1, "strong": 2, "infeasible": False}
    # More than the cluster has.
    s = load(node("n", cpu="1"), pod("p", requests={"cpu": "2"}))
    assert evaluate(s).lower_bounds["infeasible"] is True


def test_evaluating_another_placement() -> None:
    s = load(
        node("n1", cpu="4"),
        node("n2", cpu="4"),
        pod("a", "n1", requests={"cpu": "2"}),
        pod("b", "n2", requests={"cpu": "2"}),
        pod("c", requests={"cpu": "1"}),
    )
    assert evaluate(s).nodes_used == 2
    moved = evaluate(s, {"default/b": "n1", "default/c": "n2"})
    assert (moved.nodes_used, moved.pods_pending) == (2, 0)
    packed = evaluate(s, {"default/b": "n1", "default/c": None})
    assert packed.nodes_used == 1
    assert packed.node_utilisation("cpu") == [pytest.approx(1.0), pytest.approx(0.0)]
    # The snapshot itself is unchanged.
    assert s.pod_nodes() == ["n1", "n2", None]
    with pytest.raises(KeyError, match="unknown pod"):
        evaluate(s, {"default/zzz": "n1"})
    with pytest.raises(KeyError, match="unknown node"):
        evaluate(s, {"default/a": "n9"})


def test_moved_gpu_pods_get_devices_on_their_new_node() -> None:
    s = load(
        node("g1", gpus=1),
        node("g2", gpus=2),
        pod("a", "g1", requests={"kube-engine.io/gpu-milli": "600"}),
        pod("b", "g2", requests={"kube-engine.io/gpu-milli": "600"}),
    )
    ev = evaluate(s, {"default/a": "g2"})
    assert ev.gpu["allocated_milli"] == 1200
    assert ev.violations == []
    assert ev.node_utilisation("nvidia.com/gpu") == [pytest.approx(0.0), pytest.approx(0.6)]
    assert isinstance(ev, kube_engine.Evaluation)


def test_gpu_over_commit_is_a_violation_not_a_load_error() -> None:
    # Two 600-milli shares bound to a 1-GPU node without device annotations: the second has nowhere
    # to fit, gets the device anyway, and the over-commit is reported.
    s = load(
        node("g", gpus=1),
        pod("a", "g", requests={"kube-engine.io/gpu-milli": "600"}),
        pod("b", "g", requests={"kube-engine.io/gpu-milli": "600"}),
    )
    assert s.pod_request("default/b")["gpu_devices"] == [0]
    assert [(v["kind"], v["detail"]) for v in evaluate(s).violations] == [
        ("gpu-devices", "GPU device 0 holds 1200 milli > 1000")
    ]
    # A placement that moves a GPU pod to a node without GPUs is reported the same way.
    s = load(
        node("g", gpus=1),
        node("cpu"),
        pod("a", "g", requests={"kube-engine.io/gpu-milli": "600"}),
    )
    assert evaluate(s, {"default/a": "cpu"}).violation_counts() == {"gpu-devices": 1}


def test_pods_being_deleted_do_not_count_for_topology_spread() -> None:
    spread = {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "x"}},
            }
        ]
    }

    def cluster(deleting: bool) -> Snapshot:
        pods = []
        for i in range(3):
            p = pod(f"p{i}", "a", labels={"app": "x"}, spec=spread)
            if deleting and i < 2:
                p["metadata"]["deletionTimestamp"] = "2025-06-01T12:00:00Z"
            pods.append(p)
        nodes = [node("a", labels={"zone": "A"}), node("b", labels={"zone": "B"})]
        return Snapshot.from_bytes(as_list(*nodes, *pods))

    # Three pods in zone A, none in B: skew 3 for each of them.
    assert evaluate(cluster(False)).violation_counts() == {"topology-spread": 3}
    # Two of them terminating: only one is counted, a skew of 1.
    assert evaluate(cluster(True)).violation_counts() == {}
