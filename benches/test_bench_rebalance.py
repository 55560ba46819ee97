"""The rebalancing benchmark runs end to end on a small synthetic cluster (timings not asserted)."""

import json
from pathlib import Path

import pytest
from bench_rebalance import main


def test_bench_rebalance_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png = tmp_path / "freed.png"
    args = ["--nodes", "40", "--pods", "400", "--time-limit", "1", "--plot", str(png)]
    assert main([*args, "-o", "json"]) == 0
    assert png.stat().st_size > 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    # Per cluster: pack with 4 budgets, balance and defrag with 3; each by 2 solvers.
    assert len(rows) == 2 * (4 + 3 + 3) * 2
    for r in rows:
        if r["max_moves"] is not None:
            assert r["moves"] <= r["max_moves"]
        if r["objective"] == "pack":
            assert r["nodes_used_after"] == r["nodes_used_before"] - r["nodes_freed"]
        assert r["bound"] <= r["after"] <= r["before"], r
