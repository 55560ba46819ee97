"""Every public function and method, called with each class of bad argument: a wrong type, out
of range, not a number, infinite, an unknown name. Each is an InvalidArgumentError (or its
UnknownNameError) naming the argument, raised before any work, never a TypeError, OverflowError
or KeyError from deep inside."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

import kube_engine as ke
from conftest import as_list, node, pod
from kube_engine.applying import Settings
from kube_engine.arguments import shown

Call = Callable[[ke.Snapshot, Any], object]


@pytest.fixture(scope="module")
def snapshot() -> ke.Snapshot:
    return ke.Snapshot.from_bytes(
        as_list(
            node("n1", gpus=4),
            node("n2"),
            pod("a", "n1", requests={"nvidia.com/gpu": "2"}),
            pod("b", "n2", requests={"cpu": "1"}),
            pod("p", requests={"cpu": "1"}),
        )
    )


def _evaluation(s: ke.Snapshot) -> ke.Evaluation:
    return ke.evaluate(s)


# What each function is called with, but for the one argument under test.
CALLS: dict[str, Call] = {
    "schedule": lambda s, kw: ke.schedule(**{"snapshot": s, **kw}),
    "explain": lambda s, kw: ke.explain(**{"snapshot": s, "pod": "default/p", **kw}),
    "evaluate": lambda s, kw: ke.evaluate(**{"snapshot": s, **kw}),
    "rebalance": lambda s, kw: ke.rebalance(
        **{"snapshot": s, "time_limit": 1, "solver": "heuristic", **kw}
    ),
    "plan": lambda s, kw: ke.plan(**{"snapshot": s, "target": {}, **kw}),
    "budget_status": lambda s, kw: ke.budget_status(kw["snapshot"]),
    "parse_quantity": lambda s, kw: ke.parse_quantity(kw["text"]),
    "Snapshot.from_file": lambda s, kw: ke.Snapshot.from_file(**{"path": "x.json", **kw}),
    "Snapshot.from_bytes": lambda s, kw: ke.Snapshot.from_bytes(**{"data": b"{}", **kw}),
    "Snapshot.from_documents": lambda s, kw: ke.Snapshot.from_documents(**{"docs": [], **kw}),
    "Snapshot.pod_request": lambda s, kw: s.pod_request(kw["key"]),
    "Snapshot.node_allocatable": lambda s, kw: s.node_allocatable(kw["name"]),
    "Snapshot.node_labels": lambda s, kw: s.node_labels(kw["name"]),
    "Snapshot.apply": lambda s, kw: s.apply(kw["placement"]),
    "Evaluation.node_utilisation": lambda s, kw: _evaluation(s).node_utilisation(kw["resource"]),
    "Plan.table": lambda s, kw: ke.plan(s, {}).table(**kw),
    "apply": lambda s, kw: ke.apply(kw["plan"]),
    "Settings": lambda s, kw: Settings(**kw),
}

INVALID, UNKNOWN = ke.InvalidArgumentError, ke.UnknownNameError
NAN, INF = math.nan, math.inf

# (function, argument, bad value, the class raised)
CASES: list[tuple[str, str, Any, type[Exception]]] = [
    *[(f, "snapshot", v, INVALID) for f in ("schedule", "explain") for v in (None, "s.json")],
    *[(f, "snapshot", "s.json", INVALID) for f in ("evaluate", "rebalance", "plan")],
    ("budget_status", "snapshot", "s.json", INVALID),
    *[("parse_quantity", "text", v, INVALID) for v in (5, None, b"1Gi")],
    # schedule
    ("schedule", "pods", "default/p", INVALID),
    ("schedule", "pods", [1], INVALID),
    ("schedule", "pods", ["default/ghost"], UNKNOWN),
    ("schedule", "profile", 5, INVALID),
    ("schedule", "order", 5, INVALID),
    ("schedule", "order", "random", INVALID),
    *[("schedule", "threads", v, INVALID) for v in (0, -1, 1.5, True, "2", 2**40)],
    *[("schedule", "seed", v, INVALID) for v in (-1, 2**64, 1.5, True, "0", None)],
    # explain
    ("explain", "pod", 5, INVALID),
    ("explain", "pod", "default/ghost", UNKNOWN),
    ("explain", "profile", ["x"], INVALID),
    # evaluate
    ("evaluate", "placement", ["default/a"], INVALID),
    ("evaluate", "placement", {5: "n1"}, INVALID),
    ("evaluate", "placement", {"default/a": 5}, INVALID),
    ("evaluate", "placement", {"default/ghost": "n1"}, UNKNOWN),
    ("evaluate", "placement", {"default/a": "ghost"}, UNKNOWN),
    ("evaluate", "gpu_devices", "x", INVALID),
    ("evaluate", "gpu_devices", {"default/ghost": [0]}, UNKNOWN),
    # rebalance
    *[
        ("rebalance", "objective", v, INVALID)
        for v in (5, "magic", "pack=x", "pack=nan", "pack=-1", "pack=inf", "pack=0", {"pack": "x"})
    ],
    *[("rebalance", "max_moves", v, INVALID) for v in (-1, 1.5, True, "3")],
    *[("rebalance", "time_limit", v, INVALID) for v in (0, -1, NAN, INF, "1", True, None)],
    *[("rebalance", "workers", v, INVALID) for v in (0, 1.5, 2**40, True)],
    *[("rebalance", "seed", v, INVALID) for v in (-1, 2**31, 1.5)],
    *[("rebalance", "solver", v, INVALID) for v in ("magic", 5)],
    *[("rebalance", "move_cost", v, INVALID) for v in (-1, NAN, INF, "0")],
    ("rebalance", "prices", 5, INVALID),
    ("rebalance", "prices", {"ghost": 1.0}, UNKNOWN),
    *[("rebalance", "prices", {"n1": v, "n2": 1}, INVALID) for v in (-1, NAN, INF, "x")],
    ("rebalance", "price_label", 5, INVALID),
    *[
        ("rebalance", which, v, UNKNOWN if v == ["ghost"] else INVALID)
        for which in ("keep_nodes", "exclude_nodes")
        for v in ("n1", [5], ["ghost"])
    ],
    *[("rebalance", "allow_local_storage", v, INVALID) for v in (5, ["nfs"], "emptyDir")],
    *[("rebalance", f, v, INVALID) for f in ("allow_bare", "deterministic") for v in (1, "yes")],
    *[("rebalance", "cooldown", v, INVALID) for v in (-1, NAN, "1")],
    # plan
    ("plan", "target", 5, INVALID),
    ("plan", "target", {"default/a": 5}, INVALID),
    ("plan", "target", {"default/ghost": "n1"}, UNKNOWN),
    ("plan", "target", {"default/b": "ghost"}, UNKNOWN),
    ("plan", "gpu_devices", 5, INVALID),
    ("plan", "gpu_devices", {"default/a": [0, 1]}, INVALID),  # not in the target
    ("plan", "profile", 5, INVALID),
    *[
        ("plan", limit, v, INVALID)
        for limit in (
            "max_per_node",
            "max_per_namespace",
            "max_total",
            "max_per_wave",
            "max_unavailable_per_workload",
        )
        for v in (-1, 2**32, 1.5, True)
    ],
    ("plan", "max_per_wave", 0, INVALID),
    *[("plan", f, 1, INVALID) for f in ("allow_bare", "cordon")],
    ("plan", "allow_local_storage", ["nfs"], INVALID),
    *[("plan", "cooldown", v, INVALID) for v in (NAN, -1)],
    *[("plan", f, 5, INVALID) for f in ("binding_scheduler", "reason", "source")],
    # Snapshot's and Evaluation's methods
    ("Snapshot.from_file", "path", 5, INVALID),
    ("Snapshot.from_bytes", "data", "{}", INVALID),
    ("Snapshot.from_documents", "docs", "{}", INVALID),
    *[
        (f"Snapshot.from_{f}", a, v, INVALID)
        for f in ("file", "bytes", "documents")
        for a, v in (("strict", "yes"), ("max_input_bytes", 0), ("max_input_bytes", 2**64))
    ],
    ("Snapshot.pod_request", "key", 5, INVALID),
    ("Snapshot.pod_request", "key", "default/ghost", UNKNOWN),
    *[(f"Snapshot.{m}", "name", 5, INVALID) for m in ("node_allocatable", "node_labels")],
    *[(f"Snapshot.{m}", "name", "ghost", UNKNOWN) for m in ("node_allocatable", "node_labels")],
    ("Snapshot.apply", "placement", "x", INVALID),
    ("Evaluation.node_utilisation", "resource", 5, INVALID),
    ("Evaluation.node_utilisation", "resource", "magic", UNKNOWN),
    *[("Plan.table", "limit", v, INVALID) for v in (-1, 1.5)],
    # carrying a plan out
    ("apply", "plan", {"waves": []}, INVALID),
    ("Settings", "mode", "yes", INVALID),
    *[("Settings", "qps", v, INVALID) for v in (0, NAN, INF)],
    *[("Settings", "timeout", v, INVALID) for v in (-1, INF, 1e300)],
    *[("Settings", "burst", v, INVALID) for v in (0, 2**40, 1.5, True)],
    *[("Settings", f, 1, INVALID) for f in ("events", "keep_cordoned")],
    ("Settings", "lease_namespace", 5, INVALID),
]


@pytest.mark.parametrize(
    ("function", "argument", "value", "raised"),
    CASES,
    ids=[f"{f}-{a}={shown(v)[:30]}" for f, a, v, _ in CASES],
)
def test_a_bad_argument_is_an_invalid_argument_error_naming_it(
    snapshot: ke.Snapshot, function: str, argument: str, value: Any, raised: type[Exception]
) -> None:
    with pytest.raises(ke.InvalidArgumentError) as info:
        CALLS[function](snapshot, {argument: value})
    e = info.value
    assert type(e) is raised, e
    assert isinstance(e, ke.KubeEngineError) and isinstance(e, ValueError)
    assert e.argument == argument, e
    if raised is INVALID:
        assert argument in str(e), e


def test_a_long_value_is_cut_in_the_message(snapshot: ke.Snapshot) -> None:
    with pytest.raises(ke.InvalidArgumentError) as info:
        ke.schedule(snapshot, order="x" * 10_000_000)
    assert len(str(info.value)) < 300
    with pytest.raises(ke.InvalidArgumentError) as info:
        ke.evaluate(snapshot, {"default/a": "x" * 10_000_000})
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ([63], 'gpu_devices["default/a"]: 1 device(s) given, the pod uses 2'),
        ([0, 63], 'gpu_devices["default/a"]: node "n1": device 63 does not exist (node has 4)'),
        ([0, 2**40], 'node "n1": device 1099511627776 does not exist (node has 4)'),
        ([1, 1], 'gpu_devices["default/a"]: node "n1": device 1 listed twice'),
        ([0, -1], 'gpu_devices["default/a"]: expected a list of device indices, got [0, -1]'),
        ([0, 2**70], "expected a list of device indices, got [0, 1180591620717411303424]"),
        ("01", "expected a list of device indices, got '01'"),
    ],
)
def test_gpu_devices_are_the_pods_count_of_distinct_devices_its_node_has(
    snapshot: ke.Snapshot, devices: Any, message: str
) -> None:
    # [63] on a 4-GPU node indexed past the node's devices (a panic) before it was checked.
    with pytest.raises(ke.InvalidArgumentError, match=None) as info:
        ke.evaluate(snapshot, {"default/a": "n1"}, {"default/a": devices})
    assert message in str(info.value)
    assert info.value.argument == "gpu_devices"
    with pytest.raises(ke.InvalidArgumentError) as info:
        ke.plan(snapshot, {"default/a": "n1"}, gpu_devices={"default/a": devices})
    assert message in str(info.value)


def test_gpu_devices_only_for_pods_the_placement_moves(snapshot: ke.Snapshot) -> None:
    with pytest.raises(ke.InvalidArgumentError, match="placement does not move the pod"):
        ke.evaluate(snapshot, gpu_devices={"default/a": [0, 1]})
    with pytest.raises(ke.InvalidArgumentError, match="placement does not move the pod"):
        ke.evaluate(snapshot, {"default/a": None}, {"default/a": [0, 1]})
    ev = ke.evaluate(snapshot, {"default/a": "n1"}, {"default/a": [2, 3]})
    assert ev.gpu["allocated_milli"] == 2000


def test_values_beyond_what_matters_are_taken(snapshot: ke.Snapshot) -> None:
    # More moves than pods is no limit; more threads than cores start no more than the cores.
    result = ke.rebalance(snapshot, max_moves=2**70, time_limit=1, solver="heuristic")
    assert result.max_moves == snapshot.num_pods
    placement = ke.schedule(snapshot, threads=2**16, seed=2**64 - 1)
    assert set(placement.assignments) == {"default/p"}
    assert ke.plan(snapshot, {}, cooldown=math.inf).waves == []
    pending = {"default/p": "why"}
    assert set(ke.schedule(snapshot, pods=pending.keys()).assignments) == {"default/p"}
