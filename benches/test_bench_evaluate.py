"""The evaluation benchmark runs end to end on a small cluster (timings are not asserted)."""

import json
from pathlib import Path

import pytest
import report
import results_file
from bench_evaluate import main

# A benchmark run end to end (small, but whole): `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow


def test_bench_evaluate_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    results = tmp_path / "evaluate.json"
    args = ["--nodes", "40", "--pods", "900", "--moves", "60", "--repeat", "1"]
    assert main([*args, "--results", str(results), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert results_file.read(results) == out
    assert out["benchmark"] == "evaluate"
    assert out["command"].endswith(f"--results {results} -o json")
    assert out["cluster"] == {"nodes": 40, "pods": 900, "seed": 1}
    current, moved = out["rows"]
    assert (current["placement"], current["moves"]) == ("current", 0)
    assert moved["placement"] == "moved" and 0 < moved["moves"] <= 60
    # The drain plan empties nodes.
    assert moved["nodes_used"] < current["nodes_used"]
    page = report.render([out])
    assert "## Evaluation" in page and f"`{out['command']}`" in page
