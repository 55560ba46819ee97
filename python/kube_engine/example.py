"""The example cluster shipped with the package (built from the Alibaba openb trace; research and
study use only, see data/README.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLED_EXAMPLE = "openb-example.json.gz"


def bundled_example() -> Path:
    """The example cluster shipped with the package (built from the Alibaba openb trace)."""
    return Path(str(resources.files("kube_engine") / "data" / BUNDLED_EXAMPLE))
