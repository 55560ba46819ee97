"""The vector packing benchmark script end to end on a tiny Caprara–Toth subset (the full run is
`python benches/bench_vbp.py`)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import report
import results_file

from kube_engine.bench.vbp import find_vbp_dir

# A benchmark run end to end (small, but whole): `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_vbp", Path(__file__).with_name("bench_vbp.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(find_vbp_dir() is None, reason="shared/data/vbp not found")
def test_bench_script_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    argv = ["--class", "1,10", "--limit", "1", "--time-limit", "1", "--results", str(out)]
    assert _script().main([*argv, "-o", "json"]) == 0
    result = results_file.read(out)
    assert result == json.loads(capsys.readouterr().out) and result["benchmark"] == "vbp"
    assert "ortools" in result["machine"]
    assert [r["instance"] for r in result["instances"]] == ["CL_1_25_1.vbp", "CL_10_24_1.vbp"]
    page = report.render([result])
    assert "## Vector bin packing" in page and "| all | 2 | 0 |" in page
    total = result["total"]
    assert total["instances"] == 2 and total["open"] == 0
    assert total["heuristic"]["mean_pct_above"] >= total["cpsat"]["mean_pct_above"] >= 0
    assert 0 <= total["cpsat"]["optimal_share"] <= 1
    assert _script().main([*argv, "--class", "1"]) == 0
    assert "% above" in capsys.readouterr().out
