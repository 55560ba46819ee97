"""A Kubernetes API emulator on loopback, for tests: a fair stand-in for kube-apiserver.

No kube-apiserver can run on the test machines, so the tests talk HTTP to this emulator through
the real ``kubernetes`` client instead. It keeps objects in memory (JSON dicts, as the API stores
them) and answers with kube-apiserver's semantics for everything the project's cluster reader and
applier rely on; ``tests/test_k8s_emulator.py`` checks each behaviour through the real client.

What is emulated
----------------
Resources (:data:`DEFAULT_RESOURCES`): nodes, pods, namespaces, poddisruptionbudgets
(policy/v1), leases (coordination.k8s.io/v1), events (core v1 and events.k8s.io/v1).

* Lists as ``PodList``/... documents whose items carry no ``kind``/``apiVersion``, with
  ``limit``/``continue`` pagination over a consistent snapshot (an unknown or expired token gives
  ``410 Expired``), ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``k``, ``!k``)
  and ``fieldSelector`` (``=``, ``==``, ``!=`` on the fields the real API supports); GETs of one
  object (with ``kind``/``apiVersion``; a ``404 NotFound`` Status when missing).
* Watch (``?watch=true|1``): newline-delimited ``ADDED``/``MODIFIED``/``DELETED`` events over a
  chunked answer, after ``resourceVersion`` (none or "0": the current objects first, as
  ``ADDED``), filtered by selectors (an object that starts or stops matching is ``ADDED`` or
  ``DELETED``, as the watch cache does), until ``timeoutSeconds``; ``BOOKMARK`` events with
  ``allowWatchBookmarks``; a resourceVersion older than the kept history (``watch_window``,
  :meth:`KubeEmulator.compact`) gets an ``ERROR`` event holding a ``410 Expired`` Status.
* Writes: ``POST`` (``generateName``, ``409 AlreadyExists``, server-set uid, creationTimestamp
  and generation, a fresh status for pods and PDBs), ``PUT`` and ``PATCH`` (merge, strategic
  merge, JSON patch) with optimistic concurrency (a stale ``metadata.resourceVersion`` in the
  body or the patch: ``409``), ``/status`` subresources (the object's own endpoint keeps its
  status), pod spec immutability (``422``), ``DELETE`` with preconditions and graceful pod
  deletion (``pod_deletion_delay``). Every write bumps the resourceVersion, a write that changes
  nothing does not; ``dryRun=All`` runs every check and persists nothing.
* ``pods/eviction`` as ``pkg/registry/core/pod/storage/eviction.go``: Pending, terminal and
  terminating pods go with no budget check; otherwise the one PDB selecting the pod is consulted
  (``429`` with ``Retry-After: 10`` while its status lags its generation, ``429`` without one when
  ``disruptionsAllowed`` is 0, ``500`` when several PDBs select the pod, unready pods free when the
  budget is healthy or ``AlwaysAllow``), decremented, the pod put in ``disruptedPods``; then the
  pod gets a ``DisruptionTarget`` condition and is deleted with the eviction's ``deleteOptions``.
  As upstream, the budget is spent before the delete's preconditions are checked (``409``).
* ``pods/binding`` (and the legacy ``namespaces/{ns}/bindings``): sets ``spec.nodeName`` and
  ``PodScheduled``; ``409`` when already bound, terminating or gated, or when the binding's
  ``metadata.uid``/``resourceVersion`` preconditions fail. Success is ``201`` with a ``Status``,
  which the Python client cannot read as a ``V1Binding``: ``create_namespaced_binding`` raises
  ``ValueError`` even on success, as against a real API server.
* Admission: NamespaceLifecycle (nothing is created, evicted or bound in a ``Terminating``
  namespace: ``403``); RBAC (:meth:`KubeEmulator.set_rbac`), ``403`` in upstream's words.
* Faults (:meth:`KubeEmulator.inject`): a status (429 with ``Retry-After``, 500, 409, ...), a
  delay or a dropped connection, before or after the request is served, by path, method, request
  number or predicate; seeded random faults (:meth:`KubeEmulator.inject_random`); hooks changing
  the cluster at a given request (:meth:`KubeEmulator.hook`, :meth:`KubeEmulator.replace_pod`).
  Mind the client's own retries: urllib3 under the Python client sleeps ``Retry-After`` and
  repeats a GET answered 429 or 503 (never a POST).
* A log of every request, and a :class:`Record` of evictions, bindings, node writes and each
  PDB's lows; controllers started by the test (:meth:`KubeEmulator.controllers`): ReplicaSet and
  StatefulSet recreation, a kubelet, the disruption controller and a default scheduler.

Not emulated: authentication (any token is the RBAC user), Roles and RoleBindings (the rules
hold in every namespace), finalizers and garbage collection, server-side apply (``415``),
strategic-merge directives (lists merge by key only for those in ``_MERGE_KEYS``), workload
objects (owner references are enough for the controllers), the shared storage of the two events
APIs, validation beyond what is named here, and the resourceVersion options of lists (always
current).

Where things are: ``k8s_emulator_protocol`` (resource types, Status errors, requests and faults,
selectors, patches, RBAC, the HTTP server), ``k8s_emulator_applier`` (eviction, binding, graceful
deletion, the record), ``k8s_emulator_controllers``, ``k8s_emulator_objects`` (test objects,
kubeconfigs). Everything public is importable from here. Routing is a table
(:meth:`KubeEmulator.add_route`), so a test can add or override a handler.

Typical use::

    with KubeEmulator() as emu:
        emu.add_node(node("n1"))
        emu.add_pod(pod("default", "web-0", node_name="n1"))
        kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
        emu.inject(500, path="/api/v1/pods", times=2)
        ...
        assert [r.param("limit") for r in emu.requests_for("/api/v1/pods")] == [...]
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from k8s_emulator_applier import (
    BindingRecord,
    EvictionRecord,
    NodeWriteRecord,
    PdbLow,
    Record,
    bind_pod,
    delete_pod,
    handle_binding,
    handle_eviction,
    observe_pdb,
    observe_pdbs,
    record_request,
)
from k8s_emulator_objects import node, owner_reference, pdb, pod, write_kubeconfig
from k8s_emulator_protocol import (
    DEFAULT_RESOURCES,
    EVENTS,
    EVENTS_V1,
    EXPIRED_MESSAGE,
    JSON,
    LEASES,
    NAMESPACES,
    NODES,
    OPTIMISTIC_LOCK_MESSAGE,
    PDBS,
    PODS,
    ApiError,
    Fault,
    Handler,
    LoopbackServer,
    RandomFaults,
    Request,
    RequestInfo,
    ResourceType,
    Response,
    apply_patch,
    authorize,
    check_delete_preconditions,
    clone,
    conflict,
    dry_run,
    forbidden,
    invalid,
    json_body,
    label_selector_matches,
    labels_of,
    meta_of,
    not_found,
    parse_field_selector,
    parse_label_selector,
    pod_is_ready,
    request_info,
    status_body,
    storage_precondition,
    success_body,
    timestamp,
    without_version,
)

if TYPE_CHECKING:
    from k8s_emulator_controllers import Controllers

__all__ = [
    "BINDING_PATH",
    "DEFAULT_RESOURCES",
    "DEFAULT_USER",
    "EVENTS",
    "EVENTS_V1",
    "EVICTION_PATH",
    "EXPIRED_MESSAGE",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "PDBS",
    "PODS",
    "ApiError",
    "BindingRecord",
    "EvictionRecord",
    "Fault",
    "KubeEmulator",
    "NodeWriteRecord",
    "PdbLow",
    "RandomFaults",
    "Record",
    "Request",
    "ResourceType",
    "Response",
    "WatchEvent",
    "label_selector_matches",
    "node",
    "owner_reference",
    "parse_label_selector",
    "pdb",
    "pod",
    "pod_is_ready",
    "status_body",
    "write_kubeconfig",
]

# Paths of the applier's subresources, for inject()/hook() (any namespace, any pod).
EVICTION_PATH = re.compile(r"/api/v1/namespaces/[^/]+/pods/[^/]+/eviction")
BINDING_PATH = re.compile(r"/api/v1/namespaces/[^/]+/(?:pods/[^/]+/binding|bindings)")

DEFAULT_USER = "system:serviceaccount:kube-system:kube-engine"
# Pod fields an update may change (ValidatePodUpdate); any other spec change is refused.
_POD_MUTABLE_SPEC = (
    "activeDeadlineSeconds",
    "tolerations",
    "terminationGracePeriodSeconds",
    "schedulingGates",
)
_POD_UPDATE_FORBIDDEN = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)"
)
# Server-owned metadata: a create sets it, an update cannot change it.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)
# The names generateName appends come from this alphabet (no vowels, no look-alikes), 5 long.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# RetryGenerateName: the API server tries this many names before giving up with a conflict.
_GENERATE_NAME_ATTEMPTS = 8


# --------------------------------------------------------------------------------------------------
# Watch events


@dataclass(frozen=True)
class WatchEvent:
    """One change of the store: the unit of the watch history."""

    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str  # ResourceType.key
    namespace: str
    name: str
    obj: JSON  # the object after the change (DELETED: its last state, at the deletion's version)
    old: JSON | None  # before the change


# --------------------------------------------------------------------------------------------------
# Routes and list snapshots


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    name: str


@dataclass
class _ListSnapshot:
    """The items of one paginated list, frozen (pre-serialised) at its first page."""

    key: tuple[str, str | None, str, str]  # resource, namespace, labelSelector, fieldSelector
    resource_version: str
    items: list[str]
    filtered: bool
    created: float


def _route_regex(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(regex)


def _random_suffix() -> str:
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


# --------------------------------------------------------------------------------------------------
# The emulator


class KubeEmulator:
    """In-memory Kubernetes API on 127.0.0.1 (ephemeral port), served from a background thread.

    ``pod_deletion_delay``: seconds a deleted (or evicted) pod that is bound and not terminal stays
    in the API with ``metadata.deletionTimestamp`` set, as while its kubelet stops it (0: gone at
    once). ``watch_window``: how many changes the watch history keeps; a watch from an older
    resourceVersion gets ``410 Expired``.
    """

    def __init__(
        self,
        resources: Iterable[ResourceType] = DEFAULT_RESOURCES,
        *,
        continue_ttl: float | None = None,
        watch_window: int = 10_000,
        pod_deletion_delay: float = 0.0,
    ) -> None:
        self.resources: dict[str, ResourceType] = {rt.key: rt for rt in resources}
        self.continue_ttl = continue_ttl  # seconds a continue token stays valid (None: forever)
        self.watch_window = watch_window
        self.watch_timeout = 60.0  # seconds a watch without timeoutSeconds streams
        self.bookmark_interval = 1.0  # seconds between BOOKMARK events (allowWatchBookmarks)
        self.pod_deletion_delay = pod_deletion_delay
        self.rbac_rules: list[JSON] | None = None  # None: every request is allowed
        self.user = DEFAULT_USER
        self.record = Record()
        # Suffixes for generateName; a test may make them collide (409 AlreadyExists).
        self.name_suffix: Callable[[], str] = _random_suffix
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified on every write
        self._objects: dict[str, dict[tuple[str, str], JSON]] = {k: {} for k in self.resources}
        self._resource_version = 1000
        self._events: deque[WatchEvent] = deque()
        # Changes at or below this resourceVersion may be missing from the watch history.
        self._compacted = self._resource_version
        self._continues: dict[str, tuple[_ListSnapshot, int]] = {}
        self._faults: list[Fault] = []
        self._random_faults: list[RandomFaults] = []
        self._log: list[Request] = []
        self._count = 0
        self._routes: list[_Route] = []
        self._timers: set[threading.Timer] = set()
        self._controllers: Controllers | None = None
        self._stopping = threading.Event()
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None
        for rt in self.resources.values():
            self._add_resource_routes(rt)
        if PODS.key in self.resources:
            base = "/api/v1/namespaces/{namespace}/pods/{name}"
            eviction, binding = partial(handle_eviction, self), partial(handle_binding, self)
            self.add_route("POST", f"{base}/eviction", eviction, "pods/eviction")
            self.add_route("POST", f"{base}/binding", binding, "pods/binding")
            legacy = "/api/v1/namespaces/{namespace}/bindings"
            self.add_route("POST", legacy, binding, "pods/binding")
        self.add_route("GET", "/version", self._handle_version)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> KubeEmulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = LoopbackServer(self.handle)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="k8s-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._controllers is not None:
            self._controllers.stop()
        with self._lock:
            timers, self._timers = list(self._timers), set()
        for timer in timers:
            timer.cancel()
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping on a delay fault
        with self._changed:
            self._changed.notify_all()  # and watches waiting for changes
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(
        self,
        path: str | os.PathLike[str],
        *,
        context: str = "emulator",
        token: str | None = None,
    ) -> Path:
        """A kubeconfig with one context named ``context`` pointing at this emulator."""
        return write_kubeconfig(path, {context: self.url}, token=token)

    # ---------------------------------------------------------------- objects

    def resource(self, resource: ResourceType | str) -> ResourceType:
        """A served resource type, by type, key (``poddisruptionbudgets.policy``) or plural."""
        key = resource.key if isinstance(resource, ResourceType) else resource
        rt = self.resources.get(key)
        if rt is None:
            matches = [r for r in self.resources.values() if r.plural == key]
            rt = matches[0] if len(matches) == 1 else None
        if rt is None:
            raise KeyError(f"unknown resource {key!r}")
        return rt

    def _next_rv(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def _key(self, rt: ResourceType, name: str, namespace: str) -> tuple[str, str]:
        return (namespace if rt.namespaced else "", name)

    def _commit(self, rt: ResourceType, key: tuple[str, str], new: JSON | None) -> None:
        """One write (caller holds the lock): a new resourceVersion, a watch event, the record.

        ``new`` (None: delete) is stored as it is and must not be changed afterwards: the watch
        history shares it.
        """
        store = self._objects[rt.key]
        old = store.get(key)
        rv = self._next_rv()
        if new is None:
            if old is None:
                return
            del store[key]
            gone: JSON = clone(old)
            gone["metadata"]["resourceVersion"] = rv
            event = WatchEvent(int(rv), "DELETED", rt.key, key[0], key[1], gone, old)
        else:
            new.setdefault("metadata", {})["resourceVersion"] = rv
            store[key] = new
            kind = "ADDED" if old is None else "MODIFIED"
            event = WatchEvent(int(rv), kind, rt.key, key[0], key[1], new, old)
        self._events.append(event)
        while len(self._events) > self.watch_window:
            self._compacted = self._events.popleft().resource_version
        if rt.key in (PODS.key, PDBS.key):
            observe_pdbs(self, rt, key, old, new)
        self._changed.notify_all()

    def add(self, resource: ResourceType | str, obj: Mapping[str, Any]) -> JSON:
        """Store an object as given (replacing one of the same name); returns the stored copy.

        Missing uid, creationTimestamp (and generation, for PDBs) are filled in; nothing else is
        checked or reset: this is the test's way to put the cluster in any state.
        """
        rt = self.resource(resource)
        stored: JSON = clone(obj)
        stored.pop("kind", None)
        stored.pop("apiVersion", None)
        meta = stored.setdefault("metadata", {})
        if not meta.get("name"):
            raise ValueError(f"{rt.kind} without metadata.name")
        if rt.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", timestamp())
        if rt.generation:
            meta.setdefault("generation", 1)
        with self._lock:
            self._commit(rt, self._key(rt, meta["name"], meta.get("namespace", "")), stored)
        copy: JSON = clone(stored)
        return copy

    def add_many(self, resource: ResourceType | str, objs: Iterable[Mapping[str, Any]]) -> None:
        for obj in objs:
            self.add(resource, obj)

    def add_node(self, obj: Mapping[str, Any]) -> JSON:
        return self.add(NODES.key, obj)

    def add_pod(self, obj: Mapping[str, Any]) -> JSON:
        return self.add(PODS.key, obj)

    def add_pdb(self, obj: Mapping[str, Any]) -> JSON:
        return self.add(PDBS.key, obj)

    def add_namespace(self, name: str, *, terminating: bool = False) -> JSON:
        """A Namespace, Active or Terminating (namespaces need not exist to hold objects: only a
        Terminating one changes anything, through NamespaceLifecycle)."""
        status = {"phase": "Terminating" if terminating else "Active"}
        meta: JSON = {"name": name, "labels": {"kubernetes.io/metadata.name": name}}
        if terminating:
            meta["deletionTimestamp"] = timestamp()
        return self.add(NAMESPACES.key, {"metadata": meta, "spec": {}, "status": status})

    def get(self, resource: ResourceType | str, name: str, namespace: str = "") -> JSON | None:
        """A copy of a stored object, or None."""
        rt = self.resource(resource)
        with self._lock:
            obj = self._objects[rt.key].get(self._key(rt, name, namespace))
            return None if obj is None else dict(clone(obj))

    def objects(self, resource: ResourceType | str, namespace: str | None = None) -> list[JSON]:
        """Copies of the stored objects of a resource (of one namespace, if given), in
        (namespace, name) order."""
        rt = self.resource(resource)
        with self._lock:
            store = self._objects[rt.key]
            objs = [store[k] for k in sorted(store) if namespace is None or k[0] == namespace]
            return list(clone(objs))

    def update(self, resource: ResourceType | str, obj: Mapping[str, Any]) -> JSON:
        """Replace a stored object (it must exist); bumps its resourceVersion."""
        rt = self.resource(resource)
        meta = obj.get("metadata", {})
        if self.get(rt, meta.get("name", ""), meta.get("namespace", "")) is None:
            raise KeyError(f"{rt.plural} {meta.get('namespace', '')}/{meta.get('name')} not found")
        return self.add(rt, obj)

    def modify(
        self,
        resource: ResourceType | str,
        name: str,
        namespace: str,
        change: Callable[[JSON], object],
    ) -> JSON | None:
        """Atomically change a stored object: ``change`` edits a copy in place; it is stored (one
        write) only if it differs. Returns the object as stored, or None if there is none."""
        rt = self.resource(resource)
        with self._lock:
            key = self._key(rt, name, namespace)
            current = self._objects[rt.key].get(key)
            if current is None:
                return None
            new: JSON = clone(current)
            change(new)
            if without_version(new) != without_version(current):
                self._commit(rt, key, new)
                current = new
            out: JSON = clone(current)
            return out

    def delete(self, resource: ResourceType | str, name: str, namespace: str = "") -> bool:
        """Remove an object at once (no grace period); False if there was none."""
        rt = self.resource(resource)
        with self._lock:
            key = self._key(rt, name, namespace)
            if key not in self._objects[rt.key]:
                return False
            self._commit(rt, key, None)
            return True

    def create(
        self,
        resource: ResourceType | str,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
    ) -> JSON:
        """Create an object as the API server does for a POST (the emulated controllers' way):
        ``generateName``, a new uid and creationTimestamp, a fresh status for pods, PDBs and
        namespaces. Raises :class:`ApiError` (409 AlreadyExists, 422)."""
        rt = self.resource(resource)
        stored: JSON = clone(obj)
        stored.pop("kind", None)
        stored.pop("apiVersion", None)
        meta = stored.setdefault("metadata", {})
        if rt.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        for key in _SERVER_METADATA:
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = timestamp()
        if rt.generation:
            meta["generation"] = 1
        if rt.key == PODS.key:
            # PrepareForCreate: a pod starts Pending whatever status it was sent with.
            stored["status"] = {"phase": "Pending"}
            stored.setdefault("spec", {}).setdefault("schedulerName", "default-scheduler")
        elif rt.key == PDBS.key:
            stored["status"] = {
                "disruptionsAllowed": 0,
                "currentHealthy": 0,
                "desiredHealthy": 0,
                "expectedPods": 0,
            }
        elif rt.key == NAMESPACES.key:
            stored["status"] = {"phase": "Active"}
        with self._lock:
            store = self._objects[rt.key]
            ns = meta.get("namespace", "")
            if not meta.get("name"):
                prefix = meta.get("generateName")
                if not prefix:
                    raise invalid(
                        rt.kind,
                        "",
                        "metadata.name",
                        "Required value: name or generateName is required",
                        "FieldValueRequired",
                    )
                for _ in range(_GENERATE_NAME_ATTEMPTS):
                    meta["name"] = prefix + self.name_suffix()
                    if (ns, meta["name"]) not in store:
                        break
                else:
                    # errors.NewGenerateNameConflict: AlreadyExists, with a suggested retry.
                    raise ApiError(
                        409,
                        f'{rt.key} "{meta["name"]}" already exists, the server was not able to '
                        f"generate a unique name for the object",
                        "AlreadyExists",
                        details={
                            "name": meta["name"],
                            "group": rt.group,
                            "kind": rt.plural,
                            "retryAfterSeconds": 1,
                        },
                        headers={"Retry-After": "1"},
                    )
            elif (ns, meta["name"]) in store:
                raise ApiError(
                    409,
                    f'{rt.key} "{meta["name"]}" already exists',
                    "AlreadyExists",
                    details={"name": meta["name"], "group": rt.group, "kind": rt.plural},
                )
            if not dry_run:
                self._commit(rt, (ns, meta["name"]), stored)
            out: JSON = clone(stored)
            return out

    def replace_pod(self, namespace: str, name: str, *, keep_node: bool = False) -> JSON:
        """Replace a pod by one of the same name and a new UID, as a StatefulSet does after a
        deletion (a DELETED then an ADDED event). The new pod is Pending and unbound, unless
        ``keep_node`` (then it is as the old one was: bound, in the same phase)."""
        with self._lock:
            key = (namespace, name)
            current = self._objects[PODS.key].get(key)
            if current is None:
                raise KeyError(f"pods {namespace}/{name} not found")
            new: JSON = clone(current)
            meta = new["metadata"]
            for server_field in _SERVER_METADATA:
                meta.pop(server_field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = timestamp()
            if not keep_node:
                new.setdefault("spec", {}).pop("nodeName", None)
                new["status"] = {"phase": "Pending"}
            self._commit(PODS, key, None)
            self._commit(PODS, key, new)
            out: JSON = clone(new)
            return out

    def terminate_namespace(self, name: str) -> JSON:
        """Mark a namespace Terminating (creating it if needed), as a namespace deletion does."""
        if self.get(NAMESPACES, name) is None:
            return self.add_namespace(name, terminating=True)

        def terminate(ns: JSON) -> None:
            ns.setdefault("metadata", {}).setdefault("deletionTimestamp", timestamp())
            ns["status"] = {"phase": "Terminating"}

        out = self.modify(NAMESPACES, name, "", terminate)
        assert out is not None
        return out

    @property
    def lock(self) -> threading.RLock:
        """The store's lock (reentrant): hold it to read and write as one atomic step."""
        return self._lock

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._resource_version)

    def expire_continue_tokens(self) -> None:
        """Forget every continue token handed out so far (their next use gets 410 Expired)."""
        with self._lock:
            self._continues.clear()

    def compact(self) -> None:
        """Forget the watch history (as etcd compaction does): a watch from any resourceVersion
        older than the current one gets 410 Expired."""
        with self._lock:
            if self._events:
                self._compacted = self._events[-1].resource_version
            self._events.clear()
            self._changed.notify_all()

    def watch_events(self) -> list[WatchEvent]:
        """The watch history kept (at most ``watch_window`` changes), oldest first."""
        with self._lock:
            return list(self._events)

    # ---------------------------------------------------------------- PDB record

    def reset_record(self) -> Record:
        """Start a new :class:`Record` (call it once the cluster is set up): empty lists, and
        every PDB's lows at its current values. Returns it."""
        with self._lock:
            self.record = Record()
            for pdb_key, budget in self._objects.get(PDBS.key, {}).items():
                observe_pdb(self, pdb_key, budget)
            return self.record

    # ---------------------------------------------------------------- controllers

    def controllers(
        self,
        *,
        replicasets: bool = True,
        statefulsets: bool = True,
        kubelet: bool = True,
        disruption: bool = True,
        scheduler: bool = True,
        interval: float | None = None,
        **options: Any,
    ) -> Controllers:
        """Turn on the emulated controllers (see ``k8s_emulator_controllers.Controllers`` for the
        ``options``: recreate_delay, ready_delay, unready, disruption_timeout, ...).

        With ``interval`` they run on a background thread every ``interval`` seconds (and after
        every write); without, only when a test calls :meth:`reconcile`. Replaces the controllers
        turned on before, if any.
        """
        from k8s_emulator_controllers import Controllers

        if self._controllers is not None:
            self._controllers.stop()
        self._controllers = Controllers(
            self,
            replicasets=replicasets,
            statefulsets=statefulsets,
            kubelet=kubelet,
            disruption=disruption,
            scheduler=scheduler,
            **options,
        )
        if interval is not None:
            self._controllers.start(interval)
        return self._controllers

    def reconcile(self, passes: int = 1) -> None:
        """Run the controllers turned on by :meth:`controllers`, ``passes`` times, now."""
        if self._controllers is None:
            raise RuntimeError("no controllers: call emu.controllers(...) first")
        for _ in range(passes):
            self._controllers.reconcile()

    # ---------------------------------------------------------------- RBAC

    def set_rbac(
        self, rules: Sequence[Mapping[str, Any]] | None, *, user: str = DEFAULT_USER
    ) -> None:
        """Authorize every request against ``rules`` (a ClusterRole's ``rules``: apiGroups,
        resources with subresources as ``pods/eviction``, verbs, optional resourceNames),
        bound to ``user`` cluster-wide; None allows everything again."""
        with self._lock:
            self.rbac_rules = None if rules is None else [dict(r) for r in rules]
            self.user = user

    # ---------------------------------------------------------------- faults and the request log

    def inject(
        self,
        status: int | None = None,
        *,
        path: str | re.Pattern[str] | None = None,
        method: str | None = None,
        at_request: int | None = None,
        when: Callable[[Request], bool] | None = None,
        times: int | None = 1,
        retry_after: int | str | None = None,
        delay: float = 0.0,
        drop: bool = False,
        before: Callable[[Request], object] | None = None,
        reason: str | None = None,
        message: str | None = None,
        after_serving: bool = False,
        then: Callable[[Request], object] | None = None,
        answer: Response | None = None,
        trickle: float = 0.0,
        trickle_head: bool = False,
    ) -> Fault:
        """Queue a fault. Faults are tried in the order queued; a request takes at most one.

        Matching: ``path`` (exact, or a compiled pattern), ``method``, ``at_request`` (requests
        are numbered from 1 since the emulator was made, see ``request_count``) and ``when`` (a
        predicate on the :class:`Request`); ``times`` requests at most (None: no limit).

        Effect: ``before(request)`` runs first; then a ``delay`` (seconds); then either the
        connection is dropped (``drop``), or a Status error ``status`` is answered (with
        ``Retry-After: retry_after`` and ``details.retryAfterSeconds`` when given, 0 included; a
        str is sent as it is, ``"nan"`` say), or ``answer`` is answered as it is (a misbehaving
        server: a body that is no JSON, a lying Content-Length, an endless stream), or, with none
        of these, the request is served normally; ``then(request)`` runs after it was. With
        ``trickle`` the answer's body goes out a byte at a time, ``trickle`` seconds apart (and
        its status line and headers too with ``trickle_head``).
        With ``after_serving`` the request is served first and the delay, drop or status replace
        its answer (the server acted; the client does not learn it did).
        ``inject(before=lambda r: emu.expire_continue_tokens(), path=...)`` makes the server itself
        answer 410 for a continue token, as after a real expiry.
        """
        acts = status is not None or delay or drop or trickle or answer is not None
        if not acts and before is None and then is None:
            raise ValueError(
                "a fault needs a status, a delay, drop=True, a before/then action, an answer "
                "or a trickle"
            )
        fault = Fault(
            status=status,
            retry_after=retry_after,
            delay=delay,
            drop=drop,
            reason=reason,
            message=message,
            path=path,
            method=method,
            at_request=at_request,
            when=when,
            before=before,
            times=times,
            after_serving=after_serving,
            then=then,
            answer=answer,
            trickle=trickle,
            trickle_head=trickle_head,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def hook(
        self,
        action: Callable[[Request], object],
        *,
        path: str | re.Pattern[str] | None = None,
        method: str | None = None,
        when: Callable[[Request], bool] | None = None,
        at_request: int | None = None,
        times: int | None = 1,
        after: bool = False,
    ) -> Fault:
        """Run ``action`` at matching requests, before they are served (or ``after``): the way to
        change the cluster mid-plan, e.g. replace a pod just before its eviction arrives::

            emu.hook(lambda r: emu.replace_pod("web", "db-0"), path=EVICTION_PATH)

        A hook is a fault that answers normally: a request takes at most one of them.
        """
        return self.inject(
            path=path,
            method=method,
            when=when,
            at_request=at_request,
            times=times,
            before=None if after else action,
            then=action if after else None,
        )

    def inject_random(
        self,
        seed: int,
        *,
        p429: float = 0.0,
        p409: float = 0.0,
        p500: float = 0.0,
        drop: float = 0.0,
        drop_after: float = 0.0,
        slow: float = 0.0,
        slow_delay: float = 0.2,
        retry_after: int | None = 1,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        when: Callable[[Request], bool] | None = None,
    ) -> RandomFaults:
        """Seeded random faults on the requests in scope (``method``, ``path``, ``when``), each
        drawing once: probabilities of a 429 (``Retry-After: retry_after``), a 409, a 500, a
        dropped connection before (``drop``) or after serving (``drop_after``), a slow answer.
        Queued faults (:meth:`inject`) are tried first. ``.active = False`` turns it off."""
        rates = {
            "429": p429,
            "409": p409,
            "500": p500,
            "drop": drop,
            "drop-after": drop_after,
            "slow": slow,
        }
        if any(p < 0 for p in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("probabilities must be non-negative and sum to at most 1")
        chaos = RandomFaults(
            rates=rates,
            rng=random.Random(seed),
            retry_after=retry_after,
            slow_delay=slow_delay,
            method=method,
            path=path,
            when=when,
        )
        with self._lock:
            self._random_faults.append(chaos)
        return chaos

    def clear_faults(self) -> None:
        """Drop every queued fault and hook, and every random fault source."""
        with self._lock:
            self._faults.clear()
            self._random_faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._count

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str, method: str = "GET") -> list[Request]:
        return [r for r in self.requests if r.path == path and r.method == method.upper()]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ---------------------------------------------------------------- routing

    def add_route(self, method: str, template: str, handler: Handler, name: str = "") -> None:
        """Serve ``method`` on a path template such as ``/api/v1/namespaces/{namespace}/pods``.

        Placeholders match one path segment and arrive in ``Request.params``. Routes added later
        win over earlier ones for the same method and path.
        """
        route = _Route(method.upper(), _route_regex(template), handler, name or template)
        with self._lock:
            self._routes.insert(0, route)

    def _add_resource_routes(self, rt: ResourceType) -> None:
        base = rt.prefix
        if rt.namespaced:
            self.add_route("GET", f"{base}/{rt.plural}", partial(self._handle_list, rt))
            collection = f"{base}/namespaces/{{namespace}}/{rt.plural}"
        else:
            collection = f"{base}/{rt.plural}"
        item = f"{collection}/{{name}}"
        verbs: list[tuple[str, str, str, Handler]] = [
            ("GET", collection, "list", partial(self._handle_list, rt)),
            ("POST", collection, "create", partial(self._handle_create, rt)),
            ("GET", item, "get", partial(self._handle_get, rt)),
            ("PUT", item, "update", partial(self._handle_replace, rt, "")),
            ("PATCH", item, "patch", partial(self._handle_patch, rt, "")),
            ("DELETE", item, "delete", partial(self._handle_delete, rt)),
        ]
        if rt.has_status:
            verbs += [
                ("GET", f"{item}/status", "status:get", partial(self._handle_get, rt)),
                (
                    "PUT",
                    f"{item}/status",
                    "status:update",
                    partial(self._handle_replace, rt, "status"),
                ),
                (
                    "PATCH",
                    f"{item}/status",
                    "status:patch",
                    partial(self._handle_patch, rt, "status"),
                ),
            ]
        for method, template, verb, handler in verbs:
            self.add_route(method, template, handler, f"{rt.key}:{verb}")

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response | None:
        """Answer one request (None: drop the connection). The HTTP layer calls this."""
        split = urlsplit(target)
        with self._lock:
            self._count += 1
            req = Request(
                number=self._count,
                method=method.upper(),
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers=dict(headers),
                body=body,
            )
            self._log.append(req)
            fault = next((f for f in self._faults if f.matches(req)), None)
            if fault is None:
                draws = (chaos.draw(req) for chaos in self._random_faults)
                fault = next((f for f in draws if f is not None), None)
            if fault is not None:
                fault.hits += 1
                req.fault = fault
        if fault is not None and fault.before is not None:
            fault.before(req)
        if fault is not None and not fault.after_serving:
            if fault.delay and self._stopping.wait(fault.delay):
                return None  # stopping
            if fault.drop:
                return None
            if fault.status is not None:
                return self._answer(req, fault.shaped(fault.error().response()))
            if fault.answer is not None:
                return self._answer(req, fault.shaped(fault.answer))
        resp = self._serve(req)
        if fault is not None and fault.after_serving:
            req.notes["served_status"] = resp.status
            if fault.delay and self._stopping.wait(fault.delay):
                return None
            if fault.drop:
                return None
            if fault.status is not None:
                resp = fault.error().response()
        if fault is not None and fault.then is not None:
            fault.then(req)
        return self._answer(req, resp if fault is None else fault.shaped(resp))

    def _answer(self, req: Request, resp: Response) -> Response:
        req.status, req.response = resp.status, resp
        return resp

    def _serve(self, req: Request) -> Response:
        """Route, authorize (RBAC), admit (NamespaceLifecycle), handle; then record."""
        try:
            with self._lock:
                routes = list(self._routes)
            route, path_matched = None, False
            for candidate in routes:
                m = candidate.pattern.fullmatch(req.path)
                if m is None:
                    continue
                path_matched = True
                if candidate.method == req.method:
                    route, req.params, req.route = candidate, m.groupdict(), candidate.name
                    break
            info = request_info(req.method, req.path, req.query)
            if info is not None:
                if self.rbac_rules is not None:
                    authorize(self.rbac_rules, self.user, info)
                self._admit(info, req)
            if route is None:
                if path_matched:
                    raise ApiError(
                        405, "the server does not allow this method on the requested resource"
                    )
                raise ApiError(404, "the server could not find the requested resource")
            resp = route.handler(req)
        except ApiError as exc:
            resp = exc.response()
        except Exception as exc:  # a bug in a handler: answer like the API server would
            resp = ApiError(500, f"emulator error: {type(exc).__name__}: {exc}").response()
        record_request(self, req, resp)
        return resp

    def _admit(self, info: RequestInfo, req: Request) -> None:
        """NamespaceLifecycle: nothing new (objects, evictions, bindings) in a Terminating
        namespace; updates and deletions are let through."""
        if info.verb != "create" or not info.namespace or info.resource == "namespaces":
            return
        with self._lock:
            namespace = self._objects.get(NAMESPACES.key, {}).get(("", info.namespace))
        if namespace is None or (namespace.get("status") or {}).get("phase") != "Terminating":
            return
        name = info.name
        if not name:
            try:
                name = str(meta_of(req.json() or {}).get("name") or "")
            except ValueError:
                name = ""
        raise forbidden(
            info.resource,
            info.group,
            name,
            f"unable to create new content in namespace {info.namespace} because it is being "
            f"terminated",
            causes=[
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {info.namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ],
        )

    # ---------------------------------------------------------------- reads

    def _wire(self, rt: ResourceType, obj: Mapping[str, Any]) -> JSON:
        """An object as a single-object answer carries it: with kind and apiVersion."""
        return {"kind": rt.kind, "apiVersion": rt.api_version, **obj}

    def _handle_version(self, req: Request) -> Response:
        return Response(
            200,
            {"major": "1", "minor": "30", "gitVersion": "v1.30.0-kube-engine-emulator"},
        )

    def _handle_get(self, rt: ResourceType, req: Request) -> Response:
        name = req.params["name"]
        namespace = req.params.get("namespace", "")
        obj = self.get(rt, name, namespace)
        if obj is None:
            raise not_found(rt, name)
        return Response(200, self._wire(rt, obj))

    def _handle_list(self, rt: ResourceType, req: Request) -> Response:
        if req.flag("watch"):
            return self._handle_watch(rt, req)
        namespace = req.params.get("namespace")
        label_selector = req.param("labelSelector") or ""
        field_selector = req.param("fieldSelector") or ""
        raw_limit = req.param("limit") or "0"
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ApiError(400, f"invalid limit {raw_limit!r}") from None
        key = (rt.key, namespace, label_selector, field_selector)
        token = req.param("continue")
        if token:
            with self._lock:
                entry = self._continues.get(token)
            if entry is None or (
                self.continue_ttl is not None
                and time.monotonic() - entry[0].created > self.continue_ttl
            ):
                raise ApiError(410, EXPIRED_MESSAGE, "Expired")
            snap, offset = entry
            if snap.key != key:
                raise ApiError(
                    400,
                    "continue key is not valid: the continue token was issued for another query",
                )
        else:
            snap, offset = self._snapshot(rt, key, namespace, label_selector, field_selector), 0
        end = len(snap.items) if limit <= 0 else min(len(snap.items), offset + limit)
        metadata: JSON = {"resourceVersion": snap.resource_version}
        if end < len(snap.items):
            next_token = secrets.token_urlsafe(16)
            with self._lock:
                self._continues[next_token] = (snap, end)
            metadata["continue"] = next_token
            if not snap.filtered:
                metadata["remainingItemCount"] = len(snap.items) - end
        head = json.dumps(
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": metadata},
            separators=(",", ":"),
        )
        body = head[:-1] + ',"items":[' + ",".join(snap.items[offset:end]) + "]}"
        return Response(200, body.encode())

    def _snapshot(
        self,
        rt: ResourceType,
        key: tuple[str, str | None, str, str],
        namespace: str | None,
        label_selector: str,
        field_selector: str,
    ) -> _ListSnapshot:
        labels_ok = parse_label_selector(label_selector)
        fields_ok = parse_field_selector(rt, field_selector)
        with self._lock:
            store = self._objects[rt.key]
            items = [
                json.dumps(store[k], separators=(",", ":"))
                for k in sorted(store)
                if (namespace is None or k[0] == namespace)
                and labels_ok(labels_of(store[k]))
                and fields_ok(store[k])
            ]
            return _ListSnapshot(
                key=key,
                resource_version=str(self._resource_version),
                items=items,
                filtered=bool(label_selector.strip() or field_selector.strip()),
                created=time.monotonic(),
            )

    # ---------------------------------------------------------------- watch

    def _handle_watch(self, rt: ResourceType, req: Request) -> Response:
        namespace = req.params.get("namespace")
        labels_ok = parse_label_selector(req.param("labelSelector") or "")
        fields_ok = parse_field_selector(rt, req.param("fieldSelector") or "")

        def passes(obj: Mapping[str, Any]) -> bool:
            return (
                (namespace is None or meta_of(obj).get("namespace") == namespace)
                and labels_ok(labels_of(obj))
                and fields_ok(obj)
            )

        raw_timeout = req.param("timeoutSeconds")
        try:
            timeout = float(raw_timeout) if raw_timeout else self.watch_timeout
        except ValueError:
            raise ApiError(400, f"invalid timeoutSeconds {raw_timeout!r}") from None
        since = req.param("resourceVersion") or ""
        with self._lock:
            if since in ("", "0"):
                # "Start at most recent" (and "any", the same here): the current objects first.
                store = self._objects[rt.key]
                initial = [store[k] for k in sorted(store) if passes(store[k])]
                cursor = self._resource_version
            else:
                try:
                    cursor = int(since)
                except ValueError:
                    raise ApiError(400, f'invalid resource version "{since}"') from None
                initial = []
        stream = self._watch_stream(
            rt, passes, cursor, initial, time.monotonic() + timeout, req.flag("allowWatchBookmarks")
        )
        return Response(200, stream=stream)

    def _watch_line(self, kind: str, rt: ResourceType, obj: Mapping[str, Any]) -> bytes:
        event = {"type": kind, "object": self._wire(rt, obj)}
        return json.dumps(event, separators=(",", ":")).encode() + b"\n"

    def _watch_stream(
        self,
        rt: ResourceType,
        passes: Callable[[Mapping[str, Any]], bool],
        cursor: int,
        initial: list[JSON],
        deadline: float,
        bookmarks: bool,
    ) -> Iterator[bytes]:
        for obj in initial:
            yield self._watch_line("ADDED", rt, obj)
        next_bookmark = time.monotonic() + self.bookmark_interval
        while True:
            expired = False
            batch: list[WatchEvent] = []
            with self._changed:
                while True:
                    if self._stopping.is_set():
                        return
                    if cursor < self._compacted:
                        expired = True
                        break
                    for event in reversed(self._events):
                        if event.resource_version <= cursor:
                            break
                        batch.append(event)
                    now = time.monotonic()
                    if batch or now >= deadline or (bookmarks and now >= next_bookmark):
                        break
                    wake = min(deadline, next_bookmark) if bookmarks else deadline
                    self._changed.wait(wake - now)
                compacted = self._compacted
            if expired:
                # The watch cache answers a too-old resourceVersion with an ERROR event.
                status = status_body(
                    410, "Expired", f"too old resource version: {cursor} ({compacted})"
                )
                yield json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"
                return
            for event in reversed(batch):
                cursor = event.resource_version
                if event.resource != rt.key:
                    continue
                kind = self._filtered_event_type(event, passes)
                if kind is not None:
                    yield self._watch_line(kind, rt, event.obj)
            now = time.monotonic()
            if bookmarks and (now >= next_bookmark or now >= deadline):
                mark = {"metadata": {"resourceVersion": str(cursor)}}
                yield self._watch_line("BOOKMARK", rt, mark)
                next_bookmark = now + self.bookmark_interval
            if now >= deadline:
                return

    @staticmethod
    def _filtered_event_type(
        event: WatchEvent, passes: Callable[[Mapping[str, Any]], bool]
    ) -> str | None:
        """The event a selective watch sees: an object that starts matching is ADDED, one that
        stops matching is DELETED (the cacher's filtering), others pass or are dropped."""
        if event.type != "MODIFIED" or event.old is None:
            return event.type if passes(event.obj) else None
        was, now = passes(event.old), passes(event.obj)
        if was and now:
            return "MODIFIED"
        if now:
            return "ADDED"
        if was:
            return "DELETED"
        return None

    # ---------------------------------------------------------------- writes

    def _handle_create(self, rt: ResourceType, req: Request) -> Response:
        body = json_body(req)
        namespace = req.params.get("namespace")
        meta = body.setdefault("metadata", {})
        if namespace and meta.get("namespace") and meta["namespace"] != namespace:
            raise ApiError(
                400,
                "the namespace of the provided object does not match the namespace sent on the "
                "request",
            )
        obj = self.create(rt, body, namespace=namespace, dry_run=dry_run(req))
        return Response(201, self._wire(rt, obj))

    def _handle_replace(self, rt: ResourceType, subresource: str, req: Request) -> Response:
        body = json_body(req)
        return self._write_update(rt, req, subresource, lambda current: body, put=True)

    def _handle_patch(self, rt: ResourceType, subresource: str, req: Request) -> Response:
        try:
            patch = json.loads(req.body or b"null")
        except ValueError as exc:
            raise ApiError(400, f"error decoding patch: {exc}") from None
        content_type = req.header("Content-Type")
        return self._write_update(
            rt,
            req,
            subresource,
            lambda current: apply_patch(content_type, current, patch),
            put=False,
        )

    def _write_update(
        self,
        rt: ResourceType,
        req: Request,
        subresource: str,
        incoming: Callable[[JSON], JSON],
        *,
        put: bool,
    ) -> Response:
        """PUT and PATCH: the new object is checked against the stored one (optimistic
        concurrency on metadata.resourceVersion, uid, name, immutable fields) and stored only if it
        changed anything."""
        name = req.params["name"]
        namespace = req.params.get("namespace", "")
        dry = dry_run(req)
        with self._lock:
            key = self._key(rt, name, namespace)
            current = self._objects[rt.key].get(key)
            if current is None:
                raise not_found(rt, name)
            sent = incoming(clone(current))
            sent_meta = sent.get("metadata") or {}
            if not isinstance(sent_meta, dict):
                raise ApiError(400, "metadata is not an object")
            if sent_meta.get("name") != name:
                raise ApiError(
                    400,
                    f"the name of the object ({sent_meta.get('name') or ''}) does not match the "
                    f"name on the URL ({name})",
                )
            if rt.namespaced and sent_meta.get("namespace") not in (None, "", namespace):
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
            cur_meta = current["metadata"]
            version = sent_meta.get("resourceVersion") or ""
            if version and version != cur_meta.get("resourceVersion"):
                raise conflict(rt.plural, rt.group, name, OPTIMISTIC_LOCK_MESSAGE)
            uid = sent_meta.get("uid") or ""
            if uid and uid != cur_meta.get("uid"):
                if put:  # an update's uid is a precondition of the storage update
                    raise storage_precondition(rt, key, "UID", uid, cur_meta.get("uid"))
                raise invalid(
                    rt.kind,
                    name,
                    "metadata.uid",
                    f'Invalid value: "{uid}": field is immutable',
                    "FieldValueInvalid",
                )
            new = self._updated(rt, current, sent, subresource)
            if rt.key == PODS.key and not subresource:
                self._check_pod_update(name, current, new)
            if without_version(new) == without_version(current):
                return Response(200, self._wire(rt, current))  # a no-op write: no new version
            if not dry:
                self._commit(rt, key, new)
            return Response(200, self._wire(rt, new))

    @staticmethod
    def _updated(rt: ResourceType, current: JSON, sent: JSON, subresource: str) -> JSON:
        if subresource == "status":
            new: JSON = clone(current)
            if "status" in sent:
                new["status"] = clone(sent["status"])
            else:
                new.pop("status", None)
            return new
        new = clone(sent)
        new.pop("kind", None)
        new.pop("apiVersion", None)
        meta, cur_meta = new.setdefault("metadata", {}), current["metadata"]
        for server_field in _SERVER_METADATA:
            if server_field in cur_meta:
                meta[server_field] = cur_meta[server_field]
            else:
                meta.pop(server_field, None)
        if rt.namespaced:
            meta["namespace"] = cur_meta["namespace"]
        if rt.has_status:  # the object's own endpoint cannot change its status
            if "status" in current:
                new["status"] = clone(current["status"])
            else:
                new.pop("status", None)
        if rt.generation and new.get("spec") != current.get("spec"):
            meta["generation"] = int(cur_meta.get("generation") or 0) + 1
        return new

    @staticmethod
    def _check_pod_update(name: str, current: JSON, new: JSON) -> None:
        """ValidatePodUpdate: of a pod's spec only images, activeDeadlineSeconds, tolerations,
        terminationGracePeriodSeconds and schedulingGates may change (nodeName is set through
        pods/binding, never by an update)."""

        def fixed_part(spec: Any) -> Any:
            out = clone(spec or {})
            for containers in ("containers", "initContainers"):
                for container in out.get(containers) or []:
                    container.pop("image", None)
            for mutable in _POD_MUTABLE_SPEC:
                out.pop(mutable, None)
            return out

        if fixed_part(current.get("spec")) != fixed_part(new.get("spec")):
            raise invalid("Pod", name, "spec", _POD_UPDATE_FORBIDDEN, "FieldValueForbidden")

    def _handle_delete(self, rt: ResourceType, req: Request) -> Response:
        name = req.params["name"]
        namespace = req.params.get("namespace", "")
        options = json_body(req, empty={})
        grace = req.param("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        dry = dry_run(req, options)
        with self._lock:
            key = self._key(rt, name, namespace)
            current = self._objects[rt.key].get(key)
            if current is None:
                raise not_found(rt, name)
            check_delete_preconditions(rt, current, options.get("preconditions") or {})
            if rt.key == PODS.key:  # the pod registry answers with the pod
                final = delete_pod(self, key, current, None if grace is None else int(grace), dry)
                return Response(200, self._wire(rt, final))
            if rt.key == NAMESPACES.key:
                # Deleting a namespace starts its termination; nothing here ever finishes it.
                new: JSON = clone(current)
                new["metadata"].setdefault("deletionTimestamp", timestamp())
                new["status"] = {"phase": "Terminating"}
                if not dry:
                    self._commit(rt, key, new)
                return Response(200, self._wire(rt, new))
            if not dry:
                self._commit(rt, key, None)
            details = {
                "name": name,
                "group": rt.group,
                "kind": rt.plural,
                "uid": current["metadata"].get("uid"),
            }
            return Response(200, success_body(200, details))

    # ---------------------------------------------------------------- pods/binding

    def bind(
        self,
        namespace: str,
        name: str,
        node_name: str,
        *,
        uid: str | None = None,
        source: str = "scheduler",
    ) -> JSON:
        """Bind a pod as pods/binding does, without a request (the emulated scheduler's way);
        recorded with ``source``. Raises :class:`ApiError` (404, 409)."""
        notes: JSON = {}
        status, reason = 201, "Success"
        try:
            with self._lock:
                return bind_pod(self, namespace, name, node_name, uid=uid, notes=notes)
        except ApiError as exc:
            status, reason = exc.code, exc.reason
            raise
        finally:
            record = BindingRecord(
                namespace=namespace,
                name=name,
                uid=notes.get("uid"),
                node=node_name,
                dry_run=False,
                status=status,
                reason=reason,
                source=source,
                time=time.time(),
            )
            with self._lock:
                self.record.bindings.append(record)
