"""Vector bin packing: the .vbp reader, the Rust bounds, heuristics, local search and check, the
solver on Caprara–Toth instances with known optima, and `kube-engine-bench vbp`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kube_engine._core import vbp_check, vbp_heuristic, vbp_local_search, vbp_lower_bounds
from kube_engine.bench.cli import main
from kube_engine.bench.vbp import VbpError, VbpInstance, find_vbp_dir, read_vbp, solve, verify

VBP = find_vbp_dir()
needs_data = pytest.mark.skipif(VBP is None, reason="shared/data/vbp not found")


def _optimum(name: str) -> int:
    assert VBP is not None
    with (VBP / "INDEX.csv").open(newline="") as f:
        return next(int(r["optimum"]) for r in csv.DictReader(f) if r["instance"].endswith(name))


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.vbp"
    p.write_text(text)
    return p


def test_reader_expands_demands(tmp_path: Path) -> None:
    inst = read_vbp(_write(tmp_path, "2\n10 20\n2\n3 4 2\n10 20 1\n"))
    assert inst == VbpInstance("t.vbp", (10, 20), ((3, 4), (3, 4), (10, 20)))
    assert inst.dims == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2\n10 x\n", "t.vbp:2: capacity 2: 'x' is not an integer"),
        ("2\n10 20\n1\n3 4\n", "t.vbp: ends before item type 1 demand"),
        ("2\n10 20\n1\n3 21 1\n", "t.vbp:4: item type 1 size 2: 21 exceeds the capacity 20"),
        ("2\n10 0\n", "t.vbp:2: capacity 2: 0 is below 1"),
        ("1\n10\n1\n3 1\n7\n", "t.vbp:5: unexpected '7' after the 1 item types"),
        ("", "t.vbp: ends before number of dimensions"),
    ],
)
def test_reader_names_file_line_and_value(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(VbpError) as err:
        read_vbp(_write(tmp_path, text))
    assert str(err.value).endswith(message)


def test_core_bounds_heuristic_and_check() -> None:
    # Three items over half of dimension 0 cannot share: L1 = 2 but L2 = 3.
    sizes, cap = [[60, 1], [60, 1], [60, 1]], [100, 100]
    assert vbp_lower_bounds(sizes, cap) == (2, 3)
    bins, name = vbp_heuristic(sizes, cap)
    assert len(set(bins)) == 3 and name
    assert vbp_check(sizes, cap, bins) == 3
    with pytest.raises(ValueError, match="item 1: 3 sizes for 2 dimensions"):
        vbp_lower_bounds([[1, 1], [1, 1, 1]], cap)
    with pytest.raises(ValueError, match="item 0 dimension 0: size 101"):
        vbp_heuristic([[101, 1]], cap)


def _triplets(bins: int) -> VbpInstance:
    """`bins` bins of 100 x 100, each cut exactly into three items, listed first items first: the
    optimum is `bins`, and the greedy packings open more."""
    triples = []
    for b in range(bins):
        a, c = (26 + b % 7, 40 - b % 5), (34 + b % 3, 30 + b % 4)
        triples.append((a, c, (100 - a[0] - c[0], 100 - a[1] - c[1])))
    return VbpInstance("triplets", (100, 100), tuple(t[k] for k in range(3) for t in triples))


def test_core_local_search_keeps_packings_feasible_and_repeats() -> None:
    inst = _triplets(10)
    sizes, cap = [list(i) for i in inst.items], list(inst.capacity)
    greedy, _ = vbp_heuristic(sizes, cap)
    bins, used = vbp_local_search(sizes, cap, greedy, 10, 10_000_000, 1)
    assert vbp_check(sizes, cap, bins) == used
    assert len(set(greedy)) > used == 10
    assert vbp_local_search(sizes, cap, greedy, 10, 10_000_000, 1) == (bins, used)
    assert vbp_local_search(sizes, cap, greedy, 10, 0, 1) == (greedy, len(set(greedy)))
    with pytest.raises(ValueError, match="number them without gaps"):
        vbp_local_search(sizes, cap, [b * 2 for b in greedy], 10, 100, 0)
    with pytest.raises(ValueError, match="exceeds capacity"):
        vbp_local_search(sizes, cap, [0] * len(sizes), 10, 100, 0)


def test_verify_rejects_a_broken_packing() -> None:
    inst = VbpInstance("x", (100, 100), ((60, 10), (60, 10), (10, 10)))
    assert verify(inst, [0, 1, 1]) == 2
    with pytest.raises(ValueError, match="bin 0 dimension 0: load 120 exceeds capacity 100"):
        verify(inst, [0, 0, 1])
    with pytest.raises(ValueError, match="2 bin indices for 3 items"):
        verify(inst, [0, 1])
    with pytest.raises(ValueError, match="item 2: bin index -1"):
        verify(inst, [0, 1, -1])


def test_solve_validates_arguments() -> None:
    inst = VbpInstance("x", (10,), ((5,),))
    with pytest.raises(ValueError, match="solver: 'lp'"):
        solve(inst, "lp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time_limit: 0"):
        solve(inst, "cpsat", time_limit=0)
    r = solve(VbpInstance("empty", (10,), ()), "cpsat")
    assert (r.bins, r.lower_bound, r.status) == (0, 0, "OPTIMAL")


@needs_data
@pytest.mark.parametrize("name", ["CL_7_25_1.vbp", "CL_10_24_1.vbp"])
def test_cpsat_reaches_the_optimum_the_heuristic_misses(name: str) -> None:
    assert VBP is not None
    inst = read_vbp(VBP / "ct01" / name)
    opt = _optimum(name)
    greedy = solve(inst, "heuristic")
    assert greedy.bins > opt and greedy.status == "FEASIBLE" and greedy.cpsat_status is None
    r = solve(inst, "cpsat", time_limit=3, workers=1, seed=0)
    assert (r.bins, r.lower_bound, r.status) == (opt, opt, "OPTIMAL")
    assert verify(inst, r.assignment) == opt
    # One worker and a fixed seed: the same packing again.
    assert solve(inst, "cpsat", time_limit=3, workers=1, seed=0).assignment == r.assignment


@needs_data
def test_local_search_closes_the_gap_before_cpsat() -> None:
    assert VBP is not None
    inst = read_vbp(VBP / "ct01" / "CL_1_200_1.vbp")
    opt = _optimum("CL_1_200_1.vbp")
    r = solve(inst, "cpsat", time_limit=2, workers=1, seed=0)
    assert r.heuristic_bins > opt
    assert (r.local_search_bins, r.bins, r.status, r.cpsat_status) == (opt, opt, "OPTIMAL", None)
    assert verify(inst, r.assignment) == opt
    assert r.to_dict()["local_search_bins"] == opt
    assert solve(inst, "cpsat", time_limit=2, workers=1, seed=0).assignment == r.assignment
    assert solve(inst, "heuristic").local_search_bins is None


def test_solve_runs_the_local_search_first() -> None:
    inst = _triplets(10)
    greedy = solve(inst, "heuristic")
    r = solve(inst, "cpsat", time_limit=1, workers=1)
    assert (greedy.bins, r.heuristic_bins, r.local_search_bins, r.bins) == (12, 12, 10, 10)
    assert (r.status, r.cpsat_status) == ("OPTIMAL", None)


@needs_data
def test_cli_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert VBP is not None
    files = [str(VBP / "ct01" / n) for n in ("CL_1_25_1.vbp", "CL_7_25_1.vbp")]
    assert main(["vbp", *files, "--solver", "cpsat", "--time-limit", "2", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["instance"] for r in out] == ["CL_1_25_1.vbp", "CL_7_25_1.vbp"]
    for r in out:
        assert {"instance", "bins", "lower_bound", "seconds", "status"} <= set(r)
        assert r["status"] == ("OPTIMAL" if r["bins"] == r["lower_bound"] else "FEASIBLE")
    assert main(["vbp", files[0], "--solver", "heuristic"]) == 0
    assert "CL_1_25_1.vbp" in capsys.readouterr().out


def test_cli_reports_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, "2\n10 20\n1\n3 4 z\n")
    assert main(["vbp", str(bad), "--solver", "heuristic"]) == 1
    assert "t.vbp:4: item type 1 demand: 'z' is not an integer" in capsys.readouterr().err
