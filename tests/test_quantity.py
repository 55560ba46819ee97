"""Kubernetes quantities through the Python API (the Rust tests cover the grammar exhaustively)."""

import pytest

import kube_engine
from kube_engine import QuantityError, parse_quantity


@pytest.mark.parametrize(
    ("text", "milli", "value"),
    [
        # The memory examples from the Kubernetes docs ("Resource units in Kubernetes").
        ("128974848", 128974848000, 128974848),
        ("129e6", 129000000000, 129000000),
        ("129M", 129000000000, 129000000),
        ("128974848000m", 128974848000, 128974848),
        ("123Mi", 123 * 2**20 * 1000, 123 * 2**20),
        # CPU: 0.1 is 100m; fractions below a milli round up, as Kubernetes does.
        ("0.1", 100, 1),
        ("100m", 100, 1),
        ("0.5", 500, 1),
        ("1.5Gi", 1610612736000, 1610612736),
        ("1n", 1, 1),
        ("1500u", 2, 1),
        (".5", 500, 1),
        ("5.", 5000, 5),
        ("+1", 1000, 1),
        ("1e3", 1000000, 1000),
        ("1E3", 1000000, 1000),
        ("1E", 10**21, 10**18),
        ("1Ki", 1024000, 1024),
    ],
)
def test_valid_quantities(text: str, milli: int, value: int) -> None:
    want_milli = min(milli, 2**63 - 1)
    assert parse_quantity(text) == (want_milli, value)


@pytest.mark.parametrize(
    "text", ["", " 1", "1 ", "12x", "1K", "1kb", "1e", "1.2.3", "0x10", "Mi", "1_000"]
)
def test_invalid_quantities(text: str) -> None:
    with pytest.raises(QuantityError, match="invalid quantity"):
        parse_quantity(text)
    assert issubclass(QuantityError, kube_engine.KubeEngineError)


def test_values_beyond_int64_are_capped_as_kubernetes_does() -> None:
    assert parse_quantity("10E")[1] == 2**63 - 1
    assert parse_quantity("8Ei")[1] == 2**63 - 1
