"""Read a live cluster: Nodes, Pods and PodDisruptionBudgets as raw JSON pages.

The official ``kubernetes`` client is used for configuration, authentication and transport, but its
model objects are never built: every list call is made with ``_preload_content=False`` and the raw
bytes of each page go straight to the Rust core, which parses them (without the GIL).

Lists are paginated with ``limit``/``continue``. A list whose continue token expires (HTTP 410) is
restarted from the beginning (at most :data:`MAX_RESTARTS` times); 429, 5xx, connection errors and
timeouts are retried with bounded exponential backoff, honouring ``Retry-After`` (at most
:data:`MAX_ATTEMPTS` attempts per request). Anything else raises :class:`kube_engine.ClusterError`
naming the resource, the HTTP status and the server's message.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import json
import os
import pathlib
import random
import secrets
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kube_engine._core import ClusterError, KubeEngineError, Snapshot, list_continue, merge_lists

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = ["MAX_ATTEMPTS", "MAX_RESTARTS", "read_snapshot", "save_snapshot"]

StrPath = str | os.PathLike[str]

#: Attempts per request (the first try included) on 429, 5xx, connection errors and timeouts.
MAX_ATTEMPTS = 5
#: Restarts of one list after its continue token expired (HTTP 410 Gone).
MAX_RESTARTS = 3
#: Backoff after failed attempt n: ``BACKOFF_BASE * 2**(n-1)`` seconds, at most ``BACKOFF_MAX``,
#: times a random factor in [0.5, 1].
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
#: Longest ``Retry-After`` honoured, in seconds.
RETRY_AFTER_MAX = 60.0

# How the reader waits between attempts (tests replace it to observe or skip the waits).
_sleep: Callable[[float], None] = time.sleep


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
) -> Snapshot:
    """Read the cluster's Nodes, Pods and PodDisruptionBudgets into a :class:`Snapshot`.

    Configuration: ``kubeconfig`` (with ``context``, or its current context) when given; otherwise,
    with no ``context``, the in-cluster service account when ``KUBERNETES_SERVICE_HOST`` is set;
    otherwise the default kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``) with ``context``.

    ``page_size`` is the ``limit`` of each list request; ``timeout`` (seconds) bounds each request.
    Raises :class:`kube_engine.ClusterError` when the cluster cannot be read.
    """
    pages = _read_pages(kubeconfig, context, page_size=page_size, timeout=timeout)
    return Snapshot.from_documents(pages)


def save_snapshot(
    path: StrPath,
    *,
    kubeconfig: StrPath | None = None,
    context: str | None = None,
    page_size: int = 500,
    timeout: float = 30.0,
) -> pathlib.Path:
    """Read the cluster like :func:`read_snapshot`; write it to ``path`` as one Kubernetes ``List``.

    The file is what ``kubectl get nodes,pods,pdb -A -o json`` prints (each item with its ``kind``
    and ``apiVersion``), gzip-compressed when ``path`` ends in ``.gz``. It is written atomically:
    when reading or writing fails, ``path`` is left as it was. Returns ``path``.
    """
    target = pathlib.Path(path)
    pages = _read_pages(kubeconfig, context, page_size=page_size, timeout=timeout)
    data = merge_lists(pages)
    del pages
    _write_atomic(target, data, compress=target.name.endswith(".gz"))
    return target


# --------------------------------------------------------------------------------------------------
# Reading pages


def _read_pages(
    kubeconfig: StrPath | None,
    context: str | None,
    *,
    page_size: int,
    timeout: float,
) -> list[bytes]:
    """Every page of the node, pod and PDB lists, as the raw bytes the server sent."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be a positive integer, got {page_size!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    timeout = float(timeout)

    from kubernetes import client

    api_client = _new_api_client(kubeconfig, context)
    try:
        core = client.CoreV1Api(api_client)
        policy = client.PolicyV1Api(api_client)
        lists: list[tuple[str, Callable[..., Any]]] = [
            ("nodes", core.list_node),
            ("pods", core.list_pod_for_all_namespaces),
            ("poddisruptionbudgets", policy.list_pod_disruption_budget_for_all_namespaces),
        ]
        pages: list[bytes] = []
        for resource, list_call in lists:
            pages.extend(_read_list(resource, list_call, page_size=page_size, timeout=timeout))
        return pages
    finally:
        api_client.close()  # type: ignore[no-untyped-call, unused-ignore]


def _new_api_client(kubeconfig: StrPath | None, context: str | None) -> ApiClient:
    """A dedicated ApiClient (the client's global default configuration is never touched)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    # This module retries by itself; urllib3's own retries (3 by default) would multiply attempts.
    cfg.retries = False
    in_cluster = (
        kubeconfig is None and context is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    )
    # $KUBECONFIG is read now (the client reads it once, when imported); None: ~/.kube/config.
    path = os.fspath(kubeconfig) if kubeconfig is not None else os.environ.get("KUBECONFIG") or None
    if in_cluster:
        source = "in-cluster service account"
    else:
        source = f"kubeconfig {path or '~/.kube/config'!r}"
        if context is not None:
            source += f", context {context!r}"
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call, unused-ignore]
            return client.ApiClient(cfg)
        return _client_from_kubeconfig(path, context, cfg)
    except Exception as exc:  # ConfigException, YAML and OS errors, exec plugin failures, ...
        raise ClusterError(f"cannot load the Kubernetes configuration ({source}): {exc}") from exc


def _client_from_kubeconfig(path: str | None, context: str | None, cfg: Any) -> ApiClient:
    from kubernetes import config

    api_client: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call, unused-ignore]
        config_file=path, context=context, persist_config=False, client_configuration=cfg
    )
    return api_client


def _read_list(
    resource: str, list_call: Callable[..., Any], *, page_size: int, timeout: float
) -> list[bytes]:
    """All pages of one list, restarting it when its continue token expires."""
    restarts = 0
    while True:
        try:
            return _read_list_once(resource, list_call, page_size=page_size, timeout=timeout)
        except _Expired as exc:
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise ClusterError(
                    f"{exc.message} (the list expired {restarts} times; gave up)"
                ) from exc.__cause__


def _read_list_once(
    resource: str, list_call: Callable[..., Any], *, page_size: int, timeout: float
) -> list[bytes]:
    pages: list[bytes] = []
    token: str | None = None
    while True:
        page = _fetch_with_retries(resource, list_call, token, page_size=page_size, timeout=timeout)
        pages.append(page)
        try:
            next_token = list_continue(page)
        except (KubeEngineError, ValueError, TypeError) as exc:
            raise ClusterError(
                f"listing {resource}: the server sent an invalid list: {exc}"
            ) from exc
        if next_token is None:
            return pages
        if next_token == token:
            raise ClusterError(
                f"listing {resource}: the server returned the same continue token twice"
            )
        token = next_token


def _fetch(
    list_call: Callable[..., Any], token: str | None, *, page_size: int, timeout: float
) -> bytes:
    kwargs: dict[str, Any] = {
        "limit": page_size,
        "_preload_content": False,
        "_request_timeout": timeout,
    }
    if token is not None:
        kwargs["_continue"] = token
    resp = list_call(**kwargs)
    try:
        data = resp.data
        if data is None:  # a wrapper that has not read its body yet
            data = resp.read()
    finally:
        release = getattr(resp, "release_conn", None)
        if release is not None:
            release()
    return bytes(data)


def _fetch_with_retries(
    resource: str,
    list_call: Callable[..., Any],
    token: str | None,
    *,
    page_size: int,
    timeout: float,
) -> bytes:
    import urllib3
    from kubernetes.client.exceptions import ApiException

    attempt = 0
    while True:
        attempt += 1
        try:
            return _fetch(list_call, token, page_size=page_size, timeout=timeout)
        except ApiException as exc:
            status = int(exc.status or 0)
            message = _api_error_message(resource, exc)
            if status == 410:
                raise _Expired(message) from exc
            if not (status == 429 or 500 <= status <= 599) or attempt >= MAX_ATTEMPTS:
                if attempt > 1:
                    message += f" (after {attempt} attempts)"
                raise ClusterError(message) from exc
            delay = _retry_after(exc)
            _sleep(delay if delay is not None else _backoff(attempt))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            message = _transport_error_message(resource, exc, timeout)
            if _is_permanent_transport_error(exc) or attempt >= MAX_ATTEMPTS:
                if attempt > 1:
                    message += f" (after {attempt} attempts)"
                raise ClusterError(message) from exc
            _sleep(_backoff(attempt))


def _backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped, jittered."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)


def _retry_after(exc: Any) -> float | None:
    """The server's ``Retry-After`` (seconds or an HTTP date), bounded; None when absent."""
    headers = getattr(exc, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = str(value).strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


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
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return text if len(text) <= 500 else text[:500] + "..."


def _transport_error_message(resource: str, exc: BaseException, timeout: float) -> str:
    import urllib3

    # NewConnectionError derives from ConnectTimeoutError in urllib3, but is no timeout.
    if not isinstance(exc, urllib3.exceptions.NewConnectionError) and isinstance(
        exc, urllib3.exceptions.TimeoutError | TimeoutError
    ):
        return f"listing {resource}: no answer within {timeout:g}s ({exc})"
    return f"listing {resource}: connection failed: {type(exc).__name__}: {exc}"


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
