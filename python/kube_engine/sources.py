"""Snapshot files: Kubernetes JSON or YAML, plain or gzip, from files, directories or stdin.

What ``kubectl get nodes,pods,pdb,pvc,pv,storageclass -A -o json`` (or ``-o yaml``) prints is a
snapshot, and so is a multi-document YAML stream of objects and lists, or a file holding one
object. Several inputs make
one snapshot: their documents are parsed together, as the pages of a live read are.

JSON is handed to the Rust core as it is (gzip included: the core decompresses without the GIL);
YAML is converted to JSON here first, since the core reads JSON only. The format is told by the
content, not the name: gzip by its magic bytes, JSON by a first character ``{`` or ``[``, anything
else is YAML -- so ``kubectl ... -o yaml > cluster.json`` still works.

One input holds at most ``max_input_bytes`` (4 GiB unless the caller or the environment variable
``KUBE_ENGINE_MAX_INPUT_BYTES`` says otherwise), counted once inflated when it is gzip: files and
standard input are read no further, gzip is inflated as a stream and no further, so neither
``/dev/zero`` nor a decompression bomb can take more memory than that.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from kube_engine import arguments
from kube_engine._core import Snapshot, SnapshotError

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "MAX_INPUT_BYTES_ENV",
    "SNAPSHOT_SUFFIXES",
    "STDIN",
    "describe_sources",
    "load_snapshot",
    "snapshot_documents",
    "snapshot_files",
]

StrPath = str | os.PathLike[str]

#: The name that stands for standard input among the sources.
STDIN = "-"
#: Files of a directory that are read as snapshots (others are skipped).
SNAPSHOT_SUFFIXES = (".json", ".json.gz", ".yaml", ".yml", ".yaml.gz", ".yml.gz")

#: The most bytes one input may hold, once inflated (the core's default too).
DEFAULT_MAX_INPUT_BYTES = 4 << 30
#: The environment variable that sets the limit for :func:`load_snapshot` (and so the CLI).
MAX_INPUT_BYTES_ENV = "KUBE_ENGINE_MAX_INPUT_BYTES"

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")
_DOCUMENT_PATH = re.compile(r"documents\[(\d+)\]\.?(.*)", re.DOTALL)
_DOCUMENT_REFERENCE = re.compile(r"documents\[(\d+)\]\.?([\w.\[\]-]*)")


@dataclass(frozen=True)
class _Document:
    """One document for the core: JSON bytes (maybe gzip), and where it came from."""

    data: bytes
    origin: str  # "cluster.yaml", "cluster.yaml, document 3", "stdin"
    wrapped: bool = False  # a lone object that was made a List of one


# --------------------------------------------------------------------------------------------------
# Public API


def load_snapshot(
    sources: Sequence[StrPath],
    *,
    strict: bool = False,
    stdin: BinaryIO | None = None,
    max_input_bytes: int | None = None,
) -> Snapshot:
    """One snapshot from files, directories and ``-`` (standard input, or ``stdin`` when given).

    A directory stands for its files ending in one of :data:`SNAPSHOT_SUFFIXES`, in name order (not
    recursive). A pod bound to a node no input has is left out (see ``Snapshot.left_out``), or with
    ``strict`` is an error. Invalid input raises :class:`kube_engine.SnapshotError` whose message
    starts with the file (and YAML document) it is in; unreadable files raise :class:`OSError`.
    An input of more than ``max_input_bytes`` (by default ``$KUBE_ENGINE_MAX_INPUT_BYTES``, else
    :data:`DEFAULT_MAX_INPUT_BYTES`), counted once inflated, is a ``SnapshotError`` too.
    """
    limit = _input_limit(max_input_bytes)
    documents = _read_all(snapshot_files(sources), stdin, limit)
    try:
        return Snapshot.from_documents(
            [d.data for d in documents], strict=strict, max_input_bytes=limit
        )
    except SnapshotError as exc:
        raise _located(exc, documents) from exc


def snapshot_files(sources: Sequence[StrPath]) -> list[str]:
    """The files ``sources`` stand for, in order: directories expanded, ``-`` kept."""
    if not sources:
        raise _error("", "no snapshot file given")
    files: list[str] = []
    for source in sources:
        name = os.fspath(source)
        if name != STDIN and os.path.isdir(name):
            files.extend(_directory_files(name))
        else:
            files.append(name)
    if files.count(STDIN) > 1:
        raise _error("", f"standard input ({STDIN}) can be read only once")
    return files


def snapshot_documents(
    data: bytes, name: str = "input", *, max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> list[bytes]:
    """The documents of one input, as the core reads them: JSON as it is, YAML converted.

    ``data`` is JSON or YAML, plain or gzip. A YAML stream gives a document per ``---`` section;
    a section holding one object (a Pod, a Node) becomes a ``List`` of one.
    """
    return [d.data for d in _documents(data, name, _input_limit(max_input_bytes))]


def describe_sources(sources: Sequence[StrPath]) -> str:
    """The sources in words, for a report's header: ``a.json, dir (3 files), stdin``."""
    parts = []
    for source in sources:
        name = os.fspath(source)
        if name == STDIN:
            parts.append("stdin")
        elif os.path.isdir(name):
            count = len(_directory_files(name))
            parts.append(f"{name} ({count} file{'' if count == 1 else 's'})")
        else:
            parts.append(name)
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------------
# Reading


def _directory_files(directory: str) -> list[str]:
    files = sorted(
        entry.name
        for entry in os.scandir(directory)
        if entry.name.endswith(SNAPSHOT_SUFFIXES) and entry.is_file()
    )
    if not files:
        patterns = ", ".join(f"*{s}" for s in SNAPSHOT_SUFFIXES)
        raise _error(directory, f"a directory with no snapshot files ({patterns})")
    return [os.path.join(directory, f) for f in files]


def _input_limit(value: int | None) -> int:
    """The limit on one input: ``value``, else the environment's, else the default."""
    if value is not None:
        return arguments.integer("max_input_bytes", value, 1, arguments.U64)
    text = os.environ.get(MAX_INPUT_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_INPUT_BYTES
    if not text.isdigit() or not 0 < int(text) <= arguments.U64:
        raise arguments.invalid(
            "max_input_bytes",
            f"{MAX_INPUT_BYTES_ENV} must be an integer in 1..{arguments.U64}, "
            f"got {arguments.shown(os.environ[MAX_INPUT_BYTES_ENV])}",
        )
    return int(text)


def _read_all(files: list[str], stdin: BinaryIO | None, limit: int) -> list[_Document]:
    documents: list[_Document] = []
    for name in files:
        if name == STDIN:
            source = stdin if stdin is not None else sys.stdin.buffer
            data = _read_bounded(source, "stdin", limit)
            documents.extend(_documents(data, "stdin", limit))
        else:
            with open(name, "rb") as f:
                data = _read_bounded(f, name, limit)
            documents.extend(_documents(data, name, limit))
    return documents


def _read_bounded(f: BinaryIO, origin: str, limit: int) -> bytes:
    """All of ``f``, refused beyond ``limit`` bytes or when it starts as no text does (so
    ``/dev/zero`` fails at once instead of filling memory)."""
    try:
        size = os.fstat(f.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        size = 0  # a stream without a file (a pipe, BytesIO): read in chunks below
    if size > limit:
        raise _too_large(origin, limit, "holds")
    chunks: list[bytes] = []
    total = 0
    if size:
        # A file of known size in one read (no copy); a file that grows meanwhile goes on below.
        chunks.append(f.read(size))
        total = len(chunks[0])
    while total <= limit and (chunk := f.read(min(_CHUNK, limit + 1 - total))):
        if not total:
            _refuse_binary(chunk, origin)
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise _too_large(origin, limit, "holds")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(origin: str, limit: int, what: str) -> SnapshotError:
    return _error(
        origin,
        f"{what} more than {limit} bytes, the limit on one input "
        f"(max_input_bytes, {MAX_INPUT_BYTES_ENV})",
    )


def _refuse_binary(head: bytes, origin: str) -> None:
    """Refuses input whose first byte that is not white space is a control character: neither
    JSON nor YAML text starts so (gzip, told by its magic bytes, is let through)."""
    if head.startswith(_GZIP_MAGIC):
        return
    end = _LEADING_SPACE.match(head)
    first = head[end.end() if end is not None else 0 :][:1]
    if first and (first[0] < 0x20 or first[0] == 0x7F):
        raise _error(origin, f"binary data, not JSON or YAML (a byte {first[0]:#04x} first)")


def _documents(data: bytes, origin: str, limit: int) -> list[_Document]:
    compressed = data.startswith(_GZIP_MAGIC)
    bom, first = _sniff(data, compressed, origin, limit)
    if first is None:
        raise _error(origin, "empty: no Kubernetes objects in it")
    if first in b"{[":
        # A byte order mark is no JSON; the rare file that has one pays for a copy.
        if compressed and bom:
            data = _inflate(data, origin, limit)
            compressed = False
        if not compressed and data.startswith(_BOM):
            data = data[len(_BOM) :]
        return [_Document(data, origin)]
    _refuse_binary(first, origin)
    text = _inflate(data, origin, limit) if compressed else data
    return _yaml_documents(text, origin)


def _sniff(data: bytes, compressed: bool, origin: str, limit: int) -> tuple[bool, bytes | None]:
    """Whether the text starts with a byte order mark, and its first byte that is neither that
    nor white space (None when there is none). Of gzip, inflates no more than it must."""
    if not compressed:
        marked = data.startswith(_BOM)
        end = _LEADING_SPACE.match(data, len(_BOM) if marked else 0)
        start = end.end() if end is not None else 0
        return marked, data[start : start + 1] or None
    head = b""
    bom: bool | None = None
    for chunk in _inflated(data, origin, limit):
        if bom is None:
            head += chunk
            if len(head) < len(_BOM):
                continue
            bom = head.startswith(_BOM)
            chunk = head[len(_BOM) :] if bom else head
        end = _LEADING_SPACE.match(chunk)
        start = end.end() if end is not None else 0
        if start < len(chunk):
            return bom, chunk[start : start + 1]
    if bom is None:  # fewer than three bytes in all
        end = _LEADING_SPACE.match(head)
        start = end.end() if end is not None else 0
        return False, head[start : start + 1] or None
    return bom, None


def _inflated(data: bytes, origin: str, limit: int) -> Iterator[bytes]:
    """The inflated bytes of gzip ``data`` (every member, as ``gzip.decompress`` reads them), a
    chunk at a time; refused once they pass ``limit``."""
    total = 0
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        pending = rest
        while not inflater.eof:
            try:
                out = inflater.decompress(pending, _CHUNK)
            except zlib.error as exc:
                raise _error(origin, f"invalid gzip data: {exc}") from exc
            if not out and inflater.unconsumed_tail == pending and not inflater.eof:
                raise _error(origin, "invalid gzip data: the compressed data ends too soon")
            pending = inflater.unconsumed_tail
            total += len(out)
            if total > limit:
                raise _too_large(origin, limit, "inflates to")
            if out:
                yield out
        # Members may be followed by zeros (gzip pads so), then another member or nothing.
        rest = inflater.unused_data.lstrip(b"\0")
        if rest and not rest.startswith(_GZIP_MAGIC):
            raise _error(origin, "invalid gzip data: not a gzip member after the end of one")


def _inflate(data: bytes, origin: str, limit: int) -> bytes:
    return b"".join(_inflated(data, origin, limit))


# --------------------------------------------------------------------------------------------------
# YAML


def _yaml_documents(text: bytes, origin: str) -> list[_Document]:
    import yaml

    try:
        loaded = [d for d in yaml.load_all(text, Loader=yaml_loader()) if d is not None]
    except yaml.YAMLError as exc:
        raise _error(origin, f"invalid YAML (nor JSON): {exc}") from exc
    if not loaded:
        raise _error(origin, "empty: no Kubernetes objects in it")
    _refuse_alias_bombs(loaded, len(text), origin)
    documents = []
    for k, doc in enumerate(loaded, start=1):
        where = f"{origin}, document {k}" if len(loaded) > 1 else origin
        if not isinstance(doc, dict):
            kind = "list" if isinstance(doc, list) else type(doc).__name__
            raise _error(where, f"not a Kubernetes object or list (a YAML {kind})")
        wrapped = "items" not in doc and not str(doc.get("kind", "")).endswith("List")
        if wrapped:
            doc = {"apiVersion": "v1", "kind": "List", "items": [doc]}
        try:
            data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise _error(where, f"a value JSON cannot hold: {exc}") from exc
        documents.append(_Document(data.encode(), where, wrapped))
    return documents


def _refuse_alias_bombs(loaded: list[Any], size: int, origin: str) -> None:
    """Refuses YAML whose aliases expand it far beyond its own size ("billion laughs": a
    kilobyte that stands for gigabytes of JSON), with a budget proportional to the text, as
    go-yaml (which kubectl uses) refuses "excessive aliasing"."""
    if not values_within(loaded, 10 * size + 10_000):
        raise _error(origin, "invalid YAML: its aliases expand it excessively")


def values_within(values: list[Any], budget: int) -> bool:
    """Whether ``values`` hold at most ``budget`` values (mappings, lists, keys and scalars)
    written out as JSON would be. The YAML loader shares an aliased value rather than copying
    it, so the expansion would happen in the conversion to JSON: the values are counted first,
    an alias once per use, stopping at the budget (a mapping or list that holds itself, a
    recursive alias, never ends, so it stops there too)."""
    stack = list(values)
    while stack:
        value = stack.pop()
        budget -= 1
        if budget < 0:
            return False
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


# Plain scalars are typed as the API server and kubectl type them (sigs.k8s.io/yaml, go-yaml v2):
# YAML 1.1 as PyYAML has it, but with no base-60 numbers ("12:30" stays a string: kubectl writes
# such annotation values unquoted), exponents without a dot or sign (1e3 is a number, as in JSON),
# no timestamps (the RFC 3339 text Kubernetes wrote stays text; a datetime is no JSON) and no "="
# value tag.
_TAG = "tag:yaml.org,2002:"
_INT = re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
)
_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


@functools.cache
def yaml_loader() -> Any:
    """PyYAML's safe loader (libyaml's when built in: several times faster), typing scalars as
    Kubernetes does."""
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc]
        pass

    replaced = {_TAG + t for t in ("int", "float", "timestamp", "value")}
    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in replaced]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(_TAG + "float", _FLOAT, list("-+0123456789."))
    Loader.add_implicit_resolver(_TAG + "int", _INT, list("-+0123456789"))
    # An explicit !!timestamp too stays the text it was.
    Loader.add_constructor(_TAG + "timestamp", Loader.construct_yaml_str)
    return Loader


# --------------------------------------------------------------------------------------------------
# Errors


def _error(origin: str, message: str, path: str = "") -> SnapshotError:
    where = ": ".join(p for p in (origin, path) if p)
    err = SnapshotError(f"{where}: {message}" if where else message)
    err.path = path
    err.message = message
    return err


def _located(exc: SnapshotError, documents: list[_Document]) -> SnapshotError:
    """The core's error, its ``documents[d]`` paths (in the path and in the message, which may
    point at another document) turned into files and YAML documents."""
    path = getattr(exc, "path", "")
    message = getattr(exc, "message", str(exc))
    if len(documents) == 1:
        document, rest = documents[0], path
    else:
        match = _DOCUMENT_PATH.fullmatch(path)
        if match is None or int(match.group(1)) >= len(documents):
            return exc
        document, rest = documents[int(match.group(1))], match.group(2)

        def where(m: re.Match[str]) -> str:
            d = int(m.group(1))
            if d >= len(documents):
                return m.group(0)
            return ": ".join(
                p for p in (documents[d].origin, _inner(documents[d], m.group(2))) if p
            )

        message = _DOCUMENT_REFERENCE.sub(where, message)
    return _error(document.origin, message, _inner(document, rest))


def _inner(document: _Document, path: str) -> str:
    """A path in ``document`` as its user sees it: a lone object is the document, not the
    ``items[0]`` of the List it was wrapped in."""
    return re.sub(r"^items\[0\]\.?", "", path) if document.wrapped else path
