"""The Kubernetes calls an applier makes, with the server's answers as data, rate-limited.

Every call goes through the official client with ``_preload_content=False``: answers are read as
raw JSON, so a reply the client's models cannot hold (the ``Status`` a Binding returns) is still
read, and HTTP errors are values (:class:`Answer`) rather than exceptions, for the applier to act on
status by status.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

#: Longest ``Retry-After`` taken at its word, in seconds.
RETRY_AFTER_MAX = 300.0


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
    checks and answers as it would, and persists nothing."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        qps: float = 20.0,
        burst: int = 40,
        timeout: float = 30.0,
        dry_run: bool = False,
    ) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.policy = client.PolicyV1Api(api_client)
        self.limiter = RateLimiter(qps, burst)
        self.timeout = timeout
        self.dry_run = dry_run

    def _call(self, fn: Callable[..., Any], *args: Any, write: bool = False, **kw: Any) -> Answer:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        if write and self.dry_run:
            kw["dry_run"] = "All"
        self.limiter.take()
        try:
            resp = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kw)
        except ApiException as e:
            body = _json(e.body)
            return Answer(
                int(e.status or 0), body, _retry_after(e.headers), _message(body, e.reason)
            )
        except (urllib3.exceptions.HTTPError, OSError) as e:
            return Answer(0, {}, None, f"{type(e).__name__}: {e}")
        try:
            data = resp.data
        finally:
            release = getattr(resp, "release_conn", None)
            if release is not None:
                release()
        return Answer(int(resp.status), _json(data))

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


def _json(data: Any) -> dict[str, Any]:
    if not data:
        return {}
    if isinstance(data, bytes | bytearray):
        data = bytes(data).decode("utf-8", "replace")
    try:
        doc = json.loads(data)
    except (TypeError, ValueError):
        return {"message": str(data)[:500]}
    return doc if isinstance(doc, dict) else {}


def _message(body: dict[str, Any], reason: Any) -> str:
    message = body.get("message")
    return str(message) if isinstance(message, str) and message else str(reason or "")


def _retry_after(headers: Any) -> float | None:
    from kube_engine.cluster import retry_after_seconds

    return retry_after_seconds(headers, RETRY_AFTER_MAX)
