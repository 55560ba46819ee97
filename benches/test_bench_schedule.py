"""The scheduling benchmark runs end to end on a small cluster (timings are not asserted)."""

import json

import pytest
from bench_schedule import main


def test_bench_schedule_small(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--nodes",
                "60",
                "--pods",
                "900",
                "--reference-pods",
                "40",
                "--repeat",
                "1",
                "-o",
                "json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["reference_agrees_on_first_pods"] is True
    assert out["pending"] > 0
    assert [r["contender"] for r in out["rows"]] == [
        "kube-engine default, 1 thread",
        "kube-engine resource-only, 1 thread",
        "kube-engine default, 2 threads",
        "kube-engine resource-only, 2 threads",
        "python reference resource-only",
    ]
    assert all(r["placed"] <= r["pods"] for r in out["rows"])
