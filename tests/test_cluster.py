"""The live cluster reader, through the real kubernetes client, against the loopback emulator."""

from __future__ import annotations

import gzip
import http.client
import itertools
import json
import os
import re
import socket
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import pytest

import kube_engine
from k8s_emulator import (
    EXPIRED_MESSAGE,
    NODES,
    PDBS,
    PODS,
    KubeEmulator,
    Response,
    node,
    pdb,
    pod,
    write_kubeconfig,
)
from kube_engine import cluster

pytestmark = pytest.mark.usefixtures("no_real_cluster")

PODS_PATH = "/api/v1/pods"
NODES_PATH = "/api/v1/nodes"
PDBS_PATH = "/apis/policy/v1/poddisruptionbudgets"
#: Read after the PDBs (a reader not allowed to list them goes on without).
VOLUME_PATHS = [
    "/api/v1/persistentvolumeclaims",
    "/api/v1/persistentvolumes",
    "/apis/storage.k8s.io/v1/storageclasses",
]
#: One request per list on a small cluster.
LISTS = 3 + len(VOLUME_PATHS)


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        yield emulator


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the reader's backoff waits instead of sleeping."""
    waits: list[float] = []
    monkeypatch.setattr(cluster, "_sleep", waits.append)
    return waits


def populate(
    emu: KubeEmulator, *, nodes: int = 3, pods: int = 10, pdbs: int = 1
) -> dict[str, str | None]:
    """Nodes n0.., pods spread over namespaces ns0..ns6 (every 5th pending), PDBs; returns the
    expected pod -> node assignment ("namespace/name" -> node name or None)."""
    for i in range(nodes):
        emu.add_node(node(f"n{i}", cpu="8", memory="32Gi"))
    expected: dict[str, str | None] = {}
    for i in range(pods):
        ns, name = f"ns{i % 7}", f"pod-{i:05d}"
        node_name = None if i % 5 == 0 else f"n{i % nodes}"
        emu.add_pod(pod(ns, name, node_name=node_name, labels={"app": f"app{i % 4}"}))
        expected[f"{ns}/{name}"] = node_name
    for i in range(pdbs):
        emu.add_pdb(
            pdb(f"ns{i % 7}", f"pdb-{i}", match_labels={"app": f"app{i % 4}"}, min_available=1)
        )
    return expected


def assignments(snap: kube_engine.Snapshot) -> dict[str, str | None]:
    names = snap.pod_names()
    nodes = snap.pod_nodes()
    assert len(names) == len(nodes) == snap.num_pods
    return dict(zip(names, nodes, strict=True))


def has_continue(req: Any) -> bool:
    return req.param("continue") is not None


# --------------------------------------------------------------------------------------------------
# Pagination


def test_pagination_reads_every_page_and_follows_the_continue_chain(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    expected = populate(emu, nodes=5, pods=1234, pdbs=2)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")

    snap = cluster.read_snapshot(kubeconfig, page_size=100)

    assert (snap.num_nodes, snap.num_pods, snap.num_pdbs) == (5, 1234, 2)
    assert sorted(snap.node_names()) == [f"n{i}" for i in range(5)]
    assert assignments(snap) == expected
    assert sum(1 for n in expected.values() if n is None) == 247  # pending pods stay unassigned

    pod_requests = emu.requests_for(PODS_PATH)
    assert len(pod_requests) == 13  # ceil(1234 / 100)
    assert all(r.param("limit") == "100" for r in pod_requests)
    assert not has_continue(pod_requests[0])
    # Each request carries exactly the token the previous answer handed out; the last has none.
    for prev, cur in zip(pod_requests, pod_requests[1:], strict=False):
        assert cur.param("continue") == prev.response_json()["metadata"]["continue"]
    last = pod_requests[-1].response_json()
    assert "continue" not in last["metadata"]
    assert len(last["items"]) == 34
    # All three lists were read, in order, nodes and PDBs in one page each.
    assert [r.path for r in emu.requests] == (
        [NODES_PATH] + [PODS_PATH] * 13 + [PDBS_PATH] + VOLUME_PATHS
    )


def test_small_pages_for_every_resource(emu: KubeEmulator, tmp_path: Path) -> None:
    expected = populate(emu, nodes=5, pods=5, pdbs=3)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")

    snap = cluster.read_snapshot(kubeconfig, page_size=2)

    assert (snap.num_nodes, snap.num_pods, snap.num_pdbs) == (5, 5, 3)
    assert assignments(snap) == expected
    assert [(r.path, has_continue(r)) for r in emu.requests] == [
        (NODES_PATH, False),
        (NODES_PATH, True),
        (NODES_PATH, True),
        (PODS_PATH, False),
        (PODS_PATH, True),
        (PODS_PATH, True),
        (PDBS_PATH, False),
        (PDBS_PATH, True),
        *((path, False) for path in VOLUME_PATHS),
    ]
    assert {r.param("limit") for r in emu.requests} == {"2"}


def test_pages_are_the_servers_raw_bytes_and_no_models_are_built(
    emu: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(emu, nodes=3, pods=25, pdbs=2)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")

    def no_models(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reader must not deserialize into client models")

    monkeypatch.setattr(kubernetes.client.ApiClient, "deserialize", no_models)
    seen: list[list[bytes]] = []
    real_from_documents = kube_engine.Snapshot.from_documents

    class RecordingSnapshot:
        @staticmethod
        def from_documents(pages: list[bytes], *, strict: bool = False) -> kube_engine.Snapshot:
            seen.append(pages)
            return real_from_documents(pages, strict=strict)

    monkeypatch.setattr(cluster, "Snapshot", RecordingSnapshot)

    snap = cluster.read_snapshot(kubeconfig, page_size=10)

    assert snap.num_pods == 25
    (pages,) = seen
    assert all(type(p) is bytes for p in pages)
    sent = [r.response.encode() for r in emu.requests if r.response is not None]
    assert pages == sent  # one element per page, byte for byte what the server sent
    kinds = [json.loads(p)["kind"] for p in pages]
    assert kinds == ["NodeList"] + ["PodList"] * 3 + ["PodDisruptionBudgetList"] + [
        "PersistentVolumeClaimList",
        "PersistentVolumeList",
        "StorageClassList",
    ]


def test_empty_cluster(emu: KubeEmulator, tmp_path: Path) -> None:
    snap = cluster.read_snapshot(emu.write_kubeconfig(tmp_path / "kubeconfig"))
    assert (snap.num_nodes, snap.num_pods, snap.num_pdbs) == (0, 0, 0)
    assert [r.param("limit") for r in emu.requests] == ["500"] * LISTS


def test_volumes_are_read_and_a_reader_not_allowed_to_goes_on_without(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    emu.add_node(node("n1", labels={"topology.kubernetes.io/zone": "a"}))
    emu.add_node(node("n2", labels={"topology.kubernetes.io/zone": "b"}))
    db = pod("db", "db-0", node_name="n1")
    db["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": "db",
            "uid": "db",
            "controller": True,
        }
    ]
    db["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]
    emu.add_pod(db)
    emu.add(
        "persistentvolumeclaims",
        {"metadata": {"name": "data-db-0", "namespace": "db"}, "spec": {"volumeName": "pv-0"}},
    )
    emu.add(
        "persistentvolumes",
        {"metadata": {"name": "pv-0", "labels": {"topology.kubernetes.io/zone": "a"}}, "spec": {}},
    )
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    # The volume is in zone a: a move to n2 (zone b) is refused, with kube-scheduler's reason.
    plan = kube_engine.plan(cluster.read_snapshot(kubeconfig), {"db/db-0": "n2"})
    assert [(k.kind, k.reason) for k in plan.kept] == [
        ("NoRoom", "its target never has room: node(s) had no available volume zone")
    ]
    # Not allowed to list volumes: the cluster is read all the same, and the pod stays.
    reads = [
        {
            "apiGroups": ["", "policy"],
            "resources": ["nodes", "pods", "poddisruptionbudgets"],
            "verbs": ["list"],
        }
    ]
    emu.set_rbac(reads)
    plan = kube_engine.plan(cluster.read_snapshot(kubeconfig), {"db/db-0": "n2"})
    assert [k.kind for k in plan.kept] == ["Pinned"]
    assert "PersistentVolumeClaims the snapshot does not describe" in plan.kept[0].reason


# --------------------------------------------------------------------------------------------------
# Expired continue tokens (410 Gone)


def test_expired_continue_token_restarts_the_list(emu: KubeEmulator, tmp_path: Path) -> None:
    expected = populate(emu, nodes=2, pods=250, pdbs=0)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    # The server forgets its tokens just before the second page: it answers 410 by itself.
    emu.inject(path=PODS_PATH, when=has_continue, before=lambda r: emu.expire_continue_tokens())

    snap = cluster.read_snapshot(kubeconfig, page_size=100)

    assert snap.num_pods == 250  # nothing from the abandoned first attempt is counted twice
    assert assignments(snap) == expected
    pod_requests = emu.requests_for(PODS_PATH)
    assert [(has_continue(r), r.status) for r in pod_requests] == [
        (False, 200),
        (True, 410),
        (False, 200),  # restarted from the beginning
        (True, 200),
        (True, 200),
    ]
    gone = pod_requests[1].response_json()
    assert (gone["kind"], gone["reason"], gone["code"]) == ("Status", "Expired", 410)


def test_the_pages_of_an_expired_pass_do_not_count_against_max_bytes(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    expected = populate(emu, nodes=2, pods=250, pdbs=0)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    cluster.read_snapshot(kubeconfig, page_size=100)
    bodies = [len(r.response.encode()) for r in emu.requests if r.response is not None]
    # A read's answers, headers included (a few hundred bytes each), but not the abandoned page.
    held = sum(bodies) + 1000 * len(bodies)
    assert held < sum(bodies) + min(bodies[1:4])  # the pods' pages, the first of them abandoned
    emu.inject(path=PODS_PATH, when=has_continue, before=lambda r: emu.expire_continue_tokens())

    snap = cluster.read_snapshot(kubeconfig, page_size=100, max_bytes=held)

    assert assignments(snap) == expected
    assert [r.status for r in emu.requests_for(PODS_PATH)][-5:] == [200, 410, 200, 200, 200]


def test_expiring_over_and_over_gives_up_with_cluster_error(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    populate(emu, nodes=1, pods=30, pdbs=0)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(410, path=PODS_PATH, when=has_continue, times=None)

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, page_size=10)

    message = str(err.value)
    assert "pods" in message and "410" in message and "too old" in message
    starts = [r for r in emu.requests_for(PODS_PATH) if not has_continue(r)]
    assert len(starts) == cluster.MAX_RESTARTS + 1
    assert len(emu.requests_for(PDBS_PATH)) == 0  # stopped at the failing list


# --------------------------------------------------------------------------------------------------
# Retries


def test_429_and_5xx_are_retried_with_the_same_request(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    expected = populate(emu, nodes=3, pods=45, pdbs=1)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(503, path=NODES_PATH)
    emu.inject(429, path=PODS_PATH, when=has_continue, retry_after=7)
    emu.inject(500, path=PODS_PATH, when=has_continue, message="etcdserver: leader changed")

    snap = cluster.read_snapshot(kubeconfig, page_size=20)

    assert (snap.num_nodes, snap.num_pods, snap.num_pdbs) == (3, 45, 1)
    assert assignments(snap) == expected
    assert [r.status for r in emu.requests_for(NODES_PATH)] == [503, 200]
    pod_requests = emu.requests_for(PODS_PATH)
    assert [r.status for r in pod_requests] == [200, 429, 500, 200, 200]
    # The retries repeat the failed request exactly, continue token included.
    assert pod_requests[1].query == pod_requests[2].query == pod_requests[3].query
    # Waits: backoff after the 503, Retry-After (7 s) after the 429, backoff after the 500.
    assert len(sleeps) == 3
    assert cluster.BACKOFF_BASE * 0.5 <= sleeps[0] <= cluster.BACKOFF_BASE
    assert sleeps[1] == 7.0
    assert cluster.BACKOFF_BASE <= sleeps[2] <= 2 * cluster.BACKOFF_BASE


def test_retry_after_is_really_waited_for(emu: KubeEmulator, tmp_path: Path) -> None:
    populate(emu, nodes=1, pods=3, pdbs=0)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(429, path=PDBS_PATH, retry_after=1)

    start = time.monotonic()
    snap = cluster.read_snapshot(kubeconfig)
    elapsed = time.monotonic() - start

    assert snap.num_pods == 3
    assert [r.status for r in emu.requests_for(PDBS_PATH)] == [429, 200]
    assert elapsed >= 1.0


def test_persistent_500_raises_cluster_error_naming_resource_and_status(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(500, path=PODS_PATH, times=None, message="etcdserver: request timed out")

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig)

    assert isinstance(err.value, kube_engine.KubeEngineError)
    message = str(err.value)
    assert "pods" in message
    assert "500" in message
    assert "etcdserver: request timed out" in message
    assert len(emu.requests_for(PODS_PATH)) == cluster.MAX_ATTEMPTS
    # Exponential backoff between the attempts, bounded.
    assert len(sleeps) == cluster.MAX_ATTEMPTS - 1
    for attempt, wait in enumerate(sleeps, start=1):
        ceiling = min(cluster.BACKOFF_MAX, cluster.BACKOFF_BASE * 2 ** (attempt - 1))
        assert ceiling * 0.5 <= wait <= ceiling


def test_non_retryable_status_raises_at_once(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    forbidden = (
        'poddisruptionbudgets.policy is forbidden: User "system:serviceaccount:ops:rebalancer" '
        'cannot list resource "poddisruptionbudgets" in API group "policy" at the cluster scope'
    )
    emu.inject(403, path=PDBS_PATH, message=forbidden)

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig)

    message = str(err.value)
    assert "poddisruptionbudgets" in message and "403" in message and forbidden in message
    assert len(emu.requests_for(PDBS_PATH)) == 1
    assert sleeps == []


def test_conflict_is_not_retried(emu: KubeEmulator, tmp_path: Path, sleeps: list[float]) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(409, path=NODES_PATH)

    with pytest.raises(kube_engine.ClusterError, match=r"nodes: HTTP 409"):
        cluster.read_snapshot(kubeconfig)
    assert len(emu.requests) == 1 and sleeps == []


def test_dropped_connections_are_retried(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    expected = populate(emu, pods=12)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(path=PODS_PATH, drop=True, times=2)

    snap = cluster.read_snapshot(kubeconfig)

    assert assignments(snap) == expected
    assert [r.status for r in emu.requests_for(PODS_PATH)] == [None, None, 200]
    assert len(sleeps) == 2


def test_a_server_that_refuses_at_first_contact_fails_at_once(
    tmp_path: Path, sleeps: list[float]
) -> None:
    with KubeEmulator() as gone:
        url = gone.url  # a port that nothing listens on once the emulator stopped
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"dead": url})

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig)

    assert str(err.value) == f"listing nodes from {url}: connection failed: Connection refused"
    assert sleeps == []  # not retried: the server never answered


def test_a_connection_dropped_at_first_contact_fails_at_once(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(path=NODES_PATH, drop=True, times=None)

    with pytest.raises(
        kube_engine.ClusterError, match=r"^listing nodes from .*: connection failed"
    ):
        cluster.read_snapshot(kubeconfig)
    assert len(emu.requests) == 1 and sleeps == []


# --------------------------------------------------------------------------------------------------
# Timeouts


def test_a_request_that_times_out_is_retried(emu: KubeEmulator, tmp_path: Path) -> None:
    expected = populate(emu, pods=8)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(path=PODS_PATH, delay=5.0)  # hangs far longer than the client waits

    start = time.monotonic()
    snap = cluster.read_snapshot(kubeconfig, timeout=0.5)
    elapsed = time.monotonic() - start

    assert assignments(snap) == expected
    pod_requests = emu.requests_for(PODS_PATH)
    assert len(pod_requests) == 2
    assert pod_requests[0].query == pod_requests[1].query
    assert elapsed < 4.0  # gave up on the hung request instead of waiting for it


def test_a_server_that_never_answers_fails_within_the_timeout(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(path=NODES_PATH, delay=10.0, times=None)

    start = time.monotonic()
    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, timeout=0.3)
    elapsed = time.monotonic() - start

    assert str(err.value) == f"listing nodes from {emu.url}: no answer within 0.3s"
    assert len(emu.requests_for(NODES_PATH)) == 1 and sleeps == []
    assert 0.3 <= elapsed < 0.3 + 2.0  # wide: the machine is shared


def test_a_socket_that_accepts_but_never_answers_fails_within_the_timeout(
    tmp_path: Path,
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshakes; nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"silent": url})

        start = time.monotonic()
        with pytest.raises(kube_engine.ClusterError, match="no answer within 0.5s"):
            cluster.read_snapshot(kubeconfig, timeout=0.5)
        elapsed = time.monotonic() - start

    assert 0.5 <= elapsed < 0.5 + 2.0  # wide: the machine is shared


@pytest.mark.parametrize(
    "hang",
    [
        {"delay": 10.0},
        # Each byte well within the timeout, the whole answer in minutes: the timeout bounds the
        # request, not each read of the socket.
        {"trickle": 0.02},
    ],
)
def test_a_server_that_hangs_mid_read_is_bounded_by_the_retry_budget(
    emu: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hang: dict[str, float]
) -> None:
    populate(emu, pods=8)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setattr(cluster, "RETRY_BUDGET_MIN", 1.0)
    emu.inject(path=PODS_PATH, times=None, **hang)  # the nodes answer; the pods never do

    start = time.monotonic()
    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, timeout=0.3)
    elapsed = time.monotonic() - start

    message = str(err.value)
    assert message.startswith(f"listing pods from {emu.url}: no answer within 0.3s (after ")
    assert message.endswith("; the read's retry budget of 1s is spent)")
    # Retried (the server had answered), but MAX_ATTEMPTS (5 x 0.3 s + backoff) was not reached.
    attempts = len(emu.requests_for(PODS_PATH))
    assert 2 <= attempts < cluster.MAX_ATTEMPTS
    # Failures cost at most the budget plus one timeout; the margin is wide (the first read of a
    # process also imports the client, and the machine is shared) yet far below the 10 s hang and
    # the minutes the trickled answer would take.
    assert elapsed < 1.0 + 0.3 + 3.0


def test_the_retry_budget_spans_the_whole_read(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(emu, nodes=2, pods=40, pdbs=0)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setattr(cluster, "RETRY_BUDGET_MIN", 2.0)
    # Every page fails once: no request reaches MAX_ATTEMPTS, but the read as a whole gives up.
    served: set[str | None] = set()

    def first_try(req: Any) -> bool:
        token = req.param("continue")
        if token in served:
            return False
        served.add(token)
        return True

    emu.inject(503, path=PODS_PATH, when=first_try, times=None)

    with pytest.raises(kube_engine.ClusterError, match="retry budget of 2s is spent"):
        cluster.read_snapshot(kubeconfig, page_size=2, timeout=0.1)

    assert sum(sleeps) <= 2.0
    statuses = [r.status for r in emu.requests_for(PODS_PATH)]
    assert statuses[:4] == [503, 200, 503, 200]
    assert statuses.count(200) < 20  # gave up before the last of the 20 pages


def test_a_retry_after_longer_than_the_budget_is_not_waited_for(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(429, path=PODS_PATH, retry_after=30)

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, timeout=1.0)

    assert "pods: HTTP 429" in str(err.value)
    assert str(err.value).endswith("(after 1 attempt; the read's retry budget of 10s is spent)")
    assert sleeps == []


# --------------------------------------------------------------------------------------------------
# A misbehaving server: every fault ends in a ClusterError, within bounded time and memory


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 12 ", 12.0),
        ("0", 0.0),
        ("60", 60.0),
        ("61", cluster.http_limits.RETRY_AFTER_MAX),
        ("9" * 5000, cluster.http_limits.RETRY_AFTER_MAX),  # int() of it would raise
        ("Fri, 31 Dec 9999 23:59:59 GMT", cluster.http_limits.RETRY_AFTER_MAX),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 0.0),  # in the past
        ("nan", None),
        ("inf", None),
        ("-1", None),
        ("1.5", None),
        ("1e400", None),
        ("1_0", None),
        ("\uff15", None),  # a fullwidth 5: a digit to str.isdigit, not to RFC 9110
        ("soon", None),
        ("5, 7", None),  # two headers, joined
        ("", None),
    ],
)
def test_retry_after_is_seconds_or_a_date_cut_to_the_maximum(
    value: str, seconds: float | None
) -> None:
    assert cluster.http_limits.retry_after({"Retry-After": value}) == seconds


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1.5", "soon"])
def test_a_retry_after_that_is_no_number_of_seconds_counts_as_absent(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float], value: str
) -> None:
    expected = populate(emu, pods=12)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(429, path=PODS_PATH, retry_after=value)

    snap = cluster.read_snapshot(kubeconfig)

    assert assignments(snap) == expected
    (request, _) = emu.requests_for(PODS_PATH)
    assert request.response is not None and request.response.headers["Retry-After"] == value
    # The backoff a 429 without Retry-After gets.
    assert len(sleeps) == 1 and cluster.BACKOFF_BASE * 0.5 <= sleeps[0] <= cluster.BACKOFF_BASE


@pytest.mark.parametrize("value", ["99999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_absurd_retry_after_ends_the_read_at_once(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float], value: str
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(429, path=PODS_PATH, retry_after=value, times=None)

    start = time.monotonic()
    with pytest.raises(kube_engine.ClusterError, match=r"pods: HTTP 429.*budget of 30s is spent"):
        cluster.read_snapshot(kubeconfig, timeout=30.0)

    # Cut to 60 s, longer than the budget: not waited for at all.
    assert sleeps == [] and len(emu.requests_for(PODS_PATH)) == 1
    assert time.monotonic() - start < 5.0


def test_the_bounds_are_installed_once(emu: KubeEmulator, tmp_path: Path) -> None:
    api_client = cluster.connect(emu.write_kubeconfig(tmp_path / "kubeconfig"))
    pools = dict(api_client.rest_client.pool_manager.pool_classes_by_scheme)
    cluster.http_limits.install(api_client)  # as the applier's Api does again
    assert api_client.rest_client.pool_manager.pool_classes_by_scheme == pools
    assert all(
        p.ConnectionCls.__bases__[0].response_class is http.client.HTTPResponse
        for p in pools.values()
    )


def test_a_trickled_body_is_retried_like_a_timeout(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    expected = populate(emu, pods=8)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(path=PODS_PATH, trickle=0.02)

    snap = cluster.read_snapshot(kubeconfig, timeout=0.3)

    assert assignments(snap) == expected
    assert len(emu.requests_for(PODS_PATH)) == 2 and len(sleeps) == 1


def test_a_server_trickling_its_headers_fails_within_the_timeout(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(path=NODES_PATH, trickle=0.02, trickle_head=True, times=None)

    start = time.monotonic()
    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, timeout=0.3)
    elapsed = time.monotonic() - start

    assert str(err.value) == f"listing nodes from {emu.url}: no answer within 0.3s"
    assert sleeps == []  # no answer yet: not retried
    assert 0.3 <= elapsed < 0.3 + 2.0  # wide: the machine is shared


def node_list(nodes: int, token: str | None) -> dict[str, Any]:
    items = [node(f"n{secrets_suffix()}", cpu="1", memory="1Gi") for _ in range(nodes)]
    return {
        "kind": "NodeList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1", **({"continue": token} if token else {})},
        "items": items,
    }


def secrets_suffix() -> str:
    return os.urandom(6).hex()


def serve_nodes(emu: KubeEmulator, next_token: Any, nodes: int = 1) -> None:
    """Serve the node list as pages of ``nodes`` nodes, each page's continue token
    ``next_token(token asked for)``."""

    def handler(req: Any) -> Response:
        return Response(200, node_list(nodes, next_token(req.param("continue"))))

    emu.add_route("GET", NODES_PATH, handler)


def test_continue_tokens_that_cycle_end_the_read(emu: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    serve_nodes(emu, {None: "A", "A": "B", "B": "A"}.get)

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig)

    assert str(err.value) == (
        "listing nodes: the server handed out continue token 'A' a second time (after 3 pages): "
        "the list would never end"
    )
    assert [r.param("continue") for r in emu.requests_for(NODES_PATH)] == [None, "A", "B"]


def test_continue_tokens_that_never_end_stop_at_the_page_limit(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    fresh = itertools.count()
    serve_nodes(emu, lambda token: f"t{next(fresh)}")  # one node a page, for ever

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, page_size=10, max_items=100)

    # ceil(100 / 10) + 10 pages.
    assert str(err.value) == (
        "listing nodes: not done after 20 pages of at most 10 items (20 items; max_items=100)"
    )
    assert len(emu.requests_for(NODES_PATH)) == 20


def test_a_list_longer_than_max_items_ends_the_read(emu: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    fresh = itertools.count()
    serve_nodes(emu, lambda token: f"t{next(fresh)}", nodes=10)

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, page_size=10, max_items=25)

    assert str(err.value) == "listing nodes: more than max_items=25 items (in 3 pages)"


def test_an_answer_announcing_8_gib_is_refused_before_its_body_is_read(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    endless = Response(
        200, headers={"Content-Length": str(8 << 30)}, stream=itertools.repeat(b" " * 65536)
    )
    emu.inject(path=PODS_PATH, answer=endless)

    start = time.monotonic()
    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig)

    assert str(err.value).startswith(
        f"listing pods from {emu.url}: answer refused: the answer's Content-Length of 8589934592 "
        "bytes is over the limit of "
    )
    assert str(err.value).endswith(f"of the read's max_bytes={cluster.MAX_READ_BYTES} left)")
    assert time.monotonic() - start < 5.0
    assert len(emu.requests_for(PODS_PATH)) == 1 and sleeps == []  # not retried


def test_an_endless_body_is_cut_off_at_max_bytes(emu: KubeEmulator, tmp_path: Path) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    cluster.read_snapshot(kubeconfig)  # the client's modules, imported outside the trace
    emu.inject(path=PODS_PATH, answer=Response(200, stream=itertools.repeat(b" " * 65536)))
    max_bytes = 4 << 20

    tracemalloc.start()
    try:
        with pytest.raises(kube_engine.ClusterError) as err:
            cluster.read_snapshot(kubeconfig, max_bytes=max_bytes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert "answer refused: the answer is over the limit of " in str(err.value)
    assert f"max_bytes={max_bytes}" in str(err.value)
    # What was read is held once or twice while it is read, never more.
    assert peak < 3 * max_bytes


def test_max_bytes_counts_the_answers_of_the_whole_read(emu: KubeEmulator, tmp_path: Path) -> None:
    populate(emu, pods=200)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, max_bytes=20_000)

    # The nodes fit; the pods' page is refused on its Content-Length, by what the nodes left
    # (their body and their headers).
    (nodes,) = emu.requests_for(NODES_PATH)
    body = len(nodes.response.encode()) if nodes.response else 0
    found = re.fullmatch(
        f"listing pods from {emu.url}: answer refused: the answer's Content-Length of "
        r"\d+ bytes is over the limit of (\d+) bytes \((\d+) of the read's max_bytes=20000 left\)",
        str(err.value),
    )
    assert found is not None, str(err.value)
    assert found[1] == found[2] and 20_000 - body - 1000 < int(found[1]) < 20_000 - body


def test_an_answer_that_ends_where_the_connection_does_is_read(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    """No Content-Length, no chunks: an HTTP/1.0 server, or a proxy, closing the connection at
    the end of the body. The client closes its side before reading the body."""
    expected = populate(emu, pods=12)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    pods = emu.objects(PODS)
    page = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods}
    emu.inject(path=PODS_PATH, answer=Response(200, page, until_close=True))

    snap = cluster.read_snapshot(kubeconfig)

    assert assignments(snap) == expected
    assert sleeps == []  # read at the first attempt


@pytest.mark.parametrize("size", ["fffffffffff", "7fffffffffffffff", "f" * 40])
def test_a_chunk_announcing_more_than_max_bytes_is_refused(
    emu: KubeEmulator, tmp_path: Path, size: str
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    body = size.encode() + b"\r\n" + b" " * 1000  # the chunk never comes
    emu.inject(path=NODES_PATH, answer=Response(200, body, {"Transfer-Encoding": "chunked"}))

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, timeout=5.0)

    assert str(err.value) == (
        f"listing nodes from {emu.url}: answer refused: the answer announces {int(size, 16)} "
        f"bytes, over the limit of {cluster.MAX_READ_BYTES} bytes "
        f"({cluster.MAX_READ_BYTES} of the read's max_bytes={cluster.MAX_READ_BYTES} left)"
    )


def test_a_compressed_answer_is_refused_without_inflating_it(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    bomb = gzip.compress(b" " * (64 << 20), compresslevel=9)  # 64 MiB in about 64 KiB
    emu.inject(path=PODS_PATH, answer=Response(200, bomb, headers={"Content-Encoding": "gzip"}))

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig)

    assert str(err.value).startswith(
        f"listing pods from {emu.url}: answer refused: the answer is compressed "
        "(Content-Encoding: gzip), which was not asked for"
    )
    assert [r.header("Accept-Encoding") for r in emu.requests_for(PODS_PATH)] == ["identity"]


def test_an_error_whose_body_nests_too_deep_is_reported_cut(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(path=NODES_PATH, answer=Response(400, b"[" * 100_000))

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig)

    assert str(err.value) == "listing nodes: HTTP 400 Bad Request: " + "[" * 500 + "..."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"<html><body>Sign in to continue</body></html>",
            "listing nodes: the server's answer is not a list: malformed JSON: expected value "
            "at line 1 column 1; it begins '<html><body>Sign in to continue</body></html>'",
        ),
        (
            b"\xff\xfe" + b"x" * 500,
            "listing nodes: the server's answer is not a list: malformed JSON: expected value "
            "at line 1 column 1; it begins '\ufffd\ufffd" + "x" * 98 + "...'",
        ),
        (
            {"kind": "Status", "apiVersion": "v1", "status": "Success"},
            "listing nodes: the server's answer has kind 'Status', not 'NodeList'",
        ),
        (
            {"kind": "PodList", "apiVersion": "v1", "items": []},
            "listing nodes: the server's answer has kind 'PodList', not 'NodeList'",
        ),
        ([], "listing nodes: the server's answer has kind '', not 'NodeList'"),
        (
            {"kind": "NodeList", "items": {}},
            "listing nodes: the server's answer is not a list: malformed JSON: invalid type: map, "
            'expected a sequence at line 1 column 27; it begins \'{"kind":"NodeList","items":{}}\'',
        ),
    ],
    ids=["html", "binary", "status", "pod-list", "array", "items-not-array"],
)
def test_a_200_that_is_not_the_list_asked_for_ends_the_read(
    emu: KubeEmulator, tmp_path: Path, body: Any, message: str
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    emu.inject(path=NODES_PATH, answer=Response(200, body))

    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig)

    assert str(err.value) == message


# --------------------------------------------------------------------------------------------------
# Configuration


def test_context_selection_from_a_kubeconfig_with_two_contexts(tmp_path: Path) -> None:
    with KubeEmulator() as prod, KubeEmulator() as staging:
        prod.add_node(node("prod-node"))
        prod.add_pod(pod("web", "prod-pod", node_name="prod-node"))
        for i in range(3):
            staging.add_node(node(f"staging-node-{i}"))
        staging.add_pod(pod("web", "staging-pod", node_name="staging-node-2"))
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig",
            {"prod": prod.url, "staging": staging.url},
            current_context="prod",
        )

        current = cluster.read_snapshot(kubeconfig)
        assert current.node_names() == ["prod-node"]
        assert staging.requests == []

        chosen = cluster.read_snapshot(str(kubeconfig), context="staging")
        assert sorted(chosen.node_names()) == ["staging-node-0", "staging-node-1", "staging-node-2"]
        assert assignments(chosen) == {"web/staging-pod": "staging-node-2"}
        assert len(prod.requests) == LISTS  # only the first read went to prod

        with pytest.raises(kube_engine.ClusterError, match="no-such-context"):
            cluster.read_snapshot(kubeconfig, context="no-such-context")


def test_kubeconfig_credentials_are_sent(emu: KubeEmulator, tmp_path: Path) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig", token="s3cr3t-token")

    cluster.read_snapshot(kubeconfig)

    assert len(emu.requests) == LISTS
    assert {r.header("Authorization") for r in emu.requests} == {"Bearer s3cr3t-token"}


def test_default_kubeconfig_comes_from_the_environment(
    emu: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = populate(emu, pods=4)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig", context="from-env")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    snap = cluster.read_snapshot()

    assert assignments(snap) == expected
    assert cluster.read_snapshot(context="from-env").num_pods == 4


def test_in_cluster_configuration_is_used_when_running_in_a_pod(
    emu: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes.config import incluster_config

    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(emu.port))
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "no-token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "no-ca.crt"))

    with pytest.raises(kube_engine.ClusterError, match="in-cluster"):
        cluster.read_snapshot()
    assert emu.requests == []

    # An explicit kubeconfig wins over the in-cluster service account.
    populate(emu, pods=2)
    assert cluster.read_snapshot(emu.write_kubeconfig(tmp_path / "kubeconfig")).num_pods == 2


def test_kubeconfig_from_the_environment_wins_over_the_pods_service_account(
    emu: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(emu, pods=3)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "1")  # nothing there: must not be used
    monkeypatch.setenv("KUBECONFIG", str(emu.write_kubeconfig(tmp_path / "kubeconfig")))

    assert cluster.read_snapshot().num_pods == 3
    described = cluster.describe_config()
    assert described == f"kubeconfig {tmp_path}/kubeconfig (from $KUBECONFIG), context emulator"
    monkeypatch.delenv("KUBECONFIG")
    assert cluster.describe_config() == "in-cluster service account"


def test_a_kubeconfig_list_in_the_environment_is_merged_as_kubectl_merges_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with KubeEmulator() as first, KubeEmulator() as second:
        first.add_node(node("first-node"))
        second.add_node(node("second-node"))
        a = write_kubeconfig(tmp_path / "a", {"first": first.url})
        b = write_kubeconfig(tmp_path / "b", {"second": second.url})
        missing = tmp_path / "missing"
        monkeypatch.setenv("KUBECONFIG", f"{missing}:{a}:{b}")

        # The first file that sets a current context wins (kubectl's rule; the client's own merge
        # would take the last one's); a missing file in the list is skipped.
        assert cluster.read_snapshot().node_names() == ["first-node"]
        assert cluster.read_snapshot(context="second").node_names() == ["second-node"]
        assert cluster.describe_config(context="second") == (
            f"kubeconfig {missing}:{a}:{b} (from $KUBECONFIG), context second"
        )
        assert len(first.requests) == len(second.requests) == LISTS

        monkeypatch.setenv("KUBECONFIG", f"{missing}:{tmp_path / 'also-missing'}")
        with pytest.raises(kube_engine.ClusterError, match=r"^\$KUBECONFIG names no file that"):
            cluster.read_snapshot()
        assert len(first.requests) == len(second.requests) == LISTS


def test_missing_kubeconfig_raises_cluster_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(missing)
    assert str(err.value) == f"kubeconfig {missing} does not exist"


def test_no_configuration_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(cluster.NoConfigurationError) as err:
        cluster.read_snapshot()
    assert isinstance(err.value, kube_engine.ClusterError)
    assert f"{home}/.kube/config does not exist" in str(err.value)
    assert "KUBERNETES_SERVICE_HOST is not set" in str(err.value)


def test_the_default_kubeconfig_is_found_in_home(
    emu: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(emu, pods=2)
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    emu.write_kubeconfig(home / ".kube" / "config", context="mine")
    monkeypatch.setenv("HOME", str(home))

    assert cluster.read_snapshot().num_pods == 2
    assert cluster.describe_config() == "kubeconfig ~/.kube/config, context mine"


def test_unusable_contexts_are_named_before_any_request(emu: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"prod": emu.url, "staging": emu.url})
    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.read_snapshot(kubeconfig, context="dev")
    assert str(err.value) == (
        f"context 'dev' is not in kubeconfig {kubeconfig} (its contexts: prod, staging)"
    )

    doc = json.loads(kubeconfig.read_text())
    del doc["current-context"]
    kubeconfig.write_text(json.dumps(doc))
    with pytest.raises(kube_engine.ClusterError) as err:
        cluster.describe_config(kubeconfig)
    assert str(err.value) == (
        f"kubeconfig {kubeconfig} sets no current context (its contexts: prod, staging)"
    )
    assert cluster.describe_config(kubeconfig, "staging") == (
        f"kubeconfig {kubeconfig}, context staging"
    )
    assert emu.requests == []


def test_global_client_configuration_is_left_alone(emu: KubeEmulator, tmp_path: Path) -> None:
    populate(emu)
    before = kubernetes.client.Configuration.get_default_copy().host

    cluster.read_snapshot(emu.write_kubeconfig(tmp_path / "kubeconfig"))

    assert kubernetes.client.Configuration.get_default_copy().host == before
    assert emu.url not in before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"page_size": 0}, "page_size must be an integer at least 1, got 0"),
        ({"page_size": 1.5}, "page_size must be an integer at least 1, got 1.5"),
        *[
            (
                {"timeout": t},
                f"timeout must be a finite number more than 0 and at most {2**31:g}, got {t!r}",
            )
            for t in (0, float("inf"), float("nan"), "5", 1e300)
        ],
        ({"max_bytes": 0}, "max_bytes must be an integer at least 1, got 0"),
        ({"max_items": True}, "max_items must be an integer at least 1, got True"),
    ],
)
def test_bad_arguments(
    emu: KubeEmulator, tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    with pytest.raises(kube_engine.InvalidArgumentError) as err:
        cluster.read_snapshot(kubeconfig, **arguments)
    assert str(err.value) == message
    assert err.value.argument == next(iter(arguments))
    assert emu.requests == []


# --------------------------------------------------------------------------------------------------
# Pods on nodes the lists lack


def test_a_pod_on_a_node_the_read_did_not_see_is_left_out_unless_strict(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    populate(emu, nodes=2, pods=4, pdbs=0)
    emu.add_pod(pod("jobs", "finished", node_name="deleted-node", phase="Succeeded"))
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")

    snap = cluster.read_snapshot(kubeconfig)
    assert snap.num_pods == 4
    assert snap.left_out == [("jobs/finished", "deleted-node")]

    with pytest.raises(kube_engine.SnapshotError, match="deleted-node"):
        cluster.read_snapshot(kubeconfig, strict=True)

    # save_snapshot keeps what the server listed; strict refuses to write it.
    saved = cluster.save_snapshot(tmp_path / "all.json", kubeconfig=kubeconfig)
    assert kube_engine.Snapshot.from_file(saved).left_out == [("jobs/finished", "deleted-node")]
    with pytest.raises(kube_engine.SnapshotError, match="deleted-node"):
        cluster.save_snapshot(tmp_path / "strict.json", kubeconfig=kubeconfig, strict=True)
    assert not (tmp_path / "strict.json").exists()


# --------------------------------------------------------------------------------------------------
# save_snapshot


@pytest.mark.parametrize("filename", ["cluster.json", "cluster.json.gz"])
def test_save_snapshot_round_trips(emu: KubeEmulator, tmp_path: Path, filename: str) -> None:
    expected = populate(emu, nodes=4, pods=321, pdbs=3)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / filename

    written = cluster.save_snapshot(target, kubeconfig=kubeconfig, page_size=50)

    assert written == target
    assert os.listdir(out_dir) == [filename]  # no temporary file left behind
    raw = target.read_bytes()
    if filename.endswith(".gz"):
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    doc = json.loads(raw)
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "List")
    kinds = [(item["apiVersion"], item["kind"]) for item in doc["items"]]
    assert kinds.count(("v1", "Node")) == 4
    assert kinds.count(("v1", "Pod")) == 321
    assert kinds.count(("policy/v1", "PodDisruptionBudget")) == 3
    assert len(kinds) == 328

    loaded = kube_engine.Snapshot.from_file(target)
    live = cluster.read_snapshot(kubeconfig)
    assert (loaded.num_nodes, loaded.num_pods, loaded.num_pdbs) == (4, 321, 3)
    assert (live.num_nodes, live.num_pods, live.num_pdbs) == (4, 321, 3)
    assert assignments(loaded) == assignments(live) == expected
    assert sorted(loaded.node_names()) == sorted(live.node_names())


def test_failed_save_leaves_nothing_behind(
    emu: KubeEmulator, tmp_path: Path, sleeps: list[float]
) -> None:
    populate(emu)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    emu.inject(500, path=PDBS_PATH, times=None)

    with pytest.raises(kube_engine.ClusterError, match="poddisruptionbudgets"):
        cluster.save_snapshot(out_dir / "new.json.gz", kubeconfig=kubeconfig)
    assert os.listdir(out_dir) == []

    # An existing snapshot survives a failed overwrite untouched.
    old = out_dir / "old.json"
    old.write_text('{"apiVersion": "v1", "kind": "List", "items": []}')
    with pytest.raises(kube_engine.ClusterError):
        cluster.save_snapshot(old, kubeconfig=kubeconfig)
    assert old.read_text() == '{"apiVersion": "v1", "kind": "List", "items": []}'
    assert os.listdir(out_dir) == ["old.json"]


def test_save_replaces_an_existing_snapshot(emu: KubeEmulator, tmp_path: Path) -> None:
    populate(emu, nodes=2, pods=5)
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    target = tmp_path / "snap.json"
    target.write_text("stale")

    cluster.save_snapshot(str(target), kubeconfig=kubeconfig)

    assert kube_engine.Snapshot.from_file(target).num_pods == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kubeconfig", "snap.json"]


# --------------------------------------------------------------------------------------------------
# The emulator itself, through the client's typed API (what later readers and the applier use)


@pytest.fixture
def core_api(emu: KubeEmulator, tmp_path: Path) -> Iterator[kubernetes.client.CoreV1Api]:
    """The client's typed API (with model objects) on the emulator."""
    kubeconfig = emu.write_kubeconfig(tmp_path / "typed-kubeconfig")
    api_client = kubernetes.config.new_client_from_config(
        config_file=str(kubeconfig), persist_config=False
    )
    with api_client:
        yield kubernetes.client.CoreV1Api(api_client)


def test_emulator_selectors_and_single_gets(
    emu: KubeEmulator, core_api: kubernetes.client.CoreV1Api
) -> None:
    populate(emu, nodes=3, pods=40, pdbs=0)
    emu.add_node(node("cordoned", unschedulable=True))
    core = core_api

    on_n1 = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    assert on_n1.items and {p.spec.node_name for p in on_n1.items} == {"n1"}
    pending = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=")
    assert len(pending.items) == 8 and all(p.spec.node_name is None for p in pending.items)
    in_ns = core.list_namespaced_pod("ns3", label_selector="app in (app1,app2),app!=app2")
    assert [p.metadata.name for p in in_ns.items] == ["pod-00017"]
    assert all(p.metadata.namespace == "ns3" for p in in_ns.items)
    by_name = core.list_node(field_selector="metadata.name=n2")
    assert [n.metadata.name for n in by_name.items] == ["n2"]
    cordoned = core.list_node(field_selector="spec.unschedulable=true")
    assert [n.metadata.name for n in cordoned.items] == ["cordoned"]
    assert len(core.list_node(label_selector="!kubernetes.io/hostname").items) == 0

    got = core.read_namespaced_pod("pod-00017", "ns3")
    assert (got.kind, got.api_version, got.spec.node_name) == ("Pod", "v1", "n2")
    with pytest.raises(kubernetes.client.ApiException) as missing:
        core.read_namespaced_pod("nope", "ns3")
    assert missing.value.status == 404
    status = json.loads(missing.value.body)
    assert (status["kind"], status["reason"]) == ("Status", "NotFound")

    with pytest.raises(kubernetes.client.ApiException) as bad:
        core.list_pod_for_all_namespaces(field_selector="spec.bogus=1")
    assert bad.value.status == 400


def test_emulator_list_format_and_continue_errors(emu: KubeEmulator) -> None:
    emu.add_pdb(pdb("a", "p1", match_labels={"x": "y"}, max_unavailable=1))
    emu.add_pdb(pdb("b", "p2", match_labels={"x": "y"}, min_available="50%"))

    def get(path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(emu.url + path, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    code, first = get(f"/apis/{PDBS.group}/{PDBS.version}/{PDBS.plural}?limit=1")
    assert code == 200
    assert (first["kind"], first["apiVersion"]) == ("PodDisruptionBudgetList", "policy/v1")
    assert first["metadata"]["remainingItemCount"] == 1
    (item,) = first["items"]
    assert "kind" not in item and "apiVersion" not in item
    assert item["metadata"]["resourceVersion"] and item["metadata"]["uid"]

    token = first["metadata"]["continue"]
    code, wrong_query = get(f"/apis/policy/v1/namespaces/a/poddisruptionbudgets?continue={token}")
    assert code == 400
    emu.expire_continue_tokens()
    code, expired = get(f"/apis/policy/v1/poddisruptionbudgets?limit=1&continue={token}")
    assert code == 410
    assert (expired["kind"], expired["reason"], expired["message"]) == (
        "Status",
        "Expired",
        EXPIRED_MESSAGE,
    )
    code, unknown = get(f"/api/v1/{NODES.plural}/missing")
    assert (code, unknown["reason"]) == (404, "NotFound")
    code, _ = get(f"/api/v1/namespaces/a/{PODS.plural}")
    assert code == 200
    code, _ = get("/apis/apps/v1/deployments")
    assert code == 404
    assert [r.status for r in emu.requests] == [200, 400, 410, 404, 200, 404]
