"""What a rebalance works with: pinned pods and why, classes, candidates, disruption budgets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import EXAMPLE, as_list, node, pod
from kube_engine import Snapshot, budget_status
from kube_engine._core import rebalance_problem
from kube_engine.cli import main


def owned(p: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    p["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": kind,
            "name": name,
            "uid": f"uid-{name}",
            "controller": True,
        }
    ]
    return p


def web(name: str, node_name: str, cpu: str = "1") -> dict[str, Any]:
    return owned(
        pod(name, node_name, requests={"cpu": cpu}, labels={"app": "web"}), "ReplicaSet", "web-1"
    )


def pdb(name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": "PodDisruptionBudget",
        "apiVersion": "policy/v1",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }
    if status is not None:
        obj["status"] = status
    return obj


@pytest.fixture
def cluster() -> Snapshot:
    return Snapshot.from_bytes(
        as_list(
            node("a", cpu="4"),
            node("b", cpu="4"),
            node("tainted", cpu="8", taints=[{"key": "gpu", "value": "x", "effect": "NoSchedule"}]),
            node("off", cpu="8", unschedulable=True),
            web("w1", "a"),
            web("w2", "b"),
            owned(pod("agent", "a", requests={"cpu": "3"}), "DaemonSet", "agent"),
            pod("solo", "b", requests={"cpu": "1"}),
            owned(
                pod(
                    "keep",
                    "b",
                    requests={"cpu": "1"},
                    annotations={"kube-engine.io/evict": "false"},
                ),
                "ReplicaSet",
                "api-1",
            ),
            pdb("web", {"maxUnavailable": 1}),
            pdb("web-live", {"minAvailable": 1}, {"disruptionsAllowed": 0}),
        )
    )


def test_pinned_pods_classes_and_candidates(cluster: Snapshot) -> None:
    pr = rebalance_problem(cluster)
    assert pr["pinned"] == {
        "default/agent": "DaemonSet pod",
        "default/solo": "no controller (would not be recreated)",
        "default/keep": 'annotated kube-engine.io/evict: "false"',
    }
    (cls,) = pr["classes"]
    assert cls["pods"] == ["default/w1", "default/w2"]
    assert cls["nodes"] == ["a", "b"]
    assert cls["controller"] == "ReplicaSet/web-1"
    assert cls["request"]["cpu"] == 1000
    # a keeps 1 cpu after the pinned agent's 3: still room for a 1-cpu pod; the tainted and the
    # cordoned node are filtered out.
    assert [pr["nodes"][n] for n in cls["candidates"]] == ["a", "b"]
    assert pr["free"]["cpu"] == [1000, 2000, 8000, 8000]
    budgets = {b["name"]: (b["allowed"], b["pods"]) for b in pr["budgets"]}
    assert budgets == {
        "default/web": (1, ["default/w1", "default/w2"]),
        "default/web-live": (0, ["default/w1", "default/w2"]),
    }


def test_bare_pods_move_when_allowed(cluster: Snapshot) -> None:
    pr = rebalance_problem(cluster, allow_bare=True)
    assert "default/solo" not in pr["pinned"]
    assert sorted(p for c in pr["classes"] for p in c["pods"]) == [
        "default/solo",
        "default/w1",
        "default/w2",
    ]


def test_every_pod_may_stay_where_it_is_on_the_example() -> None:
    """The example breaks no rule, so with the other movable pods lifted off, each pod's own node
    still passes every filter: it is among its class's candidates."""
    s = Snapshot.from_file(EXAMPLE)
    pr = rebalance_problem(s, allow_bare=True)
    index = {name: i for i, name in enumerate(pr["nodes"])}
    movable = [p for c in pr["classes"] for p in c["pods"]]
    assert len(movable) == len(set(movable)) == 5193
    for c in pr["classes"]:
        candidates = set(c["candidates"])
        assert all(index[n] in candidates for n in c["nodes"]), c["controller"]


def test_bad_profile_is_a_config_error(cluster: Snapshot) -> None:
    from kube_engine import ConfigError

    with pytest.raises(ConfigError, match="Nope"):
        rebalance_problem(
            cluster,
            config=json.dumps(
                {"profiles": [{"plugins": {"filter": {"enabled": [{"name": "Nope"}]}}}]}
            ),
        )


def test_rebalance_command_reports_what_may_move(capsys: pytest.CaptureFixture[str]) -> None:
    # What may move is the same whatever finds the plan: the heuristic is enough.
    fast = ["--solver", "heuristic"]
    assert main(["rebalance", "-o", "json", str(EXAMPLE), "--allow-bare", *fast]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rebalance"]["movable_pods"] == 5193
    assert out["rebalance"]["pinned_pods"] == 0
    assert main(["rebalance", str(EXAMPLE), *fast]) == 0
    table = capsys.readouterr().out
    assert "Staying put: 5,193 pods" in table
    assert "5,193  no controller (would not be recreated)" in table


def test_budget_status_is_the_disruption_controllers_rule() -> None:
    pods = [
        pod("a1", "n", labels={"app": "a"}),
        pod("a2", "n", labels={"app": "a"}),
        pod("a3", labels={"app": "a"}, phase="Pending"),
        pod("done", "n", labels={"app": "a"}, phase="Succeeded"),
    ]
    budgets = [
        pdb("half", {"selector": {"matchLabels": {"app": "a"}}, "minAvailable": "50%"}),
        pdb("all", {"selector": {"matchLabels": {"app": "a"}}, "maxUnavailable": 5}),
        pdb("none", {"selector": {"matchLabels": {"app": "b"}}, "maxUnavailable": 1}),
        # The object's own status is not what is reported: the pods are.
        pdb("neither", {"selector": {"matchLabels": {"app": "a"}}}, {"disruptionsAllowed": 9}),
    ]
    s = Snapshot.from_bytes(as_list(node("n"), *pods, *budgets))
    got = budget_status(s)
    # 3 active pods expected (the Succeeded one is not), 2 of them running.
    assert got["default/half"] == {
        "expectedPods": 3,
        "currentHealthy": 2,
        "desiredHealthy": 2,  # 50 % of 3, rounded up
        "disruptionsAllowed": 0,
    }
    assert got["default/all"]["desiredHealthy"] == 0  # never below zero
    assert got["default/all"]["disruptionsAllowed"] == 2
    assert got["default/none"] == {
        "expectedPods": 0,
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "disruptionsAllowed": 0,
    }
    assert got["default/neither"]["desiredHealthy"] == 3
    assert got["default/neither"]["disruptionsAllowed"] == 0
