"""The greedy starts for balance and defrag (``greedy_start``, in the Rust core): golden outputs,
the time limit, the arguments.

The golden outputs were recorded with the Python implementation these starts replaced
(``python/kube_engine/rebalancing/greedy.py``, removed with the move; see its history) on the
openb example and on the small synthetic cluster of the other rebalance tests: how many
moves, a digest of the moves (pod, from, to, GPU devices, in order) and the objective value the
start measured, bit for bit. The Rust starts repeat the Python arithmetic operation for
operation, so a difference is a bug, or a changed input (the generator, the example).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import pytest

from conftest import EXAMPLE
from kube_engine import Snapshot, rebalance
from kube_engine._core import (
    Evaluation,
    InvalidArgumentError,
    RebalanceSpace,
    drain_plan,
    evaluate,
    greedy_start,
    rebalance_space,
)
from kube_engine.rebalancing.objective import (
    Allocatable,
    Scorer,
    node_prices,
    parse_objective,
    terms_of,
)
from kube_engine.rebalancing.plan import greedy_start_for
from kube_engine.records import GreedyStart

Cluster = tuple[Snapshot, RebalanceSpace, Evaluation, Allocatable]

# Per case: the cluster, the objective, its move cost, whether nodes carry prices, the start,
# max_moves (-: none); what the Python start found: moves, their digest, value.hex().
GOLDEN = """
data  objective                   cost   price start   max moves digest       value
openb balance                     0      no    balance -   797   d830600550df 0x1.2f8f6d09d2740p+0
openb balance                     0      no    balance 259 259   1883828fabbf 0x1.39bd18eaf297ep+0
openb defrag                      0      no    defrag  -   521   42ef98ba2e45 0x1.af20000000000p+11
openb defrag                      0      no    defrag  259 259   5c48f8c15b7c 0x1.cf60000000000p+11
openb pack=0.2,balance=1          0.0001 yes   balance -   32    528bedc1a858 0x1.32e5679780ba7p+0
openb pack=1,balance=0.5,defrag=1 0.001  yes   defrag  -   5     ac91f3aeb4f5 0x1.3fdddf60cf1acp+1
synth balance                     0      no    balance -   95    207dabbcf2f9 0x1.4de1985917c9ap-1
synth balance                     0      no    balance 10  10    4b1cd03d54c8 0x1.d4599763c0930p-1
synth defrag                      0      no    defrag  -   4     4d89aa0f9727 0x1.3000000000000p+5
synth balance=1,defrag=2          0      no    balance 20  20    95716ed65fe6 0x1.5a1aa52ba9f95p+1
synth balance=1,defrag=2          0      no    defrag  20  4     4d89aa0f9727 0x1.67820b51f9ed9p+1
"""
CASES = [line.split() for line in GOLDEN.strip().splitlines()[1:]]


@pytest.fixture(scope="module")
def clusters() -> dict[str, Cluster]:
    from kube_engine.bench.synthetic import generate_cluster_json

    data: list[tuple[str, Snapshot, dict[str, Any]]] = [
        ("openb", Snapshot.from_file(EXAMPLE), {"allow_bare": True}),
        (
            "synth",
            Snapshot.from_bytes(generate_cluster_json(60, 480, 2)),
            {"allow_local_storage": True},
        ),
    ]
    out = {}
    for name, snap, allow in data:
        before = evaluate(snap)
        out[name] = (snap, rebalance_space(snap, **allow), before, Allocatable.of(snap, before))
    return out


def start(
    cluster: Cluster,
    term: Literal["balance", "defrag"],
    objective: str,
    move_cost: float = 0.0,
    priced: bool = False,
    **limits: Any,
) -> GreedyStart:
    snap, space, before, allocatable = cluster
    # Prices that differ from node to node, so that the order of their sums matters.
    table = {n: 1.0 + (i % 7) / 4 for i, n in enumerate(snap.node_names())} if priced else None
    prices = node_prices(snap, table)
    scorer = Scorer.of(parse_objective(objective), move_cost, terms_of(before, snap, prices))
    return greedy_start_for(space, term, scorer, allocatable, prices=prices, **limits)


def digest(found: GreedyStart) -> str:
    moves = [[m["pod"], m["from"], m["to"], m["gpu_devices"]] for m in found["moves"]]
    return hashlib.sha256(json.dumps(moves).encode()).hexdigest()[:12]


@pytest.mark.parametrize("case", CASES, ids=["-".join(c[:6]) for c in CASES])
def test_the_starts_find_what_the_python_starts_found(
    clusters: dict[str, Cluster], case: list[str]
) -> None:
    cluster, objective, cost, priced, term, limit, *golden = case
    found = start(
        clusters[cluster],
        "balance" if term == "balance" else "defrag",
        objective,
        float(cost),
        priced == "yes",
        max_moves=None if limit == "-" else int(limit),
    )
    assert [str(len(found["moves"])), digest(found), found["value"].hex()] == golden
    assert found["complete"]


def test_a_time_limit_stops_a_start_with_its_best_so_far(clusters: dict[str, Cluster]) -> None:
    openb = clusters["openb"]
    whole = start(openb, "balance", "balance")
    assert start(openb, "balance", "balance", time_limit=3600) == whole
    cut = start(openb, "balance", "balance", time_limit=0)
    assert cut["moves"] == [] and not cut["complete"]
    assert cut["value"] > whole["value"]
    cut = start(openb, "defrag", "defrag", time_limit=0)
    assert cut["moves"] == [] and not cut["complete"]
    # The rebalance's time limit counts the starts' time (unless deterministic).
    snap = openb[0]
    args: dict[str, Any] = {"solver": "heuristic", "allow_bare": True, "time_limit": 1e-9}
    assert rebalance(snap, "balance", **args).moves == []
    assert len(rebalance(snap, "balance", deterministic=True, **args).moves) == len(whole["moves"])


def test_a_time_limit_stops_the_packing_start_with_the_nodes_emptied_so_far(
    clusters: dict[str, Cluster],
) -> None:
    snap = clusters["openb"][0]
    whole = drain_plan(snap, allow_bare=True)
    assert whole["complete"] and whole["freed"]
    assert drain_plan(snap, allow_bare=True, time_limit=3600) == whole
    cut = drain_plan(snap, allow_bare=True, time_limit=0)
    assert cut == {"moves": [], "freed": [], "complete": False}
    with pytest.raises(InvalidArgumentError, match="time_limit"):
        drain_plan(snap, time_limit=-1)
    # rebalance() gives the packing start what is left of its limit.
    args: dict[str, Any] = {"solver": "heuristic", "allow_bare": True, "time_limit": 1e-9}
    assert rebalance(snap, "pack", **args).moves == []
    packed = rebalance(snap, "pack", deterministic=True, **args)
    assert len(packed.nodes_freed) >= len(whole["freed"])


def test_greedy_start_checks_its_arguments(clusters: dict[str, Cluster]) -> None:
    snap, space, _, allocatable = clusters["synth"]
    good: dict[str, Any] = {
        "weights": {"balance": 1.0},
        "scale": {"balance": 1.0},
        "allocatable": allocatable.total,
        "balanced": allocatable.balanced,
    }
    assert greedy_start(space, "balance", **good)["complete"]
    with pytest.raises(ValueError, match='term must be "balance" or "defrag"'):
        greedy_start(space, "pack", **good)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time_limit must be >= 0"):
        greedy_start(space, "balance", **good, time_limit=-1)
    with pytest.raises(ValueError, match="prices must give a price per node"):
        greedy_start(space, "balance", **good, prices=[1.0])
    with pytest.raises(ValueError, match='weights: unknown term "spread"'):
        greedy_start(space, "balance", **{**good, "weights": {"spread": 1.0}})
    with pytest.raises(ValueError, match='scale: no value for "balance"'):
        greedy_start(space, "balance", **{**good, "scale": {}})
    with pytest.raises(ValueError, match=r"balanced\[\"memory\"\] must give a value per node"):
        greedy_start(space, "balance", **{**good, "balanced": {"cpu": [0] * snap.num_nodes}})
