"""The Kubernetes API emulator's semantics matrix: one test per behaviour an applier relies on,
each through the real ``kubernetes`` client (CoreV1Api, PolicyV1Api, CoordinationV1Api,
EventsV1Api) built from a kubeconfig the emulator wrote.

Each row of the matrix, then the test that holds it:

1.  Eviction (policy/v1 Eviction on pods/{name}/eviction)
    201, the pod deleted, the covering PDB's budget spent and the pod in disruptedPods
        test_eviction_deletes_the_pod_and_spends_the_budget
    graceful deletion: deletionTimestamp, DisruptionTarget, gone after the delay
        test_eviction_with_graceful_deletion
    429 without Retry-After when disruptionsAllowed is 0 (cause DisruptionBudget)
        test_eviction_blocked_by_an_exhausted_budget
    429 with Retry-After: 10 while the status lags its generation (or is missing)
        test_eviction_blocked_by_a_stale_budget
    an injected 429 with Retry-After: 0 (header and details.retryAfterSeconds)
        test_injected_429_with_retry_after_zero
    500 when several PDBs select the pod
        test_eviction_with_two_budgets_is_a_500
    Pending, Succeeded, Failed, terminating pods: no budget check, no budget spent
        test_pods_that_disrupt_nothing_skip_the_budget
    unready pods: free when the budget is healthy or AlwaysAllow, guarded otherwise
        test_unready_pod_eviction
    dryRun=All (query or deleteOptions): every check, the same answer, nothing persisted
        test_dry_run_eviction_persists_nothing
    409 on a UID precondition (the pod replaced by one of the same name), 404
        test_eviction_uid_precondition_and_missing_pod
    403 in a terminating namespace
        test_eviction_in_a_terminating_namespace
2.  Binding: 201 Status (the client raises ValueError), 409 bound / uid, 404
        test_binding_and_its_conflicts
3.  Node patches: strategic merge, merge, JSON patch; no-op keeps the version; 415
        test_node_patches_in_every_format
    PUT and PATCH with a stale resourceVersion: 409; unconditional PUT
        test_optimistic_concurrency
    the status subresource; pod spec immutability (422)
        test_status_subresource_and_pod_immutability
    create with generateName; 409 AlreadyExists (generated and given names)
        test_create_with_generate_name
    DELETE with uid and resourceVersion preconditions
        test_delete_with_preconditions
    dryRun=All on create, patch, update, delete
        test_dry_run_writes_persist_nothing
4.  fieldSelector (spec.nodeName=/!=, status.phase, metadata.name), labelSelector !=,
    notin; pagination; 410 on an expired continue token
        test_selectors_and_pagination
5.  Watch from a resourceVersion, live changes, all namespaces, initial ADDED
        test_watch_streams_changes_after_a_resource_version
    watch with label and field selectors (entering ADDED, leaving DELETED)
        test_watch_with_selectors
    watch=1 over chunks, BOOKMARK events, 410 for a compacted resourceVersion
        test_watch_bookmarks_and_expiry
6.  Leases: create (409 twice), get, update (409 when stale), delete
        test_lease_lock
7.  Events: core v1 and events.k8s.io/v1, stored and listable by field
        test_events_are_stored_and_listable
8.  RBAC: 403 with upstream's wording, subresources, watch vs list, wildcards
        test_rbac_forbids_what_the_rules_do_not_allow
9.  ReplicaSet recreation: generateName <rs>-, new UID, template, Pending
        test_replicaset_pods_come_back_under_a_new_name
    StatefulSet recreation: same name, new UID, after the recreate delay
        test_statefulset_pods_come_back_under_their_name
    kubelet: bound Pending pods Running and Ready; the unready switch
        test_kubelet_starts_bound_pods
    disruption controller: expected, desired (percentages up), healthy, allowed
        test_disruption_controller_status
    disruption controller: observedGeneration, disruptedPods cleanup
        test_disruption_controller_follows_generation_and_evictions
    default scheduler: the reference scheduler's placements, cordons, other schedulers
        test_default_scheduler_binds_like_the_reference
    all of them on a background thread, through evictions
        test_background_controllers_end_to_end
10. Seeded random faults (429/409/500/slow), scoped by path
        test_random_faults_are_seeded_and_scoped
    an answer lost after serving; hooks replacing or deleting a pod mid-plan
        test_faults_after_serving_and_hooks
11. The record: evictions, bindings, node writes (above) and each PDB's lows
        test_record_of_pdb_minimums
"""

# The client's models declare every field Optional; the tests read fields the server always
# sets, and a None there fails the test anyway.
# mypy: disable-error-code="union-attr"

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import kubernetes.client as k8s
import kubernetes.config
import kubernetes.watch
import pytest
import urllib3

import reference_scheduler
from k8s_emulator import (
    BINDING_PATH,
    EVENTS,
    EVENTS_V1,
    EVICTION_PATH,
    LEASES,
    NODES,
    PDBS,
    PODS,
    KubeEmulator,
    node,
    pdb,
    pod,
)

JSON = dict[str, Any]
NS = "shop"
RS = ("ReplicaSet", "web-7d9f")


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxies, no in-cluster detection, no user kubeconfig leaking into a test."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        yield emulator


@dataclass
class Clients:
    core: k8s.CoreV1Api
    policy: k8s.PolicyV1Api
    coordination: k8s.CoordinationV1Api
    events: k8s.EventsV1Api


def client_for(kubeconfig: Path) -> k8s.ApiClient:
    """An ApiClient of its own for a kubeconfig (the global configuration is left alone)."""
    load = kubernetes.config.new_client_from_config
    client: k8s.ApiClient = load(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), persist_config=False
    )
    return client


def watch(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Generator[JSON, None, None]:
    """kubernetes.watch.Watch().stream(func, ...): the client's own watch loop."""
    watcher = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
    events: Generator[JSON, None, None]
    events = watcher.stream(func, *args, **kwargs)  # type: ignore[no-untyped-call]
    return events


@pytest.fixture
def api(emu: KubeEmulator, tmp_path: Path) -> Iterator[Clients]:
    with client_for(emu.write_kubeconfig(tmp_path / "kubeconfig")) as client:
        yield Clients(
            k8s.CoreV1Api(client),
            k8s.PolicyV1Api(client),
            k8s.CoordinationV1Api(client),
            k8s.EventsV1Api(client),
        )


def refused(call: Callable[[], object]) -> tuple[int, JSON, Any]:
    """The status, Status body and headers of a call that must fail."""
    with pytest.raises(k8s.ApiException) as err:
        call()
    return err.value.status, json.loads(err.value.body or "null"), err.value.headers


def web(
    emu: KubeEmulator,
    *,
    replicas: int = 3,
    allowed: int | None = 2,
    min_available: int | str | None = 1,
    owner: tuple[str, str] = RS,
) -> None:
    """Pods web-0.. (Running, Ready, on n1) of one controller and a PDB "web" over them, with a
    published status allowing ``allowed`` disruptions (None: no status yet)."""
    emu.add_node(node("n1", cpu="8"))
    for i in range(replicas):
        emu.add_pod(pod(NS, f"web-{i}", node_name="n1", labels={"app": "web"}, owner=owner))
    desired = min_available if isinstance(min_available, int) else 1
    emu.add_pdb(
        pdb(
            NS,
            "web",
            match_labels={"app": "web"},
            min_available=min_available,
            disruptions_allowed=allowed,
            desired_healthy=desired,
            current_healthy=replicas,
        )
    )


def evict(
    core: k8s.CoreV1Api,
    name: str,
    *,
    uid: str | None = None,
    dry_run: str | None = None,
    body_dry_run: list[str] | None = None,
) -> object:
    options = None
    if uid is not None or body_dry_run is not None:
        preconditions = k8s.V1Preconditions(uid=uid) if uid is not None else None
        options = k8s.V1DeleteOptions(preconditions=preconditions, dry_run=body_dry_run)
    body = k8s.V1Eviction(
        metadata=k8s.V1ObjectMeta(name=name, namespace=NS), delete_options=options
    )
    if dry_run is None:
        return core.create_namespaced_pod_eviction(name, NS, body)
    return core.create_namespaced_pod_eviction(name, NS, body, dry_run=dry_run)


def stored(emu: KubeEmulator, resource: Any, name: str, namespace: str = NS) -> JSON:
    """An object as the emulator stores it (it must be there)."""
    obj = emu.get(resource, name, namespace)
    assert obj is not None, f"{name} is not stored"
    return obj


def uid_of(emu: KubeEmulator, name: str) -> str:
    return str(stored(emu, PODS, name)["metadata"]["uid"])


def version(obj: Any) -> str:
    """A client model's metadata.resourceVersion."""
    return str(obj.metadata.resource_version)


def budget(emu: KubeEmulator, name: str = "web") -> JSON:
    got = emu.get(PDBS, name, NS)
    assert got is not None
    return got


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def conditions(obj: Mapping[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}


# --------------------------------------------------------------------------------------------------
# 1. Eviction


def test_eviction_deletes_the_pod_and_spends_the_budget(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=2)
    uid = uid_of(emu, "web-0")
    before = budget(emu)["metadata"]["resourceVersion"]

    evict(api.core, "web-0", uid=uid)

    (req,) = emu.requests_for(f"/api/v1/namespaces/{NS}/pods/web-0/eviction", "POST")
    assert req.status == 201
    assert req.response_json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }
    assert emu.get(PODS, "web-0", NS) is None
    assert refused(lambda: api.core.read_namespaced_pod("web-0", NS))[0] == 404
    status = api.policy.read_namespaced_pod_disruption_budget("web", NS).status
    assert status.disruptions_allowed == 1
    assert set(status.disrupted_pods or {}) == {"web-0"}
    assert int(budget(emu)["metadata"]["resourceVersion"]) > int(before)
    (record,) = emu.record.evictions
    assert (record.name, record.uid, record.precondition_uid) == ("web-0", uid, uid)
    assert (record.status, record.reason, record.dry_run) == (201, "Success", False)
    assert (record.pdb, record.budget_spent) == ("web", True)
    assert emu.record.evicted() == [record]
    # The budget can be spent to zero, not below.
    evict(api.core, "web-1")
    assert budget(emu)["status"]["disruptionsAllowed"] == 0
    assert conditions(budget(emu))["DisruptionAllowed"] == "False"
    assert refused(lambda: evict(api.core, "web-2"))[0] == 429


def test_eviction_with_graceful_deletion(api: Clients, tmp_path: Path) -> None:
    with KubeEmulator(pod_deletion_delay=0.3) as emu:
        web(emu)
        kubeconfig = emu.write_kubeconfig(tmp_path / "graceful")
        with client_for(kubeconfig) as client:
            evict(k8s.CoreV1Api(client), "web-0")
        terminating = emu.get(PODS, "web-0", NS)
        assert terminating is not None
        assert terminating["metadata"]["deletionTimestamp"]
        assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
        (target,) = [
            c for c in terminating["status"]["conditions"] if c["type"] == "DisruptionTarget"
        ]
        assert (target["status"], target["reason"]) == ("True", "EvictionByEvictionAPI")
        # A second eviction of a terminating pod needs no budget: it is already going.
        with client_for(kubeconfig) as client:
            evict(k8s.CoreV1Api(client), "web-0")
        assert budget(emu)["status"]["disruptionsAllowed"] == 1
        assert [e.budget_spent for e in emu.record.evictions] == [True, False]
        wait_for(lambda: emu.get(PODS, "web-0", NS) is None, timeout=3)


def test_eviction_blocked_by_an_exhausted_budget(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=0, min_available=3)
    version = emu.resource_version

    status, body, headers = refused(lambda: evict(api.core, "web-1"))

    assert status == 429
    assert headers.get("Retry-After") is None  # nothing says when the budget will allow one
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"] == {
        "causes": [
            {
                "reason": "DisruptionBudget",
                "message": "The disruption budget web needs 3 healthy pods and has 3 currently",
            }
        ]
    }
    assert emu.get(PODS, "web-1", NS) is not None
    assert emu.resource_version == version  # nothing was written
    (record,) = emu.record.evictions
    assert (record.status, record.reason, record.budget_spent) == (429, "TooManyRequests", False)


def test_eviction_blocked_by_a_stale_budget(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=2)
    # The spec changed (generation 2) and the disruption controller has not seen it yet.
    stale = budget(emu)
    stale["metadata"]["generation"] = 2
    emu.update(PDBS, stale)
    # And a PDB the controller never saw at all (no status).
    emu.add_pod(pod(NS, "db-0", node_name="n1", labels={"app": "db"}))
    emu.add_pdb(pdb(NS, "db", match_labels={"app": "db"}, min_available=1))

    for name, pdb_name in (("web-0", "web"), ("db-0", "db")):
        status, body, headers = refused(partial(evict, api.core, name))
        assert status == 429
        assert headers.get("Retry-After") == "10"
        assert body["details"] == {
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {pdb_name} is still being processed by "
                    "the server.",
                }
            ],
            "retryAfterSeconds": 10,
        }
    assert emu.get(PODS, "web-0", NS) is not None and emu.get(PODS, "db-0", NS) is not None
    assert budget(emu)["status"]["disruptionsAllowed"] == 2


def test_injected_429_with_retry_after_zero(emu: KubeEmulator, api: Clients) -> None:
    web(emu)
    emu.inject(429, path=EVICTION_PATH, retry_after=0)

    status, body, headers = refused(lambda: evict(api.core, "web-0"))

    assert (status, headers.get("Retry-After")) == (429, "0")
    assert body["details"] == {"retryAfterSeconds": 0}
    assert emu.get(PODS, "web-0", NS) is not None
    assert emu.record.evictions == []  # the fault pre-empted the eviction
    evict(api.core, "web-0")  # the fault was for one request
    assert emu.get(PODS, "web-0", NS) is None


def test_eviction_with_two_budgets_is_a_500(emu: KubeEmulator, api: Clients) -> None:
    web(emu)
    emu.add_pdb(pdb(NS, "all", match_labels={"app": "web"}, min_available=1, disruptions_allowed=5))

    status, body, _ = refused(lambda: evict(api.core, "web-0"))

    assert status == 500
    assert body["message"] == (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not "
        "support."
    )
    assert body["status"] == "Failure" and "reason" not in body
    assert emu.get(PODS, "web-0", NS) is not None
    assert budget(emu)["status"]["disruptionsAllowed"] == 2
    assert budget(emu, "all")["status"]["disruptionsAllowed"] == 5


@pytest.mark.parametrize("state", ["Pending", "Succeeded", "Failed", "terminating"])
def test_pods_that_disrupt_nothing_skip_the_budget(
    emu: KubeEmulator, api: Clients, state: str
) -> None:
    web(emu, allowed=0)
    obj = emu.get(PODS, "web-0", NS)
    assert obj is not None
    if state == "terminating":
        obj["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    else:
        obj["status"] = {"phase": state}
    emu.update(PODS, obj)

    evict(api.core, "web-0")

    left = emu.get(PODS, "web-0", NS)
    if state == "terminating":  # already going: the delete changes nothing, its kubelet ends it
        assert left is not None and left["metadata"]["deletionTimestamp"] == "2030-01-01T00:00:00Z"
    else:
        assert left is None
    assert budget(emu)["status"]["disruptionsAllowed"] == 0
    assert "disruptedPods" not in budget(emu)["status"]
    (record,) = emu.record.evictions
    assert (record.status, record.pdb, record.budget_spent) == (201, None, False)


def test_unready_pod_eviction(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=0, min_available=2, replicas=3)
    unready = emu.get(PODS, "web-2", NS)
    assert unready is not None
    unready["status"]["conditions"][-1]["status"] = "False"
    emu.update(PODS, unready)
    healthy_budget = budget(emu)
    healthy_budget["status"].update(currentHealthy=2, desiredHealthy=2)
    emu.update(PDBS, healthy_budget)

    # The application is healthy without it (IfHealthyBudget): it goes, no budget spent.
    evict(api.core, "web-2")
    assert emu.get(PODS, "web-2", NS) is None
    assert emu.record.evictions[-1].budget_spent is False

    # An unready pod while the budget is not healthy is guarded like any other.
    emu.add_pod(pod(NS, "web-3", node_name="n1", labels={"app": "web"}, ready=False))
    healthy_budget["status"].update(currentHealthy=1)
    emu.update(PDBS, healthy_budget)
    assert refused(lambda: evict(api.core, "web-3"))[0] == 429
    # Unless the budget says unhealthy pods may always go.
    healthy_budget["spec"]["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    emu.update(PDBS, healthy_budget)
    evict(api.core, "web-3")
    assert emu.get(PODS, "web-3", NS) is None


def test_dry_run_eviction_persists_nothing(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=1)
    version = emu.resource_version

    evict(api.core, "web-0", dry_run="All")
    evict(api.core, "web-1", body_dry_run=["All"])  # dryRun in the DeleteOptions

    assert [r.status for r in emu.requests] == [201, 201]
    assert emu.resource_version == version
    assert emu.get(PODS, "web-0", NS) is not None and emu.get(PODS, "web-1", NS) is not None
    assert budget(emu)["status"]["disruptionsAllowed"] == 1
    assert [(e.dry_run, e.budget_spent, e.pdb) for e in emu.record.evictions] == [
        (True, False, "web"),
        (True, False, "web"),
    ]
    assert emu.record.evicted() == []
    # Every check still runs: an exhausted budget answers the same in dry run.
    evict(api.core, "web-0")
    assert refused(lambda: evict(api.core, "web-1", dry_run="All"))[0] == 429


def test_eviction_uid_precondition_and_missing_pod(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=2)
    old_uid = uid_of(emu, "web-0")

    # Replaced by a pod of the same name, Pending: deleted only if it is the same pod.
    new = emu.replace_pod(NS, "web-0")
    status, body, _ = refused(lambda: evict(api.core, "web-0", uid=old_uid))
    assert (status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        f'Operation cannot be fulfilled on Pod "web-0": the UID in the precondition ({old_uid}) '
        f"does not match the UID in record ({new['metadata']['uid']}). The object might have been "
        f"deleted and then recreated"
    )
    assert uid_of(emu, "web-0") == new["metadata"]["uid"]
    assert budget(emu)["status"]["disruptionsAllowed"] == 2

    # Replaced and running again: as upstream, the budget is spent before the delete's
    # precondition fails (the disruption controller gives it back later).
    old_uid = uid_of(emu, "web-1")
    emu.replace_pod(NS, "web-1", keep_node=True)
    assert refused(lambda: evict(api.core, "web-1", uid=old_uid))[0] == 409
    assert emu.get(PODS, "web-1", NS) is not None
    assert budget(emu)["status"]["disruptionsAllowed"] == 1
    assert emu.record.evictions[-1].budget_spent is True

    status, body, _ = refused(lambda: evict(api.core, "nobody"))
    assert (status, body["reason"], body["message"]) == (404, "NotFound", 'pods "nobody" not found')


def test_eviction_in_a_terminating_namespace(emu: KubeEmulator, api: Clients) -> None:
    web(emu)
    emu.terminate_namespace(NS)

    status, body, _ = refused(lambda: evict(api.core, "web-0"))

    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        'pods "web-0" is forbidden: unable to create new content in namespace shop because it is '
        "being terminated"
    )
    assert body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    assert emu.get(PODS, "web-0", NS) is not None
    # Deletions are still let through.
    api.core.delete_namespaced_pod("web-0", NS)
    assert emu.get(PODS, "web-0", NS) is None


# --------------------------------------------------------------------------------------------------
# 2. Binding


def test_binding_and_its_conflicts(emu: KubeEmulator, api: Clients) -> None:
    emu.add_node(node("n1"))
    emu.add_pod(pod(NS, "a"))
    emu.add_pod(pod(NS, "b"))
    uid_b = uid_of(emu, "b")

    def binding(name: str, node_name: str, uid: str | None = None) -> k8s.V1Binding:
        return k8s.V1Binding(
            metadata=k8s.V1ObjectMeta(name=name, uid=uid),
            target=k8s.V1ObjectReference(kind="Node", name=node_name),
        )

    # Success answers a Status, which the client cannot read as a Binding.
    with pytest.raises(ValueError):
        api.core.create_namespaced_binding(NS, binding("a", "n1"))
    with pytest.raises(ValueError):
        api.core.create_namespaced_pod_binding("b", NS, binding("b", "n1", uid=uid_b))
    assert [r.status for r in emu.requests] == [201, 201]
    assert emu.requests[0].response_json()["status"] == "Success"
    bound = api.core.read_namespaced_pod("a", NS)
    assert bound.spec.node_name == "n1"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in bound.status.conditions)

    status, body, _ = refused(lambda: api.core.create_namespaced_binding(NS, binding("a", "n2")))
    assert (status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on pods/binding "a": pod a is already assigned to node "n1"'
    )
    assert refused(lambda: api.core.create_namespaced_binding(NS, binding("zz", "n1")))[0] == 404

    emu.add_pod(pod(NS, "c"))
    status, body, _ = refused(
        lambda: api.core.create_namespaced_binding(NS, binding("c", "n1", uid="not-its-uid"))
    )
    assert (
        status == 409 and "Precondition failed: UID in precondition: not-its-uid" in body["message"]
    )
    assert "nodeName" not in stored(emu, PODS, "c")["spec"]
    assert [(b.name, b.node, b.status, b.source) for b in emu.record.bindings] == [
        ("a", "n1", 201, "api"),
        ("b", "n1", 201, "api"),
        ("a", "n2", 409, "api"),
        ("zz", "n1", 404, "api"),
        ("c", "n1", 409, "api"),
    ]
    assert all(BINDING_PATH.fullmatch(r.path) for r in emu.requests if r.method == "POST")


# --------------------------------------------------------------------------------------------------
# 3. Patch, update, create, delete


def test_node_patches_in_every_format(emu: KubeEmulator, api: Clients) -> None:
    emu.add_node(node("n1"))
    rv0 = int(stored(emu, NODES, "n1", "")["metadata"]["resourceVersion"])

    cordoned = api.core.patch_node("n1", {"spec": {"unschedulable": True}})  # strategic merge
    labelled = api.core.patch_node(
        "n1",
        {"metadata": {"labels": {"pool": "batch"}, "annotations": {"note": "drain"}}},
        _content_type="application/merge-patch+json",
    )
    unlabelled = api.core.patch_node("n1", [{"op": "remove", "path": "/metadata/labels/pool"}])
    again = api.core.patch_node("n1", {"spec": {"unschedulable": True}})  # changes nothing

    assert cordoned.spec.unschedulable is True
    assert (labelled.metadata.labels or {})["pool"] == "batch"
    assert labelled.metadata.annotations == {"note": "drain"}
    assert "pool" not in (unlabelled.metadata.labels or {}) and unlabelled.spec.unschedulable
    versions = [int(version(n)) for n in (cordoned, labelled, unlabelled, again)]
    assert rv0 < versions[0] < versions[1] < versions[2] == versions[3]  # no-op: no new version
    assert [r.header("Content-Type") for r in emu.requests] == [
        "application/strategic-merge-patch+json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
    ]
    assert [(w.name, w.method, w.status, w.unschedulable) for w in emu.record.node_writes] == [
        ("n1", "PATCH", 200, True)
    ] * 4
    assert emu.record.node_writes[0].body == {"spec": {"unschedulable": True}}
    # The status is not the object's own endpoint's to change.
    api.core.patch_node("n1", {"status": {"allocatable": {"cpu": "1"}}})
    assert stored(emu, NODES, "n1", "")["status"]["allocatable"]["cpu"] == "4"
    status, _, _ = refused(
        lambda: api.core.patch_node("n1", {}, _content_type="application/apply-patch+yaml")
    )
    assert status == 415


def test_optimistic_concurrency(emu: KubeEmulator, api: Clients) -> None:
    emu.add_node(node("n1"))
    read = api.core.read_node("n1")
    api.core.patch_node("n1", {"metadata": {"labels": {"x": "1"}}})  # someone else writes

    read.spec.unschedulable = True
    status, body, _ = refused(lambda: api.core.replace_node("n1", read))
    assert (status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on nodes "n1": the object has been modified; please apply '
        "your changes to the latest version and try again"
    )
    stale = read.metadata.resource_version
    status, _, _ = refused(
        lambda: api.core.patch_node(
            "n1", {"metadata": {"resourceVersion": stale}, "spec": {"unschedulable": True}}
        )
    )
    assert status == 409
    assert not stored(emu, NODES, "n1", "")["spec"].get("unschedulable")

    fresh = api.core.read_node("n1")
    fresh.spec.unschedulable = True
    replaced = api.core.replace_node("n1", fresh)
    assert replaced.spec.unschedulable is True
    assert int(version(replaced)) > int(version(fresh))
    # Without a resourceVersion an update is unconditional.
    fresh.metadata.resource_version = None
    fresh.spec.unschedulable = False
    assert api.core.replace_node("n1", fresh).spec.unschedulable is False
    assert [(w.method, w.status) for w in emu.record.node_writes][-3:] == [
        ("PATCH", 409),
        ("PUT", 200),
        ("PUT", 200),
    ]


def test_status_subresource_and_pod_immutability(emu: KubeEmulator, api: Clients) -> None:
    emu.add_node(node("n1"))
    emu.add_pod(pod(NS, "a", node_name="n1"))

    patched = api.core.patch_namespaced_pod(
        "a", NS, {"metadata": {"labels": {"x": "y"}}, "status": {"phase": "Failed"}}
    )
    assert (patched.metadata.labels, patched.status.phase) == ({"x": "y"}, "Running")
    failed = api.core.patch_namespaced_pod_status("a", NS, {"status": {"phase": "Failed"}})
    assert failed.status.phase == "Failed"
    image = api.core.patch_namespaced_pod(
        "a", NS, {"spec": {"containers": [{"name": "app", "image": "registry.example/app:2"}]}}
    )
    assert image.spec.containers[0].image == "registry.example/app:2"
    assert image.spec.containers[0].resources.requests == {"cpu": "100m", "memory": "128Mi"}

    status, body, _ = refused(
        lambda: api.core.patch_namespaced_pod("a", NS, {"spec": {"nodeName": "n2"}})
    )
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"].startswith(
        'Pod "a" is invalid: spec: Forbidden: pod updates may not change fields other than'
    )


def test_create_with_generate_name(emu: KubeEmulator, api: Clients) -> None:
    template = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(generate_name="web-", labels={"app": "web"}),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="app", image="x")], node_name="n1"),
        status=k8s.V1PodStatus(phase="Running"),
    )
    before = int(emu.resource_version)

    created = api.core.create_namespaced_pod(NS, template)

    assert re.fullmatch(r"web-[bcdfghjklmnpqrstvwxz2456789]{5}", created.metadata.name or "")
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert created.status.phase == "Pending"  # a new pod starts Pending whatever it was sent with
    assert created.spec.scheduler_name == "default-scheduler"
    assert int(version(created)) == before + 1
    assert emu.requests[-1].status == 201

    emu.name_suffix = lambda: "abcde"
    api.core.create_namespaced_pod(NS, template)
    status, body, headers = refused(lambda: api.core.create_namespaced_pod(NS, template))
    assert (status, body["reason"], headers.get("Retry-After")) == (409, "AlreadyExists", "1")
    assert body["message"] == (
        'pods "web-abcde" already exists, the server was not able to generate a unique name for '
        "the object"
    )
    named = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="web-abcde"),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="app", image="x")]),
    )
    status, body, _ = refused(lambda: api.core.create_namespaced_pod(NS, named))
    assert (status, body["message"]) == (409, 'pods "web-abcde" already exists')
    assert len(emu.objects(PODS)) == 2


def test_delete_with_preconditions(emu: KubeEmulator, api: Clients) -> None:
    emu.add_pod(pod(NS, "a", node_name="n1"))
    current = emu.get(PODS, "a", NS)
    assert current is not None
    uid, version = current["metadata"]["uid"], current["metadata"]["resourceVersion"]

    def delete(**preconditions: str) -> object:
        options = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(**preconditions))
        return api.core.delete_namespaced_pod("a", NS, body=options)

    status, body, _ = refused(lambda: delete(uid="other"))
    assert (status, body["reason"]) == (409, "Conflict")
    assert "the UID in the precondition (other) does not match the UID in record" in body["message"]
    api.core.patch_namespaced_pod("a", NS, {"metadata": {"labels": {"v": "2"}}})
    status, body, _ = refused(lambda: delete(uid=uid, resource_version=version))
    assert status == 409 and "the ResourceVersion in the precondition" in body["message"]
    assert emu.get(PODS, "a", NS) is not None

    deleted = delete(uid=uid)
    assert isinstance(deleted, k8s.V1Pod) and deleted.metadata.name == "a"
    assert emu.get(PODS, "a", NS) is None
    assert refused(lambda: delete(uid=uid))[0] == 404


def test_dry_run_writes_persist_nothing(emu: KubeEmulator, api: Clients) -> None:
    emu.add_node(node("n1"))
    emu.add_pod(pod(NS, "a", node_name="n1"))
    version = emu.resource_version
    before = emu.objects(PODS) + emu.objects(NODES)

    created = api.core.create_namespaced_pod(
        NS,
        k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(generate_name="b-"),
            spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="app", image="x")]),
        ),
        dry_run="All",
    )
    cordoned = api.core.patch_node("n1", {"spec": {"unschedulable": True}}, dry_run="All")
    node_obj = api.core.read_node("n1")
    node_obj.metadata.labels = {**(node_obj.metadata.labels or {}), "x": "y"}
    replaced = api.core.replace_node("n1", node_obj, dry_run="All")
    deleted = api.core.delete_namespaced_pod("a", NS, dry_run="All")

    assert created.metadata.name.startswith("b-")
    assert cordoned.spec.unschedulable is True and (replaced.metadata.labels or {})["x"] == "y"
    assert deleted.metadata.name == "a"
    assert emu.resource_version == version
    assert emu.objects(PODS) + emu.objects(NODES) == before
    assert [w.dry_run for w in emu.record.node_writes] == [True, True]


# --------------------------------------------------------------------------------------------------
# 4. Selectors and pagination


def test_selectors_and_pagination(emu: KubeEmulator, api: Clients) -> None:
    for name, node_name, phase, app in [
        ("a", "n1", None, "web"),
        ("b", "n2", None, "web"),
        ("c", None, None, "db"),
        ("d", "n1", "Succeeded", "db"),
        ("e", "n2", None, "cache"),
    ]:
        emu.add_pod(pod(NS, name, node_name=node_name, phase=phase, labels={"app": app}))

    def names(**kwargs: Any) -> list[str]:
        return [p.metadata.name or "" for p in api.core.list_namespaced_pod(NS, **kwargs).items]

    assert names(field_selector="spec.nodeName=") == ["c"]
    assert names(field_selector="spec.nodeName!=") == ["a", "b", "d", "e"]
    assert names(field_selector="spec.nodeName=n1,status.phase=Running") == ["a"]
    assert names(field_selector="status.phase!=Running") == ["c", "d"]
    assert names(field_selector="metadata.name=e") == ["e"]
    assert names(label_selector="app!=web") == ["c", "d", "e"]
    assert names(label_selector="app notin (web,db)") == ["e"]

    first = api.core.list_namespaced_pod(NS, limit=2)
    assert [p.metadata.name for p in first.items] == ["a", "b"]
    assert first.metadata.remaining_item_count == 3
    second = api.core.list_namespaced_pod(NS, limit=2, _continue=first.metadata._continue)
    assert [p.metadata.name for p in second.items] == ["c", "d"]
    emu.expire_continue_tokens()
    status, body, _ = refused(
        lambda: api.core.list_namespaced_pod(NS, limit=2, _continue=second.metadata._continue)
    )
    assert (status, body["reason"]) == (410, "Expired")


# --------------------------------------------------------------------------------------------------
# 5. Watch


def collect(
    stream: Generator[JSON, None, None], until: Callable[[list[tuple[str, str]]], bool]
) -> list[tuple[str, str]]:
    """(type, name) of the events until ``until`` holds or the stream ends (then closed)."""
    seen: list[tuple[str, str]] = []
    try:
        for event in stream:
            obj = event["raw_object"]
            seen.append((event["type"], obj.get("metadata", {}).get("name", "")))
            assert obj["kind"] in ("Pod", "Node")
            if until(seen):
                break
    finally:
        stream.close()
    return seen


def test_watch_streams_changes_after_a_resource_version(emu: KubeEmulator, api: Clients) -> None:
    emu.add_pod(pod(NS, "old", node_name="n1"))
    listed = api.core.list_namespaced_pod(NS)
    emu.add_pod(pod(NS, "a"))
    api.core.patch_namespaced_pod("old", NS, {"metadata": {"labels": {"v": "2"}}})
    emu.add_pod(pod("elsewhere", "x"))
    # And one change while the watch is open.
    threading.Timer(0.2, lambda: api.core.delete_namespaced_pod("a", NS)).start()

    stream = watch(
        api.core.list_namespaced_pod,
        NS,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=5,
    )
    seen = collect(stream, lambda s: len(s) == 3)

    assert seen == [("ADDED", "a"), ("MODIFIED", "old"), ("DELETED", "a")]
    (req,) = [r for r in emu.requests if r.param("watch")]
    assert (req.param("watch"), req.param("timeoutSeconds")) == ("true", "5")

    # Across namespaces, from the start: the current objects first.
    stream = watch(api.core.list_pod_for_all_namespaces, timeout_seconds=1)
    assert sorted(collect(stream, lambda s: len(s) == 2)) == [("ADDED", "old"), ("ADDED", "x")]


def test_watch_with_selectors(emu: KubeEmulator, api: Clients) -> None:
    emu.add_node(node("n1"))
    emu.add_pod(pod(NS, "a", labels={"app": "web"}))
    emu.add_pod(pod(NS, "b", labels={"app": "web"}))
    since = emu.resource_version
    api.core.patch_namespaced_pod("a", NS, {"metadata": {"labels": {"app": "db"}}})  # leaves
    api.core.patch_namespaced_pod("b", NS, {"metadata": {"annotations": {"n": "1"}}})  # stays
    with pytest.raises(ValueError):  # the binding succeeds; the client cannot read its answer
        api.core.create_namespaced_binding(
            NS,
            k8s.V1Binding(
                metadata=k8s.V1ObjectMeta(name="b"),
                target=k8s.V1ObjectReference(kind="Node", name="n1"),
            ),
        )

    by_label = watch(
        api.core.list_namespaced_pod,
        NS,
        label_selector="app=web",
        resource_version=since,
        timeout_seconds=1,
    )
    assert collect(by_label, lambda s: len(s) == 3) == [
        ("DELETED", "a"),
        ("MODIFIED", "b"),
        ("MODIFIED", "b"),
    ]
    by_field = watch(
        api.core.list_pod_for_all_namespaces,
        field_selector="spec.nodeName=n1",
        resource_version=since,
        timeout_seconds=1,
    )
    assert collect(by_field, lambda s: len(s) == 1) == [("ADDED", "b")]


def test_watch_bookmarks_and_expiry(emu: KubeEmulator, api: Clients) -> None:
    emu.add_pod(pod(NS, "a"))
    since = emu.resource_version
    emu.bookmark_interval = 0.1

    # watch=1, as other clients send it, read raw: newline-delimited events over chunks.
    url = f"{emu.url}/api/v1/namespaces/{NS}/pods?watch=1&resourceVersion={since}"
    url += "&allowWatchBookmarks=true&timeoutSeconds=0.35"
    threading.Timer(0.05, lambda: emu.add_pod(pod(NS, "b"))).start()
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        lines = [json.loads(line) for line in resp.read().splitlines()]
    assert 0.3 < time.monotonic() - started < 2
    assert lines[0]["type"] == "ADDED" and lines[0]["object"]["metadata"]["name"] == "b"
    marks = [e for e in lines if e["type"] == "BOOKMARK"]
    assert len(marks) >= 2 and all(e["object"]["kind"] == "Pod" for e in marks)
    assert marks[-1]["object"]["metadata"]["resourceVersion"] == emu.resource_version

    # A resourceVersion the history no longer holds: an ERROR event with 410 Expired, which the
    # client raises as an ApiException when it must not retry (a timeout was given).
    emu.compact()
    with pytest.raises(k8s.ApiException) as err:
        collect(
            watch(api.core.list_namespaced_pod, NS, resource_version=since, timeout_seconds=1),
            lambda s: False,
        )
    assert err.value.status == 410 and "too old resource version" in str(err.value.reason)
    assert emu.requests[-1].status == 200  # the error travels inside the stream


# --------------------------------------------------------------------------------------------------
# 6. Leases


def test_lease_lock(emu: KubeEmulator, api: Clients) -> None:
    def lease(holder: str) -> k8s.V1Lease:
        return k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(name="kube-engine-applier"),
            spec=k8s.V1LeaseSpec(
                holder_identity=holder,
                lease_duration_seconds=15,
                renew_time=datetime.now(UTC),
            ),
        )

    coordination = api.coordination
    mine = coordination.create_namespaced_lease(NS, lease("me"))
    assert refused(lambda: coordination.create_namespaced_lease(NS, lease("you")))[0] == 409

    held = coordination.read_namespaced_lease("kube-engine-applier", NS)
    assert held.spec.holder_identity == "me"
    held.spec.holder_identity = "me"
    held.spec.lease_transitions = 1
    renewed = coordination.replace_namespaced_lease("kube-engine-applier", NS, held)
    assert int(version(renewed)) > int(version(mine))

    # Another candidate acting on what it read before the renewal loses.
    mine.spec.holder_identity = "you"
    status, body, _ = refused(
        lambda: coordination.replace_namespaced_lease("kube-engine-applier", NS, mine)
    )
    assert status == 409 and body["message"].startswith(
        'Operation cannot be fulfilled on leases.coordination.k8s.io "kube-engine-applier"'
    )
    stored = emu.get(LEASES, "kube-engine-applier", NS)
    assert stored is not None and stored["spec"]["holderIdentity"] == "me"

    coordination.delete_namespaced_lease("kube-engine-applier", NS)
    assert emu.requests[-1].response_json()["status"] == "Success"
    assert refused(lambda: coordination.read_namespaced_lease("kube-engine-applier", NS))[0] == 404


# --------------------------------------------------------------------------------------------------
# 7. Events


def test_events_are_stored_and_listable(emu: KubeEmulator, api: Clients) -> None:
    api.core.create_namespaced_event(
        NS,
        k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(generate_name="web-0."),
            involved_object=k8s.V1ObjectReference(kind="Pod", name="web-0", namespace=NS),
            reason="Rebalanced",
            message="evicted by kube-engine",
            type="Normal",
        ),
    )
    api.events.create_namespaced_event(
        NS,
        k8s.EventsV1Event(
            metadata=k8s.V1ObjectMeta(generate_name="web-1."),
            event_time=datetime.now(UTC),
            regarding=k8s.V1ObjectReference(kind="Pod", name="web-1", namespace=NS),
            reason="Rebalanced",
            action="Evict",
            note="evicted by kube-engine",
            type="Normal",
            reporting_controller="kube-engine.io/applier",
            reporting_instance="applier-1",
        ),
    )

    core_events = api.core.list_namespaced_event(NS, field_selector="involvedObject.name=web-0")
    assert [e.message for e in core_events.items] == ["evicted by kube-engine"]
    assert api.core.list_namespaced_event(NS, field_selector="reason=Other").items == []
    new_events = api.events.list_namespaced_event(NS, field_selector="regarding.name=web-1")
    assert [(e.action, e.note) for e in new_events.items] == [("Evict", "evicted by kube-engine")]
    assert [e["reason"] for e in emu.objects(EVENTS) + emu.objects(EVENTS_V1)] == ["Rebalanced"] * 2


# --------------------------------------------------------------------------------------------------
# 8. RBAC


def test_rbac_forbids_what_the_rules_do_not_allow(emu: KubeEmulator, api: Clients) -> None:
    web(emu)
    user = "system:serviceaccount:ops:rebalancer"
    emu.set_rbac(
        [
            {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch"]},
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["list"]},
        ],
        user=user,
    )

    assert len(api.core.list_pod_for_all_namespaces().items) == 3
    api.core.patch_node("n1", {"spec": {"unschedulable": True}})
    status, body, _ = refused(lambda: evict(api.core, "web-0"))  # "pods" does not cover it
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        f'pods "web-0" is forbidden: User "{user}" cannot create resource "pods/eviction" in API '
        f'group "" in the namespace "shop"'
    )
    assert body["details"] == {"name": "web-0", "group": "", "kind": "pods"}
    assert emu.get(PODS, "web-0", NS) is not None
    assert emu.record.evictions[-1].status == 403  # the record holds refused evictions too
    status, body, _ = refused(lambda: api.policy.read_namespaced_pod_disruption_budget("web", NS))
    assert body["message"] == (
        f'poddisruptionbudgets.policy "web" is forbidden: User "{user}" cannot get resource '
        f'"poddisruptionbudgets" in API group "policy" in the namespace "shop"'
    )
    status, body, _ = refused(lambda: api.core.delete_node("n1"))
    assert 'cannot delete resource "nodes" in API group "" at the cluster scope' in body["message"]
    # watch is its own verb: list does not grant it.
    with pytest.raises(k8s.ApiException) as err:
        collect(watch(api.core.list_node, timeout_seconds=1), lambda s: True)
    assert err.value.status == 403

    emu.set_rbac(
        [
            {"apiGroups": [""], "resources": ["*/eviction"], "verbs": ["create"]},
            {"apiGroups": ["*"], "resources": ["nodes"], "verbs": ["*"], "resourceNames": ["n1"]},
        ],
        user=user,
    )
    evict(api.core, "web-0")
    api.core.read_node("n1")
    assert refused(lambda: api.core.list_node())[0] == 403  # resourceNames: no lists
    emu.set_rbac(None)
    assert len(api.core.list_node().items) == 1


# --------------------------------------------------------------------------------------------------
# 9. Controllers


def test_replicaset_pods_come_back_under_a_new_name(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=2)
    emu.controllers(scheduler=False, kubelet=False, disruption=False)
    gone = emu.get(PODS, "web-0", NS)
    assert gone is not None

    evict(api.core, "web-0")
    emu.reconcile()

    pods = {p["metadata"]["name"]: p for p in emu.objects(PODS, NS)}
    (new_name,) = set(pods) - {"web-1", "web-2"}
    new = pods[new_name]
    assert re.fullmatch(r"web-7d9f-[bcdfghjklmnpqrstvwxz2456789]{5}", new_name)
    assert new["metadata"]["generateName"] == "web-7d9f-"
    assert new["metadata"]["uid"] != gone["metadata"]["uid"]
    assert new["metadata"]["labels"] == gone["metadata"]["labels"]
    assert new["metadata"]["ownerReferences"] == gone["metadata"]["ownerReferences"]
    assert "nodeName" not in new["spec"] and new["status"] == {"phase": "Pending"}
    assert new["spec"]["containers"] == gone["spec"]["containers"]
    emu.reconcile()  # the owner is whole again: nothing more
    assert len(emu.objects(PODS, NS)) == 3


def test_statefulset_pods_come_back_under_their_name(emu: KubeEmulator, api: Clients) -> None:
    web(emu, owner=("StatefulSet", "web"))
    emu.controllers(scheduler=False, kubelet=False, disruption=False, recreate_delay=0.15)
    old_uid = uid_of(emu, "web-1")

    api.core.delete_namespaced_pod("web-1", NS)
    emu.reconcile()
    assert emu.get(PODS, "web-1", NS) is None  # not before the delay
    time.sleep(0.2)
    emu.reconcile()

    back = emu.get(PODS, "web-1", NS)
    assert back is not None and back["metadata"]["uid"] != old_uid
    assert back["status"]["phase"] == "Pending" and "nodeName" not in back["spec"]
    assert [p["metadata"]["name"] for p in emu.objects(PODS, NS)] == ["web-0", "web-1", "web-2"]


def test_kubelet_starts_bound_pods(emu: KubeEmulator, api: Clients) -> None:
    emu.add_node(node("n1"))
    emu.add_pod(pod(NS, "a", node_name="n1", phase="Pending"))
    emu.add_pod(pod(NS, "b", node_name="n1", phase="Pending"))
    emu.add_pod(pod(NS, "lost", node_name="gone-node", phase="Pending"))
    emu.add_pod(pod(NS, "waiting"))
    kept_unready = {"b"}
    controllers = emu.controllers(
        scheduler=False,
        disruption=False,
        ready_delay=0.1,
        unready=lambda p: p["metadata"]["name"] in kept_unready,
    )

    emu.reconcile()
    assert api.core.read_namespaced_pod("a", NS).status.phase == "Pending"  # still starting
    time.sleep(0.15)
    emu.reconcile()

    a, b = api.core.read_namespaced_pod("a", NS), api.core.read_namespaced_pod("b", NS)
    assert (a.status.phase, b.status.phase) == ("Running", "Running")
    assert conditions(emu.get(PODS, "a", NS) or {})["Ready"] == "True"
    assert conditions(emu.get(PODS, "b", NS) or {})["Ready"] == "False"
    assert a.status.start_time is not None
    assert api.core.read_namespaced_pod("lost", NS).status.phase == "Pending"  # no such kubelet
    assert api.core.read_namespaced_pod("waiting", NS).status.phase == "Pending"  # not bound
    kept_unready.clear()
    controllers.unready = None
    emu.reconcile()
    assert conditions(emu.get(PODS, "b", NS) or {})["Ready"] == "True"


@pytest.mark.parametrize(
    ("spec", "expected", "desired", "allowed"),
    [
        ({"minAvailable": 2}, 4, 2, 1),  # an int: every selected pod is expected
        ({"minAvailable": "50%"}, 3, 2, 1),  # 1.5 rounded up
        ({"maxUnavailable": 1}, 3, 2, 1),
        ({"maxUnavailable": "50%"}, 3, 1, 2),  # 3 - ceil(1.5)
        ({"minAvailable": 3}, 4, 3, 0),
        ({}, 0, 0, 0),  # neither: no pod is expected, nothing is allowed
    ],
)
def test_disruption_controller_status(
    emu: KubeEmulator,
    api: Clients,
    spec: JSON,
    expected: int,
    desired: int,
    allowed: int,
) -> None:
    emu.add_node(node("n1"))
    for i in range(4):  # web-3 is not Ready: it counts in the scale, not in the healthy
        ready = i < 3
        emu.add_pod(
            pod(NS, f"web-{i}", node_name="n1", labels={"app": "web"}, owner=RS, ready=ready)
        )
    # The ReplicaSet's scale is 3 (web-3 is a surplus pod of another owner).
    extra = emu.get(PODS, "web-3", NS)
    assert extra is not None
    extra["metadata"]["ownerReferences"][0]["uid"] = "other-owner"
    extra["metadata"]["ownerReferences"][0]["name"] = "other"
    emu.update(PODS, extra)
    created = api.policy.create_namespaced_pod_disruption_budget(
        NS,
        k8s.V1PodDisruptionBudget(
            metadata=k8s.V1ObjectMeta(name="web"),
            spec=k8s.V1PodDisruptionBudgetSpec(
                selector=k8s.V1LabelSelector(match_labels={"app": "web"}),
                min_available=spec.get("minAvailable"),
                max_unavailable=spec.get("maxUnavailable"),
            ),
        ),
    )
    assert created.metadata.generation == 1 and created.status.observed_generation is None
    controllers = emu.controllers(replicasets=False, kubelet=False, scheduler=False)
    controllers.set_replicas(NS, "ReplicaSet", "other", 0)

    emu.reconcile()

    status = api.policy.read_namespaced_pod_disruption_budget("web", NS).status
    assert (status.expected_pods, status.desired_healthy) == (expected, desired)
    assert (status.current_healthy, status.disruptions_allowed) == (3, allowed)
    assert status.observed_generation == 1
    (condition,) = status.conditions or []
    assert (condition.type, condition.status) == (
        "DisruptionAllowed",
        "True" if allowed else "False",
    )


def test_disruption_controller_follows_generation_and_evictions(
    api: Clients, tmp_path: Path
) -> None:
    with KubeEmulator(pod_deletion_delay=0.2) as emu:
        web(emu, allowed=None)
        kubeconfig = emu.write_kubeconfig(tmp_path / "k")
        with client_for(kubeconfig) as client:
            core, policy = k8s.CoreV1Api(client), k8s.PolicyV1Api(client)
            emu.controllers(replicasets=False, scheduler=False, kubelet=False)
            emu.reconcile()
            assert budget(emu)["status"]["disruptionsAllowed"] == 2

            policy.patch_namespaced_pod_disruption_budget("web", NS, {"spec": {"minAvailable": 3}})
            assert budget(emu)["metadata"]["generation"] == 2
            status, _, headers = refused(lambda: evict(core, "web-0"))
            assert (status, headers.get("Retry-After")) == (429, "10")  # stale status
            emu.reconcile()
            assert budget(emu)["status"]["observedGeneration"] == 2
            status, _, headers = refused(lambda: evict(core, "web-0"))
            assert (status, headers.get("Retry-After")) == (429, None)  # exhausted

            policy.patch_namespaced_pod_disruption_budget("web", NS, {"spec": {"minAvailable": 1}})
            emu.reconcile()
            evict(core, "web-0")
            assert set(budget(emu)["status"]["disruptedPods"]) == {"web-0"}
            emu.reconcile()  # terminating: no longer counted, no longer listed
            status_now = budget(emu)["status"]
            assert "disruptedPods" not in status_now
            assert (status_now["currentHealthy"], status_now["disruptionsAllowed"]) == (2, 1)
            wait_for(lambda: emu.get(PODS, "web-0", NS) is None)


def test_default_scheduler_binds_like_the_reference(emu: KubeEmulator, api: Clients) -> None:
    emu.add_node(node("n1", cpu="8", unschedulable=True))
    emu.add_node(node("n2", cpu="2"))
    emu.add_node(node("n3", cpu="4", labels={"disk": "ssd"}))
    for name, cpu in [("a", "1"), ("b", "1500m"), ("c", "2"), ("big", "16")]:
        emu.add_pod(pod(NS, name, cpu=cpu))
    emu.add_pod(pod(NS, "mine", scheduler_name="kube-engine"))
    objects = [{"kind": "Node", **n} for n in emu.objects(NODES)]
    objects += [{"kind": "Pod", **p} for p in emu.objects(PODS)]
    oracle = reference_scheduler.schedule(objects)
    assert oracle.assignments and "n1" not in oracle.assignments.values()
    emu.controllers(replicasets=False, kubelet=False, disruption=False)

    emu.reconcile()

    placed = {
        f"{NS}/{p.metadata.name}": p.spec.node_name
        for p in api.core.list_namespaced_pod(NS, field_selector="spec.nodeName!=").items
    }
    assert placed == oracle.assignments
    big = emu.get(PODS, "big", NS)
    assert big is not None
    (scheduled,) = [c for c in big["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert scheduled["message"] == oracle.unschedulable[f"{NS}/big"]
    assert "node(s) were unschedulable" in scheduled["message"]
    mine = emu.get(PODS, "mine", NS)
    assert (
        mine is not None and "nodeName" not in mine["spec"] and "conditions" not in mine["status"]
    )
    assert sorted((b.name, b.node, b.source) for b in emu.record.bindings) == sorted(
        (key.split("/")[1], node_name, "scheduler") for key, node_name in oracle.assignments.items()
    )


def test_background_controllers_end_to_end(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=None, min_available=2)
    emu.add_node(node("n2", cpu="8"))
    controllers = emu.controllers(interval=0.02, recreate_delay=0.05, ready_delay=0.05)
    wait_for(lambda: budget(emu)["status"].get("disruptionsAllowed") == 1)
    record = emu.reset_record()

    evict(api.core, "web-0")
    assert refused(lambda: evict(api.core, "web-1"))[0] == 429  # spent until the replacement runs

    def whole_again() -> bool:
        ready = [p for p in emu.objects(PODS, NS) if conditions(p).get("Ready") == "True"]
        return len(ready) == 3 and budget(emu)["status"].get("disruptionsAllowed") == 1

    wait_for(whole_again)
    evict(api.core, "web-1")
    wait_for(whole_again)

    assert controllers.errors == [] and controllers.passes > 2
    assert [e.name for e in record.evicted()] == ["web-0", "web-1"]
    assert [e.status for e in record.evictions] == [201, 429, 201]
    assert {b.source for b in record.bindings} == {"scheduler"} and len(record.bindings) == 2
    low = record.pdbs[f"{NS}/web"]
    assert (low.min_ready, low.min_disruptions_allowed, low.desired_healthy) == (2, 0, 2)
    assert record.pdbs_below_minimum() == []


# --------------------------------------------------------------------------------------------------
# 10. Faults


def run_reads(seed: int, tmp_path: Path) -> tuple[list[tuple[int, str]], list[int | None], Any]:
    with KubeEmulator() as emu:
        emu.add_node(node("n1"))
        chaos = emu.inject_random(
            seed,
            p429=0.2,
            p409=0.1,
            p500=0.1,
            drop=0.05,
            slow=0.1,
            slow_delay=0.01,
            # urllib3 (under the client) sleeps Retry-After and repeats a GET answered 429: at 0
            # it repeats at once, a new request that draws again.
            retry_after=0,
            path="/api/v1/nodes",
        )
        kubeconfig = emu.write_kubeconfig(tmp_path / f"k{seed}")
        with client_for(kubeconfig) as client:
            core = k8s.CoreV1Api(client)
            for _ in range(40):
                try:
                    core.list_node()
                except (k8s.ApiException, urllib3.exceptions.HTTPError):
                    pass  # urllib3 repeats a dropped GET by itself: a new request, a new draw
                core.read_node("n1")  # out of scope: never hit
        return list(chaos.hits), [r.status for r in emu.requests], emu.requests


def test_random_faults_are_seeded_and_scoped(tmp_path: Path) -> None:
    hits, statuses, requests = run_reads(7, tmp_path)
    again, statuses_again, _ = run_reads(7, tmp_path)
    other, _, _ = run_reads(8, tmp_path)

    assert hits == again and statuses == statuses_again
    assert hits != other
    outcomes = {outcome for _, outcome in hits}
    assert {"429", "409", "500", "drop", "slow"} <= outcomes
    assert all(r.status == 200 for r in requests if r.path == "/api/v1/nodes/n1")
    by_number = {r.number: r for r in requests}
    for number, outcome in hits:
        if outcome == "429":
            answer = by_number[number]
            assert answer.status == 429
            assert answer.response is not None
            assert answer.response.headers == {"Retry-After": "0"}
            assert answer.response_json()["details"] == {"retryAfterSeconds": 0}
        elif outcome in ("409", "500"):
            assert by_number[number].status == int(outcome)
        elif outcome == "drop":
            assert by_number[number].status is None  # no answer at all
    assert sum(1 for s in statuses if s != 200) == sum(1 for _, o in hits if o != "slow")


def test_faults_after_serving_and_hooks(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=2)
    # The eviction is carried out, then the connection drops: the client never hears of it.
    emu.inject(path=EVICTION_PATH, drop=True, after_serving=True)
    with pytest.raises(urllib3.exceptions.HTTPError):
        evict(api.core, "web-0")
    assert emu.get(PODS, "web-0", NS) is None
    assert emu.requests[-1].status is None and emu.requests[-1].notes["served_status"] == 201
    assert [e.status for e in emu.record.evictions] == [201]

    # A pod replaced (same name, new UID) just before the plan's eviction of it arrives.
    old_uid = uid_of(emu, "web-1")
    replaced: list[str] = []
    emu.hook(
        lambda r: replaced.append(emu.replace_pod(NS, "web-1")["metadata"]["uid"]),
        path=f"/api/v1/namespaces/{NS}/pods/web-1/eviction",
    )
    status, _, _ = refused(lambda: evict(api.core, "web-1", uid=old_uid))
    assert status == 409
    assert uid_of(emu, "web-1") == replaced[0] != old_uid
    # A hook after serving: the pod is deleted behind the applier's back once it was read.
    emu.hook(
        lambda r: emu.delete(PODS, "web-2", NS),
        path=f"/api/v1/namespaces/{NS}/pods/web-2",
        after=True,
    )
    assert api.core.read_namespaced_pod("web-2", NS).metadata.name == "web-2"
    assert refused(lambda: evict(api.core, "web-2"))[0] == 404
    assert emu.pending_faults == []


# --------------------------------------------------------------------------------------------------
# 11. The record


def test_record_of_pdb_minimums(emu: KubeEmulator, api: Clients) -> None:
    web(emu, allowed=None, min_available=2)
    unready: set[str] = set()
    emu.controllers(
        replicasets=False, scheduler=False, unready=lambda p: p["metadata"]["name"] in unready
    )
    emu.reconcile()
    record = emu.reset_record()
    low = record.pdbs[f"{NS}/web"]
    assert (low.min_ready, low.min_disruptions_allowed, low.min_margin) == (3, 1, 1)

    evict(api.core, "web-0")
    emu.reconcile()
    assert (low.min_ready, low.min_disruptions_allowed, low.min_margin) == (2, 0, 0)
    assert record.pdbs_below_minimum() == []

    unready.add("web-1")  # a disruption nobody asked for: the budget is broken
    emu.reconcile()
    assert (low.min_ready, low.min_margin) == (1, -1)
    assert record.pdbs_below_minimum() == [f"{NS}/web"]
