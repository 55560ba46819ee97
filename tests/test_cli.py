"""The `kube-engine` command: which cluster it reads (live, files, stdin), and
inspect, schedule and the rebalancer job on it."""

from __future__ import annotations

import gzip
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import k8s_emulator as k8s
from conftest import EXAMPLE, as_list, node, pod
from k8s_emulator import KubeEmulator, write_kubeconfig
from kube_engine import Snapshot
from kube_engine.cli import _duration, main

pytestmark = pytest.mark.usefixtures("no_real_cluster")


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


def test_the_example_loads_and_rebalance_runs() -> None:
    s = Snapshot.from_file(EXAMPLE)
    assert s.num_nodes == 1523
    result = subprocess.run(
        [sys.executable, "-m", "kube_engine.cli", "rebalance", str(EXAMPLE)],
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
    assert main(["schedule", str(EXAMPLE), "--profile", str(profile)]) == 1
    assert 'unknown plugin "Magic"' in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Which cluster


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        for i in range(3):
            emulator.add_node(k8s.node(f"live-{i}", cpu="8"))
        emulator.add_pod(k8s.pod("shop", "web-0", node_name="live-1", cpu="2"))
        emulator.add_pod(k8s.pod("shop", "web-1"))
        yield emulator


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The error the CLI printed: one line, no traceback, and nothing on stdout."""
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("kube-engine: error: ")
    return line.removeprefix("kube-engine: error: ")


def test_no_argument_reads_the_cluster_of_kubeconfig(
    emu: KubeEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig", context="live")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    assert main(["inspect"]) == 0
    out = capsys.readouterr().out
    assert f"Cluster: kubeconfig {kubeconfig} (from $KUBECONFIG), context live\n" in out
    assert "nodes        3 (1 in use)" in out
    assert "1 pending" in out
    assert len(emu.requests) == 6  # nodes, pods, PDBs, claims, volumes, storage classes

    assert main(["inspect", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == f"kubeconfig {kubeconfig} (from $KUBECONFIG), context live"
    assert (data["nodes"], data["pods_pending"], data["left_out"]) == (3, 1, [])


def test_the_default_kubeconfig_in_home_is_read(
    emu: KubeEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / ".kube").mkdir()
    emu.write_kubeconfig(tmp_path / ".kube" / "config", context="mine")
    monkeypatch.setenv("HOME", str(tmp_path))

    assert main(["schedule", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == "kubeconfig ~/.kube/config, context mine"
    assert list(data["assignments"]) == ["shop/web-1"]


@pytest.mark.parametrize("command", ["inspect", "schedule", "rebalance"])
def test_no_configuration_is_a_one_line_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command]) == 1
    error = one_line_error(capsys)
    assert error.startswith("no Kubernetes configuration: $KUBECONFIG is not set, ")
    assert "this is not a pod" in error
    assert error.endswith("; give --kubeconfig FILE or a snapshot file (- for stdin)")


def test_in_a_pod_the_service_account_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kubernetes.config import incluster_config

    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "1")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "no-token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "no-ca.crt"))

    assert main(["inspect"]) == 1
    error = one_line_error(capsys)
    assert error.startswith("cannot load the Kubernetes configuration (in-cluster service account)")


def test_inspect_names_its_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(EXAMPLE), "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == str(EXAMPLE)
    assert data["nodes"] == 1523
    assert data["left_out"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x.json", "--kubeconfig", "kc"], "give either snapshot files or --kubeconfig/--context"),
        (["x.json", "--context", "c"], "give either snapshot files or --kubeconfig/--context"),
    ],
)
def test_sources_that_exclude_each_other_are_a_usage_error(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", *args])
    assert exit_.value.code == 2
    assert f"kube-engine inspect: error: {message}" in capsys.readouterr().err


def test_a_missing_kubeconfig_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope" / "kubeconfig"
    assert main(["inspect", "--kubeconfig", str(missing)]) == 1
    assert one_line_error(capsys) == f"kubeconfig {missing} does not exist"


def test_an_unknown_context_is_named(
    emu: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig", context="live")
    assert main(["inspect", "--kubeconfig", str(kubeconfig), "--context", "prod"]) == 1
    error = one_line_error(capsys)
    assert error == f"context 'prod' is not in kubeconfig {kubeconfig} (its contexts: live)"
    assert emu.requests == []

    assert main(["inspect", "--kubeconfig", str(kubeconfig), "--context", "live"]) == 0
    assert f"Cluster: kubeconfig {kubeconfig}, context live\n" in capsys.readouterr().out


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens


@pytest.fixture
def silent_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # connections are accepted by the kernel, and never answered
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("timeout", ["0.5", "500ms"])
def test_an_unreachable_cluster_fails_fast(
    refused_url: str,
    silent_url: str,
    timeout: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", {"refused": refused_url, "silent": silent_url}
    )
    args = ["inspect", "--kubeconfig", str(kubeconfig), "--request-timeout", timeout]

    start = time.monotonic()
    assert main([*args, "--context", "refused"]) == 1
    refused = time.monotonic() - start
    assert one_line_error(capsys) == (
        f"listing nodes from {refused_url}: connection failed: Connection refused"
    )

    start = time.monotonic()
    assert main([*args, "--context", "silent"]) == 1
    silent = time.monotonic() - start
    assert one_line_error(capsys) == f"listing nodes from {silent_url}: no answer within 0.5s"

    assert refused < 0.5  # at once: no retries
    assert 0.5 <= silent < 0.5 + 2.0  # wide: the machine is shared


def test_request_timeout_reaches_the_reader(
    emu: KubeEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kube_engine import cluster

    seen: list[dict[str, Any]] = []
    real = cluster.read_snapshot

    def recording(*args: Any, **kwargs: Any) -> Snapshot:
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(cluster, "read_snapshot", recording)
    kubeconfig = str(emu.write_kubeconfig(tmp_path / "kubeconfig"))
    for extra, timeout in [([], 30.0), (["--request-timeout", "1m"], 60.0)]:
        assert main(["inspect", "--kubeconfig", kubeconfig, *extra]) == 0
        assert seen.pop() == {"timeout": timeout, "strict": False}
    capsys.readouterr()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("30s", 30.0), ("1m", 60.0), ("1m30s", 90.0), ("1.5", 1.5), ("250ms", 0.25)],
)
def test_request_timeout_takes_kubectl_durations(text: str, seconds: float) -> None:
    assert _duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "-1", "-5s", "inf", "nan", "soon", "5x"])
def test_request_timeout_refuses_zero_negative_and_nonsense(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", str(EXAMPLE), f"--request-timeout={text}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --request-timeout: " in err
    assert ("must be more than 0" in err) or ("invalid duration" in err)


# --------------------------------------------------------------------------------------------------
# Snapshot arguments


def test_yaml_files_directories_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(yaml.safe_dump({"kind": "List", "items": [node("n1"), node("n2")]}))
    pods = tmp_path / "pods"
    pods.mkdir()
    (pods / "a.yaml").write_text(yaml.safe_dump(pod("a", "n1", requests={"cpu": "1"})))
    (pods / "b.json").write_bytes(as_list(pod("b", "n2"), pod("c")))

    assert main(["inspect", str(nodes), str(pods), "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == f"{nodes}, {pods} (2 files)"
    assert (data["nodes"], data["pods"], data["pods_pending"]) == (2, 3, 1)

    stdin = io.TextIOWrapper(io.BytesIO(gzip.compress(nodes.read_bytes())))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["schedule", "-", str(pods / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "1 pod(s) placed, 0 unschedulable (stdin, " in out


# --------------------------------------------------------------------------------------------------
# Pods on nodes the snapshot lacks


def test_left_out_pods_are_reported_and_strict_refuses_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "churn.json"
    path.write_bytes(
        as_list(node("n1"), pod("a", "n9"), pod("b", "n1"), pod("c", "n8"), pod("d", "n9"))
    )

    assert main(["inspect", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        "kube-engine: warning: left out 3 pods bound to nodes not in the snapshot: "
        "default/a (node n9), default/c (node n8), default/d (node n9)\n"
    )
    assert "pods         1 (1 Running)" in captured.out

    for command in (["inspect"], ["schedule"], ["rebalance", "--solver", "heuristic"]):
        assert main([*command, str(path), "-o", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["left_out"] == [
            {"pod": "default/a", "node": "n9"},
            {"pod": "default/c", "node": "n8"},
            {"pod": "default/d", "node": "n9"},
        ], command

    assert main(["inspect", str(path), "--strict"]) == 1
    error = one_line_error(capsys)
    assert error.startswith(f"{path}: items[1].spec.nodeName: ")
    assert 'pod "default/a" is bound to unknown node "n9"' in error


def test_many_left_out_pods_are_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "churn.json"
    path.write_bytes(as_list(node("n1"), *(pod(f"p{i}", "gone") for i in range(7))))

    assert main(["inspect", str(path)]) == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "kube-engine: warning: left out 7 pods bound to nodes not in the snapshot: "
        + ", ".join(f"default/p{i} (node gone)" for i in range(5))
        + " and 2 more"
    )


def test_left_out_pods_of_a_live_read(
    emu: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.add_pod(k8s.pod("batch", "done", node_name="deleted", phase="Succeeded"))
    kubeconfig = str(emu.write_kubeconfig(tmp_path / "kubeconfig"))

    assert main(["inspect", "--kubeconfig", kubeconfig]) == 0
    assert capsys.readouterr().err == (
        "kube-engine: warning: left out 1 pod bound to a node not in the snapshot: "
        "batch/done (node deleted)\n"
    )
    assert main(["inspect", "--kubeconfig", kubeconfig, "--strict"]) == 1
    assert 'pod "batch/done" is bound to unknown node "deleted"' in one_line_error(capsys)


def test_importing_the_package_loads_neither_ortools_nor_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import sys, kube_engine; "
        "print(sorted(m for m in ('ortools', 'matplotlib', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
