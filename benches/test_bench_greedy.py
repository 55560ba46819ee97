"""The greedy starts' benchmark runs end to end on a small cluster (timings are not asserted)."""

import json
from pathlib import Path

import pytest
from bench_greedy import main

# A benchmark run end to end (small, but whole): `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow


def test_bench_greedy_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    results = tmp_path / "greedy.json"
    args = ["--nodes", "40", "--pods", "400", "--repeat", "1"]
    assert main([*args, "--results", str(results), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert json.loads(results.read_text()) == out
    assert [(r["start"], r["max_moves"] is None) for r in out["rows"]] == [
        ("balance", True),
        ("balance", False),
        ("defrag", True),
        ("defrag", False),
    ]
    for r in out["rows"]:
        assert r["complete"]
        if r["max_moves"] is not None:
            assert r["moves"] <= r["max_moves"]
