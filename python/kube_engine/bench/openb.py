"""The openb trace (Alibaba cluster-trace-gpu-v2023) as Kubernetes objects.

`openb_cluster(node_csv, pod_csv, seed)` converts the trace's node list and one of its pod lists
into a Kubernetes `List` (Nodes, then Pods), following ``docs/encoding.md``:

- a node gets allocatable `cpu` (milli), `memory` (`memory_mib` → `Mi`), `pods` and
  `nvidia.com/gpu` (its GPU count), and the label `nvidia.com/gpu.product` (its GPU model);
- a pod lives in namespace `openb` and requests `cpu` (`Nm`) and `memory` (`Mi`), plus
  `nvidia.com/gpu: k` for k whole GPUs or `kube-engine.io/gpu-milli: m` for a share of one GPU
  (`num_gpu` = 1, `gpu_milli` < 1000); `gpu_spec` "A|B" becomes the required node affinity
  `nvidia.com/gpu.product In [A, B]`; `qos` is kept as the label `kube-engine.io/qos`;
  `creation_time` (seconds) becomes `creationTimestamp` (from 2023-01-01T00:00:00Z);
- `Running` pods, in trace order, are placed by the core's seeded random fit
  (:mod:`kube_engine.bench.placing`: a node drawn uniformly among those the default filters
  allow), recorded in `spec.nodeName` and `kube-engine.io/gpu-devices`; a Running pod that fits
  nowhere becomes Pending with kube-scheduler's message; `Pending` pods stay unbound;
  `Succeeded`/`Failed` pods keep a node they could have run on and hold nothing.
  Pod lists without `pod_phase` (the multigpu* lists) are all Pending.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kube_engine.bench import objects as k
from kube_engine.bench.objects import ContainerSpec, JsonDict, PodStatusInfo
from kube_engine.bench.placing import could_run, document, random_fit

__all__ = [
    "DEFAULT_POD_LIST",
    "EPOCH",
    "NAMESPACE",
    "NODE_LIST",
    "QOS_LABEL",
    "find_openb_dir",
    "openb_cluster",
]

NODE_LIST = "openb_node_list_all_node.csv"
DEFAULT_POD_LIST = "openb_pod_list_default.csv"
NAMESPACE = "openb"
QOS_LABEL = "kube-engine.io/qos"
DELETION_TIME_ANNOTATION = "kube-engine.io/openb-deletion-time"
EPOCH = k.epoch("2023-01-01T00:00:00Z")
"""Time 0 of the trace's creation/scheduled/deletion times."""
IMAGE = "openb/task:trace"
"""Placeholder image: the trace does not say what ran."""


def find_openb_dir() -> Path | None:
    """Where the openb CSVs are: `$KUBE_ENGINE_OPENB_DIR` (a folder with the trace's CSVs, as
    published at github.com/alibaba/clusterdata, cluster-trace-gpu-v2023); None when it is unset
    or has none."""
    env = os.environ.get("KUBE_ENGINE_OPENB_DIR")
    return Path(env) if env and (Path(env) / NODE_LIST).is_file() else None


def _resolve(path: str | os.PathLike[str] | None, default: str, base: Path | None) -> Path:
    if path is None:
        if base is None:
            raise FileNotFoundError(
                f"openb data not found: pass the CSV paths or set KUBE_ENGINE_OPENB_DIR ({default})"
            )
        return base / default
    p = Path(path)
    if not p.exists() and base is not None and (base / p).exists():
        return base / p
    return p


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _int(row: dict[str, str], key: str, where: str, default: int = 0) -> int:
    value = (row.get(key) or "").strip()
    if not value:
        return default
    try:
        return int(float(value))
    except ValueError:
        raise ValueError(f"{where}.{key}: invalid number {value!r}") from None


def _node(row: dict[str, str], i: int, ids: k.IdSource, max_pods: int, now: int) -> JsonDict:
    where = f"node list line {i + 2}"
    name = row["sn"]
    cpu = _int(row, "cpu_milli", where)
    mem = _int(row, "memory_mib", where)
    gpus = _int(row, "gpu", where)
    model = (row.get("model") or "").strip()
    resources = {
        "cpu": k.cpu_quantity(cpu),
        "memory": f"{mem}Mi",
        "pods": str(max_pods),
    }
    labels = {
        "kubernetes.io/arch": "amd64",
        k.HOSTNAME_LABEL: name,
        "kubernetes.io/os": "linux",
    }
    if gpus:
        resources[k.GPU_RESOURCE] = str(gpus)
        labels[k.GPU_PRESENT_LABEL] = "true"
        labels[k.GPU_COUNT_LABEL] = str(gpus)
        if model:
            labels[k.GPU_PRODUCT_LABEL] = model
    return k.node(
        name,
        ids=ids,
        created=EPOCH,
        now=now,
        labels=labels,
        capacity=resources,
        allocatable=resources,
        info=k.NodeInfo(
            kernel_version="4.19.91",
            os_image="Alibaba Cloud Linux",
            container_runtime_version="containerd://1.6.0",
            kubelet_version="v1.20.11",
        ),
    )


class _PodRow:
    __slots__ = ("row", "name", "requests", "limits", "models", "phase", "where")

    def __init__(self, row: dict[str, str], i: int) -> None:
        where = f"pod list line {i + 2}"
        self.row = row
        self.where = where
        self.name = row["name"]
        cpu = _int(row, "cpu_milli", where)
        mem = _int(row, "memory_mib", where)
        num_gpu = _int(row, "num_gpu", where)
        gpu_milli = _int(row, "gpu_milli", where)
        requests: dict[str, str] = {}
        if cpu:
            requests["cpu"] = f"{cpu}m"
        if mem:
            requests["memory"] = f"{mem}Mi"
        limits: dict[str, str] = {}
        if num_gpu:
            if not 0 < gpu_milli <= k.GPU_MILLI_PER_DEVICE:
                raise ValueError(f"{where}.gpu_milli: {gpu_milli} is not within 1..=1000")
            if gpu_milli == k.GPU_MILLI_PER_DEVICE:
                requests[k.GPU_RESOURCE] = limits[k.GPU_RESOURCE] = str(num_gpu)
            elif num_gpu == 1:
                requests[k.GPU_MILLI_RESOURCE] = limits[k.GPU_MILLI_RESOURCE] = str(gpu_milli)
            else:
                raise ValueError(
                    f"{where}: {num_gpu} GPUs of {gpu_milli} milli each cannot be expressed "
                    "(shares are of one GPU)"
                )
        qos = (row.get("qos") or "").strip()
        if qos == "Guaranteed":  # keep the Kubernetes QoS class in line with the trace's
            limits.update({r: v for r, v in requests.items() if r in ("cpu", "memory")})
        self.requests = requests
        self.limits = limits
        spec = (row.get("gpu_spec") or "").strip()
        self.models = [m for m in spec.split("|") if m] if num_gpu else []
        self.phase = (row.get("pod_phase") or "").strip() or "Pending"
        if self.phase not in ("Pending", "Running", "Succeeded", "Failed"):
            raise ValueError(f"{where}.pod_phase: unknown phase {self.phase!r}")


def openb_cluster(
    node_csv: str | os.PathLike[str] | None = None,
    pod_csv: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    max_pods: int = 110,
    pending: bool = False,
) -> JsonDict:
    """Convert openb CSVs into a Kubernetes `List` of Nodes and Pods (see the module doc).

    Paths default to the trace in `find_openb_dir()`; a bare pod-list file name (e.g.
    "openb_pod_list_gpuspec33.csv") is looked up there too. `seed` drives the initial placement
    and the generated UIDs; the same inputs and seed always give the same objects. Every node
    allows `max_pods` pods (the trace does not say; 110 is the kubelet's default). With
    `pending`, every pod is Pending and unbound whatever its trace phase: the pod list as a stream
    of new arrivals, how the FGD simulator replays it.
    """
    base = find_openb_dir()
    node_path = _resolve(node_csv, NODE_LIST, base)
    pod_path = _resolve(pod_csv, DEFAULT_POD_LIST, node_path.parent if node_csv else base)
    rng = random.Random(seed)
    ids = k.IdSource(rng)

    rows = [_PodRow(r, i) for i, r in enumerate(_read_csv(pod_path))]
    # The trace's "now": its last event (node heartbeats are reported just before it).
    now = EPOCH + max(
        [1]
        + [
            _int(r.row, key, r.where)
            for r in rows
            for key in ("creation_time", "scheduled_time", "deletion_time")
        ]
    )
    node_objs = [_node(r, i, ids, max_pods, now) for i, r in enumerate(_read_csv(node_path))]
    index = {n["metadata"]["name"]: i for i, n in enumerate(node_objs)}
    if len(index) != len(node_objs):
        raise ValueError(f"{node_path}: duplicate node names")
    ips = {name: f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for name, i in index.items()}
    next_ip = dict.fromkeys(index, 2)

    # Unbound drafts for the core to place: Running pods by random fit in trace order, terminal
    # ones on a node they could have run on. Their own identifiers are drawn afterwards.
    phases = ["Pending" if pending else row.phase for row in rows]
    draft_ids = k.IdSource(random.Random(seed))
    drafts = [_pod(row, "Pending", None, [], draft_ids, ips, {}, None) for row in rows]
    running = [d for d, ph in zip(drafts, phases, strict=True) if ph == "Running"]
    terminal = [d for d, ph in zip(drafts, phases, strict=True) if ph in k.TERMINAL_PHASES]
    nodes_doc = document(node_objs)
    placed = random_fit(nodes_doc, running, seed)
    homes = could_run(nodes_doc, terminal, seed)

    pods: list[JsonDict] = []
    for row, phase in zip(rows, phases, strict=True):
        key = f"{NAMESPACE}/{row.name}"
        node = placed.nodes.get(key) if phase == "Running" else homes.get(key)
        message = None
        if phase == "Running" and node is None:
            phase, message = "Pending", placed.unschedulable.get(key)
        where = (node, index[node]) if node is not None else None
        devices = placed.devices.get(key, []) if phase == "Running" else []
        pods.append(_pod(row, phase, where, devices, ids, ips, next_ip, message))

    return k.k8s_list([*node_objs, *pods])


def _pod(
    row: _PodRow,
    phase: str,
    node: tuple[str, int] | None,
    devices: Sequence[int],
    ids: k.IdSource,
    ips: dict[str, str],
    next_ip: dict[str, int],
    unschedulable: str | None,
) -> JsonDict:
    """The pod of ``row``, on ``node`` (name and index), or unbound with the scheduler's
    ``unschedulable`` message."""
    r = row.row
    created = EPOCH + _int(r, "creation_time", row.where)
    scheduled = EPOCH + _int(r, "scheduled_time", row.where, default=created - EPOCH)
    labels = {"app": NAMESPACE}
    qos = (r.get("qos") or "").strip()
    if qos:
        labels[QOS_LABEL] = qos
    annotations: dict[str, str] = {}
    deletion = (r.get("deletion_time") or "").strip()
    if deletion:
        annotations[DELETION_TIME_ANNOTATION] = str(_int(r, "deletion_time", row.where))
    if devices:
        annotations[k.GPU_DEVICES_ANNOTATION] = k.devices_annotation(devices)
    affinity = None
    if row.models:
        affinity = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": k.GPU_PRODUCT_LABEL,
                                    "operator": "In",
                                    "values": list(row.models),
                                }
                            ]
                        }
                    ]
                }
            }
        }
    pod_ip = host_ip = None
    if node is not None:
        name, i = node
        host_ip = ips[name]
        if phase == "Running":
            n = next_ip[name]
            next_ip[name] = n + 1
            pod_ip = f"172.{16 + i // 256 % 16}.{i % 256}.{n % 254 + 1}"
    status = PodStatusInfo(
        phase=phase,
        pod_ip=pod_ip,
        host_ip=host_ip,
        started=scheduled if node is not None else None,
        exit_code=1,
        unschedulable_message=unschedulable,
    )
    extra: dict[str, Any] = {}
    if affinity is not None:
        extra["affinity"] = affinity
    return k.pod(
        row.name,
        NAMESPACE,
        ids=ids,
        created=created,
        containers=[ContainerSpec("main", IMAGE, row.requests, row.limits)],
        labels=labels,
        annotations=annotations,
        node_name=node[0] if node is not None else None,
        status=status,
        restart_policy="Never" if phase in k.TERMINAL_PHASES else "Always",
        **extra,
    )
