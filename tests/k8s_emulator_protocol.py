"""The parts of the Kubernetes API emulator that need no object store.

``k8s_emulator`` serves objects; this module holds what a request and an answer look like and the
rules that are pure functions of them, so each can be read (and checked against upstream) on its
own:

* resource types (:class:`ResourceType`) and the Status error documents the API server answers
  (:class:`ApiError`, :func:`status_body`, upstream's messages);
* a request as the emulator saw it (:class:`Request`), an answer (:class:`Response`), injected and
  seeded random faults (:class:`Fault`, :class:`RandomFaults`), among them a misbehaving server's
  answers: any answer at all, or one sent a byte at a time;
* label selectors (the query syntax and ``LabelSelector`` objects) and field selectors;
* the patch formats (JSON merge patch, strategic merge patch as far as emulated, JSON patch);
* RBAC: the request attributes kube-apiserver authorizes (:func:`request_info`) and a ClusterRole's
  rules checked against them (:func:`authorize`), with upstream's ``403`` wording;
* the loopback HTTP server (:class:`LoopbackServer`), which hands every request to one function
  and can stream a chunked answer (a watch), or trickle an answer a byte at a time.

Everything public here is re-exported by ``k8s_emulator``; tests import from there.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = dict[str, Any]


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
    # A /status subresource: writes to the object itself keep its status and writes to /status
    # keep everything else (pods, nodes, PDBs, namespaces).
    has_status: bool = False
    # metadata.generation counts changes of the spec (PDBs: status.observedGeneration follows it,
    # and the eviction subresource refuses to trust a status that lags behind).
    generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def key(self) -> str:
        """The group-qualified name (``pods``, ``poddisruptionbudgets.policy``): a GroupResource
        as upstream prints it in messages, and the emulator's key for the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


NODES = ResourceType(
    "nodes",
    "Node",
    "",
    "v1",
    namespaced=False,
    field_labels=("metadata.name", "spec.unschedulable"),
    has_status=True,
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
    has_status=True,
)
PDBS = ResourceType(
    "poddisruptionbudgets",
    "PodDisruptionBudget",
    "policy",
    "v1",
    namespaced=True,
    has_status=True,
    generation=True,
)
NAMESPACES = ResourceType(
    "namespaces",
    "Namespace",
    "",
    "v1",
    namespaced=False,
    field_labels=("metadata.name", "status.phase"),
    has_status=True,
)
LEASES = ResourceType("leases", "Lease", "coordination.k8s.io", "v1", namespaced=True)
EVENTS = ResourceType(
    "events",
    "Event",
    "",
    "v1",
    namespaced=True,
    field_labels=(
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
)
# Upstream serves both event APIs from one storage, converting fields; the emulator keeps the two
# apart, so events.k8s.io selects on its own field names.
EVENTS_V1 = ResourceType(
    "events",
    "Event",
    "events.k8s.io",
    "v1",
    namespaced=True,
    field_labels=(
        "metadata.name",
        "metadata.namespace",
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "reason",
        "reportingController",
        "type",
    ),
)
PVCS = ResourceType("persistentvolumeclaims", "PersistentVolumeClaim", "", "v1", namespaced=True)
PVS = ResourceType("persistentvolumes", "PersistentVolume", "", "v1", namespaced=False)
STORAGE_CLASSES = ResourceType(
    "storageclasses", "StorageClass", "storage.k8s.io", "v1", namespaced=False
)
DEFAULT_RESOURCES: tuple[ResourceType, ...] = (
    NODES,
    PODS,
    PDBS,
    PVCS,
    PVS,
    STORAGE_CLASSES,
    NAMESPACES,
    LEASES,
    EVENTS,
    EVENTS_V1,
)


# --------------------------------------------------------------------------------------------------
# Status errors

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
# The optimistic-concurrency failure (storage.OptimisticLockErrorMsg).
OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
EVICTION_BLOCKED_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_PDBS_MESSAGE = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not "
    "support."
)

_DEFAULT_MESSAGES: dict[int, str] = {
    409: f"Operation cannot be fulfilled: {OPTIMISTIC_LOCK_MESSAGE}",
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


def success_body(code: int, details: Mapping[str, Any] | None = None) -> JSON:
    """The ``Status`` a subresource create (eviction, binding) or a delete answers on success."""
    body: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details is not None:
        body["details"] = dict(details)
    body["code"] = code
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


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        404,
        f'{rt.key} "{name}" not found',
        details={"name": name, "group": rt.group, "kind": rt.plural},
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    """errors.NewConflict: ``Operation cannot be fulfilled on <resource> "<name>": <why>``."""
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
        "Conflict",
        details={"name": name, "group": group, "kind": resource},
    )


def forbidden(resource: str, group: str, name: str, why: str, **details: Any) -> ApiError:
    """errors.NewForbidden: ``<resource> "<name>" is forbidden: <why>`` (no name: no quotes)."""
    qualified = f"{resource}.{group}" if group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    return ApiError(
        403,
        f"{subject} is forbidden: {why}",
        "Forbidden",
        details={"name": name, "group": group, "kind": resource, **details},
    )


def too_many_requests(message: str, retry_after: int, causes: Sequence[JSON] = ()) -> ApiError:
    """errors.NewTooManyRequests: the Retry-After header is only written when the suggested wait
    is positive (responsewriters.ErrorNegotiated), and details.retryAfterSeconds is omitted at 0."""
    details: JSON = {}
    if causes:
        details["causes"] = [dict(c) for c in causes]
    if retry_after > 0:
        details["retryAfterSeconds"] = retry_after
    headers = {"Retry-After": str(retry_after)} if retry_after > 0 else {}
    return ApiError(429, message, "TooManyRequests", details=details, headers=headers)


def invalid(kind: str, name: str, field_path: str, why: str, cause: str) -> ApiError:
    """errors.NewInvalid with one field error."""
    return ApiError(
        422,
        f'{kind} "{name}" is invalid: {field_path}: {why}',
        "Invalid",
        details={
            "name": name,
            "kind": kind,
            "causes": [{"reason": cause, "message": why, "field": field_path}],
        },
    )


# --------------------------------------------------------------------------------------------------
# Requests, responses, faults


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
    route: str | None = None  # the name of the route that matched
    notes: JSON = field(default_factory=dict)  # what a handler found (for the Record)

    def response_json(self) -> Any:
        """The answer's body as JSON (None when there was no answer or it was streamed)."""
        if self.response is None or self.response.stream is not None:
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

    def flag(self, name: str) -> bool:
        """A boolean query parameter (``true``/``1``, any case, as Go's strconv.ParseBool)."""
        return (self.param(name) or "").lower() in ("true", "1", "t")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    # Sent as they are; a Content-Length given here is sent instead of the body's own length.
    headers: dict[str, str] = field(default_factory=dict)
    # An answer sent as it is produced (a watch): chunked, unless headers give a Content-Length.
    stream: Iterator[bytes] | None = None
    trickle: float = 0.0  # seconds between the bytes of the body (0: sent at once)
    trickle_head: bool = False  # the status line and headers are trickled too
    until_close: bool = False  # no Content-Length: the body ends where the connection does

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
    # Retry-After header and (when an int) details.retryAfterSeconds; a str is sent as it is.
    retry_after: int | str | None = None
    answer: Response | None = None  # answer this instead of serving the request
    trickle: float = 0.0  # send the answer's body a byte at a time, this many seconds apart
    trickle_head: bool = False  # and its status line and headers too (a slowloris server)
    delay: float = 0.0  # seconds to wait before answering (longer than the client timeout: a hang)
    drop: bool = False  # close the connection without any answer
    reason: str | None = None
    message: str | None = None
    path: str | re.Pattern[str] | None = None  # exact path, or a pattern (fullmatch)
    method: str | None = None
    at_request: int | None = None  # only the request with this number
    when: Callable[[Request], bool] | None = None  # any other condition (e.g. on query parameters)
    before: Callable[[Request], object] | None = None  # run before answering (e.g. expire tokens)
    times: int | None = 1  # how many requests it hits (None: every matching request)
    hits: int = 0
    # The request is served first; then the delay, the drop or the status replace its answer: the
    # server acted, the client never learns it did (the eviction happened, the answer was lost).
    after_serving: bool = False
    then: Callable[[Request], object] | None = None  # run after the request was served

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

    def shaped(self, resp: Response) -> Response:
        """``resp`` as this fault sends it."""
        if not self.trickle:
            return resp
        return dataclasses.replace(resp, trickle=self.trickle, trickle_head=self.trickle_head)

    def error(self) -> ApiError:
        assert self.status is not None
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        seconds = self.retry_after if isinstance(self.retry_after, int) else None
        details = {"retryAfterSeconds": seconds} if seconds is not None else None
        message = self.message or _DEFAULT_MESSAGES.get(self.status, "injected fault")
        return ApiError(self.status, message, self.reason, details=details, headers=headers)


# Outcomes a RandomFaults draw can give, in the order their probabilities are stacked.
RANDOM_OUTCOMES = ("429", "409", "500", "drop", "drop-after", "slow")


@dataclass
class RandomFaults:
    """Seeded random faults: every matching request draws once from ``rng`` and gets at most one
    outcome, with these probabilities (their sum at most 1):

    ``429`` (with ``Retry-After: retry_after``), ``409`` (an optimistic-lock conflict), ``500``,
    ``drop`` (connection closed before serving), ``drop-after`` (served, then the answer is lost)
    and ``slow`` (answered after ``slow_delay`` seconds). The same seed and the same sequence of
    requests give the same faults; ``hits`` lists (request number, outcome).
    """

    rates: dict[str, float]
    rng: random.Random
    retry_after: int | None = 1
    slow_delay: float = 0.2
    method: str | None = None
    path: str | re.Pattern[str] | None = None
    when: Callable[[Request], bool] | None = None
    hits: list[tuple[int, str]] = field(default_factory=list)
    active: bool = True

    def draw(self, req: Request) -> Fault | None:
        if not self.active:
            return None
        scope = Fault(method=self.method, path=self.path, when=self.when, times=None)
        if not scope.matches(req):
            return None
        x = self.rng.random()
        for outcome in RANDOM_OUTCOMES:
            p = self.rates.get(outcome, 0.0)
            if x < p:
                self.hits.append((req.number, outcome))
                return self._fault(outcome)
            x -= p
        return None

    def _fault(self, outcome: str) -> Fault:
        if outcome == "drop":
            return Fault(drop=True)
        if outcome == "drop-after":
            return Fault(drop=True, after_serving=True)
        if outcome == "slow":
            return Fault(delay=self.slow_delay)
        status = int(outcome)
        return Fault(status=status, retry_after=self.retry_after if status == 429 else None)


# --------------------------------------------------------------------------------------------------
# Small helpers on JSON objects and requests


def clone(obj: Any) -> Any:
    """A deep copy that also checks the object is plain JSON."""
    return json.loads(json.dumps(obj))


def timestamp(at: float | None = None) -> str:
    """An RFC 3339 time as the API writes metav1.Time (seconds, UTC)."""
    when = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def meta_of(obj: Mapping[str, Any]) -> JSON:
    meta: JSON = obj.get("metadata") or {}
    return meta


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = meta_of(obj).get("labels") or {}
    return labels


def without_version(obj: Mapping[str, Any]) -> JSON:
    """The object without metadata.resourceVersion: what "did this write change anything"
    compares."""
    out: JSON = clone(obj)
    out.get("metadata", {}).pop("resourceVersion", None)
    return out


def json_body(req: Request, *, empty: JSON | None = None) -> JSON:
    """The request's JSON object (400 when it is not one); ``empty`` stands for no body."""
    if not req.body and empty is not None:
        return dict(empty)
    try:
        body = json.loads(req.body)
    except ValueError as exc:
        raise ApiError(400, f"couldn't get version/kind; json parse error: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body is not a JSON object")
    if not isinstance(body.get("metadata", {}), dict):
        raise ApiError(400, "metadata is not an object")
    return body


def dry_run(req: Request, options: Mapping[str, Any] | None = None) -> bool:
    """``dryRun=All`` in the query (or in DeleteOptions): run every check, persist nothing."""
    values = list(req.query.get("dryRun", [])) + list((options or {}).get("dryRun") or [])
    for value in values:
        if value != "All":
            raise ApiError(400, f'Invalid dry run value: "{value}"; valid values: "All"')
    return bool(values)


def storage_precondition(
    rt: ResourceType, key: tuple[str, str], what: str, wanted: Any, found: Any
) -> ApiError:
    """A failed storage precondition (GuaranteedUpdate's), as the API server words it."""
    path = "/".join(p for p in ("/registry", rt.plural, key[0], key[1]) if p)
    return conflict(
        rt.plural,
        rt.group,
        key[1],
        f"StorageError: invalid object, Code: 4, Key: {path}, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: {what} in precondition: {wanted}, "
        f"{what} in object meta: {found}",
    )


def check_delete_preconditions(
    rt: ResourceType, obj: Mapping[str, Any], preconditions: Mapping[str, Any]
) -> None:
    """rest.BeforeDelete's early check of DeleteOptions.preconditions (409 naming the kind)."""
    meta = meta_of(obj)
    uid, version = preconditions.get("uid"), preconditions.get("resourceVersion")
    if uid is not None and uid != meta.get("uid"):
        raise conflict(
            rt.kind,
            rt.group,
            meta["name"],
            f"the UID in the precondition ({uid}) does not match the UID in record "
            f"({meta.get('uid')}). The object might have been deleted and then recreated",
        )
    if version is not None and version != meta.get("resourceVersion"):
        raise conflict(
            rt.kind,
            rt.group,
            meta["name"],
            f"the ResourceVersion in the precondition ({version}) does not match the "
            f"ResourceVersion in record ({meta.get('resourceVersion')}). The object might "
            f"have been modified",
        )


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


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a ``LabelSelector`` object (matchLabels, matchExpressions) selects ``labels``.

    A missing selector selects nothing; an empty one everything (policy/v1's PDB semantics).
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator", "")
        values = set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


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


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


# --------------------------------------------------------------------------------------------------
# Patches

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_MERGE_PATCH)

# patchMergeKey of the lists a strategic merge patch merges element by element (the rest of the
# lists are replaced, as lists without a patch strategy are).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "readinessGates": "conditionType",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A strategic merge patch: a JSON merge patch whose known lists (``_MERGE_KEYS``) merge their
    elements by key. Directives (keys starting with ``$``) are ignored."""
    if not isinstance(patch, dict):
        return clone(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(out.get(key), list):
            out[key] = _merge_list(out[key], value, _MERGE_KEYS[key])
        else:
            out[key] = strategic_merge_patch(out.get(key), value)
    return out


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    merged = [clone(x) for x in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            merged.append(clone(item))
            continue
        index = next(
            (i for i, x in enumerate(merged) if isinstance(x, dict) and x.get(key) == item[key]),
            None,
        )
        if index is None:
            merged.append(strategic_merge_patch({}, item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for part in parts:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise ApiError(422, f"doc is missing path: {path!r}")
    return cur


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise ApiError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    out = clone(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(400, f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        if kind == "test":
            if _walk(out, parts, path) != op.get("value"):
                raise ApiError(422, f"testing value {path} failed: test failed")
            continue
        if kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = clone(_walk(out, source, op.get("from", "")))
            if kind == "move":
                out = _remove(out, source, op.get("from", ""))
            out = _add(out, parts, value, path)
        elif kind == "remove":
            out = _remove(out, parts, path)
        elif kind == "add":
            out = _add(out, parts, clone(op.get("value")), path)
        elif kind == "replace":
            out = _remove(out, parts, path)
            out = _add(out, parts, clone(op.get("value")), path)
        else:
            raise ApiError(400, f"Unexpected kind: {kind}")
    return out


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list) and last == "-":
        parent.append(value)
    elif isinstance(parent, list) and last.isdigit() and int(last) <= len(parent):
        parent.insert(int(last), value)
    else:
        raise ApiError(422, f"add operation does not apply: doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        return None
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise ApiError(422, f"remove operation does not apply: doc is missing path: {path!r}")
    return doc


def apply_patch(content_type: str | None, current: JSON, patch: Any) -> JSON:
    """The object ``current`` patched as the request's Content-Type says."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == JSON_PATCH:
        patched = json_patch(current, patch)
    elif media in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
        if not isinstance(patch, dict):
            raise ApiError(400, "the patch is not a JSON object")
        merge = merge_patch if media == MERGE_PATCH else strategic_merge_patch
        patched = merge(current, patch)
    else:
        # Server-side apply is not emulated: answered as an unknown patch type would be.
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(t for t in _PATCH_TYPES if t != APPLY_PATCH)}",
        )
    if not isinstance(patched, dict):
        raise ApiError(422, "the patched document is not an object")
    return patched


# --------------------------------------------------------------------------------------------------
# RBAC


@dataclass(frozen=True)
class RequestInfo:
    """The attributes kube-apiserver authorizes a resource request by (request.RequestInfo)."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str


def request_info(method: str, path: str, query: Mapping[str, list[str]]) -> RequestInfo | None:
    """A resource request's attributes (None for a non-resource path such as /version)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2:  # a namespaced resource; /namespaces/{name} is the namespace itself
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    watching = (query.get("watch") or [""])[0].lower() in ("true", "1", "t")
    verb = {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
    }.get(method)
    if verb is None:
        if method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            verb = "watch" if watching else ("get" if name else "list")
    return RequestInfo(verb, group, resource, subresource, namespace, name)


def _rule_allows(rule: Mapping[str, Any], info: RequestInfo) -> bool:
    verbs = rule.get("verbs") or []
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    names = rule.get("resourceNames") or []
    if "*" not in verbs and info.verb not in verbs:
        return False
    if "*" not in groups and info.group not in groups:
        return False
    combined = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    # rbac's ResourceMatches: "*", the exact resource (a subresource must be named with it, as
    # "pods/eviction"), or "*/<subresource>".
    if not (
        "*" in resources
        or combined in resources
        or (info.subresource and f"*/{info.subresource}" in resources)
    ):
        return False
    return not names or info.name in names


def authorize(rules: Sequence[Mapping[str, Any]], user: str, info: RequestInfo) -> None:
    """Raise upstream's ``403`` unless one of the ClusterRole ``rules`` allows the request."""
    if any(_rule_allows(rule, info) for rule in rules):
        return
    combined = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    where = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
    why = (
        f'User "{user}" cannot {info.verb} resource "{combined}" in API group "{info.group}" '
        f"{where}"
    )
    raise forbidden(info.resource, info.group, info.name, why)


# --------------------------------------------------------------------------------------------------
# The loopback HTTP server

Serve = Callable[[str, str, Mapping[str, str], bytes], Response | None]


class LoopbackServer(ThreadingHTTPServer):
    """HTTP/1.1 on 127.0.0.1 (an ephemeral port): every request goes to ``serve(method, target,
    headers, body)``, whose None answer drops the connection."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, serve: Serve) -> None:
        super().__init__(("127.0.0.1", 0), _HTTPHandler)
        self.serve = serve
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on an answer (refused it, or timed out) resets the connection:
        # nothing worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

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
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet server
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        resp = self.server.serve(self.command, self.path, headers, body)
        if resp is None:  # dropped connection
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if resp.stream is not None:
            self._send_stream(resp, resp.stream)
            return
        payload = resp.encode()
        if resp.trickle:
            self._send_trickled(resp, payload)
            return
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", "application/json")
            if resp.until_close:
                self.send_header("Connection", "close")
                self.close_connection = True
            elif "Content-Length" not in resp.headers:
                self.send_header("Content-Length", str(len(payload)))
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (e.g. timed out) before the answer
            self.close_connection = True

    def _send_trickled(self, resp: Response, payload: bytes) -> None:
        """The answer a byte at a time, ``resp.trickle`` seconds apart: its body, or all of it."""
        try:
            phrase = HTTPStatus(resp.status).phrase
        except ValueError:
            phrase = ""
        headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
        lines = [f"HTTP/1.1 {resp.status} {phrase}"]
        lines += [f"{k}: {v}" for k, v in (headers | resp.headers).items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if resp.trickle_head:
                payload = head + payload
            else:
                self.wfile.write(head)
            for i in range(len(payload)):
                self.wfile.write(payload[i : i + 1])
                time.sleep(resp.trickle)
        except OSError:  # the client gave up
            pass
        self.close_connection = True

    def _send_stream(self, resp: Response, stream: Iterator[bytes]) -> None:
        """A chunked answer, each chunk written as soon as it is produced (a watch); with a
        Content-Length among the headers, the chunks are sent as they are instead."""
        chunked = "Content-Length" not in resp.headers
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.end_headers()
            for chunk in stream:
                if chunk and chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                elif chunk:
                    self.wfile.write(chunk)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client stopped watching
            self.close_connection = True
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch
