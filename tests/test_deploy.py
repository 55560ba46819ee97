"""deploy/: the manifests parse, and the ClusterRole is enough for a whole run and the
scheduler — the emulator answers 403 to anything outside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_apply import FAST, TARGET, shop

import kube_engine as ke
from conftest import EXAMPLE
from k8s_emulator import KubeEmulator, pod
from kube_engine.cli import main

pytestmark = pytest.mark.usefixtures("no_real_cluster")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def manifests(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def cluster_role() -> list[dict[str, Any]]:
    (role,) = [d for d in manifests("rbac.yaml") if d["kind"] == "ClusterRole"]
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def test_the_manifests_fit_together() -> None:
    kinds = {
        d["kind"]: d for f in ("rbac.yaml", "cronjob.yaml", "scheduler.yaml") for d in manifests(f)
    }
    assert set(kinds) == {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "CronJob",
        "Deployment",
    }
    account = kinds["ServiceAccount"]["metadata"]["name"]
    job = kinds["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job["serviceAccountName"] == account
    assert kinds["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == account
    # The job's arguments are the CLI's.
    (container,) = job["containers"]
    args = container["args"]
    assert args[0] == "rebalance" and "--apply" not in args, "a dry run until someone opts in"
    parser_ok = main(
        [*args, str(EXAMPLE), "--solver", "heuristic", "--allow-bare", "--dry-run", "client"]
    )
    assert parser_ok == 0


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with shop() as e:
        yield e


def test_the_cluster_role_is_enough_to_act(emu: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.set_rbac(cluster_role())
    plan = ke.plan(ke.read_snapshot(kubeconfig), TARGET)
    report = ke.apply(plan, kubeconfig=str(kubeconfig), journal=tmp_path / "j", settings=FAST)
    assert report.outcome == "completed", report.table()
    assert not [r for r in emu.requests if r.status == 403]
    # The scheduler too.
    emu.add_pod(pod("shop", "mine", scheduler_name="kube-engine"))
    assert main(["scheduler", "--kubeconfig", str(kubeconfig)]) == 0
    assert emu.get("pods", "mine", "shop")["spec"].get("nodeName")
    assert not [r for r in emu.requests if r.status == 403]
    # And nothing more: without the eviction rule, evictions are refused.
    emu.set_rbac([r for r in cluster_role() if "pods/eviction" not in r["resources"]])
    again = ke.plan(ke.read_snapshot(kubeconfig), {"shop/web-a": "n1"})
    report = ke.apply(again, kubeconfig=str(kubeconfig), journal=tmp_path / "j2", settings=FAST)
    assert report.outcome == "stopped"
    assert "forbidden" in next(r.reason for r in report.results if r.action == "evict")
