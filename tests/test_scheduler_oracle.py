"""The engine's scheduler against an independent reference (tests/reference_scheduler.py).

Random small clusters — taints with and without tolerations, cordons, node selectors, required and
preferred node affinity, GPU devices (whole and shared), pods without requests, init containers,
host ports, extended resources — scheduled by both with random profiles (the three scoring
strategies with resource weights, plugin weights, percentageOfNodesToScore, two profiles), and
every decision compared: the node of every pod in placement order, its GPU devices, and for
unschedulable pods kube-scheduler's FitError message.

The tests at the end of this file pin down details where the engine once departed from
kube-scheduler (RequestedToCapacityRatio leaving zero scores out, a profile without score plugins,
the rotating start shared by profiles, init-container host ports).
"""

from __future__ import annotations

import functools
import json
import random
from typing import Any

import pytest

import kube_engine as ke
import reference_scheduler as ref
from conftest import as_list, node, pod

SEEDS = range(200)

ZERO_SHAPES = [s for s in ref.SHAPES if min(score for _, score in s) == 0]


def random_config(
    rng: random.Random, nodes: int, shapes: list[list[tuple[int, int]]] = ref.SHAPES
) -> dict[str, Any] | None:
    """None (the default profile) or a KubeSchedulerConfiguration: a scoring strategy with
    resource weights, plugin weights, BalancedAllocation alone, or two profiles; with
    percentageOfNodesToScore (profile or global) on clusters big enough for it to matter."""
    kinds = ["default", "default", "least", "most", "ratio", "weights", "balanced", "two-profiles"]
    kind = rng.choice(kinds)
    big = nodes >= ref.MIN_FEASIBLE_NODES
    percentage = rng.choice((None, 0, 5, 10, 30, 50, 70, 100)) if big else None
    if kind == "default" and percentage is None:
        return None
    profile: dict[str, Any] = {"schedulerName": "default-scheduler"}
    resources = [
        {"name": "cpu", "weight": rng.randint(1, 5)},
        {"name": "memory", "weight": rng.randint(1, 5)},
    ]
    if rng.random() < 0.2:
        resources.append({"name": "example.com/foo", "weight": rng.randint(1, 3)})
    fit_args: dict[str, Any] | None = None
    if kind in ("least", "most", "two-profiles"):
        strategy = "LeastAllocated" if kind == "least" else "MostAllocated"
        fit_args = {"scoringStrategy": {"type": strategy, "resources": resources}}
    elif kind == "ratio":
        shape = [{"utilization": u, "score": s} for u, s in rng.choice(shapes)]
        fit_args = {
            "scoringStrategy": {
                "type": "RequestedToCapacityRatio",
                "resources": resources,
                "requestedToCapacityRatio": {"shape": shape},
            }
        }
    elif kind == "weights":
        enabled = [
            {"name": name, "weight": rng.randint(1, 10)}
            for name, _ in ref.DEFAULT_SCORES
            if rng.random() < 0.8
        ] or [{"name": "NodeResourcesFit", "weight": 1}]
        profile["plugins"] = {"score": {"disabled": [{"name": "*"}], "enabled": enabled}}
    elif kind == "balanced":
        profile["plugins"] = {
            "score": {"disabled": [{"name": "NodeResourcesFit"}, {"name": "TaintToleration"}]}
        }
        if rng.random() < 0.5:
            profile["pluginConfig"] = [
                {"name": "NodeResourcesBalancedAllocation", "args": {"resources": resources}}
            ]
    profiles = [profile]
    if kind == "two-profiles":
        fit = {"name": "NodeResourcesFit", "args": fit_args}
        profiles.append({"schedulerName": "packer", "pluginConfig": [fit]})
    elif fit_args is not None:
        profile["pluginConfig"] = [{"name": "NodeResourcesFit", "args": fit_args}]
    config: dict[str, Any] = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "profiles": profiles,
    }
    if percentage is not None:
        if rng.random() < 0.3:
            config["percentageOfNodesToScore"] = percentage  # the configuration-wide default
        else:
            profile["percentageOfNodesToScore"] = percentage
    return config


def scenario(seed: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str, int]:
    """Objects, configuration, order and generator seed of random case ``seed``."""
    rng = random.Random(seed)
    big = rng.random() < 0.15  # big enough for percentageOfNodesToScore and the rotating start
    nodes = rng.randint(100, 220) if big else rng.randint(3, 40)
    pending = rng.randint(1, 25) if big else rng.randint(1, 60)
    items = ref.random_cluster(rng, nodes, pending)
    config = random_config(rng, nodes)
    if config is not None and len(config["profiles"]) > 1:
        for o in items:
            if "nodeName" not in o["spec"] and rng.random() < 0.5:
                o["spec"]["schedulerName"] = "packer"
    return items, config, rng.choice(("queue", "input")), rng.randrange(2**32)


@functools.cache
def reference(case: int) -> ref.Result:
    items, config, order, seed = scenario(case)
    return ref.schedule(items, config=config, order=order, seed=seed)


def compare(
    items: list[dict[str, Any]],
    config: dict[str, Any] | None,
    order: str,
    seed: int,
    want: ref.Result | None = None,
) -> None:
    snapshot = ke.Snapshot.from_bytes(json.dumps({"kind": "List", "items": items}).encode())
    got = ke.schedule(snapshot, profile=config or "default", order=order, seed=seed)
    if want is None:
        want = ref.schedule(items, config=config, order=order, seed=seed)
    context = f"config={json.dumps(config)} order={order} seed={seed}"
    for i, (g, w) in enumerate(zip(got.order(), want.order, strict=False)):
        assert g == w, f"decision {i}: engine {g}, reference {w}; {context}"
    assert len(got.order()) == len(want.order), context
    for key, message in want.unschedulable.items():
        assert got.unschedulable.get(key) == message, f"{key}; {context}"
    assert got.unschedulable.keys() == want.unschedulable.keys(), context
    assert got.gpu_devices == want.gpu_devices, context


@pytest.mark.parametrize("case", SEEDS)
def test_engine_agrees_with_reference(case: int) -> None:
    compare(*scenario(case), want=reference(case))


def test_random_cases_cover_what_they_claim() -> None:
    """The random cases do reach the interesting corners (guards the generator)."""
    seen: dict[str, int] = {}

    def count(what: str, hit: bool = True) -> None:
        seen[what] = seen.get(what, 0) + int(hit)

    for case in SEEDS:
        items, config, _, _ = scenario(case)
        want = reference(case)
        nodes = sum(o["kind"] == "Node" for o in items)
        count("big", nodes >= ref.MIN_FEASIBLE_NODES)
        count("percentage", "percentageOfNodesToScore" in json.dumps(config))
        count("two profiles", config is not None and len(config["profiles"]) > 1)
        count("unschedulable", bool(want.unschedulable))
        count("gpu share", bool(want.gpu_devices) and "gpu-milli" in json.dumps(items))
        for kind in ("MostAllocated", "RequestedToCapacityRatio", "LeastAllocated"):
            count(kind, kind in json.dumps(config))
        reasons = " ".join(want.unschedulable.values())
        for reason in (
            "untolerated taint",
            "were unschedulable",
            "affinity/selector",
            "free ports",
        ):
            count(reason, reason in reasons)
        count("Insufficient nvidia.com/gpu", "Insufficient nvidia.com/gpu" in reasons)
    assert all(v >= 5 for v in seen.values()), seen


def test_ties_break_like_the_reference() -> None:
    """Identical nodes and pods: nearly every decision is a tie broken by the seeded generator."""
    nodes = [node(f"n{i}", cpu="8", memory="32Gi") for i in range(12)]
    pods = [pod(f"p{i:02d}", requests={"cpu": "1", "memory": "1Gi"}) for i in range(40)]
    empty = [pod(f"e{i:02d}") for i in range(20)]  # best effort: scored with 100m/200Mi
    fit = {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}}
    most = {"profiles": [{"pluginConfig": [fit]}]}
    for seed in range(20):
        for config in (None, most):
            compare([*nodes, *pods, *empty], config, "input", seed)


@pytest.mark.parametrize("percentage", [None, 5, 10, 40, 100])
def test_percentage_of_nodes_to_score_and_rotating_start(percentage: int | None) -> None:
    rng = random.Random(percentage)
    items = ref.random_cluster(rng, 260, 40, bound_per_node=1)
    config = {"profiles": [{"percentageOfNodesToScore": percentage}]}
    for seed in range(3):
        compare(items, config, "input", seed)


def test_splitmix64_matches_the_published_sequence() -> None:
    # Vigna's splitmix64.c from state 0; kube-engine seeds the state with seed ^ the gamma.
    rng = ref.SplitMix64(0x9E3779B97F4A7C15)
    assert [rng.next_u64() for _ in range(3)] == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]


def test_reference_matches_hand_computed_scores() -> None:
    """The reference's plugins on a case small enough to compute by hand."""
    items = [
        node("a", cpu="4", memory="8Gi"),
        node("b", cpu="4", memory="8Gi"),
        pod("x", "a", requests={"cpu": "2", "memory": "2Gi"}),
        pod("new", requests={"cpu": "1", "memory": "1Gi"}),
    ]
    c = ref.Cluster(items)
    new = c.pods[c.pod_index["default/new"]]
    nodes = ref.np.array([0, 1])
    scores = ref.Scores(c, new, ref.Profile(), nodes)
    # LeastAllocated: a: cpu (4000-3000)*100/4000 = 25, memory 62 -> 43; b: 75, 87 -> 81.
    assert scores.resources_fit().tolist() == [43, 81]
    # Balanced: a: cpu 0.75, memory 0.375 -> 100 * (1 - 0.1875) = 81; b: 0.25, 0.125 -> 93.
    balanced = scores.balanced_allocation()
    assert balanced is not None and balanced.tolist() == [81, 93]
    assert ref.schedule(items).assignments == {"default/new": "b"}
    assert ref.fit_error(3, ["Insufficient cpu", "Too many pods", "Insufficient cpu"]) == (
        "0/3 nodes are available: 1 Too many pods, 2 Insufficient cpu."
    )


# --- where the engine departs from kube-scheduler ----------------------------------------------


def rtcr(shape: list[tuple[int, int]]) -> dict[str, Any]:
    strategy = {
        "type": "RequestedToCapacityRatio",
        "requestedToCapacityRatio": {"shape": [{"utilization": u, "score": s} for u, s in shape]},
    }
    return {
        "profiles": [
            {
                "plugins": {
                    "score": {
                        "disabled": [{"name": "*"}],
                        "enabled": [{"name": "NodeResourcesFit", "weight": 1}],
                    }
                },
                "pluginConfig": [
                    {"name": "NodeResourcesFit", "args": {"scoringStrategy": strategy}}
                ],
            }
        ]
    }


def test_requested_to_capacity_ratio_skips_zero_scores() -> None:
    items = [
        node("a", cpu="10", memory="10Gi"),
        node("b", cpu="10", memory="10Gi"),
        pod("x", "a", requests={"cpu": "6", "memory": "0"}),
        pod("y", "b", requests={"cpu": "4", "memory": "4Gi"}),
        pod("new", requests={"cpu": "1", "memory": "0"}),
    ]
    # a: cpu 70% -> 70, memory 0% -> 0, left out: 70. b: cpu 50, memory 40: 45. Upstream picks
    # a; averaging the zero in gives a 35 and picks b.
    assert ref.schedule(items, config=rtcr([(0, 0), (100, 10)])).assignments == {"default/new": "a"}
    compare(items, rtcr([(0, 0), (100, 10)]), "input", 0)


def test_random_requested_to_capacity_ratio_with_zero_scores() -> None:
    for case in range(40):
        rng = random.Random(case)
        items = ref.random_cluster(rng, rng.randint(3, 30), rng.randint(5, 40))
        compare(items, rtcr(rng.choice(ZERO_SHAPES)), "input", case)


def test_profile_without_scores_takes_the_first_feasible_node() -> None:
    items = [node(f"n{i}") for i in range(4)] + [
        pod(f"p{i}", requests={"cpu": "100m"}) for i in range(4)
    ]
    config = {"profiles": [{"plugins": {"score": {"disabled": [{"name": "*"}]}}}]}
    want = [(f"default/p{i}", f"n{i}") for i in range(4)]
    assert ref.schedule(items, config=config, order="input").order == want
    for seed in range(3):
        compare(items, config, "input", seed)


def test_profiles_share_the_rotating_start_index() -> None:
    # 150 nodes: the search stops after 100 feasible ones. The first pod (default profile) visits
    # n000..n099; the second (profile "other") continues at n100 and so sees n120, the only node
    # it prefers. Starting again at n000 it never does.
    config = {"profiles": [{"schedulerName": "default-scheduler"}, {"schedulerName": "other"}]}
    nodes = [node(f"n{i:03d}", labels={"best": "yes"} if i == 120 else None) for i in range(150)]
    prefer = {"key": "best", "operator": "In", "values": ["yes"]}
    affinity = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [prefer]}}
            ]
        }
    }
    second = pod("second", spec={"schedulerName": "other", "affinity": affinity})
    items = [*nodes, pod("first"), second]
    assert ref.schedule(items, config=config, order="input").assignments["default/second"] == (
        "n120"
    )
    compare(items, config, "input", 0)


def test_regular_init_container_ports_are_free_again() -> None:
    port = {"containerPort": 80, "hostPort": 8080}
    holder = pod(
        "holder", "n0", spec={"initContainers": [{"name": "setup", "image": "x", "ports": [port]}]}
    )
    new = pod("new", spec={"containers": [{"name": "main", "image": "x", "ports": [port]}]})
    assert ref.schedule([node("n0"), holder, new]).assignments == {"default/new": "n0"}
    snapshot = ke.Snapshot.from_bytes(as_list(node("n0"), holder, new))
    assert ke.schedule(snapshot).assignments == {"default/new": "n0"}
