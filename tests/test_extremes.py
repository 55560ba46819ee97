"""Numbers at the edge: a snapshot's totals are limited to 2^62 per resource; below that, every
entry point computes without overflow, CP-SAT gets only models it accepts, and no plan's value
is infinite or NaN."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ortools.sat.python import cp_model

from conftest import as_list, node, owned, pod
from kube_engine import (
    InvalidArgumentError,
    Snapshot,
    SnapshotError,
    evaluate,
    rebalance,
    schedule,
)
from kube_engine._core import vbp_check
from kube_engine.rebalancing.lns import CAPACITY_MAGNITUDE, capacity_row

LIMIT = 2**62
FAST: dict[str, Any] = {"time_limit": 2, "workers": 1, "seed": 0}


def web(name: str, node_name: str | None, cpu: str, memory: str) -> dict[str, Any]:
    return owned(pod(name, node_name, requests={"cpu": cpu, "memory": memory}))


def test_two_nodes_of_4ei_are_refused_naming_the_second() -> None:
    data = as_list(node("n1", memory="4Ei"), node("n2", memory="4Ei"))
    with pytest.raises(SnapshotError) as e:
        Snapshot.from_bytes(data)
    assert e.value.path == "items[1]"
    assert "more than 4Ei (2^62) memory in all" in str(e.value)


def test_pods_of_5e15_cpu_are_refused() -> None:
    data = as_list(
        node("n1", cpu="4e15"),
        pod("a", "n1", requests={"cpu": "5e15"}),
        pod("b", "n1", requests={"cpu": "5e15"}),
    )
    with pytest.raises(SnapshotError) as e:
        Snapshot.from_bytes(data)
    assert e.value.path == "items[1]"
    assert "request more than 4611686018427387904m (2^62 milli-cores) cpu" in str(e.value)


def test_totals_at_the_limit_schedule_and_evaluate() -> None:
    half = f"{LIMIT // 2}m"
    quarter = f"{LIMIT // 4}m"
    s = Snapshot.from_bytes(
        as_list(
            node("n1", cpu=half, memory="2Ei"),
            node("n2", cpu=half, memory="2Ei"),
            web("a", "n1", quarter, "1Ei"),
            web("b", "n1", quarter, "1Ei"),
            web("c", None, quarter, "1Ei"),
            web("d", None, quarter, "1Ei"),
        )
    )
    placement = schedule(s)
    assert placement.assignments == {"default/c": "n2", "default/d": "n2"}
    ev = evaluate(s, dict(placement.assignments.items()))
    assert ev.resources["memory"]["requested"] == LIMIT
    assert ev.resources["memory"]["utilisation"] == 1.0
    assert ev.violation_counts() == {}


def test_gpu_devices_the_node_lacks_are_an_argument_error() -> None:
    s = Snapshot.from_bytes(
        as_list(
            node("n1", gpus=4),
            pod("p", "n1", requests={"nvidia.com/gpu": "1"}),
        )
    )
    with pytest.raises(InvalidArgumentError) as e:
        evaluate(s, {"default/p": "n1"}, gpu_devices={"default/p": [63]})
    assert e.value.argument == "gpu_devices"
    assert (
        str(e.value) == 'gpu_devices["default/p"]: node "n1": device 63 does not exist (node has 4)'
    )
    assert evaluate(s, {"default/p": "n1"}, gpu_devices={"default/p": [3]}).violation_counts() == {}


def test_capacity_rows_stay_small_and_never_overfill() -> None:
    small = [3, 5, 7]
    assert capacity_row(small, 10) == (small, 10)
    # Multiples of 2^56: divided exactly.
    assert capacity_row([2**61, 2**61], 2**61 + 2**56) == ([32, 32], 33)
    # Room for all of them is room for their sum.
    assert capacity_row([2**61, 2**61], 2**62) == ([1, 1], 2)
    # Nothing in common: requests up, room down, so what fits in the model fits in fact.
    demands = [2**61 + 1, 2**60 + 3, 7]
    coeffs, room = capacity_row(demands, 2**62 - 1)
    assert sum(coeffs) + abs(room) <= CAPACITY_MAGNITUDE
    for keep in range(1, 8):
        chosen = [i for i in range(3) if keep >> i & 1]
        if sum(coeffs[i] for i in chosen) <= room:
            assert sum(demands[i] for i in chosen) <= 2**62 - 1
    # An over-committed node: negative room stays negative.
    assert capacity_row([2**61], -(2**61))[1] < 0


@pytest.fixture
def no_invalid_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every CP-SAT status of the test; MODEL_INVALID fails it."""
    statuses: list[str] = []
    solve = cp_model.CpSolver.solve

    def checked(self: cp_model.CpSolver, model: cp_model.CpModel, *args: Any) -> Any:
        status = solve(self, model, *args)
        statuses.append(self.status_name(status))
        assert status != cp_model.MODEL_INVALID, model.validate()
        return status

    monkeypatch.setattr(cp_model.CpSolver, "solve", checked)
    yield statuses


# One pod's worth of room on a tiny node holding two pods that ask for half of everything; a
# node that can take one of them; one that can take nothing.
OVER_COMMITTED = as_list(
    node("n0", cpu="1m", memory="1"),
    node("n1", cpu=f"{LIMIT - 1}m", memory=str(LIMIT - 1)),
    node("n2", cpu="0", memory="0"),
    web("a", "n0", f"{LIMIT // 2}m", str(LIMIT // 2)),
    web("b", "n0", f"{LIMIT // 2}m", str(LIMIT // 2)),
)

# Three tiny nodes over-committed 2^60-fold, and an empty one as small.
TINY_NODES = as_list(
    *(node(f"n{i}", cpu="1m", memory="1") for i in range(4)),
    *(web(f"p{i}", f"n{i}", f"{2**60}m", str(2**60)) for i in range(3)),
)


@pytest.mark.parametrize("data", [OVER_COMMITTED, TINY_NODES], ids=["over-committed", "tiny"])
@pytest.mark.parametrize("objective", ["pack", "balance", "pack=1,balance=1"])
def test_cpsat_takes_quantities_at_the_limit(
    data: bytes, objective: str, no_invalid_models: list[str]
) -> None:
    s = Snapshot.from_bytes(data)
    plan = rebalance(s, objective, **FAST)
    assert no_invalid_models, "CP-SAT ran"
    assert plan.status in ("OPTIMAL", "FEASIBLE")
    # Moving a pod off the over-committed node to the big one only ever helps balance.
    if objective == "balance" and data is OVER_COMMITTED:
        assert plan.value < plan.terms_before["balance"]


def priced(**prices: float) -> Snapshot:
    return Snapshot.from_bytes(
        as_list(
            *(node(n) for n in prices),
            *(web(f"w{i}", n, "1", "1Gi") for i, n in enumerate(prices)),
        )
    )


@pytest.mark.parametrize("solver", ["heuristic", "cpsat"])
def test_huge_prices_give_finite_values(solver: str) -> None:
    prices = {"n0": 1e307, "n1": 1e307, "n2": 1e307}
    plan = rebalance(priced(**prices), "pack", prices=prices, solver=solver, **FAST)
    assert plan.value == 1e307
    assert 0 < plan.bound <= plan.value
    assert plan.status in ("OPTIMAL", "FEASIBLE")


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"objective": "pack", "prices": {"n0": 1e308, "n1": 1e308, "n2": 1e308}}, "prices"),
        (
            {
                "objective": {"pack": 1e300, "balance": 1},
                "prices": {"n0": 1e10, "n1": 1e10, "n2": 1e10},
            },
            "objective",
        ),
        ({"objective": {"pack": 1, "balance": 1e308}}, "objective"),
        ({"objective": "pack", "move_cost": 1e308}, "move_cost"),
    ],
)
def test_values_past_the_largest_float_are_refused(options: dict[str, Any], argument: str) -> None:
    s = priced(n0=1.0, n1=1.0, n2=1.0)
    with pytest.raises(InvalidArgumentError) as e:
        rebalance(s, **options, **FAST)
    assert e.value.argument == argument


def test_vector_bin_packing_follows_the_same_limit() -> None:
    # Three items of 2^62 in one bin overflowed the bin's load; now the instance is refused.
    with pytest.raises(InvalidArgumentError, match=r"^capacity\[0\]: 9223372036854775807"):
        vbp_check([[2**62]] * 3, [2**63 - 1], [0, 0, 0])
    with pytest.raises(InvalidArgumentError, match="item 4 dimension 0: the sizes up to"):
        vbp_check([[2**60]] * 5, [2**62], [0, 0, 0, 0, 1])
    assert vbp_check([[2**60]] * 4, [2**62], [0, 0, 0, 0]) == 1
    # A far-off bin index costs nothing (it allocated a row per index up to it).
    assert vbp_check([[1], [1]], [1], [2**40, 0]) == 2
