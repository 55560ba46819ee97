"""The greedy starts' benchmark runs end to end on a small cluster (timings are not asserted)."""

import json
from pathlib import Path

import pytest
import report
from bench_greedy import main

# A benchmark run end to end (small, but whole): `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow


def test_bench_greedy_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    results = tmp_path / "greedy.json"
    args = ["--nodes", "40", "--pods", "400", "--repeat", "1", "--plan-moves", "20"]
    assert main([*args, "--time-limit", "5", "--results", str(results), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert json.loads(results.read_text()) == out
    assert [(r["start"], r["max_moves"] is None) for r in out["rows"]] == [
        ("pack", True),
        ("pack", False),
        ("balance", True),
        ("balance", False),
        ("defrag", True),
        ("defrag", False),
    ]
    for r in out["rows"]:
        assert r["complete"]
        if r["max_moves"] is not None:
            assert r["moves"] <= r["max_moves"]
    assert [p["objective"] for p in out["plans"]] == ["pack", "balance", "defrag"]
    for p in out["plans"]:
        assert p["moves"] <= 20 and p["after"] <= p["before"]
        # The plan's actions: at least one eviction per move.
        assert p["actions"] >= p["moves"]
    balance = out["plans"][1]
    assert set(balance["spread_before"]) == {"cpu max", "cpu std", "memory max", "memory std"}
    page = report.render([out])
    assert "within its time limit" in page and "within limit" in page
