"""No loops: the replacements of the pods a run moved carry kube-engine.io/moved-at, and for the
cooldown no plan or rebalance moves them back or on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_apply import FAST, TARGET, shop

import kube_engine as ke
from conftest import as_list, node, owned, pod
from k8s_emulator import KubeEmulator
from kube_engine.applying.run import MOVED_AT, MOVED_BY

pytestmark = pytest.mark.usefixtures("no_real_cluster")


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with shop() as e:
        yield e


def test_moved_pods_are_marked_and_left_alone_for_the_cooldown(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    plan = ke.plan(ke.read_snapshot(kubeconfig), TARGET)
    report = ke.apply(plan, kubeconfig=str(kubeconfig), journal=tmp_path / "j", settings=FAST)
    assert report.outcome == "completed", report.table()
    moved = {r.target for r in report.results if r.action == "evict" and r.outcome == "done"}
    marked = [
        p
        for p in emu.objects("pods")
        if (p["metadata"].get("annotations") or {}).get(MOVED_BY) == plan.name
    ]
    assert len(marked) == len(moved) == 3
    snapshot = ke.read_snapshot(kubeconfig)
    back = {f"shop/{p['metadata']['name']}": "n3" for p in marked}
    again = ke.plan(snapshot, back)
    assert again.actions == []
    assert {k.reason for k in again.kept} == {"must stay: moved by kube-engine within the cooldown"}
    # Once the cooldown is over (or with none), they may move again.
    assert len(ke.plan(snapshot, back, cooldown=0).actions) == 3
    assert ke.rebalance(snapshot, "pack", solver="heuristic").moves == []


def test_a_bad_moved_at_is_refused_with_its_path() -> None:
    p = owned(pod("a", "n1"))
    p["metadata"]["annotations"] = {MOVED_AT: "yesterday"}
    with pytest.raises(ke.SnapshotError) as info:
        ke.Snapshot.from_bytes(as_list(node("n1"), p))
    assert info.value.path == f"items[1].metadata.annotations.{MOVED_AT}"
    assert 'invalid timestamp "yesterday"' in info.value.message
    p["metadata"]["annotations"] = {MOVED_AT: "2026-12-01T00:00:00Z"}
    snap = ke.Snapshot.from_bytes(as_list(node("n1"), node("n2"), p))
    assert ke.plan(snap, {"default/a": "n2"}, cooldown=float("inf")).kept[0].kind == "Pinned"
    assert ke.plan(snap, {"default/a": "n2"}).actions != []  # moved a week ago: past 1 h
