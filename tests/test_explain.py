"""``kube_engine.explain``: one scheduling cycle laid open, checked against what ``schedule``
decides for the same pod (the node it picks has the highest total; an unschedulable pod's
rejections, counted, are its diagnosis)."""

from __future__ import annotations

from collections import Counter

import pytest

import kube_engine as ke
from conftest import as_list, node, pod
from kube_engine.bench.synthetic import generate_cluster_json


def test_a_small_cluster_laid_open() -> None:
    s = ke.Snapshot.from_bytes(
        as_list(
            node("small", cpu="1"),
            node("big", cpu="8"),
            node("cordoned", unschedulable=True),
            pod("web", requests={"cpu": "2"}, phase="Pending"),
        )
    )
    e = ke.explain(s, "default/web")
    assert e["profile"] == "default-scheduler"
    assert e["pre_filter"] is None
    assert e["filters"] == {
        "small": {"plugin": "NodeResourcesFit", "reasons": ["Insufficient cpu"]},
        "big": None,
        "cordoned": {"plugin": "NodeUnschedulable", "reasons": ["node(s) were unschedulable"]},
    }
    assert e["scores"]["PodTopologySpread"] is None  # no constraints: PreScore skips the pod
    assert e["scores"]["TaintToleration"] == {"big": 100}
    assert e["totals"] == {
        "big": sum(
            e["weights"][plugin] * scores["big"]
            for plugin, scores in e["scores"].items()
            if scores is not None
        )
    }
    with pytest.raises(ke.InvalidArgumentError, match="explain takes a pending pod"):
        ke.explain(ke.Snapshot.from_bytes(as_list(node("n"), pod("bound", "n"))), "default/bound")
    with pytest.raises(ke.UnknownNameError):
        ke.explain(s, "default/nope")


@pytest.mark.parametrize("seed", [4, 5])
def test_explain_agrees_with_schedule_on_generated_clusters(seed: int) -> None:
    snapshot = ke.Snapshot.from_bytes(generate_cluster_json(20, 800, seed, pending_fraction=0.2))
    nodes = snapshot.pod_nodes()
    pending = [name for name, n in zip(snapshot.pod_names(), nodes, strict=True) if n is None]
    checked = Counter[str]()
    for name in pending[:80]:
        placement = ke.schedule(snapshot, pods=[name])
        if name in placement.skipped:
            continue
        e = ke.explain(snapshot, name)
        if name in placement.assignments:
            chosen = placement.assignments[name]
            assert e["filters"][chosen] is None
            assert e["totals"][chosen] == max(e["totals"].values())
            checked["placed"] += 1
        else:
            d = placement.diagnosis[name]
            assert e["totals"] == {}
            if d["pre_filter"] is not None:
                assert e["pre_filter"] is not None
                assert e["pre_filter"]["reasons"] == [d["pre_filter"]]
            else:
                counted = Counter(
                    reason
                    for rejection in e["filters"].values()
                    if rejection is not None
                    for reason in rejection["reasons"]
                )
                assert dict(counted) == d["reasons"]
            checked["unschedulable"] += 1
    assert checked["placed"] and checked["unschedulable"], checked
