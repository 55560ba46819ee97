"""The rebalancing benchmark runs end to end on a small synthetic cluster (timings not asserted)."""

import json
from pathlib import Path

import pytest
import report
import results_file
from bench_rebalance import main

# A benchmark run end to end (small, but whole): `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow


def test_bench_rebalance_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png, results = tmp_path / "freed.png", tmp_path / "rebalance.json"
    args = ["--nodes", "40", "--pods", "400", "--time-limit", "1", "--plot", str(png)]
    assert main([*args, "--results", str(results), "-o", "json"]) == 0
    assert png.stat().st_size > 0
    out = json.loads(capsys.readouterr().out)
    assert results_file.read(results) == out and out["benchmark"] == "rebalance"
    assert "ortools" in out["machine"]
    page = report.render([out])
    assert "## Rebalancing" in page and "of their bound" in page
    rows = out["rows"]
    # Per cluster: pack with 4 budgets, balance and defrag with 3; each by 2 solvers.
    assert len(rows) == 2 * (4 + 3 + 3) * 2
    for r in rows:
        if r["max_moves"] is not None:
            assert r["moves"] <= r["max_moves"]
        if r["objective"] == "pack":
            assert r["nodes_used_after"] == r["nodes_used_before"] - r["nodes_freed"]
        assert r["bound"] <= r["after"] <= r["before"], r
