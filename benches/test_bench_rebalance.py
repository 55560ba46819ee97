"""The rebalancing benchmark runs end to end on a small synthetic cluster (timings not asserted)."""

import json

import pytest
from bench_rebalance import main


def test_bench_rebalance_small(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nodes", "40", "--pods", "400", "--time-limit", "1", "-o", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == 16
    for r in rows:
        if r["max_moves"] is not None:
            assert r["moves"] <= r["max_moves"]
        assert r["nodes_used_after"] == r["nodes_used_before"] - r["nodes_freed"]
