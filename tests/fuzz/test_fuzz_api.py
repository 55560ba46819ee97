"""The public API on generated snapshots: ``schedule``, ``evaluate``, ``explain`` and
``rebalance`` finish with a result or a ``KubeEngineError`` (never an ``InternalError``), and
what they return keeps the rules a placement must keep.

On valid clusters: every node that takes a scheduled pod still fits, for each resource a placed
pod requests, everything bound to it (NodeResourcesFit checked it before each bind); evaluating
the schedule's placement shows no over-committed resource or GPU device that was not there
before, and neither does the rebalancer's plan. Odd arguments (out of range, wrong types,
unknown names) end in a result or a ``KubeEngineError`` too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kube_engine as ke
from conftest import as_list, node, owned, pod
from fuzz_objects import clusters, document, hostile_clusters
from fuzz_support import check_error, examples, over_capacity, walk

TERMINAL = ("Succeeded", "Failed")

pytestmark = pytest.mark.slow


def requested(snap: ke.Snapshot, placement: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per node, the requests of its active pods: those bound, and those ``placement`` adds."""
    where = dict(zip(snap.pod_names(), snap.pod_nodes(), strict=True)) | placement
    phases = dict(zip(snap.pod_names(), snap.pod_phases(), strict=True))
    used: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, on in where.items():
        if on is not None and phases[name] not in TERMINAL:
            for resource, amount in snap.pod_request(name)["resources"].items():
                used[on][resource] += amount
    return used


@examples(25)
@given(clusters())
def test_the_api_keeps_capacity_on_valid_clusters(items: list[dict]) -> None:
    snap = ke.Snapshot.from_documents([document(items)])
    result = walk(snap)
    assignments = dict(result.placement.assignments)
    used = requested(snap, assignments)
    for name, on in assignments.items():
        allocatable = snap.node_allocatable(on)["resources"]
        for resource, amount in snap.pod_request(name)["resources"].items():
            if amount > 0:
                assert used[on][resource] <= allocatable.get(resource, 0), (name, on, resource)
    before = over_capacity(result.before)
    assert over_capacity(result.scheduled) <= before
    devices = {m.pod: list(m.gpu_devices) for m in result.rebalanced.moves}
    after = ke.evaluate(snap, dict(result.rebalanced.target), devices)
    assert over_capacity(after) <= before


@examples(40)
@given(hostile_clusters())
def test_the_api_on_hostile_clusters_ends_in_a_result_or_a_refusal(items: list[dict]) -> None:
    try:
        snap = ke.Snapshot.from_documents([document(items)])
        walk(snap, solver="heuristic")
    except Exception as e:
        check_error(e)


# A small cluster with GPUs and a pending pod, for the argument properties.
ARGUMENT_CLUSTER = [
    node("gpu-a", gpus=4, model="T4"),
    node("cpu-b"),
    owned(pod("bound", "gpu-a", requests={"cpu": "1", "nvidia.com/gpu": "1"})),
    owned(pod("waiting", requests={"cpu": "500m"})),
]
ODD_NUMBERS = st.sampled_from(
    [0, 1, -1, 2, 1.5, 2**31, 2**63, 2**70, -(2**70), float("inf"), float("-inf"), float("nan"),
     "1", None, True]
)  # fmt: skip
ODD_NAMES = st.sampled_from(["default/bound", "default/waiting", "gpu-a", "", "nope", "a/b/c", 7])


def _argument_snapshot() -> ke.Snapshot:
    return ke.Snapshot.from_documents([as_list(*ARGUMENT_CLUSTER)])


def refused_or_done(call: Callable[[], Any]) -> Any:
    """What ``call`` returns, or None when it refused its arguments as it should."""
    try:
        return call()
    except Exception as e:
        check_error(e)
        return None


@examples(60)
@given(
    st.one_of(st.none(), st.lists(ODD_NAMES, max_size=2)),
    st.sampled_from(["queue", "input", "dominant-share", "", "nope", None]),
    ODD_NUMBERS,
    st.sampled_from([None, 1, 2, 0, -1, 1.5, "2"]),  # never a huge count: it would start threads
)
def test_schedule_arguments_end_in_a_result_or_a_refusal(
    pods: list[Any] | None, order: Any, seed: Any, threads: Any
) -> None:
    snap = _argument_snapshot()
    refused_or_done(lambda: ke.schedule(snap, pods, order=order, seed=seed, threads=threads))


@examples(60)
@given(
    st.dictionaries(ODD_NAMES, st.one_of(st.none(), ODD_NAMES), max_size=2),
    st.dictionaries(ODD_NAMES, st.lists(ODD_NUMBERS | st.integers(-5, 70), max_size=3), max_size=2),
    ODD_NAMES,
)
def test_evaluate_and_explain_arguments_end_in_a_result_or_a_refusal(
    placement: dict[Any, Any], gpu_devices: dict[Any, Any], pod_name: Any
) -> None:
    snap = _argument_snapshot()
    refused_or_done(lambda: ke.evaluate(snap, placement, gpu_devices))
    refused_or_done(lambda: ke.explain(snap, pod_name))


@examples(40)
@given(
    st.sampled_from(
        ["pack", "balance", "defrag", "pack=1,balance=0.5", "pack=-1", "", "x=1", "pack=1e308"]
    ),
    ODD_NUMBERS,
    # Never a huge limit: the search may use all of what it is given.
    st.sampled_from([0.2, 0, -1, float("inf"), float("nan"), 1e-9, "1", None]),
    ODD_NUMBERS,
    ODD_NUMBERS,
    st.sampled_from([0.0, -1.0, float("inf"), float("nan"), 1.5]),
    st.lists(ODD_NAMES, max_size=2),
)
def test_rebalance_arguments_end_in_a_result_or_a_refusal(
    objective: str,
    max_moves: Any,
    time_limit: Any,
    workers: Any,
    seed: Any,
    move_cost: float,
    keep_nodes: list[Any],
) -> None:
    snap = _argument_snapshot()
    result = refused_or_done(
        lambda: ke.rebalance(
            snap,
            objective,
            max_moves,
            time_limit=time_limit,
            workers=workers,
            seed=seed,
            move_cost=move_cost,
            keep_nodes=keep_nodes,
            allow_bare=True,
        )
    )
    if result is not None:
        assert math.isfinite(result.value) and math.isfinite(result.bound), result.status
