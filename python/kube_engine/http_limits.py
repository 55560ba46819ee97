"""Bounds on every request kube-engine makes to an API server, in time and in size, and how long a
``Retry-After`` may make it wait.

The reader (:mod:`kube_engine.cluster`) and the applier (:mod:`kube_engine.applying`) make their
requests through the official ``kubernetes`` client, inside a :func:`bounded` block, on an
``ApiClient`` prepared by :func:`install`. Within the block:

* **A deadline for the whole request.** The client's timeout bounds each socket operation, not
  the request: a server that trickles its answer a byte at a time (its headers or its body) would
  hold a read for ever. Here every read of the socket waits at most until the block's deadline
  (``timeout`` seconds after it began), and a read past it fails as a timeout does (urllib3's
  ``ReadTimeoutError``): the status line, the headers and the whole body come within ``timeout``
  of the start. Connecting is held to the client's connect timeout, ``timeout`` as well: the TCP
  connect, and the TLS handshake as a whole (Python bounds a handshake by the socket's timeout,
  not each of its reads). A request thus ends within ``timeout``, or within twice that when
  connecting alone took longer.
* **A cap on the size of an answer** (status line, headers and body, as received): an answer whose
  ``Content-Length`` is over it is refused before its body is read; one that runs past it (chunked,
  or a lying length) is cut off there. Either raises :class:`AnswerRefused`, which is not retried:
  the next answer would be the same.
* **No compressed answers.** The client asks for ``Accept-Encoding: identity`` (http.client's
  default, which neither urllib3 nor the ``kubernetes`` client overrides), and the API server only
  compresses for clients that ask for ``gzip``. An answer with another ``Content-Encoding`` is
  refused (:class:`AnswerRefused`) before urllib3 would inflate it: nothing is ever decompressed,
  so no small answer can inflate into gigabytes.

``Retry-After`` (:func:`retry_after`): RFC 9110 allows a number of seconds (digits only) or an
HTTP date. Anything else (``nan``, ``inf``, ``-1``, ``1.5``, garbage) is read as absent: the caller
backs off as it would without one. A longer wait than :data:`RETRY_AFTER_MAX`, a date far in the
future included, is cut to it: a server asking to wait is overloaded, and hammering it sooner would
not help; the callers' own budgets then decide whether even that wait is made.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["RETRY_AFTER_MAX", "AnswerRefused", "Bounds", "bounded", "excerpt", "install"]

#: Longest wait a ``Retry-After`` is taken at its word for, in seconds; longer ones are cut to it.
RETRY_AFTER_MAX = 60.0

# Bytes read at once where the server announced more.
_PIECE = 1 << 20

# Digits of a Retry-After beyond which it is certainly longer than RETRY_AFTER_MAX (and int() of
# thousands of digits would raise).
_RETRY_AFTER_DIGITS = 9


class AnswerRefused(Exception):
    """An answer refused for its size or its encoding.

    Deliberately not an ``OSError`` nor an ``http.client.HTTPException``: urllib3 would take
    those for a broken connection and retry; this passes through urllib3 and the client as it is.
    """


@dataclass
class Bounds:
    """The bounds of the requests made in one :func:`bounded` block."""

    deadline: float  # time.monotonic() past which no read of the socket is made
    max_bytes: int  # bytes an answer may have (status line, headers and body)
    timeout: float
    received: int = 0  # bytes of the current answer so far
    refused: str | None = None  # why an answer was refused, once it was

    def refuse(self, why: str) -> AnswerRefused:
        self.refused = why
        return AnswerRefused(why)


_local = threading.local()


@contextlib.contextmanager
def bounded(timeout: float, max_bytes: int) -> Iterator[Bounds]:
    """Requests made in this block (in this thread, on an ``ApiClient`` prepared by
    :func:`install`) end within ``timeout`` seconds of its start, with answers of at most
    ``max_bytes`` bytes each; see the module's documentation.

    Raises :class:`AnswerRefused` when an answer was refused, also when the client swallowed
    the refusal (older clients read an error's body inside a bare ``except Exception``).
    """
    bounds = Bounds(time.monotonic() + timeout, max_bytes, timeout)
    outer = getattr(_local, "bounds", None)
    _local.bounds = bounds
    try:
        yield bounds
    except AnswerRefused:
        raise
    except Exception as exc:
        if bounds.refused is not None:
            raise AnswerRefused(bounds.refused) from exc
        raise
    finally:
        _local.bounds = outer
    if bounds.refused is not None:
        raise AnswerRefused(bounds.refused)


def install(api_client: Any) -> None:
    """Make the requests of ``api_client`` (a ``kubernetes.client.ApiClient``) keep the bounds of
    the :func:`bounded` block they are made in. Outside any block they are made as before."""
    manager = api_client.rest_client.pool_manager
    manager.clear()  # pools made before would keep their plain connections
    manager.pool_classes_by_scheme = {
        scheme: _bounded_pool(pool) for scheme, pool in manager.pool_classes_by_scheme.items()
    }


def _bounded_pool(pool: type) -> type:
    """A subclass of a urllib3 connection pool class whose connections read answers through
    :class:`_BoundedResponse` (urllib3 builds its own response on top of http.client's)."""
    connection = pool.ConnectionCls  # type: ignore[attr-defined]
    if issubclass(connection.response_class, _BoundedResponse):  # installed before
        return pool
    bounded_connection = type(
        connection.__name__, (connection,), {"response_class": _BoundedResponse}
    )
    return type(pool.__name__, (pool,), {"ConnectionCls": bounded_connection})


class _BoundedResponse(http.client.HTTPResponse):
    """http.client's response, reading the socket through :class:`_SocketReader` when made within
    a :func:`bounded` block: the status line, the headers and the body, all of it."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self._bounds: Bounds | None = getattr(_local, "bounds", None)
        if self._bounds is not None:
            self._bounds.received = 0
            # The socket's own reader keeps the socket open for as long as the answer is read
            # (http.client closes a connection that will close before its body is read).
            raw = self.fp.detach()
            self.fp = io.BufferedReader(_SocketReader(raw, sock, self._bounds))

    def begin(self) -> None:
        super().begin()
        bounds = self._bounds
        if bounds is None:
            return
        encoding = (self.getheader("Content-Encoding") or "identity").strip()
        if encoding.lower() != "identity":
            raise bounds.refuse(
                f"the answer is compressed (Content-Encoding: {excerpt(encoding)}), "
                "which was not asked for"
            )
        # The body alone, against the whole limit: what was received so far may hold some of it.
        if self.length is not None and self.length > bounds.max_bytes:
            raise bounds.refuse(
                f"the answer's Content-Length of {self.length} bytes is over the limit of "
                f"{bounds.max_bytes} bytes"
            )

    def _safe_read(self, amt: int) -> bytes:
        """``amt`` bytes (a chunk's size, a Content-Length), read a piece at a time: the stdlib
        reads them with one ``read(amt)``, which allocates ``amt`` bytes before reading any, and
        a chunk size of ``ffffffffffff`` would raise a bare MemoryError or OverflowError."""
        bounds = self._bounds
        if bounds is None:
            return super()._safe_read(amt)  # type: ignore[misc, no-any-return]
        if amt > bounds.max_bytes:
            raise bounds.refuse(
                f"the answer announces {amt} bytes, over the limit of {bounds.max_bytes} bytes"
            )
        parts = []
        while amt > 0:
            part = super()._safe_read(min(amt, _PIECE))  # type: ignore[misc]
            parts.append(part)
            amt -= len(part)
        return b"".join(parts)


class _SocketReader(io.RawIOBase):
    """Reads a socket (through ``raw``, its reader) for at most what is left until the
    deadline, and at most ``max_bytes``."""

    def __init__(self, raw: Any, sock: socket.socket, bounds: Bounds) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._bounds = bounds

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        bounds = self._bounds
        left = bounds.deadline - time.monotonic()
        if left <= 0:
            # A timeout, as the socket's own would be: urllib3 makes it a ReadTimeoutError.
            raise TimeoutError(f"no complete answer within {bounds.timeout:g}s")
        self._sock.settimeout(left)
        n: int = self._raw.readinto(buffer)
        bounds.received += n
        if bounds.received > bounds.max_bytes:
            raise bounds.refuse(f"the answer is over the limit of {bounds.max_bytes} bytes")
        return n


def retry_after(headers: Any) -> float | None:
    """A ``Retry-After`` header in seconds, within 0..:data:`RETRY_AFTER_MAX`; None when absent
    or not what RFC 9110 allows (see the module's documentation)."""
    value = headers.get("Retry-After") if headers is not None else None
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if text.isascii() and text.isdigit():
        if len(text) > _RETRY_AFTER_DIGITS:
            return RETRY_AFTER_MAX
        return min(float(int(text)), RETRY_AFTER_MAX)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        seconds = (when - datetime.now(UTC)).total_seconds()
    except OverflowError:
        return RETRY_AFTER_MAX
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def excerpt(value: str | bytes, limit: int = 100) -> str:
    """``value`` for a message: decoded (bytes as UTF-8, invalid bytes replaced), cut to
    ``limit`` characters with ``...``."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value[: limit * 4]).decode("utf-8", "replace")
    return value if len(value) <= limit else value[:limit] + "..."
