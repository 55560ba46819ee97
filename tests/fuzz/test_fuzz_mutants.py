"""The seeded mutation corpus (see mutants.py): each mutant, snapshot or command line, ends in a
result or a refusal, within its time and memory limits, in a worker process.

``make test`` runs ``FUZZ_CASES`` (default 100) cases of seed ``FUZZ_SEED`` (default 0), the same
cases on every run; ``make fuzz`` runs thousands of a random seed. A failing case is written out
under a temporary directory, with the command that runs it again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzz_support import CASES, SEED
from mutants import Worker, make_case, report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.close()


@pytest.fixture(scope="module")
def findings() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"kube-engine-fuzz-{SEED}-"))


@pytest.mark.parametrize("index", range(CASES))
def test_mutant(worker: Worker, findings: Path, index: int) -> None:
    result = worker.run(SEED, index)
    if result.finding:
        pytest.fail(report(make_case(SEED, index), result, findings), pytrace=False)
