"""Snapshot files: Kubernetes JSON or YAML, plain or gzip, from files, directories or stdin.

What ``kubectl get nodes,pods,pdb,pvc,pv,storageclass -A -o json`` (or ``-o yaml``) prints is a
snapshot, and so is a multi-document YAML stream of objects and lists, or a file holding one
object. Several inputs make
one snapshot: their documents are parsed together, as the pages of a live read are.

JSON is handed to the Rust core as it is (gzip included: the core decompresses without the GIL);
YAML is converted to JSON here first, since the core reads JSON only. The format is told by the
content, not the name: gzip by its magic bytes, JSON by a first character ``{`` or ``[``, anything
else is YAML -- so ``kubectl ... -o yaml > cluster.json`` still works.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kube_engine._core import Snapshot, SnapshotError

__all__ = [
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

_GZIP_MAGIC = b"\x1f\x8b"
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
    sources: Sequence[StrPath], *, strict: bool = False, stdin: BinaryIO | None = None
) -> Snapshot:
    """One snapshot from files, directories and ``-`` (standard input, or ``stdin`` when given).

    A directory stands for its files ending in one of :data:`SNAPSHOT_SUFFIXES`, in name order (not
    recursive). A pod bound to a node no input has is left out (see ``Snapshot.left_out``), or with
    ``strict`` is an error. Invalid input raises :class:`kube_engine.SnapshotError` whose message
    starts with the file (and YAML document) it is in; unreadable files raise :class:`OSError`.
    """
    documents = _read_all(snapshot_files(sources), stdin)
    try:
        return Snapshot.from_documents([d.data for d in documents], strict=strict)
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


def snapshot_documents(data: bytes, name: str = "input") -> list[bytes]:
    """The documents of one input, as the core reads them: JSON as it is, YAML converted.

    ``data`` is JSON or YAML, plain or gzip. A YAML stream gives a document per ``---`` section;
    a section holding one object (a Pod, a Node) becomes a ``List`` of one.
    """
    return [d.data for d in _documents(data, name)]


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


def _read_all(files: list[str], stdin: BinaryIO | None) -> list[_Document]:
    documents: list[_Document] = []
    for name in files:
        if name == STDIN:
            data = (stdin if stdin is not None else sys.stdin.buffer).read()
            documents.extend(_documents(data, "stdin"))
        else:
            documents.extend(_documents(Path(name).read_bytes(), name))
    return documents


def _documents(data: bytes, origin: str) -> list[_Document]:
    compressed = data.startswith(_GZIP_MAGIC)
    first = _first_byte(data, compressed, origin)
    if first is None:
        raise _error(origin, "empty: no Kubernetes objects in it")
    if first in b"{[":
        # A byte order mark is no JSON; the rare file that has one pays for a copy.
        if compressed and _head(data, len(_BOM), origin) == _BOM:
            data = _decompress(data, origin)
            compressed = False
        if not compressed and data.startswith(_BOM):
            data = data[len(_BOM) :]
        return [_Document(data, origin)]
    text = _decompress(data, origin) if compressed else data
    return _yaml_documents(text, origin)


def _first_byte(data: bytes, compressed: bool, origin: str) -> bytes | None:
    """The first byte that is not white space (nor a byte order mark); None when there is none."""
    size = 4096
    while True:
        head = _head(data, size, origin) if compressed else data
        if head.startswith(_BOM):
            head = head[len(_BOM) :]
        end = _LEADING_SPACE.match(head)
        start = end.end() if end is not None else 0
        if start < len(head):
            return head[start : start + 1]
        if not compressed or len(head) < size:
            return None
        size *= 16


def _head(data: bytes, size: int, origin: str) -> bytes:
    """The first ``size`` bytes of gzip ``data``, decompressed (fewer when it is shorter)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            return f.read(size)
    except (OSError, EOFError) as exc:
        raise _error(origin, f"invalid gzip data: {exc}") from exc


def _decompress(data: bytes, origin: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise _error(origin, f"invalid gzip data: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# YAML


def _yaml_documents(text: bytes, origin: str) -> list[_Document]:
    import yaml

    try:
        loaded = [d for d in yaml.load_all(text, Loader=_yaml_loader()) if d is not None]
    except yaml.YAMLError as exc:
        raise _error(origin, f"invalid YAML (nor JSON): {exc}") from exc
    if not loaded:
        raise _error(origin, "empty: no Kubernetes objects in it")
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
def _yaml_loader() -> Any:
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
