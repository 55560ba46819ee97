"""The scheduling benchmark runs end to end on a small cluster (timings are not asserted)."""

import json
from pathlib import Path

import pytest
import report
import results_file
from bench_schedule import main

# A benchmark run end to end (small, but whole): `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow


def test_bench_schedule_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    results = tmp_path / "schedule.json"
    args = ["--nodes", "60", "--pods", "900", "--reference-pods", "40", "--repeat", "1"]
    assert main([*args, "--results", str(results), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert results_file.read(results) == out and out["benchmark"] == "schedule"
    assert out["reference_agrees_on_first_pods"] is True
    assert out["cluster"]["nodes"] == 60 and out["cluster"]["pending"] > 0
    assert [r["contender"] for r in out["rows"]] == [
        "kube-engine default, 1 thread",
        "kube-engine resource-only, 1 thread",
        "kube-engine default, 2 threads",
        "kube-engine resource-only, 2 threads",
        "python reference resource-only",
    ]
    assert all(r["placed"] <= r["pods"] for r in out["rows"])
    small = out["small_deployments"]
    assert small["cluster"]["nodes"] == 60 and small["cluster"]["pending"] > 0
    assert [r["contender"] for r in small["rows"]] == [r["contender"] for r in out["rows"][:4]]
    # Full: some pods fit nowhere with the default profile.
    assert 0 < small["rows"][0]["placed"] < small["rows"][0]["pods"]
    page = report.render([out])
    assert "## Batch scheduling" in page and "as the Python reference" in page
    assert "many small Deployments" in page
