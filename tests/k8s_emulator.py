"""A small Kubernetes API emulator on loopback, for tests.

No kube-apiserver can run on the test machines, so the tests talk HTTP to this emulator through
the real ``kubernetes`` client instead. It keeps objects in memory (JSON dicts, as the API stores
them) and answers like the real API server does:

* lists (``GET /api/v1/pods``, ``/api/v1/namespaces/{ns}/pods``, ``/api/v1/nodes``,
  ``/apis/policy/v1/poddisruptionbudgets`` and the namespaced form) as ``PodList``/``NodeList``/
  ... documents whose items carry no ``kind``/``apiVersion``, with ``limit``/``continue``
  pagination over a consistent snapshot (opaque continue tokens; an unknown or expired token
  gives ``410 Expired``), ``labelSelector`` (``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
  ``k notin (a,b)``, ``k``, ``!k``) and ``fieldSelector`` (``=``, ``==``, ``!=`` on the fields
  the real API supports for that kind);
* single-object GETs (with ``kind``/``apiVersion``; ``404 NotFound`` Status when missing);
* errors as ``kind: Status`` bodies.

Tests can inject faults (a status such as 429 with ``Retry-After``, 500, 409 or 410, a delay
longer than the client's timeout, or a dropped connection) matched by path, method or request
number, and read a log of every request (method, path, query parameters, headers, body, the
status answered).

Routing is a table (:meth:`KubeEmulator.add_route`), so later verbs (binding, eviction, patch,
...) are one handler each::

    def bind(req: Request) -> Response: ...
    emu.add_route("POST", "/api/v1/namespaces/{namespace}/pods/{name}/binding", bind)

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
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]

__all__ = [
    "DEFAULT_RESOURCES",
    "NODES",
    "PDBS",
    "PODS",
    "ApiError",
    "Fault",
    "KubeEmulator",
    "Request",
    "ResourceType",
    "Response",
    "node",
    "pdb",
    "pod",
    "status_body",
    "write_kubeconfig",
]


# --------------------------------------------------------------------------------------------------
# Resource types


@dataclass(frozen=True)
class ResourceType:
    """One kind of object the emulator serves."""

    plural: str
    kind: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    # Fields a fieldSelector may use (the real API rejects others with 400).
    field_labels: tuple[str, ...] = ("metadata.name", "metadata.namespace")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


NODES = ResourceType(
    "nodes",
    "Node",
    "",
    "v1",
    namespaced=False,
    field_labels=("metadata.name", "spec.unschedulable"),
)
PODS = ResourceType(
    "pods",
    "Pod",
    "",
    "v1",
    namespaced=True,
    field_labels=(
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
)
PDBS = ResourceType("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1", namespaced=True)
DEFAULT_RESOURCES: tuple[ResourceType, ...] = (NODES, PODS, PDBS)


# --------------------------------------------------------------------------------------------------
# Requests, responses, errors, faults

_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can start "
    "a new list without the continue parameter, or use the continue token in this response to "
    "retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list."
)

_DEFAULT_MESSAGES: dict[int, str] = {
    409: (
        "Operation cannot be fulfilled: the object has been modified; please apply your changes "
        "to the latest version and try again"
    ),
    410: EXPIRED_MESSAGE,
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted",
}


def status_body(
    code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
) -> JSON:
    """A ``kind: Status`` failure document, as the API server returns for errors."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = dict(details)
    return body


class ApiError(Exception):
    """Raised by a handler to answer with a Status error."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, HTTPStatus(code).phrase.replace(" ", ""))
        self.details = details
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return Response(
            self.code,
            status_body(self.code, self.reason, self.message, self.details),
            self.headers,
        )


@dataclass
class Request:
    """One request as the emulator saw it (also the entry type of the request log)."""

    number: int  # 1-based, in arrival order
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters of the matched route
    status: int | None = None  # what was answered (None: no answer, e.g. a dropped connection)
    fault: Fault | None = None  # the injected fault that hit this request, if any
    response: Response | None = None  # what was answered

    def response_json(self) -> Any:
        """The answer's body as JSON (None when there was no answer)."""
        if self.response is None:
            return None
        return json.loads(self.response.encode())

    def header(self, name: str, default: str | None = None) -> str | None:
        """A request header, looked up case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), default)

    def param(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes | bytearray):
            return bytes(self.body)
        return json.dumps(self.body, separators=(",", ":")).encode()


Handler = Callable[[Request], Response]


@dataclass
class Fault:
    """An injected failure. Matching: all given criteria must hold (none given: any request)."""

    status: int | None = None  # answer with this Status error (None: answer normally after `delay`)
    retry_after: int | None = None  # Retry-After header, seconds
    delay: float = 0.0  # seconds to wait before answering (longer than the client timeout: a hang)
    drop: bool = False  # close the connection without any answer
    reason: str | None = None
    message: str | None = None
    path: str | re.Pattern[str] | None = None  # exact path, or a pattern (fullmatch)
    method: str | None = None
    at_request: int | None = None  # only the request with this number
    when: Callable[[Request], bool] | None = None  # any other condition (e.g. on query parameters)
    before: Callable[[Request], None] | None = None  # run before answering (e.g. expire tokens)
    times: int | None = 1  # how many requests it hits (None: every matching request)
    hits: int = 0

    def matches(self, req: Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.at_request is not None and req.number != self.at_request:
            return False
        if self.method is not None and self.method.upper() != req.method:
            return False
        if isinstance(self.path, str) and self.path != req.path:
            return False
        if isinstance(self.path, re.Pattern) and not self.path.fullmatch(req.path):
            return False
        if self.when is not None and not self.when(req):
            return False
        return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def error(self) -> ApiError:
        assert self.status is not None
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        message = self.message or _DEFAULT_MESSAGES.get(self.status, "injected fault")
        return ApiError(self.status, message, self.reason, headers=headers)


# --------------------------------------------------------------------------------------------------
# Selectors

_KEY = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?)"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_RE_NOT_EXISTS = re.compile(rf"\s*!\s*({_KEY})\s*")
_RE_EXISTS = re.compile(rf"\s*({_KEY})\s*")
_RE_EQUALITY = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_RE_SET = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(([^()]*)\)\s*")

LabelPredicate = Callable[[Mapping[str, str]], bool]


def _split_top_level(selector: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(selector):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    parts.append(selector[start:])
    return parts


def _label_requirement(text: str) -> LabelPredicate:
    if m := _RE_NOT_EXISTS.fullmatch(text):
        key = m[1]
        return lambda labels: key not in labels
    if m := _RE_SET.fullmatch(text):
        key, op = m[1], m[2]
        values = {v.strip() for v in m[3].split(",")}
        if not all(re.fullmatch(_VALUE, v) for v in values):
            raise ApiError(400, f"unable to parse requirement: invalid values in {text.strip()!r}")
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _RE_EQUALITY.fullmatch(text):
        key, op, value = m[1], m[2], m[3]
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _RE_EXISTS.fullmatch(text):
        key = m[1]
        return lambda labels: key in labels
    raise ApiError(400, f"unable to parse requirement: {text.strip()!r}")


def parse_label_selector(selector: str) -> LabelPredicate:
    """A predicate over a label map for the (basic) label-selector syntax."""
    if not selector.strip():
        return lambda labels: True
    preds = [_label_requirement(part) for part in _split_top_level(selector)]
    return lambda labels: all(p(labels) for p in preds)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(rt: ResourceType, selector: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over an object for ``field=value``, ``field==value``, ``field!=value`` terms."""
    if not selector.strip():
        return lambda obj: True
    terms: list[tuple[str, bool, str]] = []
    for part in selector.split(","):
        m = re.fullmatch(r"\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if not m:
            raise ApiError(400, f"invalid selector: {selector!r}; can't understand {part!r}")
        name, op, value = m[1], m[2], m[3]
        if name not in rt.field_labels:
            raise ApiError(400, f'field label not supported: "{name}"')
        terms.append((name, op != "!=", value))
    return lambda obj: all((_field_value(obj, n) == v) == eq for n, eq, v in terms)


# --------------------------------------------------------------------------------------------------
# Test objects


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    labels: Mapping[str, str] | None = None,
    extra_allocatable: Mapping[str, str] | None = None,
    unschedulable: bool = False,
) -> JSON:
    """A minimal Node as the API returns it (no kind/apiVersion)."""
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra_allocatable or {})}
    obj: JSON = {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
        },
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"capacity": dict(allocatable), "allocatable": allocatable},
    }
    return obj


def pod(
    namespace: str,
    name: str,
    *,
    node_name: str | None = None,
    cpu: str = "100m",
    memory: str = "128Mi",
    labels: Mapping[str, str] | None = None,
    phase: str | None = None,
) -> JSON:
    """A minimal single-container Pod (no kind/apiVersion). Phase defaults to Running when bound."""
    spec: JSON = {
        "containers": [
            {
                "name": "app",
                "image": "registry.example/app:1",
                "resources": {"requests": {"cpu": cpu, "memory": memory}},
            }
        ],
        "schedulerName": "default-scheduler",
    }
    if node_name is not None:
        spec["nodeName"] = node_name
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{namespace}/{name}")),
            "labels": dict(labels or {}),
        },
        "spec": spec,
        "status": {"phase": phase or ("Running" if node_name else "Pending")},
    }


def pdb(
    namespace: str,
    name: str,
    *,
    match_labels: Mapping[str, str],
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
) -> JSON:
    """A PodDisruptionBudget (policy/v1, no kind/apiVersion)."""
    spec: JSON = {"selector": {"matchLabels": dict(match_labels)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


# --------------------------------------------------------------------------------------------------
# Kubeconfig


def write_kubeconfig(
    path: str | os.PathLike[str],
    servers: Mapping[str, str],
    *,
    current_context: str | None = None,
    token: str | None = None,
    namespace: str = "default",
) -> Path:
    """Write a kubeconfig with one context (cluster + user of the same name) per ``servers`` entry.

    Plain http, no credentials unless ``token`` is given (then a bearer token for every user).
    JSON is valid YAML, so the file is written as JSON.
    """
    if not servers:
        raise ValueError("at least one context is needed")
    user: JSON = {"token": token} if token else {}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": ctx, "cluster": {"server": url}} for ctx, url in servers.items()],
        "users": [{"name": ctx, "user": dict(user)} for ctx in servers],
        "contexts": [
            {"name": ctx, "context": {"cluster": ctx, "user": ctx, "namespace": namespace}}
            for ctx in servers
        ],
        "current-context": current_context or next(iter(servers)),
    }
    out = Path(path)
    out.write_text(json.dumps(doc, indent=2))
    return out


# --------------------------------------------------------------------------------------------------
# The emulator


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


def _copy(obj: Any) -> Any:
    """A deep copy that also checks the object is plain JSON."""
    return json.loads(json.dumps(obj))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, emulator: KubeEmulator) -> None:
        super().__init__(("127.0.0.1", 0), _HTTPHandler)
        self.emulator = emulator
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet server
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        resp = self.server.emulator.handle(self.command, self.path, headers, body)
        if resp is None:  # dropped connection
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = resp.encode()
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (e.g. timed out) before the answer
            self.close_connection = True

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch


class KubeEmulator:
    """In-memory Kubernetes API on 127.0.0.1 (ephemeral port), served from a background thread."""

    def __init__(
        self,
        resources: Iterable[ResourceType] = DEFAULT_RESOURCES,
        *,
        continue_ttl: float | None = None,
    ) -> None:
        self.resources: dict[str, ResourceType] = {rt.plural: rt for rt in resources}
        self.continue_ttl = continue_ttl  # seconds a continue token stays valid (None: forever)
        self._lock = threading.RLock()
        self._objects: dict[str, dict[tuple[str, str], JSON]] = {p: {} for p in self.resources}
        self._resource_version = 1000
        self._continues: dict[str, tuple[_ListSnapshot, int]] = {}
        self._faults: list[Fault] = []
        self._log: list[Request] = []
        self._count = 0
        self._routes: list[_Route] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for rt in self.resources.values():
            self._add_resource_routes(rt)
        self.add_route("GET", "/version", self._handle_version)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> KubeEmulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="k8s-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping on a delay fault
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
        plural = resource.plural if isinstance(resource, ResourceType) else resource
        try:
            return self.resources[plural]
        except KeyError:
            raise KeyError(f"unknown resource {plural!r}") from None

    def _next_rv(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def add(self, resource: ResourceType | str, obj: Mapping[str, Any]) -> JSON:
        """Store an object (replacing one of the same name); returns the stored copy."""
        rt = self.resource(resource)
        stored: JSON = _copy(obj)
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
        meta.setdefault("creationTimestamp", _now())
        with self._lock:
            meta["resourceVersion"] = self._next_rv()
            key = (meta.get("namespace", ""), meta["name"])
            self._objects[rt.plural][key] = stored
        copy: JSON = _copy(stored)
        return copy

    def add_many(self, resource: ResourceType | str, objs: Iterable[Mapping[str, Any]]) -> None:
        for obj in objs:
            self.add(resource, obj)

    def add_node(self, obj: Mapping[str, Any]) -> JSON:
        return self.add(NODES.plural, obj)

    def add_pod(self, obj: Mapping[str, Any]) -> JSON:
        return self.add(PODS.plural, obj)

    def add_pdb(self, obj: Mapping[str, Any]) -> JSON:
        return self.add(PDBS.plural, obj)

    def get(self, resource: ResourceType | str, name: str, namespace: str = "") -> JSON | None:
        """A copy of a stored object, or None."""
        rt = self.resource(resource)
        with self._lock:
            obj = self._objects[rt.plural].get((namespace if rt.namespaced else "", name))
            return None if obj is None else dict(_copy(obj))

    def objects(self, resource: ResourceType | str) -> list[JSON]:
        """Copies of all stored objects of a resource, in (namespace, name) order."""
        rt = self.resource(resource)
        with self._lock:
            objs = [self._objects[rt.plural][k] for k in sorted(self._objects[rt.plural])]
            return list(_copy(objs))

    def update(self, resource: ResourceType | str, obj: Mapping[str, Any]) -> JSON:
        """Replace a stored object (it must exist); bumps its resourceVersion."""
        rt = self.resource(resource)
        meta = obj.get("metadata", {})
        if self.get(rt, meta.get("name", ""), meta.get("namespace", "")) is None:
            raise KeyError(f"{rt.plural} {meta.get('namespace', '')}/{meta.get('name')} not found")
        return self.add(rt, obj)

    def delete(self, resource: ResourceType | str, name: str, namespace: str = "") -> bool:
        rt = self.resource(resource)
        with self._lock:
            gone = self._objects[rt.plural].pop((namespace if rt.namespaced else "", name), None)
            if gone is not None:
                self._next_rv()
            return gone is not None

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._resource_version)

    def expire_continue_tokens(self) -> None:
        """Forget every continue token handed out so far (their next use gets 410 Expired)."""
        with self._lock:
            self._continues.clear()

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
        retry_after: int | None = None,
        delay: float = 0.0,
        drop: bool = False,
        before: Callable[[Request], None] | None = None,
        reason: str | None = None,
        message: str | None = None,
    ) -> Fault:
        """Queue a fault. Faults are tried in the order queued; a request takes at most one.

        Matching: ``path`` (exact, or a compiled pattern), ``method``, ``at_request`` (requests
        are numbered from 1 since the emulator was made, see ``request_count``) and ``when`` (a
        predicate on the :class:`Request`); ``times`` requests at most (None: no limit).

        Effect: ``before(request)`` runs first; then a ``delay`` (seconds); then either the
        connection is dropped (``drop``), or a Status error ``status`` is answered (with
        ``Retry-After: retry_after`` when given), or, with no status, the request is served
        normally. ``inject(before=lambda r: emu.expire_continue_tokens(), path=...)`` makes the
        server itself answer 410 for a continue token, as after a real expiry.
        """
        if status is None and not delay and not drop and before is None:
            raise ValueError("a fault needs a status, a delay, drop=True or a before action")
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
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

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
            self.add_route(
                "GET",
                f"{base}/namespaces/{{namespace}}/{rt.plural}",
                partial(self._handle_list, rt),
            )
            self.add_route(
                "GET",
                f"{base}/namespaces/{{namespace}}/{rt.plural}/{{name}}",
                partial(self._handle_get, rt),
            )
        else:
            self.add_route("GET", f"{base}/{rt.plural}", partial(self._handle_list, rt))
            self.add_route("GET", f"{base}/{rt.plural}/{{name}}", partial(self._handle_get, rt))

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
            if fault is not None:
                fault.hits += 1
                req.fault = fault
        if fault is not None:
            if fault.before is not None:
                fault.before(req)
            if fault.delay and self._stopping.wait(fault.delay):
                return None  # stopping
            if fault.drop:
                return None
            if fault.status is not None:
                resp = fault.error().response()
                req.status, req.response = resp.status, resp
                return resp
        try:
            resp = self._route(req)
        except ApiError as exc:
            resp = exc.response()
        except Exception as exc:  # a bug in a handler: answer like the API server would
            resp = ApiError(500, f"emulator error: {type(exc).__name__}: {exc}").response()
        req.status, req.response = resp.status, resp
        return resp

    def _route(self, req: Request) -> Response:
        with self._lock:
            routes = list(self._routes)
        path_matched = False
        for route in routes:
            m = route.pattern.fullmatch(req.path)
            if m is None:
                continue
            path_matched = True
            if route.method == req.method:
                req.params = m.groupdict()
                return route.handler(req)
        if path_matched:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        raise ApiError(404, "the server could not find the requested resource")

    # ---------------------------------------------------------------- handlers

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
            raise ApiError(
                404,
                f'{rt.plural}{"." + rt.group if rt.group else ""} "{name}" not found',
                details={"name": name, "group": rt.group, "kind": rt.plural},
            )
        return Response(200, {"kind": rt.kind, "apiVersion": rt.api_version, **obj})

    def _handle_list(self, rt: ResourceType, req: Request) -> Response:
        if (req.param("watch") or "").lower() in ("true", "1"):
            raise ApiError(400, "watch is not supported by the emulator")
        namespace = req.params.get("namespace")
        label_selector = req.param("labelSelector") or ""
        field_selector = req.param("fieldSelector") or ""
        raw_limit = req.param("limit") or "0"
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ApiError(400, f"invalid limit {raw_limit!r}") from None
        key = (rt.plural, namespace, label_selector, field_selector)
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
            store = self._objects[rt.plural]
            items = [
                json.dumps(store[k], separators=(",", ":"))
                for k in sorted(store)
                if (namespace is None or k[0] == namespace)
                and labels_ok(store[k].get("metadata", {}).get("labels") or {})
                and fields_ok(store[k])
            ]
            return _ListSnapshot(
                key=key,
                resource_version=str(self._resource_version),
                items=items,
                filtered=bool(label_selector.strip() or field_selector.strip()),
                created=time.monotonic(),
            )
