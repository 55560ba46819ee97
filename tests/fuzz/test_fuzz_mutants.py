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

# Cases of the default run (seed 0) that hit a bug issue 20 lists; each is fixed on its own
# branch, and the mark goes when the fix is merged.
ACCEPTED = "issue 20 item 7: an object the API server refuses is read as valid"
KNOWN: dict[int, str] = {
    2: ACCEPTED,  # an unparseable creationTimestamp
    5: ACCEPTED,  # hostPort -1
    27: ACCEPTED,  # a taint with an empty key
    32: ACCEPTED,  # a toleration key that is no label key
    40: ACCEPTED,  # hostPort 70000
    44: ACCEPTED,  # a node without a name
    48: ACCEPTED,  # a pod named a/b
    71: ACCEPTED,  # hostPort 70000
    74: ACCEPTED,  # a node without a name
    75: ACCEPTED,  # a node name that is no DNS subdomain
    77: ACCEPTED,  # a PDB with disruptionsAllowed -1
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.close()


@pytest.fixture(scope="module")
def findings() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"kube-engine-fuzz-{SEED}-"))


def _cases() -> list[object]:
    return [
        pytest.param(i, marks=pytest.mark.xfail(strict=False, reason=KNOWN[i]))
        if SEED == 0 and i in KNOWN
        else i
        for i in range(CASES)
    ]


@pytest.mark.parametrize("index", _cases())
def test_mutant(worker: Worker, findings: Path, index: int) -> None:
    result = worker.run(SEED, index)
    if result.finding:
        pytest.fail(report(make_case(SEED, index), result, findings), pytrace=False)
