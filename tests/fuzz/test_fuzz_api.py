"""The public API on generated snapshots: ``schedule``, ``evaluate``, ``explain`` and
``rebalance`` finish with a result or a ``KubeEngineError`` (never an ``InternalError``), and
what they return keeps the rules a placement must keep.

On valid clusters: every node that takes a scheduled pod still fits, for each resource a placed
pod requests, everything bound to it (NodeResourcesFit checked it before each bind); evaluating
the schedule's placement shows no over-committed resource or GPU device that was not there
before, and neither does the rebalancer's plan.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given

import kube_engine as ke
from fuzz_objects import clusters, document, hostile_clusters
from fuzz_support import check_error, examples, over_capacity, walk

TERMINAL = ("Succeeded", "Failed")

pytestmark = pytest.mark.slow


def requested(snap: ke.Snapshot, placement: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per node, the requests of its active pods: those bound, and those ``placement`` adds."""
    where = dict(zip(snap.pod_names(), snap.pod_nodes(), strict=True)) | placement
    phases = dict(zip(snap.pod_names(), snap.pod_phases(), strict=True))
    used: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pod, node in where.items():
        if node is not None and phases[pod] not in TERMINAL:
            for resource, amount in snap.pod_request(pod)["resources"].items():
                used[node][resource] += amount
    return used


@examples(25)
@given(clusters())
def test_the_api_keeps_capacity_on_valid_clusters(items: list[dict]) -> None:
    snap = ke.Snapshot.from_documents([document(items)])
    result = walk(snap)
    assignments = dict(result.placement.assignments)
    used = requested(snap, assignments)
    for pod, node in assignments.items():
        allocatable = snap.node_allocatable(node)["resources"]
        for resource, amount in snap.pod_request(pod)["resources"].items():
            if amount > 0:
                assert used[node][resource] <= allocatable.get(resource, 0), (pod, node, resource)
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
