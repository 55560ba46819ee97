"""The `kube-engine` command: inspect and the rebalancer job on files and on the bundled example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import as_list, node, pod
from kube_engine import Snapshot
from kube_engine.cli import bundled_example, main


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.json"
    path.write_bytes(
        as_list(
            node("n1", cpu="2"),
            node("g1", gpus=2, model="T4"),
            pod("a", "n1", requests={"cpu": "3"}),
            pod("s", "g1", requests={"kube-engine.io/gpu-milli": "500"}),
            pod("p", requests={"cpu": "1"}),
        )
    )
    return path


def test_inspect_table(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(small)]) == 0
    out = capsys.readouterr().out
    assert "nodes        2 (2 in use)" in out
    assert "1 pending" in out
    assert "cpu requested 3000 > allocatable 2000" in out
    assert "GPUs: 2 devices, 1 entirely free" in out


def test_inspect_json(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(small), "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["nodes"] == 2
    assert data["pods_pending"] == 1
    assert data["violation_counts"] == {"capacity": 1}
    assert data["resources"]["cpu"]["requested"] == 3000
    assert data["gpu"]["allocated_milli"] == 500
    assert data["lower_bounds"]["l1"] >= 1


def test_bad_snapshot_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(as_list(pod("p", requests={"cpu": "12x"})))
    assert main(["inspect", str(bad)]) == 1
    err = capsys.readouterr().err
    assert 'items[0].spec.containers[0].resources.requests.cpu: invalid quantity "12x"' in err
    assert main(["inspect", str(tmp_path / "missing.json")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_bundled_example_loads_and_rebalance_runs() -> None:
    path = bundled_example()
    assert path.exists(), "the example cluster ships with the package"
    s = Snapshot.from_file(path)
    assert s.num_nodes == 1523
    result = subprocess.run(
        [sys.executable, "-m", "kube_engine.cli", "rebalance"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "openb-example.json.gz" in result.stdout
    assert "nodes        1,523" in result.stdout


def test_schedule_places_pending_pods_without_binding(
    small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", str(small), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["assignments"] == {"default/p": "g1"}
    assert out["unschedulable"] == {}
    # Nothing was bound: the file still has the pod pending.
    assert Snapshot.from_file(small).pod_nodes()[-1] is None


def test_schedule_rejects_a_bad_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "profiles:\n- plugins:\n    score:\n      enabled: [{name: Magic}]\n"
    )
    assert main(["schedule", "--profile", str(profile)]) == 1
    assert 'unknown plugin "Magic"' in capsys.readouterr().err
