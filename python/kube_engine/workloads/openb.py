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
- `Running` pods get a seeded random-fit initial placement (uniform over the nodes where they
  fit: cpu, memory, pods, free GPU devices, GPU model), recorded in `spec.nodeName` and
  `kube-engine.io/gpu-devices`; a Running pod that fits nowhere becomes Pending; `Pending` pods
  stay unbound; `Succeeded`/`Failed` pods keep a node they could have run on and hold nothing.
  Pod lists without `pod_phase` (the multigpu* lists) are all Pending.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kube_engine.workloads import objects as k
from kube_engine.workloads.objects import ContainerSpec, JsonDict, NodeState, PodStatusInfo

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
    """Where the openb CSVs are: `$KUBE_ENGINE_OPENB_DIR`, else `shared/data/openb` beside the
    repository (how the project's machines and CI lay it out); None when neither has them."""
    env = os.environ.get("KUBE_ENGINE_OPENB_DIR")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[3]
    candidates += [repo.parent / "shared" / "data" / "openb", repo / "shared" / "data" / "openb"]
    for c in candidates:
        if (c / NODE_LIST).is_file():
            return c
    return None


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

    def effective(self) -> dict[str, int]:
        return k.effective_requests(
            {"containers": [k.container(ContainerSpec("main", IMAGE, self.requests, self.limits))]}
        )


def _eligible(
    rows_req: dict[str, int], models: Sequence[str], nodes: list[NodeState]
) -> list[NodeState]:
    count, _ = k.gpu_need(rows_req)
    out = []
    for n in nodes:
        if count and len(n.gpu_free) < count:
            continue
        if models and n.labels.get(k.GPU_PRODUCT_LABEL) not in models:
            continue
        out.append(n)
    return out


def _random_fit(
    rng: random.Random, req: dict[str, int], candidates: list[NodeState], tries: int = 32
) -> NodeState | None:
    """A node drawn uniformly from the candidates where `req` fits (rejection sampling, then an
    exhaustive draw when the candidates are mostly full)."""
    if not candidates:
        return None
    for _ in range(tries):
        n = candidates[rng.randrange(len(candidates))]
        if n.fits(req):
            return n
    fitting = [n for n in candidates if n.fits(req)]
    return fitting[rng.randrange(len(fitting))] if fitting else None


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
    states = [NodeState(n, i) for i, n in enumerate(node_objs)]
    by_name = {s.name: s for s in states}
    if len(by_name) != len(states):
        raise ValueError(f"{node_path}: duplicate node names")
    ips = {
        s.name: f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i, s in enumerate(states)
    }
    next_ip = dict.fromkeys(by_name, 2)

    eligible_cache: dict[tuple[int, tuple[str, ...]], list[NodeState]] = {}

    def eligible(req: dict[str, int], models: Sequence[str]) -> list[NodeState]:
        key = (k.gpu_need(req)[0], tuple(models))
        hit = eligible_cache.get(key)
        if hit is None:
            hit = eligible_cache[key] = _eligible(req, models, states)
        return hit

    pods: list[JsonDict] = []
    for row in rows:
        req = row.effective()
        phase = "Pending" if pending else row.phase
        node: NodeState | None = None
        devices: list[int] = []
        if phase == "Running":
            node = _random_fit(rng, req, eligible(req, row.models))
            if node is None:
                phase = "Pending"
            else:
                devices = node.choose_devices(req, rng)
                node.assign(req, devices)
        elif phase in k.TERMINAL_PHASES:
            candidates = eligible(req, row.models) or states
            node = candidates[rng.randrange(len(candidates))] if candidates else None
        pods.append(_pod(row, phase, node, devices, ids, ips, next_ip))

    return k.k8s_list([*node_objs, *pods])


def _pod(
    row: _PodRow,
    phase: str,
    node: NodeState | None,
    devices: Sequence[int],
    ids: k.IdSource,
    ips: dict[str, str],
    next_ip: dict[str, int],
) -> JsonDict:
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
        host_ip = ips[node.name]
        if phase == "Running":
            n = next_ip[node.name]
            next_ip[node.name] = n + 1
            pod_ip = f"172.{16 + node.index // 256 % 16}.{node.index % 256}.{n % 254 + 1}"
    unschedulable = None
    if phase == "Pending":
        unschedulable = f"0/{len(ips)} nodes are available: insufficient resources."
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
        node_name=node.name if node is not None else None,
        status=status,
        restart_policy="Never" if phase in k.TERMINAL_PHASES else "Always",
        **extra,
    )
