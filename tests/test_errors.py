"""The exception classes core errors become: each kind its own class, with structured fields, and
compatible with the built-in classes callers caught before."""

from __future__ import annotations

from typing import Any

import pytest

import kube_engine as ke
from conftest import as_list, node, pod


@pytest.fixture(scope="module")
def snapshot() -> ke.Snapshot:
    return ke.Snapshot.from_bytes(as_list(node("n1"), pod("a", "n1"), pod("b")))


def test_invalid_arguments_are_value_errors_naming_the_argument(snapshot: ke.Snapshot) -> None:
    with pytest.raises(ke.InvalidArgumentError) as info:
        ke.schedule(snapshot, order="random")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ke.KubeEngineError)
    assert info.value.argument == "order"
    assert str(info.value) == 'unknown order "random" (queue, dominant-share or input)'


def test_unknown_names_are_key_errors_too(snapshot: ke.Snapshot) -> None:
    with pytest.raises(KeyError) as info:
        ke.evaluate(snapshot, {"default/ghost": "n1"})
    assert isinstance(info.value, ke.UnknownNameError)
    assert isinstance(info.value, ke.InvalidArgumentError)
    assert info.value.argument == "placement"
    # A KeyError's text is its key's repr, as before.
    assert str(info.value) == repr('unknown pod "default/ghost"')
    with pytest.raises(ke.UnknownNameError) as info:
        snapshot.node_labels("ghost")
    assert str(info.value) == "'ghost'"


def test_configuration_errors_name_the_plugin_and_where(snapshot: ke.Snapshot) -> None:
    args: dict[str, Any] = {"hardPodAffinityWeight": 101}
    config = {"profiles": [{"pluginConfig": [{"name": "InterPodAffinity", "args": args}]}]}
    with pytest.raises(ke.ConfigError) as info:
        ke.schedule(snapshot, profile=config)
    e = info.value
    assert e.plugin == "InterPodAffinity"
    assert e.path == (
        'profile "default-scheduler": pluginConfig InterPodAffinity: hardPodAffinityWeight'
    )
    assert str(e) == f"{e.path}: Invalid value: 101: not in valid range [0, 100]"
    with pytest.raises(ke.ConfigError) as info:
        ke.schedule(snapshot, profile={"kind": "Deployment"})
    assert (info.value.plugin, info.value.path) == (None, None)
    # Raised from Python, the fields are there too, unknown.
    assert (ke.ConfigError("x").plugin, ke.ConfigError("x").path) == (None, None)


def test_a_bare_quantity_is_a_quantity_error_and_one_in_a_snapshot_a_snapshot_error() -> None:
    with pytest.raises(ke.QuantityError, match='invalid quantity "1Kb"'):
        ke.parse_quantity("1Kb")
    with pytest.raises(ke.SnapshotError) as info:
        ke.Snapshot.from_bytes(as_list(node("n1", cpu="1Kb")))
    assert info.value.path == "items[0].status.allocatable.cpu"
