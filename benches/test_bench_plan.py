"""The planning benchmark runs end to end on a small cluster (timings are not asserted)."""

import json
from pathlib import Path

import pytest
import report
import results_file
from bench_plan import main

# A benchmark run end to end (small, but whole): `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow


def test_bench_plan_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    results = tmp_path / "plan.json"
    args = ["--nodes", "40", "--pods", "900", "--moves", "60", "--repeat", "1"]
    assert main([*args, "--results", str(results), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert results_file.read(results) == out
    assert out["benchmark"] == "plan" and out["command"].endswith(f"--results {results} -o json")
    assert out["cluster"]["nodes"] == 40
    assert [r["target"] for r in out["rows"]] == ["pack", "swap"]
    for r in out["rows"]:
        assert r["moves"] <= 60
        # Every move of the target is either made (evictions count detours twice) or kept.
        assert r["evictions"] - r["detours"] + r["kept"] == r["moves"]
    assert out["rows"][1]["moves"] > 0
    page = report.render([out])
    assert "## Planning" in page and f"`{out['command']}`" in page
