"""The `kube-engine` command on a user's mistakes: one line, `kube-engine: error: <message>`, and
a documented exit code; never a traceback. A bug (InternalError) says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import kube_engine.cli as cli
from conftest import EXAMPLE, as_list, node, pod
from kube_engine import InternalError
from kube_engine.cli import main

pytestmark = pytest.mark.usefixtures("no_real_cluster")


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.json"
    path.write_bytes(as_list(node("n1"), node("n2"), pod("a", "n1"), pod("p")))
    return path


def _error(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = cli.EXIT_ERROR) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("kube-engine: error: ") or code != cli.EXIT_ERROR, err
    return lines[-1].removeprefix("kube-engine: error: ")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["schedule", "--seed", "-1"], "argument --seed: seed must be an integer in 0..1"),
        (["rebalance", "--time-limit", "inf"], "argument --time-limit: time_limit must be a"),
        (["rebalance", "--time-limit", "nan"], "argument --time-limit: time_limit must be a"),
        (["rebalance", "--seed", "-1"], "argument --seed: seed must be an integer in 0..2"),
        (["rebalance", "--workers", "0"], "argument --workers: workers must be an integer in"),
        (["rebalance", "--max-moves", "-1"], "argument --max-moves: max_moves must be an int"),
        (["rebalance", "--move-cost", "nan"], "argument --move-cost: move_cost must be a"),
        (["rebalance", "--objective", "magic"], "argument --objective: objective 'magic' is"),
        (["rebalance", "--cooldown", "-5"], "argument --cooldown: cooldown must be a number"),
        (["rebalance", "--keep-node", "ghost"], 'keep_nodes: node "ghost" is not in the'),
        (["rebalance", "--max-per-wave", "0"], "argument --max-per-wave: max_per_wave must be"),
        (["rebalance", "--allow-local-storage=nfs"], 'unknown volume kind "nfs"'),
        (["rebalance", "--limit", "-1"], "argument --limit: limit must be an integer"),
        (["rebalance", "--burst", "0", "--dry-run", "server"], "give no snapshot file"),
    ],
)
def test_a_bad_option_value_is_one_line_naming_the_option(
    small: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    argv = [options[0], str(small), *options[1:]]
    if options[0] == "rebalance":
        argv += ["--allow-bare", "--solver", "heuristic"]
    assert message in _error(argv, capsys)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\xff\xfe", "(a price table): unacceptable character #x0089"),
        (b"n1: [", "(a price table): while parsing a flow node did not find expected node"),
        (b"[]", "expected a price table (a mapping), got a list"),
        (b"n1: cheap", "price of node 'n1' must be a number at least 0, got 'cheap'"),
        (b"n1: -1", "price of node 'n1' must be a number at least 0, got -1"),
        (b"n1: .nan", "got nan"),
        (b"n1: .inf", "got inf"),
        (b"n1: true", "got True"),
        (b"n1: 1\nghost: 2", "prices: node 'ghost' is not in the snapshot"),
    ],
)
def test_a_bad_price_table_is_one_line(
    small: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    message: str,
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_bytes(content)
    argv = ["rebalance", str(small), "--prices", str(prices), "--allow-bare"]
    assert message in _error(argv + ["--solver", "heuristic"], capsys)


def test_files_that_cannot_be_read_are_one_line(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"
    assert _error(["inspect", str(missing)], capsys).endswith(": No such file or directory")
    assert "larger than" in _error(["schedule", str(small), "--profile", "/dev/zero"], capsys)
    bad = tmp_path / "profile.yaml"
    bad.write_text("[]")
    assert "got a list" in _error(["schedule", str(small), "--profile", str(bad)], capsys)
    assert _error(["apply", str(bad)], capsys).startswith(f"{bad}: ")
    assert _error(["apply", str(missing)], capsys).endswith("No such file or directory")


def test_a_bug_says_so(
    small: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise InternalError("internal error (please report): index out of bounds")

    monkeypatch.setattr(cli, "evaluate", broken)
    assert main(["inspect", str(small)]) == cli.EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "kube-engine: error: internal error (please report): index out of bounds" in err
    assert "this is a bug" in err


def test_an_interrupt_exits_130_without_a_traceback(
    small: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "evaluate", interrupted)
    assert main(["inspect", str(small)]) == cli.EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "kube-engine: interrupted\n"


def test_output_cut_short_by_its_reader_is_no_error() -> None:
    # `kube-engine schedule ... | head`: stdout closes under the command (here before it writes).
    script = (
        f"{sys.executable} -m kube_engine.cli schedule {EXAMPLE} | true; exit ${{PIPESTATUS[0]}}"
    )
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert run.stderr == ""
    assert run.returncode == cli.EXIT_BROKEN_PIPE == 141
