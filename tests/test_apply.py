"""kube_engine.apply end to end, against the API emulator with its controllers running: plans
carried out, the record checked (no pod evicted twice, no protected pod touched, no budget below
its minimum, the nodes freed are free, the report matches what happened)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kube_engine as ke
from k8s_emulator import KubeEmulator, node, pdb, pod
from kube_engine.applying import Settings

pytestmark = pytest.mark.usefixtures("no_real_cluster")

FAST = Settings(poll=0.05, wave_timeout=15.0, move_budget=1.0, lease_duration=5)


def web(name: str, node_name: str, app: str = "web", cpu: str = "1") -> dict[str, Any]:
    return pod(
        "shop",
        name,
        node_name=node_name,
        cpu=cpu,
        labels={"app": app},
        owner=("ReplicaSet", f"{app}-1"),
    )


@contextlib.contextmanager
def shop() -> Iterator[KubeEmulator]:
    """Four nodes, the last two lightly used (a pack plan empties them), with the controllers
    running and the budgets' status published."""
    with KubeEmulator() as e:
        for i in range(4):
            e.add_node(node(f"n{i}", cpu="4"))
        e.add_pod(web("web-a", "n0"))
        e.add_pod(web("web-b", "n1"))
        e.add_pod(web("web-c", "n2"))
        e.add_pod(web("web-d", "n3"))
        e.add_pod(web("db-a", "n2", app="db", cpu="500m"))
        e.add_pdb(pdb("shop", "web", match_labels={"app": "web"}, max_unavailable=1))
        e.add_pdb(pdb("shop", "db", match_labels={"app": "db"}, min_available=0))
        e.controllers(interval=0.02)
        deadline = time.monotonic() + 5
        while any("status" not in b for b in e.objects("poddisruptionbudgets")):
            assert time.monotonic() < deadline, "the disruption controller publishes a status"
            time.sleep(0.02)
        yield e


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with shop() as e:
        yield e


def pack_plan(kubeconfig: Path) -> ke.Plan:
    snapshot = ke.read_snapshot(kubeconfig)
    result = ke.rebalance(snapshot, "pack", solver="heuristic")
    return ke.plan(snapshot, result)


#: Empties n2 and n3; the web budget lets one web pod go at a time: two waves at least.
TARGET = {"shop/web-c": "n0", "shop/web-d": "n1", "shop/db-a": "n1"}


def test_a_plan_is_carried_out_safely(emu: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    plan = ke.plan(ke.read_snapshot(kubeconfig), TARGET)
    assert plan.emptied == ["n2", "n3"] and plan.summary()["waves"] >= 2
    record = emu.reset_record()
    report = ke.apply(plan, kubeconfig=str(kubeconfig), journal=tmp_path / "j", settings=FAST)
    assert report.outcome == "completed", report.table()
    evicted = record.evicted()
    # No pod evicted twice; exactly the plan's evictions; none refused.
    assert len({e.uid for e in evicted}) == len(evicted)
    assert sorted(f"{e.namespace}/{e.name}" for e in evicted) == sorted(
        a.pod.key for a in plan.actions if a.action == "evict"
    )
    assert all(e.precondition_uid == e.uid for e in evicted)
    assert record.pdbs_below_minimum() == []
    # The freed nodes are free, and no node is left cordoned.
    for n in plan.emptied:
        assert not [p for p in emu.objects("pods") if p["spec"].get("nodeName") == n]
    assert not any(n["spec"].get("unschedulable") for n in emu.objects("nodes"))
    assert sorted(report.uncordoned) == sorted(c.node for c in plan.cordon)
    # The report says what happened, and where the replacements landed.
    assert report.counts().get("done", 0) == len(evicted) + 2 * len(plan.cordon)
    landing = report.landing()
    assert landing["evicted"] == len(evicted) and landing["measured"] == len(evicted)
    events = [e for e in emu.objects("events") if e["reason"] == "KubeEngineMove"]
    assert len(events) == len(evicted)


def test_a_second_pack_run_on_what_the_first_left_plans_nothing(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    emu.modify("poddisruptionbudgets", "web", "shop", lambda b: b["spec"].update(maxUnavailable=2))
    deadline = time.monotonic() + 5
    while emu.get("poddisruptionbudgets", "web", "shop")["status"]["disruptionsAllowed"] != 2:
        assert time.monotonic() < deadline, "the disruption controller follows the change"
        time.sleep(0.02)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    plan = pack_plan(kubeconfig)
    assert plan.summary()["evictions"] >= 2
    report = ke.apply(plan, kubeconfig=str(kubeconfig), journal=tmp_path / "j", settings=FAST)
    assert report.outcome == "completed", report.table()
    again = pack_plan(kubeconfig)
    assert again.summary()["evictions"] == 0, again.table()


def test_a_server_side_dry_run_changes_nothing(emu: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    plan = ke.plan(ke.read_snapshot(kubeconfig), TARGET)
    before = json.dumps(
        sorted((p["metadata"]["uid"], p["spec"].get("nodeName")) for p in emu.objects("pods"))
    )
    record = emu.reset_record()
    settings = Settings(mode="server", poll=0.05, move_budget=1.0, lease_duration=5)
    report = ke.apply(plan, kubeconfig=str(kubeconfig), settings=settings)
    assert report.outcome == "completed", report.table()
    assert {r.outcome for r in report.results} == {"dry-run"}
    assert record.evictions and all(e.dry_run for e in record.evictions)
    after = json.dumps(
        sorted((p["metadata"]["uid"], p["spec"].get("nodeName")) for p in emu.objects("pods"))
    )
    assert after == before
    assert not any(n["spec"].get("unschedulable") for n in emu.objects("nodes"))


def test_the_rest_is_planned_again_when_a_replacement_lands_off_target(tmp_path: Path) -> None:
    with KubeEmulator() as e:
        e.add_node(node("n0", cpu="4"))
        e.add_node(node("n1", cpu="4"))
        e.add_node(node("n2", cpu="4"))
        e.add_pod(web("busy", "n0", app="busy", cpu="2"))
        for name in ("a", "b"):
            e.add_pod(web(name, "n2"))
        e.add_pdb(pdb("shop", "web", match_labels={"app": "web"}, max_unavailable=1))
        e.controllers(interval=0.02)
        deadline = time.monotonic() + 5
        while "status" not in e.get("poddisruptionbudgets", "web", "shop"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        kubeconfig = e.write_kubeconfig(tmp_path / "kubeconfig")
        # Both to n0, one per wave; the default scheduler puts the first on the empty n1 instead.
        plan = ke.plan(ke.read_snapshot(kubeconfig), {"shop/a": "n0", "shop/b": "n0"})
        assert plan.summary()["waves"] == 2 and plan.actions[0].predicted == "n1"
        record = e.reset_record()
        journal = tmp_path / "j"
        report = ke.apply(plan, kubeconfig=str(kubeconfig), journal=journal, settings=FAST)
        assert report.outcome == "completed", report.table()
        assert report.replans == 1
        entries = [json.loads(line) for line in journal.read_text().splitlines()]
        (replan,) = [x for x in entries if x["kind"] == "replan"]
        assert replan["after"] == 1
        assert [
            a["pod"]["name"] for w in replan["plan"]["spec"]["waves"] for a in w["actions"]
        ] == ["b"]
        evicted = record.evicted()
        assert sorted(x.name for x in evicted) == ["a", "b"]
        assert record.pdbs_below_minimum() == []


def test_a_journal_of_another_plan_is_refused_in_one_line(
    emu: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kube_engine.cli import main

    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    snapshot = ke.read_snapshot(kubeconfig)
    ke.plan(snapshot, TARGET).save(tmp_path / "a.json")
    ke.plan(snapshot, {"shop/web-c": "n1"}).save(tmp_path / "b.json")
    journal = tmp_path / "j"
    args = ["--kubeconfig", str(kubeconfig), "--journal", str(journal), "--wave-timeout", "15"]
    assert main(["apply", str(tmp_path / "a.json"), *args]) == 0
    capsys.readouterr()
    assert main(["apply", str(tmp_path / "b.json"), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kube-engine: error: ") and "is the journal of plan" in err
    assert len(err.strip().splitlines()) == 1


def test_rebalance_apply_saves_its_plan_for_a_rerun(
    emu: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from kube_engine.cli import main

    emu.modify("poddisruptionbudgets", "web", "shop", lambda b: b["spec"].update(maxUnavailable=2))
    deadline = time.monotonic() + 5
    while emu.get("poddisruptionbudgets", "web", "shop")["status"]["disruptionsAllowed"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.chdir(tmp_path)
    args = ["--kubeconfig", str(kubeconfig), "--solver", "heuristic", "--wave-timeout", "15"]
    assert main(["rebalance", *args, "--apply", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    name = out["actions"]["metadata"]["name"]
    assert out["applied"]["outcome"] == "completed"
    saved = ke.Plan.load(tmp_path / f"{name}.json")
    assert saved.to_dict() == out["actions"]
    assert (tmp_path / f"{name}.journal.jsonl").exists()
