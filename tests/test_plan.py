"""kube_engine.plan: targets into waves, the plan document and its schema, errors that name what."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import kube_engine as ke
from conftest import as_list, node, owned, pod
from kube_engine.planning import Plan, PlanError, schema


def pdb(name: str, app: str, allowed: int) -> dict[str, Any]:
    return {
        "kind": "PodDisruptionBudget",
        "apiVersion": "policy/v1",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": app}}},
        "status": {"disruptionsAllowed": allowed, "expectedPods": 3, "currentHealthy": 3},
    }


def web(name: str, node_name: str | None, cpu: str = "1") -> dict[str, Any]:
    p = owned(pod(name, node_name, requests={"cpu": cpu}, labels={"app": "web"}))
    p["metadata"]["resourceVersion"] = f"rv-{name}"
    return p


@pytest.fixture
def cluster() -> ke.Snapshot:
    n1, n2, n3 = node("n1", cpu="4"), node("n2", cpu="4"), node("n3", cpu="4")
    n1["metadata"]["resourceVersion"] = "11"
    return ke.Snapshot.from_bytes(
        as_list(
            n1,
            n2,
            n3,
            web("a", "n1", "3"),
            web("b", "n2", "3"),
            web("c", "n1", "1"),
            web("new", None),
            pdb("web", "web", 1),
        )
    )


def test_a_swap_is_sequenced_through_free_room_one_budgeted_eviction_per_wave(
    cluster: ke.Snapshot,
) -> None:
    p = ke.plan(cluster, {"default/a": "n2", "default/b": "n1", "default/new": "n3"})
    steps = [[(a.action, a.pod.key, a.from_node, a.to, a.detour) for a in w] for w in p.waves]
    # The PDB allows one eviction at a time; a detours through n3 so that b can take its room.
    assert steps == [
        [("bind", "default/new", None, "n3", False), ("evict", "default/a", "n1", "n3", True)],
        [("evict", "default/b", "n2", "n1", False)],
        [("evict", "default/a", "n3", "n2", False)],
    ]
    first = p.waves[0][1]
    assert (first.pod.uid, first.pod.resource_version) == ("uid-default-a", "rv-a")
    assert (first.budget, first.budget_left, first.controller) == (
        "default/web",
        0,
        "ReplicaSet/web-1",
    )
    assert p.summary() == {
        "waves": 3,
        "evictions": 3,
        "bindings": 1,
        "cordons": 0,
        "detours": 1,
        "kept": 0,
    }
    assert p.cordon == [] and p.emptied == []


def test_nodes_the_plan_empties_are_cordoned_with_their_resource_version(
    cluster: ke.Snapshot,
) -> None:
    p = ke.plan(cluster, {"default/a": "n3", "default/c": "n2"})
    assert [(c.node, c.resource_version) for c in p.cordon] == [("n1", "11")]
    assert p.emptied == ["n1"]
    assert {a.why for a in p.actions} == {"requested placement: empties n1"}
    assert ke.plan(cluster, {"default/a": "n3", "default/c": "n2"}, cordon=False).cordon == []


def test_kept_moves_say_why(cluster: ke.Snapshot) -> None:
    p = ke.plan(cluster, {"default/a": "n2"}, max_total=0)
    assert [(k.pod, k.kind, k.reason) for k in p.kept] == [
        ("default/a", "Cap", "max_total reached")
    ]
    p = ke.plan(cluster, {"default/c": "n2", "default/a": "n2"})
    assert [(k.pod, k.kind) for k in p.kept] == [("default/a", "NoRoom")]
    assert "Insufficient cpu" in p.kept[0].reason


def test_targets_from_rebalance_and_schedule() -> None:
    snap = ke.Snapshot.from_bytes(
        as_list(
            node("n1"),
            node("n2"),
            web("a", "n1"),
            web("b", "n2"),
            web("p", None),
        )
    )
    r = ke.rebalance(snap, "pack", solver="heuristic")
    assert r.moves, "the heuristic empties one of the two nodes"
    p = ke.plan(snap, r)
    assert p.reason == "rebalance (pack)"
    assert [(a.pod.key, a.to) for a in p.actions] == [(m.pod, m.to_node) for m in r.moves]
    assert p.cordon and p.emptied == [m.from_node for m in r.moves]
    placed = ke.schedule(snap)
    p = ke.plan(snap, placed)
    assert [(a.action, a.pod.key, a.to) for a in p.actions] == [
        ("bind", "default/p", placed.assignments["default/p"])
    ]


def test_the_document_validates_round_trips_and_is_named_by_its_content(
    cluster: ke.Snapshot, tmp_path: Path
) -> None:
    p = ke.plan(cluster, {"default/a": "n2", "default/b": "n1", "default/new": "n3"})
    doc = p.to_dict()
    jsonschema.validate(doc, schema())
    assert doc["apiVersion"] == "kube-engine.io/v1alpha1" and doc["kind"] == "Plan"
    assert Plan.from_dict(json.loads(p.to_json())).to_dict() == doc
    saved = p.save(tmp_path / "plan.json")
    assert Plan.load(saved).to_dict() == doc
    again = ke.plan(cluster, {"default/a": "n2", "default/b": "n1", "default/new": "n3"})
    assert again.name == p.name
    assert ke.plan(cluster, {"default/a": "n3"}).name != p.name


def test_the_table_lists_waves_pods_moves_and_budgets(cluster: ke.Snapshot) -> None:
    p = ke.plan(cluster, {"default/a": "n2", "default/b": "n1"})
    text = p.table()
    assert "3 wave(s), 3 eviction(s)" in text
    lines = text.splitlines()
    assert any(
        line.split()[:4] == ["1", "evict*", "default/a", "n1"] and "default/web: 0" in line
        for line in lines
    )
    assert "* a detour" in text


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(kind="Pod"), "kind: expected 'Plan', got 'Pod'"),
        (lambda d: d["spec"].pop("waves"), "spec.waves: missing"),
        (
            lambda d: d["spec"]["waves"][0]["actions"][0].update(action="delete"),
            "spec.waves[0].actions[0].action: unknown action 'delete'",
        ),
        (
            lambda d: d["spec"]["waves"][0]["actions"][0]["pod"].update(uid=7),
            "spec.waves[0].actions[0].pod.uid: expected a string, got 7",
        ),
        (lambda d: d["spec"]["waves"][0].update(wave=2), "spec.waves[0].wave: expected 1, got 2"),
        (
            lambda d: d["spec"]["waves"][0]["actions"][0].update(landing="teleport"),
            "spec.waves[0].actions[0].landing: unknown landing 'teleport'",
        ),
        (
            lambda d: d["spec"]["limits"].update(maxTotal=-1),
            "spec.limits.maxTotal: must be >= 0, got -1",
        ),
    ],
)
def test_a_bad_document_names_the_field(cluster: ke.Snapshot, mutate: Any, message: str) -> None:
    doc = ke.plan(cluster, {"default/c": "n2"}).to_dict()
    mutate(doc)
    with pytest.raises(PlanError) as info:
        Plan.from_dict(doc)
    assert message in str(info.value)


def test_bad_arguments_name_what(cluster: ke.Snapshot) -> None:
    with pytest.raises(KeyError, match="unknown pod"):
        ke.plan(cluster, {"default/ghost": "n1"})
    with pytest.raises(KeyError, match="unknown node"):
        ke.plan(cluster, {"default/a": "n9"})
    with pytest.raises(ValueError, match="max_per_wave must be at least 1"):
        ke.plan(cluster, {"default/a": "n2"}, max_per_wave=0)
    with pytest.raises(ValueError, match="max_total must be an integer in 0..4294967295"):
        ke.plan(cluster, {"default/a": "n2"}, max_total=-1)
    with pytest.raises(ValueError, match="max_per_node must be an integer"):
        ke.plan(cluster, {"default/a": "n2"}, max_per_node=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target must be"):
        ke.plan(cluster, ["default/a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target does not move the pod"):
        ke.plan(cluster, {"default/a": "n2"}, gpu_devices={"default/b": [0]})


def test_local_storage_is_allowed_per_volume_kind() -> None:
    def with_volume(name: str, volume: dict[str, Any]) -> dict[str, Any]:
        p = web(name, "n1")
        p["spec"]["volumes"] = [{"name": "v", **volume}]
        return p

    snap = ke.Snapshot.from_bytes(
        as_list(
            node("n1"),
            node("n2"),
            with_volume("scratch", {"emptyDir": {}}),
            with_volume("host", {"hostPath": {"path": "/var/lib/x"}}),
        )
    )
    target = {"default/scratch": "n2", "default/host": "n2"}
    kept = {k.pod: k.reason for k in ke.plan(snap, target).kept}
    assert kept == {
        "default/scratch": "must stay: uses local storage",
        "default/host": "must stay: uses local storage",
    }
    p = ke.plan(snap, target, allow_local_storage=["emptyDir"])
    assert [a.pod.key for a in p.actions] == ["default/scratch"]
    assert [k.pod for k in p.kept] == ["default/host"]
    assert len(ke.plan(snap, target, allow_local_storage=True).actions) == 2
    with pytest.raises(ValueError, match='unknown volume kind "nfs"'):
        ke.plan(snap, target, allow_local_storage=["nfs"])


def test_the_rebalance_command_says_per_pod_why_it_stays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kube_engine.cli import main

    kept = web("kept", "n1")
    kept["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
    (tmp_path / "c.json").write_bytes(as_list(node("n1"), node("n2"), kept, web("free", "n2")))
    assert main(["rebalance", str(tmp_path / "c.json"), "--solver", "heuristic", "--explain"]) == 0
    out = capsys.readouterr().out
    assert 'default/kept  annotated karpenter.sh/do-not-disrupt: "true"' in out
