"""Properties every placement must have, on generated and random clusters.

After ``snapshot.apply(schedule(snapshot))``: no node holds more than its allocatable of any
resource, no GPU device more than 1000 milli (checked with the reference's own accounting, not the
engine's), and the placement introduces no violation of a required constraint (``evaluate()``'s
violations afterwards are a subset of those before). Scheduling is deterministic for a seed, every
pending pod is either placed or explained, and the snapshot does not change until ``apply``.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections import Counter
from collections.abc import Hashable
from typing import Any

import pytest

import kube_engine as ke
import reference_scheduler as ref
from conftest import as_list, node, pod
from kube_engine.bench.synthetic import generate_cluster_json

# Violations a node-local plugin (the engine's filters) must never introduce.
NODE_LOCAL = {"capacity", "gpu-devices", "node-affinity", "taint", "host-port"}
# Violations only InterPodAffinity / PodTopologySpread filters prevent.
INTER_POD = {"pod-affinity", "pod-anti-affinity", "topology-spread"}

GENERATED = [(12, 150, 1), (25, 400, 2), (40, 700, 3), (90, 1200, 4)]
RANDOM = range(40)
MOST_ALLOCATED = {
    "profiles": [
        {
            "percentageOfNodesToScore": 30,
            "pluginConfig": [
                {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}}
            ],
        }
    ]
}
PROFILES: list[Any] = ["default", MOST_ALLOCATED]


@functools.cache
def generated(nodes: int, pods: int, seed: int) -> tuple[bytes, list[dict[str, Any]]]:
    data = generate_cluster_json(nodes, pods, seed, pending_fraction=0.25)
    return data, json.loads(data)["items"]


def random_small(case: int) -> tuple[bytes, list[dict[str, Any]]]:
    rng = random.Random(case)
    items = ref.random_cluster(rng, rng.randint(2, 25), rng.randint(1, 50))
    return as_list(*items), items


def violation_counts(ev: ke.Evaluation, kinds: set[str]) -> Counter[Hashable]:
    """Violations by what they are about: (kind, node, pod) for a pod's, (kind, node, resource or
    device) for a node's. Host-port clashes are counted per node: which of two clashing pods is
    named is not stable (see test_evaluate_names_the_same_host_port_clash_every_time)."""
    out: Counter[Hashable] = Counter()
    for v in ev.violations:
        if v["kind"] not in kinds:
            continue
        if v["kind"] == "host-port":
            out[(v["kind"], v["node"])] += 1
        elif v["pod"] is None:
            out[(v["kind"], v["node"], v["detail"].split(" requested")[0].split(" holds")[0])] += 1
        else:
            out[(v["kind"], v["node"], v["pod"])] += 1
    return out


def pending_pods(snapshot: ke.Snapshot) -> set[str]:
    rows = zip(snapshot.pod_names(), snapshot.pod_nodes(), snapshot.pod_phases(), strict=True)
    return {k for k, n, phase in rows if n is None and phase not in ref.TERMINAL_PHASES}


def check(data: bytes, items: list[dict[str, Any]], profile: Any, seed: int) -> ke.Evaluation:
    """Schedules, checks every property, applies; returns the evaluation before scheduling."""
    snapshot = ke.Snapshot.from_bytes(data)
    nodes_before = snapshot.pod_nodes()
    before = ke.evaluate(snapshot)
    placement = ke.schedule(snapshot, profile=profile, seed=seed)

    # Nothing changes until apply.
    assert snapshot.pod_nodes() == nodes_before
    assert violation_counts(ke.evaluate(snapshot), NODE_LOCAL | INTER_POD) == violation_counts(
        before, NODE_LOCAL | INTER_POD
    )
    # The same seed, the same decisions.
    again = ke.schedule(snapshot, profile=profile, seed=seed)
    assert again.order() == placement.order()
    assert again.unschedulable == placement.unschedulable
    assert again.gpu_devices == placement.gpu_devices
    # Every pending pod is placed or explained, once.
    pending = pending_pods(snapshot)
    assert placement.assignments.keys() | placement.unschedulable.keys() == pending
    assert not placement.assignments.keys() & placement.unschedulable.keys()
    assert len(placement) == len(pending)
    assert dict(placement.order()) == placement.assignments
    n = snapshot.num_nodes
    for message in placement.unschedulable.values():
        assert re.fullmatch(rf"0/{n} nodes are available: .+\.", message), message

    # Resources and GPU devices, by the reference's accounting of the engine's decisions.
    cluster = ref.Cluster(items)
    overcommitted = set(cluster.overcommitted())
    for key, name in placement.order():
        p = cluster.pods[cluster.pod_index[key]]
        devices = placement.gpu_devices.get(key, [])
        assert len(devices) == p.request.gpu_count, key
        cluster.bind(p, cluster.index[name], devices)
    assert set(cluster.overcommitted()) <= overcommitted

    snapshot.apply(placement)
    after_nodes = dict(zip(snapshot.pod_names(), snapshot.pod_nodes(), strict=True))
    for key, name in zip(snapshot.pod_names(), nodes_before, strict=True):
        assert after_nodes[key] == placement.assignments.get(key, name)
    after = ke.evaluate(snapshot)
    assert after.pods_bound == before.pods_bound + len(placement.assignments)
    introduced = violation_counts(after, NODE_LOCAL) - violation_counts(before, NODE_LOCAL)
    assert not introduced, introduced
    # A placement is for the snapshot it was computed on.
    with pytest.raises(ke.KubeEngineError, match="another state of the snapshot"):
        snapshot.apply(placement)
    return before


@pytest.mark.parametrize("profile", PROFILES, ids=["default", "most-allocated"])
@pytest.mark.parametrize(("nodes", "pods", "seed"), GENERATED)
def test_generated_clusters(nodes: int, pods: int, seed: int, profile: Any) -> None:
    data, items = generated(nodes, pods, seed)
    check(data, items, profile, seed)


@pytest.mark.parametrize("case", RANDOM)
def test_random_small_clusters(case: int) -> None:
    data, items = random_small(case)
    check(data, items, PROFILES[case % 2], case)


def test_seeds_matter_only_for_ties() -> None:
    """Another seed may break ties differently, but never changes who is unschedulable in a
    cluster where every node is alike and every pod fits anywhere or nowhere."""
    items = [node(f"n{i}", cpu="4") for i in range(6)]
    items += [pod(f"p{i}", requests={"cpu": "1"}) for i in range(24)]
    items += [pod("huge", requests={"cpu": "5"})]
    snapshot = ke.Snapshot.from_bytes(as_list(*items))
    results = [ke.schedule(snapshot, order="input", seed=s) for s in range(8)]
    assert {tuple(r.unschedulable) for r in results} == {("default/huge",)}
    assert len({tuple(r.order()) for r in results}) > 1
    for r in results:
        assert sorted(Counter(r.assignments.values()).values()) == [4] * 6


def inter_pod_plugins() -> bool:
    config = {"profiles": [{"plugins": {"filter": {"enabled": [{"name": "InterPodAffinity"}]}}}]}
    try:
        ke.schedule(ke.Snapshot.from_bytes(as_list()), profile=config)
    except ke.ConfigError:
        return False
    return True


@pytest.mark.parametrize(("nodes", "pods", "seed"), GENERATED)
def test_generated_clusters_keep_inter_pod_constraints(nodes: int, pods: int, seed: int) -> None:
    """Generated workloads use required anti-affinity and DoNotSchedule zone spread; a placement
    must not break them either (kube-scheduler's InterPodAffinity and PodTopologySpread)."""
    data, _ = generated(nodes, pods, seed)
    snapshot = ke.Snapshot.from_bytes(data)
    before = violation_counts(ke.evaluate(snapshot), INTER_POD)
    snapshot.apply(ke.schedule(snapshot, seed=seed))
    introduced = violation_counts(ke.evaluate(snapshot), INTER_POD) - before
    if introduced and not inter_pod_plugins():
        kinds = Counter(k[0] for k in introduced.elements())
        pytest.xfail(f"no InterPodAffinity/PodTopologySpread in the engine yet: {dict(kinds)}")
    assert not introduced, introduced


def test_evaluate_names_the_same_host_port_clash_every_time() -> None:
    ports = {"containers": [{"name": "m", "image": "x", "ports": [{"hostPort": 8080}]}]}
    items = [node("n0")] + [pod(f"p{i}", "n0", namespace=f"ns{i}", spec=ports) for i in range(4)]
    snapshot = ke.Snapshot.from_bytes(as_list(*items))
    named = {tuple(v["pod"] for v in ke.evaluate(snapshot).violations) for _ in range(50)}
    assert len(named) == 1, named
