"""The FGD benchmark script end to end on a small openb subset (the full sweep is
`python benches/bench_fgd.py`)."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
from pathlib import Path
from types import ModuleType

import pytest
import report
import results_file

from kube_engine.bench.openb import find_openb_dir

# A benchmark run end to end (small, but whole): `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow

OPENB = find_openb_dir()


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_fgd", Path(__file__).with_name("bench_fgd.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _subset(src: Path, dst: Path, keep: list[int]) -> Path:
    with src.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with dst.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[i] for i in keep)
    return dst


@pytest.mark.skipif(OPENB is None, reason="openb trace CSVs not found")
def test_bench_script_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert OPENB is not None
    nodes = _subset(
        OPENB / "openb_node_list_gpu_node.csv", tmp_path / "n.csv", list(range(0, 1213, 40))
    )
    pods = _subset(
        OPENB / "openb_pod_list_default.csv",
        tmp_path / "p.csv",
        sorted(random.Random(3).sample(range(8152), 150)),
    )
    out = tmp_path / "report.json"
    argv = ["--pods", str(pods), "--nodes", str(nodes), "--seeds", "1-2", "--results", str(out)]
    assert _script().main([*argv, "--policies", "FGD,DotProd", "-o", "json"]) == 0
    result = results_file.read(out)
    assert result == json.loads(capsys.readouterr().out) and result["benchmark"] == "fgd"
    assert result["seeds"] == [1, 2] and result["timing_s"]["runs"] == 4
    page = report.render([result])
    assert "## GPU packing" in page and "| FGD | `FGD` |" in page
    for name in ("FGD", "DotProd"):
        row = result["policies"][name]
        assert 0 < row["mean_130"] <= 100 and row["paper_mean_130"] is None
        assert list(row["curve"]) == [str(p) for p in range(131)]
    assert _script().main([*argv, "--policies", "BestFit"]) == 0
    assert "within 1 pp" in capsys.readouterr().out
