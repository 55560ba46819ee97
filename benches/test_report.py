"""docs/performance.md from a folder of results files (the bench_*.py tests render each
benchmark's own results; these render the folder)."""

import json
from pathlib import Path

import pytest
import report
import results_file

HERE = Path(__file__).resolve().parent


def test_the_page_is_rendered_from_the_committed_results(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    assert report.main(["--results", str(HERE / "results"), "--out", str(out)]) == 0
    page = out.read_text()
    assert page == (HERE.parent / "docs" / "performance.md").read_text(), (
        "docs/performance.md is stale: run `python benches/report.py`"
    )
    results = [results_file.read(p) for p in sorted((HERE / "results").glob("*.json"))]
    assert results
    titles = [report.SECTIONS[r["benchmark"]].title for r in results]
    # Each benchmark has its section, with its command and commit, in the page's order.
    at = [page.index(f"\n## {t}\n") for t in titles]
    order = list(report.SECTIONS)
    assert [r["benchmark"] for _, r in sorted(zip(at, results, strict=True))] == sorted(
        (r["benchmark"] for r in results), key=order.index
    )
    for r in results:
        assert f"`{r['command']}`" in page and f"commit `{r['commit']}`" in page


def test_an_unknown_benchmark_gets_its_rows_as_a_table(tmp_path: Path) -> None:
    result = {
        **results_file.envelope("toy", __file__, ["--size", "3"]),
        "rows": [{"name": "a", "seconds": 1.5}, {"name": "b", "seconds": 2.0}],
    }
    results_file.write(tmp_path / "toy.json", result)
    out = tmp_path / "performance.md"
    assert report.main(["--results", str(tmp_path), "--out", str(out)]) == 0
    page = out.read_text()
    assert "## toy\n" in page and "| a | 1.5 |" in page
    assert "python benches/test_report.py --size 3" in page


def test_a_file_without_the_envelope_is_refused(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text(json.dumps({"benchmark": "old", "rows": []}))
    with pytest.raises(ValueError, match="no command, date, commit, machine"):
        report.main(["--results", str(tmp_path), "--out", str(tmp_path / "p.md")])
