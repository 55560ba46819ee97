"""Hostile input at ingestion: parsing stays linear in the input, and no input -- a
decompression bomb, ``/dev/zero``, a document past the limit -- is read further than the limit
on one input (issue 20, items 2 and 3)."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kube_engine import InvalidArgumentError, Snapshot, SnapshotError
from kube_engine.sources import (
    DEFAULT_MAX_INPUT_BYTES,
    MAX_INPUT_BYTES_ENV,
    load_snapshot,
)


def listed(*items: dict[str, Any]) -> bytes:
    return json.dumps({"kind": "List", "apiVersion": "v1", "items": list(items)}).encode()


def node(**extra: Any) -> dict[str, Any]:
    n: dict[str, Any] = {
        "kind": "Node",
        "metadata": {"name": "n0"},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
    }
    return n | extra


def pod(containers: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": containers or [{"name": "c"}], **spec},
    }


# Every part of an object whose size the input chooses, at n entries.
SHAPES: dict[str, Callable[[int], bytes]] = {
    "labels": lambda n: listed(
        node(metadata={"name": "n0", "labels": {f"k{i}": "v" for i in range(n)}})
    ),
    "annotations": lambda n: listed(
        pod()
        | {
            "metadata": {
                "name": "p",
                "namespace": "d",
                "annotations": {f"k{i}": "v" for i in range(n)},
            }
        }
    ),
    "taints": lambda n: listed(
        node(spec={"taints": [{"key": f"k{i}", "effect": "NoSchedule"} for i in range(n)]})
    ),
    "tolerations": lambda n: listed(
        pod(tolerations=[{"key": f"k{i}", "operator": "Exists"} for i in range(n)])
    ),
    "containers": lambda n: listed(
        pod(
            [
                {"name": f"c{i}", "resources": {"requests": {f"example.com/r{i}": "1"}}}
                for i in range(n)
            ]
        )
    ),
    "sidecars": lambda n: listed(
        pod(
            initContainers=[
                {
                    "name": f"i{i}",
                    "restartPolicy": "Always",
                    "resources": {"requests": {f"example.com/r{i}": "1"}},
                }
                for i in range(n)
            ]
        )
    ),
    "requests and limits": lambda n: listed(
        pod(
            [
                {
                    "name": "c",
                    "resources": {
                        "requests": {f"example.com/r{i}": "1" for i in range(n)},
                        "limits": {f"example.com/r{i}": "1" for i in range(n)},
                    },
                }
            ]
        )
    ),
    "allocatable": lambda n: listed(
        node(status={"allocatable": {f"example.com/r{i}": "1" for i in range(n)}})
    ),
}


def fastest_parse(data: bytes) -> float:
    """The best of three parses, or of three refusals: past 256 resource names the snapshot is
    refused, but only once every object was read, which must be linear too."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        with contextlib.suppress(SnapshotError):
            Snapshot.from_bytes(data)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("shape", list(SHAPES))
def test_parsing_is_linear_in_the_input(shape: str) -> None:
    # Ten times the entries may take ten times as long, and with noise a few times more; a
    # quadratic step takes a hundred times as long (100,000 labels took 10 s). No absolute time
    # is asserted.
    small, large = SHAPES[shape](2_000), SHAPES[shape](20_000)
    ratio = fastest_parse(large) / max(fastest_parse(small), 1e-4)
    assert ratio < 40, f"{shape}: 10x the entries took {ratio:.0f}x as long"


# --------------------------------------------------------------------------------------------------
# Decompression bombs and endless input


def zeros_gzip(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed, made a chunk at a time."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [z.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(parts) + z.flush()


# The peak is read from VmHWM: ru_maxrss would count the forking test process too (Linux keeps
# it across exec).
BOMB_SCRIPT = """
import re, sys
from pathlib import Path
from kube_engine import Snapshot, SnapshotError
from kube_engine.sources import load_snapshot
read = Snapshot.from_file if sys.argv[1] == "core" else lambda p: load_snapshot([p])
try:
    read(sys.argv[2])
except SnapshotError as e:
    peak = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())
    print(int(peak.group(1)) // 1024, e)
"""


@pytest.mark.parametrize("reader", ["core", "sources"])
def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path: Path, reader: str) -> None:
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(zeros_gzip(512 << 20))
    assert bomb.stat().st_size < 1 << 20
    done = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, reader, str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    peak_mib, _, message = done.stdout.partition(" ")
    assert "0x00" in message and str(bomb) in message
    assert int(peak_mib) < 256, f"{peak_mib} MiB to refuse a 512 MiB bomb"


def test_inflated_and_plain_input_past_the_limit(tmp_path: Path) -> None:
    doc = listed(node(metadata={"name": "n0", "labels": {f"k{i}": "v" for i in range(50)}}))
    plain, packed = tmp_path / "c.json", tmp_path / "c.json.gz"
    plain.write_bytes(doc)
    packed.write_bytes(gzip.compress(doc))
    small = packed.stat().st_size  # the file passes, its JSON does not
    assert small < len(doc) // 2
    for path in (plain, packed):
        assert load_snapshot([path], max_input_bytes=len(doc)).num_nodes == 1
        assert Snapshot.from_file(path, max_input_bytes=len(doc)).num_nodes == 1
    with pytest.raises(SnapshotError, match=rf"^{plain}: holds more than {len(doc) - 1} bytes"):
        load_snapshot([plain], max_input_bytes=len(doc) - 1)
    with pytest.raises(SnapshotError, match=rf"^{packed}: inflates to more than {small} bytes"):
        load_snapshot([packed], max_input_bytes=small)
    with pytest.raises(SnapshotError, match=rf"^{packed}: inflates to more than {small} bytes"):
        Snapshot.from_file(packed, max_input_bytes=small)
    with pytest.raises(SnapshotError, match=rf"^{packed}: holds more than 10 bytes"):
        Snapshot.from_file(packed, max_input_bytes=10)
    with pytest.raises(SnapshotError, match="^holds more than 10 bytes"):
        Snapshot.from_bytes(doc, max_input_bytes=10)
    # YAML is inflated in Python, under the same limit.
    yaml_gz = tmp_path / "c.yaml.gz"
    yaml_gz.write_bytes(gzip.compress(b"kind: List\nitems: []\n" + b"#" * 1000 + b"\n"))
    with pytest.raises(SnapshotError, match=rf"^{yaml_gz}: inflates to more than 100 bytes"):
        load_snapshot([yaml_gz], max_input_bytes=100)


def test_the_limit_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(listed(node()))
    monkeypatch.setenv(MAX_INPUT_BYTES_ENV, "20")
    with pytest.raises(SnapshotError, match="holds more than 20 bytes"):
        load_snapshot([path])
    monkeypatch.setenv(MAX_INPUT_BYTES_ENV, "lots")
    with pytest.raises(InvalidArgumentError, match="KUBE_ENGINE_MAX_INPUT_BYTES must be"):
        load_snapshot([path])
    monkeypatch.delenv(MAX_INPUT_BYTES_ENV)
    assert load_snapshot([path]).num_nodes == 1
    assert DEFAULT_MAX_INPUT_BYTES == 4 << 30


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, 2**70, "10"])
def test_the_limit_must_be_a_positive_integer(tmp_path: Path, bad: Any) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(listed(node()))
    with pytest.raises(
        InvalidArgumentError, match=r"max_input_bytes must be an integer in 1\.\.\d+, got"
    ):
        load_snapshot([path], max_input_bytes=bad)
    with pytest.raises(
        InvalidArgumentError, match=r"max_input_bytes must be an integer in 1\.\.\d+, got"
    ):
        Snapshot.from_bytes(listed(node()), max_input_bytes=bad)


def test_endless_and_binary_input_is_refused_at_once() -> None:
    start = time.perf_counter()
    with pytest.raises(SnapshotError, match="^/dev/zero: binary data, not JSON or YAML"):
        load_snapshot(["/dev/zero"])
    assert time.perf_counter() - start < 30  # not 4 GiB read first
    with pytest.raises(SnapshotError, match="^/dev/zero: malformed JSON: the file starts with"):
        Snapshot.from_file("/dev/zero")
    assert time.perf_counter() - start < 30
    with pytest.raises(SnapshotError, match="^stdin: binary data"):
        load_snapshot(["-"], stdin=io.BytesIO(b"\x00\x01" * 1000))


def test_gzip_members_and_damage() -> None:
    doc = listed(node())
    half = len(doc) // 2
    two_members = gzip.compress(doc[:half]) + gzip.compress(doc[half:])
    # gzip pads with zeros; Python's reader (YAML's) skips them, as gzip.decompress does.
    padded = gzip.compress(b"kind: List\nitems: []\n") + bytes(16)
    for data in (two_members,):
        assert load_snapshot(["-"], stdin=io.BytesIO(data)).num_nodes == 1
    assert load_snapshot(["-"], stdin=io.BytesIO(padded)).num_nodes == 0
    truncated = gzip.compress(b"kind: List\nitems: []\n" * 100)[:-30]
    with pytest.raises(SnapshotError, match="invalid gzip data"):
        load_snapshot(["-"], stdin=io.BytesIO(truncated))


def test_a_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    # Nine levels of ten aliases: a few hundred bytes standing for 10^9 strings.
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("kind: List\nitems: []\n" + "\n".join(lines) + "\n")
    assert bomb.stat().st_size < 1000
    start = time.perf_counter()
    with pytest.raises(SnapshotError, match="aliases expand it excessively"):
        load_snapshot([bomb])
    assert time.perf_counter() - start < 30
    # An alias or two, as people write them, is fine.
    fine = tmp_path / "fine.yaml"
    fine.write_text(
        "kind: List\nitems:\n"
        "- kind: Node\n  metadata: {name: n1, labels: &l {zone: a}}\n"
        "- kind: Node\n  metadata: {name: n2, labels: *l}\n"
    )
    assert load_snapshot([fine]).num_nodes == 2
