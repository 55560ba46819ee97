"""Binding landing: kube-engine as the scheduler of the pods that name it. `kube-engine
scheduler` binds pending pods; a plan's replacements that name it are bound to their targets by
the applier, so they land exactly where the plan says."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_apply import FAST

import kube_engine as ke
from k8s_emulator import KubeEmulator, node, pdb, pod
from kube_engine.cli import main

pytestmark = pytest.mark.usefixtures("no_real_cluster")


def ours(name: str, node_name: str | None, cpu: str = "1") -> dict[str, Any]:
    return pod(
        "shop",
        name,
        node_name=node_name,
        cpu=cpu,
        labels={"app": "web"},
        owner=("ReplicaSet", "web-1"),
        scheduler_name="kube-engine",
    )


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with KubeEmulator() as e:
        e.add_node(node("n0", cpu="4"))
        e.add_node(node("n1", cpu="4"))
        e.add_node(node("n2", cpu="4", extra_allocatable={"nvidia.com/gpu": "2"}))
        e.controllers(interval=0.02)
        yield e


def test_the_scheduler_binds_the_pods_that_name_it(
    emu: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.add_pod(ours("web-0", None))
    gpu = pod("shop", "train-0", cpu="1", scheduler_name="kube-engine")
    gpu["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "1"
    emu.add_pod(gpu)
    emu.add_pod(pod("shop", "other-0", scheduler_name="someone-else"))
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    record = emu.reset_record()
    assert main(["scheduler", "--once", "--kubeconfig", str(kubeconfig), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted((b["target"], b["outcome"]) for b in out["bound"]) == [
        ("shop/train-0", "done"),
        ("shop/web-0", "done"),
    ]
    pods = {p["metadata"]["name"]: p for p in emu.objects("pods")}
    assert pods["train-0"]["spec"]["nodeName"] == "n2"
    assert pods["train-0"]["metadata"]["annotations"]["kube-engine.io/gpu-devices"] == "0"
    assert pods["web-0"]["spec"].get("nodeName") in ("n0", "n1", "n2")
    assert not pods["other-0"]["spec"].get("nodeName"), "another scheduler's pod is left alone"
    assert sorted(b.name for b in record.bindings if b.status == 201) == ["train-0", "web-0"]
    # A second round finds nothing to do.
    assert main(["scheduler", "--kubeconfig", str(kubeconfig)]) == 0
    assert "no pending pod names kube-engine" in capsys.readouterr().out


def test_replacements_that_name_kube_engine_land_exactly_on_their_targets(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    for i, at in enumerate(("n0", "n1", "n1", "n2")):
        emu.add_pod(ours(f"web-{i}", at))
    emu.add_pdb(pdb("shop", "web", match_labels={"app": "web"}, max_unavailable=1))
    deadline = time.monotonic() + 5
    while "status" not in emu.get("poddisruptionbudgets", "web", "shop"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    snapshot = ke.read_snapshot(kubeconfig)
    # Off the GPU node and onto the fullest: the default scheduler would spread them instead.
    target = {"shop/web-3": "n1", "shop/web-0": "n1"}
    plan = ke.plan(snapshot, target)
    assert [a.landing for a in plan.actions] == ["binding", "binding"]
    assert [a.predicted for a in plan.actions] == ["n1", "n1"]
    record = emu.reset_record()
    report = ke.apply(plan, kubeconfig=str(kubeconfig), journal=tmp_path / "j", settings=FAST)
    assert report.outcome == "completed", report.table()
    landing = report.landing()
    assert (landing["measured"], landing["onTarget"], landing["rate"]) == (2, 2, 1.0)
    on = [p["spec"].get("nodeName") for p in emu.objects("pods")]
    assert on.count("n1") == 4 and "n0" not in on and "n2" not in on
    assert len([b for b in record.bindings if b.status == 201]) == 2
