"""The hand-written stubs match the compiled module (pydantic-core's practice)."""

import subprocess
import sys

import pytest

# mypy's stubtest takes a quarter of a minute: `make test` runs it, not test-fast.
pytestmark = pytest.mark.slow


def test_stubs_match_the_compiled_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "kube_engine._core", "--ignore-missing-stub"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
