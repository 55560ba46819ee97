"""Read a live cluster: Nodes, Pods and PodDisruptionBudgets as raw JSON pages.

The official ``kubernetes`` client is used for configuration, authentication and transport, but its
model objects are never built: every list call is made with ``_preload_content=False`` and the raw
bytes of each page go straight to the Rust core, which parses them (without the GIL).

Which cluster: an explicit kubeconfig, else ``$KUBECONFIG`` (a list of files separated by ``:``,
merged by the client), else the pod's service account when running in one, else
``~/.kube/config`` -- the order controller-runtime uses, so a kubeconfig someone set on purpose is
never overridden by the pod the reader happens to run in. A configuration that names nothing usable
(a missing file, a context the kubeconfig lacks, no configuration at all) is a
:class:`kube_engine.ClusterError` before any request is made; :func:`describe_config` names the
choice without reading anything from the cluster.

Lists are paginated with ``limit``/``continue``. A list whose continue token expires (HTTP 410) is
restarted from the beginning (at most :data:`MAX_RESTARTS` times). Anything not retried raises
:class:`kube_engine.ClusterError` naming the resource, the HTTP status and the server's message.

How long a read can take when things go wrong (the user is waiting, and a CronJob should fail
rather than hang):

* each request's answer, its headers and its whole body, comes within ``timeout`` seconds (a
  server trickling its answer a byte at a time is cut off there), and connecting takes at most
  ``timeout`` too: a request ends within ``2 * timeout`` at worst (see
  :mod:`kube_engine.http_limits`);
* until the server has answered once, a transport failure (connection refused, no answer, a dropped
  connection, TLS) is not retried: a server that never answered is down or not the one meant, and
  saying so at once beats minutes of silent retries. An unreachable cluster fails within
  ``timeout``;
* once it has answered, 429, 5xx, connection errors and timeouts are retried (an API server
  restarting or a leader election mid-read heals in seconds), at most :data:`MAX_ATTEMPTS` attempts
  per request, after exponential backoff or the server's ``Retry-After``; and the whole read spends
  at most its retry budget, ``max(RETRY_BUDGET_MIN, timeout)`` seconds, on failed attempts and on
  waiting: a retry whose wait would overrun the budget is not made. Failures therefore add at most
  the budget plus one ``timeout`` to a read, however many pages it has.
* ``Retry-After`` is honoured when it is a number of seconds or an HTTP date, cut to
  :data:`kube_engine.http_limits.RETRY_AFTER_MAX` (60 s); any other value (``nan``, ``-1``, ...)
  counts as absent. A wait that would overrun the retry budget is not made: the read fails at once.

How much a read can hold, whatever the server sends (each limit a keyword argument of
:func:`read_snapshot` and :func:`save_snapshot`; going past one is a ``ClusterError``):

* ``max_bytes`` (:data:`MAX_READ_BYTES`, 4 GiB): the answers of one read together, as received.
  An answer that would go past what is left is refused as soon as its ``Content-Length`` says so,
  else where it crosses the line, without reading the rest. Compressed answers (which the reader
  never asks for) are refused: nothing is inflated.
* ``max_items`` (:data:`MAX_LIST_ITEMS`, 1,000,000): the items of one list, and with them its
  pages: at most ``ceil(max_items / page_size) + 10``. A continue token the server hands out a
  second time in one list (a cycle) ends the read at once.
* A page must be the list asked for (``kind: NodeList`` for nodes, ...): an answer of another kind,
  or not JSON, ends the read.

Worst cases, then: a read holds at most ``max_bytes`` of answers, and takes at most
``2 * timeout`` per request (pages bounded as above) plus its retry budget and one more request.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import pathlib
import random
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kube_engine import arguments, http_limits
from kube_engine._core import (
    ClusterError,
    KubeEngineError,
    Snapshot,
    list_page,
    merge_lists,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_LIST_ITEMS",
    "MAX_READ_BYTES",
    "MAX_RESTARTS",
    "RETRY_BUDGET_MIN",
    "NoConfigurationError",
    "describe_config",
    "read_snapshot",
    "save_snapshot",
]

StrPath = str | os.PathLike[str]

#: Attempts per request (the first try included) on 429, 5xx, connection errors and timeouts.
MAX_ATTEMPTS = 5
#: Restarts of one list after its continue token expired (HTTP 410 Gone).
MAX_RESTARTS = 3
#: Backoff after failed attempt n: ``BACKOFF_BASE * 2**(n-1)`` seconds, at most ``BACKOFF_MAX``,
#: times a random factor in [0.5, 1].
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
#: Least retry budget of a read, in seconds (the budget is ``max(RETRY_BUDGET_MIN, timeout)``):
#: enough to ride out an API server restart even with a short request timeout.
RETRY_BUDGET_MIN = 10.0
#: Default ``max_bytes``: the answers of one read together, in bytes. The largest clusters
#: Kubernetes supports (150,000 pods) list in well under half of it.
MAX_READ_BYTES = 4 << 30
#: Default ``max_items``: the items of one list (Kubernetes supports 150,000 pods per cluster).
MAX_LIST_ITEMS = 1_000_000
#: Pages of a list beyond ``ceil(max_items / page_size)``: room for pages the server sent short.
EXTRA_PAGES = 10

# How the reader waits between attempts (tests replace it to observe or skip the waits).
_sleep: Callable[[float], None] = time.sleep

_DEFAULT_KUBECONFIG = "~/.kube/config"


class NoConfigurationError(ClusterError):
    """No kubeconfig was given or found, and the reader is not running in a pod."""


class _Expired(Exception):
    """A list's continue token expired (HTTP 410); the list must start over."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------------------------------
# Public API


def read_snapshot(
    kubeconfig: StrPath | None = None,
    context: str | None = None,
    *,
    page_size: int = 500,
    timeout: float = 30.0,
    strict: bool = False,
    max_bytes: int = MAX_READ_BYTES,
    max_items: int = MAX_LIST_ITEMS,
) -> Snapshot:
    """Read the cluster's Nodes, Pods and PodDisruptionBudgets into a :class:`Snapshot`.

    Configuration: ``kubeconfig`` when given, else ``$KUBECONFIG``, else the in-cluster service
    account when ``KUBERNETES_SERVICE_HOST`` is set and no ``context`` is asked for, else
    ``~/.kube/config``; from a kubeconfig, ``context`` or its current context.

    ``page_size`` is the ``limit`` of each list request; ``timeout`` (seconds) bounds each request,
    connecting and the whole answer included, and sets the read's retry budget; ``max_bytes``
    bounds the answers of the whole read together (default 4 GiB), ``max_items`` the items of each
    list (default 1,000,000) and so its pages (see the module's documentation). A pod bound to a
    node the lists lack (deleted while the read went on) is left out and listed in
    ``Snapshot.left_out``; with ``strict`` it is an error instead. Raises
    :class:`kube_engine.ClusterError` when the cluster cannot be read or a limit is reached, and
    :class:`kube_engine.InvalidArgumentError` for an argument out of range.
    """
    pages = _read_pages(
        kubeconfig,
        context,
        page_size=page_size,
        timeout=timeout,
        max_bytes=max_bytes,
        max_items=max_items,
    )
    return Snapshot.from_documents(pages, strict=strict)


def save_snapshot(
    path: StrPath,
    *,
    kubeconfig: StrPath | None = None,
    context: str | None = None,
    page_size: int = 500,
    timeout: float = 30.0,
    strict: bool = False,
    max_bytes: int = MAX_READ_BYTES,
    max_items: int = MAX_LIST_ITEMS,
) -> pathlib.Path:
    """Read the cluster like :func:`read_snapshot`; write it to ``path`` as one Kubernetes ``List``.

    The file is what ``kubectl get nodes,pods,pdb -A -o json`` prints (each item with its ``kind``
    and ``apiVersion``), gzip-compressed when ``path`` ends in ``.gz``. It keeps every pod the
    server listed, also those whose node is gone (loading leaves them out); with ``strict`` such a
    pod is an error, raised before anything is written. It is written atomically: when reading or
    writing fails, ``path`` is left as it was. The read has the limits of :func:`read_snapshot`.
    Returns ``path``.
    """
    target = pathlib.Path(path)
    pages = _read_pages(
        kubeconfig,
        context,
        page_size=page_size,
        timeout=timeout,
        max_bytes=max_bytes,
        max_items=max_items,
    )
    if strict:
        Snapshot.from_documents(pages, strict=True)
    data = merge_lists(pages)
    del pages
    _write_atomic(target, data, compress=target.name.endswith(".gz"))
    return target


def describe_config(kubeconfig: StrPath | None = None, context: str | None = None) -> str:
    """The configuration :func:`read_snapshot` would use, in words: ``kubeconfig ~/.kube/config,
    context prod``, ``kubeconfig /etc/kc (from $KUBECONFIG), context ops`` or ``in-cluster service
    account``.

    Nothing is sent to the cluster. Raises :class:`kube_engine.ClusterError` (a
    :class:`NoConfigurationError` when there is none at all) like :func:`read_snapshot` would.
    """
    return str(_choose_config(kubeconfig, context))


def connect(kubeconfig: StrPath | None = None, context: str | None = None) -> ApiClient:
    """An ``ApiClient`` for the cluster :func:`read_snapshot` would read (the same choice of
    configuration), with the client's own retries off (callers retry by themselves) and the
    bounds of :mod:`kube_engine.http_limits` installed."""
    return _new_api_client(_choose_config(kubeconfig, context))


# --------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class _Config:
    """The configuration chosen for a read."""

    in_cluster: bool
    path: str = ""  # the kubeconfig file(s), as given (a $KUBECONFIG list keeps its separators)
    origin: str = ""  # "" (given), "$KUBECONFIG" or "default"
    context: str = ""  # the context used: the one asked for, or the kubeconfig's current one
    merged: Any = None  # the client's merged kubeconfig (a ConfigNode)

    def __str__(self) -> str:
        if self.in_cluster:
            return "in-cluster service account"
        where = " (from $KUBECONFIG)" if self.origin == "$KUBECONFIG" else ""
        return f"kubeconfig {self.path}{where}, context {self.context}"


def _choose_config(kubeconfig: StrPath | None, context: str | None) -> _Config:
    from kubernetes.config.kube_config import ENV_KUBECONFIG_PATH_SEPARATOR

    env = os.environ.get("KUBECONFIG") or ""
    if kubeconfig is not None:
        path, origin = os.fspath(kubeconfig), ""
        missing = [p for p in _split(path, ENV_KUBECONFIG_PATH_SEPARATOR) if not _exists(p)]
        if missing:
            raise ClusterError(f"kubeconfig {', '.join(missing)} does not exist")
    elif env:
        path, origin = env, "$KUBECONFIG"
        # Like kubectl, files of the list that do not exist are skipped, but not all of them.
        if not any(_exists(p) for p in _split(path, ENV_KUBECONFIG_PATH_SEPARATOR)):
            raise ClusterError(f"$KUBECONFIG names no file that exists: {path}")
    elif context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return _Config(in_cluster=True)
    else:
        path, origin = _DEFAULT_KUBECONFIG, "default"
        if not _exists(path):
            raise NoConfigurationError(
                "no Kubernetes configuration: $KUBECONFIG is not set, "
                f"{os.path.expanduser(path)} does not exist, "
                "and this is not a pod (KUBERNETES_SERVICE_HOST is not set)"
            )
    try:
        merged, current, names = _read_kubeconfig(path)
    except Exception as exc:  # YAML and OS errors, ConfigException, ...
        raise ClusterError(f"cannot read kubeconfig {path}: {exc}") from exc
    if merged is None:
        raise ClusterError(f"kubeconfig {path} holds no configuration")
    available = f"its contexts: {', '.join(names)}" if names else "it has no contexts"
    if context is None:
        if not current:
            raise ClusterError(f"kubeconfig {path} sets no current context ({available})")
        context = current
    if context not in names:
        raise ClusterError(f"context {context!r} is not in kubeconfig {path} ({available})")
    return _Config(in_cluster=False, path=path, origin=origin, context=context, merged=merged)


def _split(paths: str, separator: str) -> list[str]:
    return [p for p in paths.split(separator) if p]


def _exists(path: str) -> bool:
    return os.path.exists(os.path.expanduser(path))


def _read_kubeconfig(path: str) -> tuple[Any, str | None, list[str]]:
    """The kubeconfig file(s) at ``path`` merged as the client merges them (None: no file), the
    current context, and the names of the contexts."""
    from kubernetes.config.kube_config import KubeConfigMerger

    merger = KubeConfigMerger(path)  # type: ignore[no-untyped-call, unused-ignore]
    merged = merger.config
    if merged is None:
        return None, None, []
    # kubectl takes the current context of the first file that sets one (the first to set a value
    # wins); the client's merge lets the last one win, which would read another cluster than
    # kubectl with the same $KUBECONFIG.
    current = None
    for file in merger.paths:
        current = current or merger.config_files[file].get("current-context") or None
    value = merged.value if isinstance(merged.value, dict) else {}
    names = [str(c["name"]) for c in value.get("contexts") or [] if "name" in c]
    return merged, None if current is None else str(current), names


def _new_api_client(chosen: _Config) -> ApiClient:
    """A dedicated ApiClient (the client's global default configuration is never touched)."""
    from kubernetes import client, config
    from kubernetes.config.kube_config import KubeConfigLoader

    cfg = client.Configuration()
    # This module retries by itself; urllib3's own retries (3 by default) would multiply attempts.
    cfg.retries = False
    try:
        if chosen.in_cluster:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call, unused-ignore]
        else:
            # What the client's load_kube_config does with a file name, on the kubeconfig already
            # merged and checked (persist_config=False: credentials it refreshes are not written).
            loader = KubeConfigLoader(  # type: ignore[no-untyped-call, unused-ignore]
                config_dict=chosen.merged, active_context=chosen.context, config_base_path=None
            )
            loader.load_and_set(cfg)  # type: ignore[no-untyped-call, unused-ignore]
    except Exception as exc:  # ConfigException, OS errors, exec plugin failures, ...
        raise ClusterError(f"cannot load the Kubernetes configuration ({chosen}): {exc}") from exc
    api_client = client.ApiClient(cfg)
    http_limits.install(api_client)
    return api_client


# --------------------------------------------------------------------------------------------------
# Reading pages


class _Retries:
    """What one read has left: its retry budget, its bytes, and whether the server ever answered."""

    def __init__(self, timeout: float, max_bytes: int) -> None:
        self.timeout = timeout
        self.budget = max(RETRY_BUDGET_MIN, timeout)
        self.spent = 0.0  # seconds of failed attempts and of waits before retries
        self.answered = False
        self.max_bytes = max_bytes
        self.bytes_left = max_bytes

    def allows(self, wait: float) -> bool:
        return self.spent + wait <= self.budget


def _read_pages(
    kubeconfig: StrPath | None,
    context: str | None,
    *,
    page_size: int,
    timeout: float,
    max_bytes: int,
    max_items: int,
) -> list[bytes]:
    """Every page of the node, pod, PDB, PersistentVolumeClaim, PersistentVolume and StorageClass
    lists, as the raw bytes the server sent."""
    page_size = arguments.integer("page_size", page_size, 1, None)
    max_bytes = arguments.integer("max_bytes", max_bytes, 1, None)
    max_items = arguments.integer("max_items", max_items, 1, None)
    timeout = arguments.number("timeout", timeout, positive=True, high=arguments.MAX_SECONDS)

    from kubernetes import client

    api_client = _new_api_client(_choose_config(kubeconfig, context))
    try:
        core = client.CoreV1Api(api_client)
        policy = client.PolicyV1Api(api_client)
        storage = client.StorageV1Api(api_client)
        lists: list[tuple[str, str, Callable[..., Any], bool]] = [
            ("nodes", "NodeList", core.list_node, True),
            ("pods", "PodList", core.list_pod_for_all_namespaces, True),
            (
                "poddisruptionbudgets",
                "PodDisruptionBudgetList",
                policy.list_pod_disruption_budget_for_all_namespaces,
                True,
            ),
            # Where pods' volumes can be reached. A reader not allowed to list them still reads
            # the cluster; pods with claims then stay where they are (their reach is unknown).
            (
                "persistentvolumeclaims",
                "PersistentVolumeClaimList",
                core.list_persistent_volume_claim_for_all_namespaces,
                False,
            ),
            ("persistentvolumes", "PersistentVolumeList", core.list_persistent_volume, False),
            ("storageclasses", "StorageClassList", storage.list_storage_class, False),
        ]
        host = str(api_client.configuration.host)
        retries = _Retries(timeout, max_bytes)
        pages: list[bytes] = []
        for resource, kind, list_call, required in lists:
            reader = _ListReader(resource, kind, host, list_call, page_size, max_items, retries)
            try:
                pages.extend(reader.read())
            except ClusterError as e:
                if required or getattr(e.__cause__, "status", None) not in (403, 404):
                    raise
        return pages
    finally:
        api_client.close()  # type: ignore[no-untyped-call, unused-ignore]


@dataclass
class _ListReader:
    """Reads every page of one list."""

    resource: str
    kind: str  # of the list: NodeList, ...
    host: str
    list_call: Callable[..., Any]
    page_size: int
    max_items: int
    retries: _Retries
    max_pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.max_pages = -(-self.max_items // self.page_size) + EXTRA_PAGES

    def read(self) -> list[bytes]:
        """All pages, restarting the list when its continue token expires."""
        restarts = 0
        bytes_left = self.retries.bytes_left
        while True:
            try:
                return self._read_once()
            except _Expired as exc:
                # The pages of the abandoned pass are dropped: max_bytes bounds what is held.
                self.retries.bytes_left = bytes_left
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise ClusterError(
                        f"{exc.message} (the list expired {restarts} times; gave up)"
                    ) from exc.__cause__

    def _read_once(self) -> list[bytes]:
        pages: list[bytes] = []
        items = 0
        # Digests of the tokens handed out so far: one seen again would loop for ever.
        tokens: set[bytes] = set()
        token: str | None = None
        while True:
            page = self._fetch_with_retries(token)
            pages.append(page)
            next_token, count = self._page(page)
            items += count
            if items > self.max_items:
                raise ClusterError(
                    f"listing {self.resource}: more than max_items={self.max_items} items "
                    f"(in {len(pages)} pages)"
                )
            if next_token is None:
                return pages
            if len(pages) >= self.max_pages:
                raise ClusterError(
                    f"listing {self.resource}: not done after {len(pages)} pages of at most "
                    f"{self.page_size} items ({items} items; max_items={self.max_items})"
                )
            digest = hashlib.sha256(next_token.encode()).digest()
            if digest in tokens:
                raise ClusterError(
                    f"listing {self.resource}: the server handed out continue token "
                    f"{http_limits.excerpt(next_token)!r} a second time (after {len(pages)} "
                    "pages): the list would never end"
                )
            tokens.add(digest)
            token = next_token

    def _page(self, page: bytes) -> tuple[str | None, int]:
        """The continue token and the number of items of a page of this list."""
        try:
            kind, token, count = list_page(page)
        except KubeEngineError as exc:
            raise ClusterError(
                f"listing {self.resource}: the server's answer is not a list: {exc}; it begins "
                f"{http_limits.excerpt(page)!r}"
            ) from exc
        if kind != self.kind:
            raise ClusterError(
                f"listing {self.resource}: the server's answer has kind "
                f"{http_limits.excerpt(kind or '')!r}, not {self.kind!r}"
            )
        return token, count

    def _fetch(self, token: str | None) -> bytes:
        retries = self.retries
        kwargs: dict[str, Any] = {
            "limit": self.page_size,
            "_preload_content": False,
            "_request_timeout": retries.timeout,
        }
        if token is not None:
            kwargs["_continue"] = token
        with http_limits.bounded(retries.timeout, retries.bytes_left) as bounds:
            resp = self.list_call(**kwargs)
            try:
                data = resp.data
                if data is None:  # a wrapper that has not read its body yet
                    data = resp.read()
            finally:
                release = getattr(resp, "release_conn", None)
                if release is not None:
                    release()
        retries.bytes_left -= bounds.received
        return bytes(data)

    def _fetch_with_retries(self, token: str | None) -> bytes:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        retries = self.retries
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                data = self._fetch(token)
                retries.answered = True
                return data
            except http_limits.AnswerRefused as exc:
                # Not retried: the same request would bring the same answer.
                raise ClusterError(
                    f"listing {self.resource} from {self.host}: answer refused: {exc} "
                    f"({retries.bytes_left} of the read's max_bytes={retries.max_bytes} left)"
                ) from exc
            except ApiException as exc:
                retries.spent += time.monotonic() - started
                status = int(exc.status or 0)
                if status:
                    retries.answered = True
                message = _api_error_message(self.resource, exc)
                if status == 410:
                    raise _Expired(message) from exc
                retry_after = _retry_after(exc)
                wait = retry_after if retry_after is not None else _backoff(attempt)
                give_up = self._give_up(attempt, wait, retryable=status == 429 or status >= 500)
                if give_up is not None:
                    raise ClusterError(message + give_up) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                retries.spent += time.monotonic() - started
                message = self._transport_error_message(exc)
                wait = _backoff(attempt)
                # Before any answer nothing suggests the server is there: say so at once.
                retryable = retries.answered and not _is_permanent_transport_error(exc)
                give_up = self._give_up(attempt, wait, retryable=retryable)
                if give_up is not None:
                    raise ClusterError(message + give_up) from exc
            retries.spent += wait
            _sleep(wait)

    def _give_up(self, attempt: int, wait: float, *, retryable: bool) -> str | None:
        """None to retry after ``wait``; else what to add to the error message."""
        after = f" (after {attempt} attempts)" if attempt > 1 else ""
        if not retryable or attempt >= MAX_ATTEMPTS:
            return after
        if not self.retries.allows(wait):
            attempts = f"{attempt} attempt" + ("s" if attempt > 1 else "")
            budget = self.retries.budget
            return f" (after {attempts}; the read's retry budget of {budget:g}s is spent)"
        return None

    def _transport_error_message(self, exc: BaseException) -> str:
        import urllib3

        where = f"listing {self.resource} from {self.host}"
        # NewConnectionError derives from ConnectTimeoutError in urllib3, but is no timeout.
        if not isinstance(exc, urllib3.exceptions.NewConnectionError) and isinstance(
            exc, urllib3.exceptions.TimeoutError | TimeoutError
        ):
            return f"{where}: no answer within {self.retries.timeout:g}s"
        return f"{where}: connection failed: {_transport_reason(exc)}"


def _transport_reason(exc: BaseException) -> str:
    """The root cause in a few words ("Connection refused"), not urllib3's nested reprs."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if e in seen:
            continue
        seen.append(e)
        if isinstance(e, OSError) and e.strerror:
            return str(e.strerror)
        todo.extend(a for a in e.args if isinstance(a, BaseException))
        todo.extend(c for c in (e.__cause__, e.__context__) if c is not None)
    # The innermost exception says most (e.g. "Remote end closed connection without response").
    inner = seen[-1]
    return str(inner) or type(inner).__name__


def _backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped, jittered."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)


def _retry_after(exc: Any) -> float | None:
    """The server's ``Retry-After`` for a failed request (see :func:`http_limits.retry_after`)."""
    return http_limits.retry_after(getattr(exc, "headers", None))


def _api_error_message(resource: str, exc: Any) -> str:
    status = int(exc.status or 0)
    reason = str(exc.reason or "").strip()
    server_message = _status_message(exc.body)
    if status == 0:  # the client's own failure (e.g. TLS), not an HTTP answer
        return f"listing {resource}: request failed: {reason or server_message or exc}"
    text = f"listing {resource}: HTTP {status}"
    if reason:
        text += f" {reason}"
    if server_message and server_message != reason:
        text += f": {server_message}"
    return text


def _status_message(body: Any) -> str:
    """The ``message`` of a ``kind: Status`` body, else the body itself (shortened)."""
    if body is None:
        return ""
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    text = str(body).strip()
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return text if len(text) <= 500 else text[:500] + "..."


def _is_permanent_transport_error(exc: BaseException) -> bool:
    """TLS failures (bad certificates, ...) do not heal by retrying; others may."""
    import urllib3

    return isinstance(exc, urllib3.exceptions.SSLError | ssl.SSLError)


# --------------------------------------------------------------------------------------------------
# Writing


def _write_atomic(target: pathlib.Path, data: bytes, *, compress: bool) -> None:
    """Write ``data`` to a temporary file next to ``target``, then rename it into place."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never reuse an existing file; mode 0o666 lets the umask decide, as open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            if compress:
                inner_name = target.name[: -len(".gz")]
                with gzip.GzipFile(
                    filename=inner_name, mode="wb", fileobj=out, compresslevel=6, mtime=0
                ) as gz:
                    gz.write(data)
            else:
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: pathlib.Path) -> None:
    """Make the rename durable where the platform allows it (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
