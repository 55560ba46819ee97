"""The Kubernetes calls an applier makes, with the server's answers as data, rate-limited.

Every call goes through the official client with ``_preload_content=False``: answers are read as
raw JSON, so a reply the client's models cannot hold (the ``Status`` a Binding returns) is still
read, and HTTP errors are values (:class:`Answer`) rather than exceptions, for the applier to act on
status by status.

Each call is bounded as :mod:`kube_engine.http_limits` describes: it takes at most ``timeout``
seconds, connecting and the whole answer included (a server trickling its answer is cut off
there), and its answer may have at most ``max_answer_bytes`` bytes (:data:`MAX_ANSWER_BYTES`,
1 GiB) and must not be compressed. Such a call, and one whose 2xx answer is not a JSON object,
gets an :class:`Answer` with status 0, as when no answer came: the applier cannot know whether the
server acted. ``Retry-After`` is read by :func:`kube_engine.http_limits.retry_after`: seconds or an
HTTP date, at most 60 s; anything else counts as absent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kube_engine import http_limits

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

#: Default ``max_answer_bytes``: the largest answer to one call, in bytes. The largest is the list
#: of a namespace's pods, well under it even for a namespace of 50,000 pods.
MAX_ANSWER_BYTES = 1 << 30


@dataclass(frozen=True)
class Answer:
    """One answer: ``status`` 0 when none came (a timeout, a dropped connection)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        """The answer in words, for a report."""
        if self.status == 0:
            return f"no answer ({self.message})"
        return f"HTTP {self.status}: {self.message}" if self.message else f"HTTP {self.status}"


class RateLimiter:
    """A token bucket: ``qps`` requests per second on average, ``burst`` at once."""

    def __init__(self, qps: float, burst: int) -> None:
        if not qps > 0 or burst < 1:
            raise ValueError(f"qps must be > 0 and burst >= 1, got qps={qps}, burst={burst}")
        self.qps, self.burst = float(qps), burst
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
            self._last = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.qps
            self._tokens -= 1
        if wait > 0:
            time.sleep(wait)


class Api:
    """The verbs of an applier. ``dry_run`` sends every write with ``dryRun=All``: the server
    checks and answers as it would, and persists nothing. Each call takes at most ``timeout``
    seconds and its answer at most ``max_answer_bytes`` bytes (see the module's documentation).
    ``api_client`` gets the bounds installed (:func:`kube_engine.http_limits.install`)."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        qps: float = 20.0,
        burst: int = 40,
        timeout: float = 30.0,
        dry_run: bool = False,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        from kubernetes import client

        http_limits.install(api_client)
        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.policy = client.PolicyV1Api(api_client)
        self.limiter = RateLimiter(qps, burst)
        self.timeout = timeout
        self.dry_run = dry_run
        self.max_answer_bytes = max_answer_bytes

    def _call(self, fn: Callable[..., Any], *args: Any, write: bool = False, **kw: Any) -> Answer:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        if write and self.dry_run:
            kw["dry_run"] = "All"
        self.limiter.take()
        try:
            with http_limits.bounded(self.timeout, self.max_answer_bytes):
                resp = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kw)
                try:
                    data = resp.data
                finally:
                    release = getattr(resp, "release_conn", None)
                    if release is not None:
                        release()
        except ApiException as e:
            body = _error_body(e.body)
            retry_after = http_limits.retry_after(e.headers)
            return Answer(int(e.status or 0), body, retry_after, _message(body, e.reason))
        except http_limits.AnswerRefused as e:
            return Answer(0, {}, None, f"answer refused: {e}")
        except (urllib3.exceptions.HTTPError, OSError) as e:
            return Answer(0, {}, None, f"{type(e).__name__}: {e}")
        doc = _document(data)
        if doc is None:
            # A success the applier cannot read tells it no more than no answer at all.
            return Answer(
                0, {}, None, f"the answer is not a JSON object: {http_limits.excerpt(data)!r}"
            )
        return Answer(int(resp.status), doc)

    # Reads

    def get_pod(self, namespace: str, name: str) -> Answer:
        return self._call(self.core.read_namespaced_pod, name, namespace)

    def list_pods(self, namespace: str, label_selector: str = "") -> Answer:
        return self._call(self.core.list_namespaced_pod, namespace, label_selector=label_selector)

    def get_node(self, name: str) -> Answer:
        return self._call(self.core.read_node, name)

    def get_pdb(self, namespace: str, name: str) -> Answer:
        return self._call(self.policy.read_namespaced_pod_disruption_budget, name, namespace)

    def list_pdbs(self, namespace: str) -> Answer:
        return self._call(self.policy.list_namespaced_pod_disruption_budget, namespace)

    # Writes

    def evict(self, namespace: str, name: str, uid: str) -> Answer:
        """The Eviction API, with the pod's UID as a precondition: a pod replaced by another of
        the same name is never evicted in its place."""
        options: dict[str, Any] = {"preconditions": {"uid": uid}}
        if self.dry_run:
            options["dryRun"] = ["All"]
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": options,
        }
        return self._call(self.core.create_namespaced_pod_eviction, name, namespace, body)

    def bind(self, namespace: str, name: str, uid: str, node: str) -> Answer:
        """The Binding API (pods/binding), the pod's UID as a precondition. The server answers
        a ``Status``, which the client's Binding model cannot hold: read raw."""
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        return self._call(
            self.core.create_namespaced_pod_binding, name, namespace, body, write=True
        )

    def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> Answer:
        return self._call(self.core.patch_namespaced_pod, name, namespace, patch, write=True)

    def patch_node(self, name: str, patch: dict[str, Any]) -> Answer:
        return self._call(self.core.patch_node, name, patch, write=True)

    def create_event(self, namespace: str, event: dict[str, Any]) -> Answer:
        return self._call(self.core.create_namespaced_event, namespace, event, write=True)

    def get_lease(self, namespace: str, name: str) -> Answer:
        return self._call(self.coordination.read_namespaced_lease, name, namespace)

    def create_lease(self, namespace: str, lease: dict[str, Any]) -> Answer:
        # The lock is taken even in a server-side dry run: it keeps two runs apart all the same.
        return self._call(self.coordination.create_namespaced_lease, namespace, lease)

    def replace_lease(self, namespace: str, name: str, lease: dict[str, Any]) -> Answer:
        return self._call(self.coordination.replace_namespaced_lease, name, namespace, lease)

    def delete_lease(self, namespace: str, name: str) -> Answer:
        return self._call(self.coordination.delete_namespaced_lease, name, namespace)


def now_rfc3339(micro: bool = False) -> str:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.now(UTC).strftime(fmt)


def _document(data: Any) -> dict[str, Any] | None:
    """The JSON object an answer's body holds ({} for an empty body); None when it holds none."""
    if not data:
        return {}
    try:
        doc = json.loads(data)
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested too deep
        return None
    return doc if isinstance(doc, dict) else None


def _error_body(data: Any) -> dict[str, Any]:
    """An error answer's body: its JSON object (a Status), else its text as the message."""
    doc = _document(data)
    if doc is not None:
        return doc
    text = data if isinstance(data, str | bytes) else str(data)
    return {"message": http_limits.excerpt(text, 500)}


def _message(body: dict[str, Any], reason: Any) -> str:
    message = body.get("message")
    return str(message) if isinstance(message, str) and message else str(reason or "")
