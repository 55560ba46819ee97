"""Scheduler configurations and the other small files a user names (a price table, a plan): what
is not a configuration is a ConfigError naming the file, quickly and in little memory, whatever
the file holds (an alias bomb, binary data, /dev/zero, a list)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import kube_engine as ke
from conftest import as_list, node, pod
from kube_engine import option_files
from kube_engine._core import schedule as core_schedule
from kube_engine.planning import Plan, PlanError


@pytest.fixture(scope="module")
def snapshot() -> ke.Snapshot:
    return ke.Snapshot.from_bytes(as_list(node("n1"), pod("p", requests={"cpu": "1"})))


def _config_error(snapshot: ke.Snapshot, profile: Any) -> ke.ConfigError:
    with pytest.raises(ke.ConfigError) as info:
        ke.schedule(snapshot, profile=profile)
    return info.value


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _laughs() -> str:
    """9 levels of 9 aliases to the level below: 9**9 "lol"s, 387 million values expanded."""
    level = [f"a: &a [{', '.join(['lol'] * 9)}]"]
    for below, name in zip("abcdefgh", "bcdefghi", strict=True):
        level.append(f"{name}: &{name} [{', '.join(['*' + below] * 9)}]")
    return "\n".join([*level, "kind: KubeSchedulerConfiguration"])


BILLION_LAUGHS = _laughs()


def test_a_yaml_alias_bomb_stops_at_the_expansion_budget(
    snapshot: ke.Snapshot, tmp_path: Path
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    assert path.stat().st_size < 1024
    before, started = _peak_rss_mb(), time.perf_counter()
    e = _config_error(snapshot, path)
    assert time.perf_counter() - started < 10
    assert _peak_rss_mb() - before < 200
    assert str(e).startswith(f"{path}: more than 2,097,152 values once its YAML aliases")


def test_aliases_within_the_budget_are_expanded(snapshot: ke.Snapshot, tmp_path: Path) -> None:
    # kube-scheduler's YAML reader expands aliases too.
    path = tmp_path / "aliases.yaml"
    path.write_text(
        "profiles:\n"
        "- schedulerName: a\n  plugins: &plugins {score: {disabled: [{name: '*'}]}}\n"
        "- schedulerName: b\n  plugins: *plugins\n"
    )
    assert len(ke.schedule(snapshot, profile=path).skipped) == 1


def test_a_recursive_alias_is_an_error(snapshot: ke.Snapshot, tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("profiles: &p [*p]\n")
    assert "once its YAML aliases are expanded" in str(_config_error(snapshot, path))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfd", "not valid YAML or JSON"),
        (b"\xff\xfe\x00\xd8", "not valid YAML or JSON"),
        (b"[" * 100_000, "not valid YAML or JSON"),  # deep nesting, cut short
        (b"{}\n---\n{}\n", "not valid YAML or JSON"),
        (b"profiles: [", "not valid YAML or JSON"),
        (b"[]", "expected a KubeSchedulerConfiguration (a mapping), got a list"),
        (b"- kind: KubeSchedulerConfiguration\n", "(a mapping), got a list"),
        (b"5", "(a mapping), got a scalar"),
        (b"", "(a mapping), got nothing"),
        (b'{"profiles": [[]]}', "profiles[0]: invalid type: an array, expected an object"),
        (b'{"profiles": "x"}', "profiles: invalid type: string"),
        (b"percentageOfNodesToScore: 1.5", "percentageOfNodesToScore: invalid type"),
    ],
)
def test_what_is_no_configuration_is_a_config_error_naming_the_file(
    snapshot: ke.Snapshot, tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(data)
    e = _config_error(snapshot, path)
    assert message in str(e)
    if "invalid type" not in message:
        assert str(e).startswith(f"{path}: ")


def test_a_long_yaml_error_is_cut(snapshot: ke.Snapshot, tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(b"kind: " + b"x" * 1_000_000 + b"\n  : [")
    assert len(str(_config_error(snapshot, path))) < 500


def test_a_file_is_read_up_to_its_limit(snapshot: ke.Snapshot, tmp_path: Path) -> None:
    started = time.perf_counter()
    e = _config_error(snapshot, "/dev/zero")
    assert str(e) == "/dev/zero: larger than 4,194,304 bytes"
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (option_files.MAX_FILE_BYTES + 1))
    assert "larger than" in str(_config_error(snapshot, big))
    assert time.perf_counter() - started < 5


def test_a_pipe_is_read_up_to_the_limit_too(snapshot: ke.Snapshot, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # A writer that never stops.
    writer = subprocess.Popen(["sh", "-c", f"yes > {fifo}"], stderr=subprocess.DEVNULL)
    try:
        assert "larger than" in str(_config_error(snapshot, fifo))
    finally:
        writer.kill()
        writer.wait()


def test_an_unreadable_file_is_a_config_error(snapshot: ke.Snapshot, tmp_path: Path) -> None:
    assert str(_config_error(snapshot, tmp_path / "none.yaml")).endswith(
        "none.yaml: No such file or directory"
    )
    assert str(_config_error(snapshot, tmp_path)).endswith(": Is a directory")


def test_yaml_scalars_are_typed_as_kube_scheduler_types_them(
    snapshot: ke.Snapshot, tmp_path: Path
) -> None:
    # A date is text to sigs.k8s.io/yaml (PyYAML's own date would be no JSON).
    path = tmp_path / "profile.yaml"
    path.write_text("profiles: [{schedulerName: 2024-01-01}]\n")
    assert ke.schedule(snapshot, profile=path).skipped == ["default/p"]


@pytest.mark.parametrize(
    "config",
    [{"profiles": {1, 2}}, {"percentageOfNodesToScore": float("nan")}, {(1, 2): 3}],
)
def test_a_mapping_json_cannot_hold_is_a_config_error(
    snapshot: ke.Snapshot, config: dict[Any, Any]
) -> None:
    assert "profile: a value JSON cannot hold" in str(_config_error(snapshot, config))


def test_a_mapping_holding_itself_is_a_config_error(snapshot: ke.Snapshot) -> None:
    loop: dict[str, Any] = {}
    loop["profiles"] = [loop]
    assert "profile: a value JSON cannot hold" in str(_config_error(snapshot, loop))


@pytest.mark.parametrize("config", ["[]", "null", "5", '"x"', '{"profiles": [[]]}', "{} {}"])
def test_the_core_takes_a_configuration_object_only(snapshot: ke.Snapshot, config: str) -> None:
    with pytest.raises(ke.ConfigError, match="KubeSchedulerConfiguration"):
        core_schedule(snapshot, None, config)


def test_a_plan_file_is_read_within_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "plan.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\xfd")
    with pytest.raises(PlanError, match="plan.json: not JSON"):
        Plan.load(binary)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 1_000_000)
    with pytest.raises(PlanError, match="deep.json: not JSON"):
        Plan.load(deep)
    with pytest.raises(PlanError, match="none.json: No such file or directory"):
        Plan.load(tmp_path / "none.json")
    monkeypatch.setattr("kube_engine.planning.MAX_PLAN_BYTES", 1024)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"x": "y" * 2000}))
    with pytest.raises(PlanError, match="big.json: larger than 1,024 bytes"):
        Plan.load(big)
    with pytest.raises(PlanError, match="/dev/zero: larger than"):
        Plan.load("/dev/zero")


def test_a_journal_that_is_no_text_is_refused_not_appended_to(tmp_path: Path) -> None:
    from kube_engine.applying.journal import Journal

    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\xfd")
    with pytest.raises(PlanError, match="photo.png: not a journal"):
        Journal.open(image, "plan-x")
    assert image.read_bytes() == b"\x89PNG\r\n\x1a\n\xff\xfe\xfd"
