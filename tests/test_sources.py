"""Snapshot files: JSON and YAML, plain and gzip, several files, directories and stdin."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import node, pod
from kube_engine import Snapshot, SnapshotError, sources
from kube_engine.sources import (
    describe_sources,
    load_snapshot,
    snapshot_documents,
    snapshot_files,
)


def pdb(name: str, app: str) -> dict[str, Any]:
    return {
        "kind": "PodDisruptionBudget",
        "apiVersion": "policy/v1",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}},
    }


def cluster_list() -> dict[str, Any]:
    return {
        "kind": "List",
        "apiVersion": "v1",
        "items": [
            node("n1", cpu="4", memory="16Gi"),
            node("g1", gpus=2, model="T4"),
            pod("a", "n1", requests={"cpu": "1500m", "memory": "1Gi"}, labels={"app": "web"}),
            pod("b", "g1", requests={"nvidia.com/gpu": "1"}),
            pod("p", requests={"cpu": "250m"}),
            pdb("web", "web"),
        ],
    }


def summary(s: Snapshot) -> dict[str, Any]:
    """Everything a test compares between two snapshots that should be the same cluster."""
    return {
        "nodes": s.node_names(),
        "pods": s.pod_names(),
        "bound": s.pod_nodes(),
        "phases": s.pod_phases(),
        "requests": {p: s.pod_request(p) for p in s.pod_names()},
        "allocatable": {n: s.node_allocatable(n) for n in s.node_names()},
        "pdbs": s.num_pdbs,
        "left_out": s.left_out,
    }


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[list[bytes]]:
    """The documents handed to the core, call by call."""
    calls: list[list[bytes]] = []
    real = Snapshot.from_documents

    class Recording:
        @staticmethod
        def from_documents(
            docs: list[bytes], *, strict: bool = False, max_input_bytes: int | None = None
        ) -> Snapshot:
            calls.append(list(docs))
            return real(docs, strict=strict, max_input_bytes=max_input_bytes)

    monkeypatch.setattr(sources, "Snapshot", Recording)
    return calls


# --------------------------------------------------------------------------------------------------
# Formats


def test_yaml_list_reads_as_its_json(tmp_path: Path) -> None:
    doc = cluster_list()
    (tmp_path / "c.json").write_text(json.dumps(doc))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))

    from_json = load_snapshot([tmp_path / "c.json"])
    from_yaml = load_snapshot([tmp_path / "c.yaml"])

    assert summary(from_yaml) == summary(from_json)
    assert from_yaml.num_nodes == 2 and from_yaml.num_pods == 3 and from_yaml.num_pdbs == 1
    assert from_yaml.pod_request("default/a")["resources"]["cpu"] == 1500


KUBECTL_YAML = """\
apiVersion: v1
items:
- apiVersion: v1
  kind: Node
  metadata:
    creationTimestamp: "2024-05-01T10:00:00Z"
    labels:
      kubernetes.io/hostname: n1
    name: n1
    resourceVersion: "4711"
  spec: {}
  status:
    allocatable:
      cpu: "8"
      memory: 32Gi
      pods: "110"
- apiVersion: v1
  kind: Pod
  metadata:
    annotations:
      backup-window: 12:30
    creationTimestamp: 2024-05-01T10:01:02Z
    name: web-0
    namespace: shop
  spec:
    containers:
    - image: nginx:1.25
      name: web
      resources:
        requests:
          cpu: 1
          memory: 1e3
          ephemeral-storage: 0.5
    nodeName: n1
  status:
    phase: Running
    startTime: 2024-05-01
kind: List
metadata:
  resourceVersion: ""
"""


def test_kubectl_yaml_with_unquoted_numbers_timestamps_and_times(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(KUBECTL_YAML)

    (document,) = snapshot_documents(path.read_bytes())
    items = json.loads(document)["items"]
    pod_meta = items[1]["metadata"]
    # Timestamps stay the text Kubernetes wrote; "12:30" is no base-60 number.
    assert pod_meta["creationTimestamp"] == "2024-05-01T10:01:02Z"
    assert items[1]["status"]["startTime"] == "2024-05-01"
    assert pod_meta["annotations"] == {"backup-window": "12:30"}
    # Numbers are what JSON would have: 1, 1e3 (1000), 0.5.
    assert items[1]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": 1,
        "memory": 1000,
        "ephemeral-storage": 0.5,
    }

    snap = load_snapshot([path])
    assert snap.pod_nodes() == ["n1"]
    quoted = json.loads(document)
    quoted["items"][1]["spec"]["containers"][0]["resources"]["requests"] = {
        "cpu": "1",
        "memory": "1k",
        "ephemeral-storage": "500m",
    }
    assert summary(snap) == summary(Snapshot.from_bytes(json.dumps(quoted).encode()))
    assert snap.pod_request("shop/web-0")["resources"]["cpu"] == 1000


def test_multi_document_yaml_stream_of_objects_and_lists(tmp_path: Path) -> None:
    doc = cluster_list()
    node_list = {"kind": "NodeList", "apiVersion": "v1", "items": doc["items"][:2]}
    stream = "---\n".join(
        [
            "# exported by hand\n",  # an empty document: skipped
            yaml.safe_dump(node_list),
            *(yaml.safe_dump(item) for item in doc["items"][2:]),
        ]
    )
    path = tmp_path / "stream.yml"
    path.write_text(stream)

    documents = snapshot_documents(path.read_bytes())
    assert [json.loads(d)["kind"] for d in documents] == ["NodeList"] + ["List"] * 4
    assert summary(load_snapshot([path])) == summary(Snapshot.from_bytes(json.dumps(doc).encode()))


def test_files_holding_one_object_each(tmp_path: Path) -> None:
    (tmp_path / "node.yaml").write_text(yaml.safe_dump(node("n1")))
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod("a", "n1", requests={"cpu": "1"})))

    snap = load_snapshot([tmp_path / "pod.yaml", tmp_path / "node.yaml"])

    assert snap.node_names() == ["n1"]
    assert snap.pod_nodes() == ["n1"]  # bound: the node came from another file
    assert snap.left_out == []


def test_format_is_told_by_content_not_name(tmp_path: Path, recorded: list[list[bytes]]) -> None:
    doc = cluster_list()
    as_json = json.dumps(doc).encode()
    files = {
        "yaml-named.json": yaml.safe_dump(doc).encode(),
        "json-named.yaml": b"\n  \t" + as_json,
        "gzip-yaml-named.txt": gzip.compress(yaml.safe_dump(doc).encode()),
        "gzip-json.json.gz": gzip.compress(as_json),
    }
    expected = summary(Snapshot.from_bytes(as_json))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        assert summary(load_snapshot([tmp_path / name])) == expected, name

    handed = [docs[0] for docs in recorded]
    # JSON reaches the core as it is, gzip included; YAML as the JSON made of it.
    assert handed[1] == files["json-named.yaml"]
    assert handed[3] == files["gzip-json.json.gz"]
    assert json.loads(handed[0]) == json.loads(handed[2]) == doc


def test_a_byte_order_mark_is_no_obstacle(tmp_path: Path) -> None:
    doc = cluster_list()
    expected = summary(Snapshot.from_bytes(json.dumps(doc).encode()))
    for i, data in enumerate(
        [
            b"\xef\xbb\xbf" + json.dumps(doc).encode(),
            gzip.compress(b"\xef\xbb\xbf" + json.dumps(doc).encode()),
            b"\xef\xbb\xbf" + yaml.safe_dump(doc).encode(),
        ]
    ):
        (tmp_path / f"{i}").write_bytes(data)
        assert summary(load_snapshot([tmp_path / f"{i}"])) == expected


# --------------------------------------------------------------------------------------------------
# Several sources


def test_several_files_make_one_snapshot(tmp_path: Path, recorded: list[list[bytes]]) -> None:
    doc = cluster_list()
    nodes = {"kind": "List", "apiVersion": "v1", "items": doc["items"][:2]}
    rest = {"kind": "List", "apiVersion": "v1", "items": doc["items"][2:]}
    (tmp_path / "nodes.json").write_text(json.dumps(nodes))
    (tmp_path / "rest.yaml").write_text(yaml.safe_dump(rest))

    snap = load_snapshot([str(tmp_path / "nodes.json"), tmp_path / "rest.yaml"])

    assert summary(snap) == summary(Snapshot.from_bytes(json.dumps(doc).encode()))
    (docs,) = recorded
    assert len(docs) == 2  # one parse of all the documents together


def test_a_directory_is_its_snapshot_files_in_name_order(
    tmp_path: Path, recorded: list[list[bytes]]
) -> None:
    d = tmp_path / "snap"
    (d / "nested").mkdir(parents=True)
    (d / "b-pods.yaml").write_text(yaml.safe_dump(pod("x", "n1")))
    (d / "a-node.json").write_text(json.dumps({"kind": "List", "items": [node("n1")]}))
    (d / "c-more.yml").write_text(yaml.safe_dump(pod("y")))
    (d / "d.json.gz").write_bytes(
        gzip.compress(json.dumps({"kind": "PodList", "items": [pod("z", "n1")]}).encode())
    )
    (d / "e.yaml.gz").write_bytes(gzip.compress(yaml.safe_dump(pod("w", "n1")).encode()))
    (d / "notes.txt").write_text("not a snapshot")
    (d / "nested" / "deeper.json").write_text("{not even json")  # not recursive

    assert snapshot_files([d]) == [
        str(d / name)
        for name in ["a-node.json", "b-pods.yaml", "c-more.yml", "d.json.gz", "e.yaml.gz"]
    ]
    snap = load_snapshot([d])

    assert snap.node_names() == ["n1"]
    assert snap.pod_names() == ["default/x", "default/y", "default/z", "default/w"]
    assert describe_sources([d]) == f"{d} (5 files)"
    assert len(recorded[0]) == 5


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("nothing here")
    with pytest.raises(SnapshotError, match=r"a directory with no snapshot files \(\*\.json"):
        load_snapshot([tmp_path])


def test_stdin_json_yaml_and_gzip() -> None:
    doc = cluster_list()
    expected = summary(Snapshot.from_bytes(json.dumps(doc).encode()))
    for data in [
        json.dumps(doc).encode(),
        yaml.safe_dump(doc).encode(),
        gzip.compress(yaml.safe_dump(doc).encode()),
    ]:
        assert summary(load_snapshot(["-"], stdin=io.BytesIO(data))) == expected
    assert describe_sources(["-"]) == "stdin"


def test_stdin_together_with_a_file_but_only_once(tmp_path: Path) -> None:
    (tmp_path / "node.yaml").write_text(yaml.safe_dump(node("n1")))
    stdin = io.BytesIO(yaml.safe_dump(pod("a", "n1")).encode())
    snap = load_snapshot([tmp_path / "node.yaml", "-"], stdin=stdin)
    assert snap.pod_nodes() == ["n1"]
    assert describe_sources([tmp_path / "node.yaml", "-"]) == f"{tmp_path / 'node.yaml'}, stdin"
    with pytest.raises(SnapshotError, match="read only once"):
        load_snapshot(["-", "-"], stdin=io.BytesIO(b""))


# --------------------------------------------------------------------------------------------------
# Pods on nodes no input has


def test_pods_on_missing_nodes_are_left_out_across_files_unless_strict(tmp_path: Path) -> None:
    (tmp_path / "nodes.yaml").write_text(yaml.safe_dump(node("n1")))
    (tmp_path / "pods.yaml").write_text(
        "---\n".join(yaml.safe_dump(p) for p in [pod("a", "n1"), pod("b", "n9"), pod("c")])
    )
    files = [tmp_path / "nodes.yaml", tmp_path / "pods.yaml"]

    snap = load_snapshot(files)
    assert snap.pod_names() == ["default/a", "default/c"]
    assert snap.left_out == [("default/b", "n9")]

    with pytest.raises(SnapshotError) as err:
        load_snapshot(files, strict=True)
    assert str(err.value).startswith(f"{tmp_path / 'pods.yaml'}, document 2: spec.nodeName: ")
    assert 'pod "default/b" is bound to unknown node "n9"' in str(err.value)


# --------------------------------------------------------------------------------------------------
# Errors say where


def test_errors_name_the_file_and_yaml_document(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(cluster_list()))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text(json.dumps({"kind": "List", "items": [pod("x", requests={"cpu": "1x"})]}))
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(
        yaml.safe_dump(node("n2")) + "---\n" + yaml.safe_dump(pod("y", requests={"cpu": "2y"}))
    )

    with pytest.raises(SnapshotError) as err:
        load_snapshot([good, bad_json])
    assert str(err.value).startswith(
        f'{bad_json}: items[0].spec.containers[0].resources.requests.cpu: invalid quantity "1x"'
    )
    assert err.value.path == "items[0].spec.containers[0].resources.requests.cpu"

    with pytest.raises(SnapshotError) as err:
        load_snapshot([good, bad_yaml])
    # The object is the document: no items[0] of the List it was wrapped in.
    assert str(err.value).startswith(
        f'{bad_yaml}, document 2: spec.containers[0].resources.requests.cpu: invalid quantity "2y"'
    )

    with pytest.raises(SnapshotError) as err:
        load_snapshot([bad_json])
    assert str(err.value).startswith(f"{bad_json}: items[0].spec")


def test_an_error_pointing_at_another_document_names_its_file(tmp_path: Path) -> None:
    first = tmp_path / "node.yaml"
    first.write_text(yaml.safe_dump(node("n1")))
    second = tmp_path / "all.json"
    second.write_text(json.dumps(cluster_list()))

    with pytest.raises(SnapshotError) as err:
        load_snapshot([first, second])
    assert str(err.value) == (
        f'{second}: items[0].metadata.name: duplicate node "n1" (first at {first})'
    )
    with pytest.raises(SnapshotError) as err:
        load_snapshot([second, first])
    assert str(err.value) == (
        f'{first}: metadata.name: duplicate node "n1" (first at {second}: items[0])'
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty: no Kubernetes objects in it"),
        (b" \n\t\n", "empty: no Kubernetes objects in it"),
        (b"# only a comment\n---\n", "empty: no Kubernetes objects in it"),
        (gzip.compress(b""), "empty: no Kubernetes objects in it"),
        (b"\x1f\x8bnot really gzip", "invalid gzip data"),
        (b"kind: List\nitems: [\n", "invalid YAML (nor JSON)"),
        (b"- kind: Pod\n", "not a Kubernetes object or list (a YAML list)"),
        (b"kind: Node\nmetadata: {name: n}\nstatus: {allocatable: {cpu: .inf}}\n", "JSON cannot"),
        (b"just words\n", "not a Kubernetes object or list (a YAML str)"),
        (b'{"kind": "List", "items": [', "malformed JSON"),
    ],
)
def test_bad_input_is_a_snapshot_error_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    with pytest.raises(SnapshotError) as err:
        load_snapshot([path])
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_snapshot([tmp_path / "missing.json"])
    with pytest.raises(SnapshotError, match="no snapshot file given"):
        load_snapshot([])
