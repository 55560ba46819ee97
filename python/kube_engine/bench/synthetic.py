"""Seeded synthetic clusters shaped like a real EKS-style production cluster.

`generate_cluster(nodes, pods, seed)` returns a Kubernetes `List` (Nodes, then Pods sorted by
namespace/name, then PodDisruptionBudgets), as `kubectl get nodes,pods,pdb -A -o json` would print
it. The same arguments always give the same objects (and `generate_cluster_json` the same bytes).

What is in it:
- node pools: general purpose, compute- and memory-optimised, a dedicated batch pool
  (taint `dedicated=batch:NoSchedule`) and a GPU pool (`nvidia.com/gpu=present:NoSchedule`,
  `nvidia.com/gpu` devices, `nvidia.com/gpu.product`), spread over 3 zones; a few NotReady nodes
  (unreachable taints) and a few cordoned ones (still holding their pods);
- DaemonSet pods on every node (kube-proxy, CNI, CSI, node-exporter, fluent-bit, and the NVIDIA
  device plugin on GPU nodes);
- Deployments, StatefulSets and Jobs with replicas: multi-container pods, init containers and
  native sidecars, pod overhead, requests and limits (and BestEffort pods without either),
  nodeSelectors, required/preferred node affinity, pod anti-affinity by hostname, topology spread
  by zone, tolerations, hostPorts, emptyDir/hostPath/PVC volumes, priority classes, whole-GPU and
  GPU-share pods, PDBs (minAvailable int or %, maxUnavailable);
- pods bound where the core's random fit puts them (`kube_engine.bench.placing`: the default
  profile's filters, a node drawn uniformly among those that pass; GPU devices recorded in
  `kube-engine.io/gpu-devices`). Pods that fit nowhere stay Pending with kube-scheduler's message,
  and `pending_fraction` of all pods are left unbound (just created);
- PodDisruptionBudgets with the status the disruption controller reports, as the core works it
  out from the pods.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kube_engine.bench import objects as k
from kube_engine.bench.objects import ContainerSpec, JsonDict, PodStatusInfo
from kube_engine.bench.placing import budget_counts, could_run, document, random_fit

__all__ = ["generate_cluster", "generate_cluster_json", "NOW"]

NOW = k.epoch("2025-06-01T12:00:00Z")
"""The moment the synthetic cluster is listed (all timestamps are before it)."""

_DAY = 86400
_REGION = "us-west-2"
_ZONES = ("us-west-2a", "us-west-2b", "us-west-2c")
_ZONE_IDS = {"us-west-2a": "usw2-az1", "us-west-2b": "usw2-az2", "us-west-2c": "usw2-az3"}
_ECR = "602401143452.dkr.ecr.us-west-2.amazonaws.com"
_APP_REGISTRY = "123456789012.dkr.ecr.us-west-2.amazonaws.com"

_PRIORITY = {
    "system-node-critical": 2000001000,
    "system-cluster-critical": 2000000000,
    "high-priority": 100000,
    "low-priority": -10,
}


# --- nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    instance_type: str
    cpu: int  # cores
    memory_gib: int
    max_pods: int = 110
    gpus: int = 0
    gpu_product: str = ""
    gpu_memory_mib: int = 0


@dataclass(frozen=True)
class _Pool:
    name: str
    weight: float
    shapes: tuple[_Shape, ...]
    taints: tuple[tuple[str, str, str], ...] = ()  # key, value, effect
    labels: tuple[tuple[str, str], ...] = ()


_GENERAL = _Pool(
    "general",
    0.45,
    (
        _Shape("m6i.2xlarge", 8, 32, 58),
        _Shape("m6i.4xlarge", 16, 64),
        _Shape("m6i.8xlarge", 32, 128),
    ),
)
_POOLS: tuple[_Pool, ...] = (
    _GENERAL,
    _Pool("compute", 0.10, (_Shape("c6i.4xlarge", 16, 32), _Shape("c6i.8xlarge", 32, 64))),
    _Pool("memory", 0.15, (_Shape("r6i.4xlarge", 16, 128), _Shape("r6i.8xlarge", 32, 256))),
    _Pool(
        "batch",
        0.10,
        (_Shape("m6i.8xlarge", 32, 128), _Shape("c6i.12xlarge", 48, 96)),
        taints=(("dedicated", "batch", "NoSchedule"),),
        labels=(("dedicated", "batch"),),
    ),
    _Pool(
        "gpu",
        0.12,
        (
            _Shape("g4dn.12xlarge", 48, 192, 58, 4, "Tesla-T4", 15360),
            _Shape("g5.12xlarge", 48, 192, 58, 4, "NVIDIA-A10G", 23028),
            _Shape("p3.8xlarge", 32, 244, 58, 4, "Tesla-V100-SXM2-16GB", 16384),
            _Shape("p4d.24xlarge", 96, 1152, 110, 8, "NVIDIA-A100-SXM4-40GB", 40960),
        ),
        taints=((k.GPU_RESOURCE, "present", "NoSchedule"),),
    ),
)
_GPU_PRODUCTS = ("Tesla-T4", "NVIDIA-A10G", "Tesla-V100-SXM2-16GB", "NVIDIA-A100-SXM4-40GB")


def _pool_counts(nodes: int, gpu_fraction: float) -> list[int]:
    weights = [p.weight for p in _POOLS]
    rest = sum(w for p, w in zip(_POOLS, weights, strict=True) if p.name != "gpu")
    weights = [
        gpu_fraction if p.name == "gpu" else w * (1 - gpu_fraction) / rest
        for p, w in zip(_POOLS, weights, strict=True)
    ]
    raw = [w * nodes for w in weights]
    counts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: nodes - sum(counts)]:
        counts[i] += 1
    if nodes and counts[0] == 0:  # always some general-purpose capacity
        j = max(range(len(counts)), key=lambda i: counts[i])
        counts[j] -= 1
        counts[0] += 1
    return counts


def _eks_cpu_reserved(cores: int) -> int:
    milli = 60 + (10 if cores > 1 else 0) + 5 * min(max(cores - 2, 0), 2)
    return milli + (cores - 4) * 25 // 10 if cores > 4 else milli


_NODE_IMAGES: tuple[tuple[str, int], ...] = (
    (f"{_ECR}/amazon-k8s-cni:v1.19.0-eksbuild.1", 51_276_424),
    (f"{_ECR}/amazon-k8s-cni-init:v1.19.0-eksbuild.1", 61_482_316),
    (f"{_ECR}/eks/kube-proxy:v1.31.3-minimal-eksbuild.2", 37_850_012),
    (f"{_ECR}/eks/aws-ebs-csi-driver:v1.37.0", 38_016_318),
    (f"{_ECR}/eks/csi-node-driver-registrar:v2.12.0-eks-1-31-7", 7_841_201),
    (f"{_ECR}/eks/livenessprobe:v2.14.0-eks-1-31-7", 7_123_455),
    ("quay.io/prometheus/node-exporter:v1.8.2", 12_065_880),
    ("cr.fluentbit.io/fluent/fluent-bit:3.1.9", 31_415_733),
    (f"{_ECR}/eks/pause:3.5", 298_689),
)


@dataclass
class _NodeRec:
    obj: JsonDict
    name: str
    gpus: int
    zone: str
    ip: str
    pod_net: str  # "10.x.y." prefix for pod IPs
    created: int
    ready: bool
    next_ip: int = 4


def _make_nodes(
    g: _Gen, nodes: int, gpu_fraction: float, not_ready_fraction: float
) -> list[_NodeRec]:
    rng, ids = g.rng, g.ids
    counts = _pool_counts(nodes, gpu_fraction)
    specs: list[tuple[_Pool, _Shape, str]] = []
    for pool, count in zip(_POOLS, counts, strict=True):
        zone_offset = rng.randrange(3)
        for j in range(count):
            shape = pool.shapes[rng.randrange(len(pool.shapes))]
            specs.append((pool, shape, _ZONES[(j + zone_offset) % 3]))
    not_ready = _pick_count(rng, nodes, not_ready_fraction)
    recs: list[_NodeRec] = []
    for i, (pool, shape, zone) in enumerate(specs):
        ip = f"10.{i // 62500 % 256}.{i // 250 % 250}.{i % 250 + 4}"
        name = f"ip-{ip.replace('.', '-')}.{_REGION}.compute.internal"
        created = NOW - rng.randint(2 * _DAY, 120 * _DAY)
        mem_ki = int(shape.memory_gib * 1024 * 1024 * 0.963) // 4 * 4
        reserved_mi = 255 + 11 * shape.max_pods + 100
        capacity = {
            "cpu": str(shape.cpu),
            "ephemeral-storage": "104845292Ki",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": f"{mem_ki}Ki",
            "pods": str(shape.max_pods),
        }
        allocatable = {
            "cpu": k.cpu_quantity(shape.cpu * 1000 - _eks_cpu_reserved(shape.cpu)),
            "ephemeral-storage": "95551679124",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": f"{mem_ki - reserved_mi * 1024}Ki",
            "pods": str(shape.max_pods),
        }
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/instance-type": shape.instance_type,
            "beta.kubernetes.io/os": "linux",
            "eks.amazonaws.com/capacityType": "SPOT" if rng.random() < 0.2 else "ON_DEMAND",
            "eks.amazonaws.com/nodegroup": f"{pool.name}-ng",
            "eks.amazonaws.com/nodegroup-image": "ami-0c4e1e5ba0e1e4e5f",
            "failure-domain.beta.kubernetes.io/region": _REGION,
            "failure-domain.beta.kubernetes.io/zone": zone,
            "k8s.io/cloud-provider-aws": "b6a2c1e4f5d8a9c0e1f2a3b4c5d6e7f8",
            "kubernetes.io/arch": "amd64",
            k.HOSTNAME_LABEL: name,
            "kubernetes.io/os": "linux",
            "node-pool": pool.name,
            k.INSTANCE_TYPE_LABEL: shape.instance_type,
            "topology.ebs.csi.aws.com/zone": zone,
            "topology.k8s.aws/zone-id": _ZONE_IDS[zone],
            k.REGION_LABEL: _REGION,
            k.ZONE_LABEL: zone,
        }
        labels.update(pool.labels)
        if shape.gpus:
            labels[k.GPU_PRESENT_LABEL] = "true"
            labels[k.GPU_PRODUCT_LABEL] = shape.gpu_product
            labels[k.GPU_COUNT_LABEL] = str(shape.gpus)
            labels["nvidia.com/gpu.memory"] = str(shape.gpu_memory_mib)
            for d in (capacity, allocatable):
                d[k.GPU_RESOURCE] = str(shape.gpus)
                d[k.GPU_MILLI_RESOURCE] = str(shape.gpus * k.GPU_MILLI_PER_DEVICE)
        taints = [k.taint(key, eff, val) for key, val, eff in pool.taints]
        # A NotReady node gets its unreachable taints after placement: it held pods before it
        # stopped reporting.
        ready = i not in not_ready
        images = list(_NODE_IMAGES)
        if shape.gpus:
            images.append(("nvcr.io/nvidia/k8s-device-plugin:v0.17.0", 133_207_146))
        obj = k.node(
            name,
            ids=ids,
            created=created,
            now=NOW,
            labels=labels,
            capacity=capacity,
            allocatable=allocatable,
            internal_ip=ip,
            pod_cidr=f"10.{64 + i // 256 % 192}.{i % 256}.0/24",
            provider_id=f"aws:///{zone}/i-0{ids.hex(16)}",
            taints=taints,
            ready=ready,
            images=images,
        )
        recs.append(
            _NodeRec(
                obj=obj,
                name=name,
                gpus=shape.gpus,
                zone=zone,
                ip=ip,
                pod_net=f"10.{64 + i // 256 % 192}.{i % 256}.",
                created=created,
                ready=ready,
            )
        )
    return recs


def _pick_count(rng: random.Random, n: int, fraction: float) -> set[int]:
    if fraction <= 0 or n == 0:
        return set()
    count = round(n * fraction)
    if count == 0 and n >= 20:
        count = 1
    return set(rng.sample(range(n), min(count, n)))


# --- workloads --------------------------------------------------------------------------------


@dataclass
class _Workload:
    kind: str  # Deployment, StatefulSet, Job, DaemonSet
    name: str
    namespace: str
    replicas: int
    created: int
    template: dict[str, Any]  # keyword arguments of objects.pod() shared by all replicas
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    owner_kind: str = ""
    owner_name: str = ""
    owner_uid: str = ""
    pod_prefix: str = ""  # Deployment: "<name>-<hash>-"
    pdb: tuple[str, int | str] | None = None  # ("minAvailable" | "maxUnavailable", value)
    anti_affinity: bool = False  # required anti-affinity by hostname against its own pods
    spread: bool = False  # DoNotSchedule zone spread, maxSkew 1
    pvc: bool = False
    job_phases: tuple[float, float] = (0.0, 0.0)  # Job: P(Succeeded), P(Failed)
    ds_node: int = -1
    # When its ReplicaSet created the Pending pods (all in one burst, as a rollout or scale-up
    # does); None: each Pending pod at its own moment in the last minute and a half.
    burst: int | None = None


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = k.IdSource(self.rng)
        self.names: dict[str, set[str]] = {}  # workload names per namespace
        self.pods: dict[str, set[str]] = {}  # generated pod names per namespace
        self.has_gpu = False

    def unique(self, namespace: str, base: str) -> str:
        taken = self.names.setdefault(namespace, set())
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        return name

    def pod_name(self, namespace: str, prefix: str) -> str:
        """`prefix` + a random 5-character suffix, unique in the namespace."""
        taken = self.pods.setdefault(namespace, set())
        while True:
            name = prefix + self.ids.suffix()
            if name not in taken:
                taken.add(name)
                return name

    def created(self, max_age_days: int = 90) -> int:
        return NOW - self.rng.randint(3600, max_age_days * _DAY)


_APP_NAMESPACES = (
    "default",
    "payments",
    "checkout",
    "catalog",
    "search",
    "identity",
    "notifications",
    "analytics",
    "web",
    "orders",
)
_SERVICES = (
    "cart",
    "checkout",
    "payments",
    "orders",
    "inventory",
    "search",
    "catalog",
    "users",
    "auth",
    "billing",
    "shipping",
    "recommend",
    "notify",
    "reviews",
    "ads",
    "pricing",
    "events",
    "gateway",
    "profile",
    "media",
    "ledger",
    "fraud",
    "loyalty",
    "quotes",
)
_CPU = ("50m", "100m", "100m", "250m", "250m", "500m", "500m", "1", "1", "2")
_MEM = ("128Mi", "256Mi", "512Mi", "512Mi", "1Gi", "1Gi", "2Gi", "2Gi", "4Gi", "8Gi")


def _double(q: str) -> str:
    """Twice a cpu ("250m" -> "500m") or memory ("512Mi" -> "1Gi") quantity."""
    if q.endswith("i"):
        return k.memory_quantity(2 * k.resource_units("memory", q))
    return k.cpu_quantity(2 * k.resource_units("cpu", q))


def _replicas(rng: random.Random, choices: Sequence[int]) -> int:
    return choices[rng.randrange(len(choices))]


def _pod_env(extra: Sequence[JsonDict] = ()) -> tuple[JsonDict, ...]:
    return (
        k.env_field("POD_NAME", "metadata.name"),
        k.env_field("POD_NAMESPACE", "metadata.namespace"),
        k.env_var("LOG_LEVEL", "info"),
        *extra,
    )


_ISTIO_RES = ({"cpu": "100m", "memory": "128Mi"}, {"cpu": "2", "memory": "1Gi"})


def _istio(annotations: dict[str, str], labels: dict[str, str], app: str) -> list[ContainerSpec]:
    """Istio's init container and its proxy as a native sidecar (restartPolicy: Always)."""
    labels["security.istio.io/tlsMode"] = "istio"
    labels["service.istio.io/canonical-name"] = app
    labels["service.istio.io/canonical-revision"] = "latest"
    annotations["istio.io/rev"] = "default"
    annotations["kubectl.kubernetes.io/default-container"] = app
    annotations["sidecar.istio.io/status"] = json.dumps(
        {
            "initContainers": ["istio-init", "istio-proxy"],
            "containers": None,
            "volumes": ["workload-socket", "credential-socket", "istio-envoy", "istio-data"],
            "imagePullSecrets": None,
            "revision": "default",
        },
        separators=(",", ":"),
    )
    req, lim = _ISTIO_RES
    return [
        ContainerSpec(
            "istio-init",
            "docker.io/istio/proxyv2:1.23.2",
            requests=req,
            limits=lim,
            args=("istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT"),
            security_context={
                "allowPrivilegeEscalation": False,
                "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                "runAsGroup": 0,
                "runAsNonRoot": False,
                "runAsUser": 0,
            },
        ),
        ContainerSpec(
            "istio-proxy",
            "docker.io/istio/proxyv2:1.23.2",
            requests=req,
            limits=lim,
            args=("proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"),
            ports=(k.container_port(15090, "http-envoy-prom"),),
            env=_pod_env((k.env_var("ISTIO_META_CLUSTER_ID", "Kubernetes"),)),
            volume_mounts=(
                k.volume_mount("workload-socket", "/var/run/secrets/workload-spiffe-uds"),
                k.volume_mount("istio-envoy", "/etc/istio/proxy"),
                k.volume_mount("istio-data", "/var/lib/istio/data"),
            ),
            restart_policy="Always",
            probe_port=15021,
        ),
    ]


_ISTIO_VOLUMES = (
    {"emptyDir": {}, "name": "workload-socket"},
    {"emptyDir": {}, "name": "credential-socket"},
    {"emptyDir": {"medium": "Memory"}, "name": "istio-envoy"},
    {"emptyDir": {}, "name": "istio-data"},
)


def _hostname_anti_affinity(app: str, required: bool) -> JsonDict:
    term = {
        "labelSelector": {"matchLabels": {"app": app}},
        "topologyKey": k.HOSTNAME_LABEL,
    }
    if required:
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"podAffinityTerm": term, "weight": 100}
            ]
        }
    }


def _zone_spread(app: str, hard: bool, template_hash: bool) -> JsonDict:
    c: JsonDict = {
        "labelSelector": {"matchLabels": {"app": app}},
        "maxSkew": 1,
        "topologyKey": k.ZONE_LABEL,
        "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
    }
    if template_hash:
        c["matchLabelKeys"] = ["pod-template-hash"]
    return c


def _required_node_affinity(key: str, values: Sequence[str]) -> JsonDict:
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}
            ]
        }
    }


def _preferred_node_affinity(key: str, values: Sequence[str], weight: int) -> JsonDict:
    return {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "preference": {
                    "matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]
                },
                "weight": weight,
            }
        ]
    }


def _pdb_policy(rng: random.Random, replicas: int) -> tuple[str, int | str]:
    r = rng.random()
    if r < 0.3:
        return "maxUnavailable", 1
    if r < 0.45:
        return "maxUnavailable", "25%"
    if r < 0.7:
        return "minAvailable", "50%"
    if r < 0.8:
        return "minAvailable", "80%"
    return "minAvailable", max(1, replicas - 1)


def _deployment(
    g: _Gen,
    namespace: str,
    name: str,
    replicas: int,
    template: dict[str, Any],
    labels: dict[str, str],
    annotations: dict[str, str],
    **extra: Any,
) -> _Workload:
    template_hash = g.ids.suffix(g.rng.choice((9, 10)))
    rs = f"{name}-{template_hash}"
    labels = {**labels, "pod-template-hash": template_hash}
    return _Workload(
        kind="Deployment",
        name=name,
        namespace=namespace,
        replicas=replicas,
        created=g.created(),
        template=template,
        labels=labels,
        annotations=annotations,
        owner_kind="ReplicaSet",
        owner_name=rs,
        owner_uid=g.ids.uid(),
        pod_prefix=f"{rs}-",
        **extra,
    )


def _app_labels(app: str, namespace: str, version: str) -> dict[str, str]:
    return {
        "app": app,
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": namespace,
        "app.kubernetes.io/version": version,
    }


def _metrics_annotations(port: int) -> dict[str, str]:
    return {
        "prometheus.io/path": "/metrics",
        "prometheus.io/port": str(port),
        "prometheus.io/scrape": "true",
    }


def _arch_web(g: _Gen) -> _Workload:
    rng = g.rng
    ns = rng.choice(_APP_NAMESPACES)
    app = g.unique(ns, f"{rng.choice(_SERVICES)}-web")
    version = f"v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
    labels = _app_labels(app, ns, version)
    annotations = _metrics_annotations(8080)
    cpu, mem = rng.choice(_CPU[1:7]), rng.choice(_MEM[1:7])
    main = ContainerSpec(
        app,
        f"{_APP_REGISTRY}/{ns}/{app}:{version}",
        requests={"cpu": cpu, "memory": mem},
        limits={"memory": _double(mem)},
        ports=(k.container_port(8080, "http"), k.container_port(9090, "metrics")),
        env=_pod_env((k.env_var("PORT", "8080"), k.env_var("NODE_ENV", "production"))),
        volume_mounts=(k.volume_mount("tmp", "/tmp"),),
        probe_port="http",
        security_context={"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
    )
    volumes: list[JsonDict] = [{"emptyDir": {}, "name": "tmp"}]
    init: list[ContainerSpec] = []
    if rng.random() < 0.4:
        init = _istio(annotations, labels, app)
        volumes += _ISTIO_VOLUMES
    affinity = _hostname_anti_affinity(app, required=False)
    if rng.random() < 0.3:
        affinity["nodeAffinity"] = _preferred_node_affinity(
            "eks.amazonaws.com/capacityType", ["SPOT"], 20
        )
    template = {
        "containers": [main],
        "init_containers": init,
        "volumes": volumes,
        "affinity": affinity,
        "topology_spread": [_zone_spread(app, hard=False, template_hash=True)],
        "node_selector": {"kubernetes.io/os": "linux"},
        "service_account": app,
    }
    replicas = _replicas(rng, (2, 2, 3, 3, 4, 5, 6, 8, 10, 12, 16, 24))
    pdb = _pdb_policy(rng, replicas) if rng.random() < 0.7 else None
    return _deployment(g, ns, app, replicas, template, labels, annotations, pdb=pdb)


def _arch_api(g: _Gen) -> _Workload:
    rng = g.rng
    ns = rng.choice(_APP_NAMESPACES)
    app = g.unique(ns, f"{rng.choice(_SERVICES)}-api")
    version = f"v{rng.randint(1, 9)}.{rng.randint(0, 50)}.{rng.randint(0, 9)}"
    labels = _app_labels(app, ns, version)
    annotations = _metrics_annotations(9090)
    cpu, mem = rng.choice(_CPU[3:]), rng.choice(_MEM[4:])
    main = ContainerSpec(
        app,
        f"{_APP_REGISTRY}/{ns}/{app}:{version}",
        requests={"cpu": cpu, "memory": mem},
        limits={"cpu": _double(cpu), "memory": mem},
        ports=(k.container_port(8080, "http"), k.container_port(9090, "metrics")),
        env=_pod_env(
            (
                k.env_var("DATABASE_HOST", f"{ns}-db.{ns}.svc.cluster.local"),
                k.env_var("GOMAXPROCS", "2"),
            )
        ),
        probe_port=8080,
        security_context={"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    )
    logger = ContainerSpec(
        "log-shipper",
        "docker.io/timberio/vector:0.41.1-distroless-libc",
        requests={"cpu": "50m", "memory": "64Mi"},
        limits={"memory": "128Mi"},
        volume_mounts=(k.volume_mount("logs", "/var/log/app", read_only=True),),
    )
    init = [
        ContainerSpec(
            "migrate",
            f"{_APP_REGISTRY}/{ns}/{app}-migrations:{version}",
            requests={"cpu": "100m", "memory": "128Mi"},
            command=("/app/migrate", "up"),
        )
    ]
    volumes: list[JsonDict] = [{"emptyDir": {"sizeLimit": "1Gi"}, "name": "logs"}]
    if rng.random() < 0.3:
        init += _istio(annotations, labels, app)
        volumes += _ISTIO_VOLUMES
    hard = rng.random() < 0.6
    template = {
        "containers": [main, logger],
        "init_containers": init,
        "volumes": volumes,
        "affinity": _hostname_anti_affinity(app, required=hard),
        "topology_spread": [_zone_spread(app, hard=True, template_hash=False)],
        "node_selector": {"kubernetes.io/os": "linux"},
        "service_account": app,
        "priority_class_name": "high-priority",
        "priority": _PRIORITY["high-priority"],
        "termination_grace_period_seconds": 60,
    }
    replicas = _replicas(rng, (2, 2, 3, 3, 3, 4, 6))
    pdb = _pdb_policy(rng, replicas) if rng.random() < 0.8 else None
    return _deployment(
        g,
        ns,
        app,
        replicas,
        template,
        labels,
        annotations,
        pdb=pdb,
        anti_affinity=hard,
        spread=True,
    )


def _arch_worker(g: _Gen) -> _Workload:
    rng = g.rng
    ns = rng.choice(_APP_NAMESPACES)
    app = g.unique(ns, f"{rng.choice(_SERVICES)}-worker")
    version = f"{rng.randint(2023, 2025)}.{rng.randint(1, 12)}.{rng.randint(1, 28)}"
    labels = _app_labels(app, ns, version)
    cpu, mem = rng.choice(_CPU[4:]), rng.choice(_MEM[4:])
    limits = {"memory": _double(mem)} if rng.random() < 0.6 else {}
    main = ContainerSpec(
        "worker",
        f"{_APP_REGISTRY}/{ns}/{app}:{version}",
        requests={"cpu": cpu, "memory": mem, "ephemeral-storage": "1Gi"},
        limits=limits,
        command=("/usr/local/bin/worker",),
        args=("--queue", f"{app}-jobs", "--concurrency", "8"),
        env=_pod_env((k.env_var("QUEUE_URL", f"sqs://{app}"),)),
        volume_mounts=(k.volume_mount("scratch", "/scratch"),),
    )
    pool = rng.choice((["general"], ["general"], ["general", "compute"], ["compute"]))
    template: dict[str, Any] = {
        "containers": [main],
        "volumes": [{"emptyDir": {"sizeLimit": "10Gi"}, "name": "scratch"}],
        "service_account": "default",
        "termination_grace_period_seconds": 120,
    }
    if len(pool) == 1:
        template["node_selector"] = {"node-pool": pool[0]}
    else:
        template["affinity"] = {"nodeAffinity": _required_node_affinity("node-pool", pool)}
    replicas = _replicas(rng, (1, 2, 3, 4, 6, 8, 10, 15, 20, 30))
    pdb = _pdb_policy(rng, replicas) if replicas > 1 and rng.random() < 0.4 else None
    return _deployment(g, ns, app, replicas, template, labels, {}, pdb=pdb)


def _statefulset(
    g: _Gen,
    ns: str,
    name: str,
    replicas: int,
    template: dict[str, Any],
    labels: dict[str, str],
    annotations: dict[str, str],
    **extra: Any,
) -> _Workload:
    revision = f"{name}-{g.ids.suffix(10)}"
    labels = {**labels, "controller-revision-hash": revision}
    return _Workload(
        kind="StatefulSet",
        name=name,
        namespace=ns,
        replicas=replicas,
        created=g.created(),
        template=template,
        labels=labels,
        annotations=annotations,
        owner_kind="StatefulSet",
        owner_name=name,
        owner_uid=g.ids.uid(),
        pvc=True,
        **extra,
    )


def _arch_cache(g: _Gen) -> _Workload:
    rng = g.rng
    ns = rng.choice(_APP_NAMESPACES)
    app = g.unique(ns, f"{rng.choice(_SERVICES)}-redis")
    labels = _app_labels(app, ns, "7.4.1")
    cpu = rng.choice(("500m", "1", "2"))
    mem = rng.choice(("2Gi", "4Gi", "8Gi", "16Gi"))
    redis = ContainerSpec(
        "redis",
        "docker.io/bitnami/redis:7.4.1-debian-12-r0",
        requests={"cpu": cpu, "memory": mem},
        limits={"cpu": cpu, "memory": mem},
        ports=(k.container_port(6379, "redis"),),
        env=(
            k.env_var("REDIS_REPLICATION_MODE", "replica"),
            k.env_var("ALLOW_EMPTY_PASSWORD", "no"),
        ),
        volume_mounts=(k.volume_mount("data", "/data"),),
        probe_port=6379,
    )
    exporter = ContainerSpec(
        "metrics",
        "docker.io/bitnami/redis-exporter:1.64.0",
        requests={"cpu": "50m", "memory": "64Mi"},
        limits={"cpu": "50m", "memory": "64Mi"},
        ports=(k.container_port(9121, "metrics"),),
    )
    affinity = _hostname_anti_affinity(app, required=True)
    affinity["nodeAffinity"] = _required_node_affinity("node-pool", ["memory"])
    template = {
        "containers": [redis, exporter],
        "affinity": affinity,
        "service_account": app,
        "priority_class_name": "high-priority",
        "priority": _PRIORITY["high-priority"],
        "security_context": {"fsGroup": 1001},
    }
    replicas = _replicas(rng, (1, 3, 3, 3, 5))
    pdb = ("minAvailable", max(1, replicas - 1)) if replicas > 1 else None
    annotations = _metrics_annotations(9121)
    if rng.random() < 0.3:
        annotations[k.EVICT_ANNOTATION] = "false"
    return _statefulset(
        g, ns, app, replicas, template, labels, annotations, pdb=pdb, anti_affinity=True
    )


def _arch_db(g: _Gen) -> _Workload:
    rng = g.rng
    ns = rng.choice(_APP_NAMESPACES)
    app = g.unique(ns, f"{ns}-db")
    labels = _app_labels(app, ns, "16.4")
    cpu = rng.choice(("1", "2", "4"))
    mem = rng.choice(("4Gi", "8Gi", "16Gi", "32Gi"))
    pg = ContainerSpec(
        "postgres",
        "docker.io/bitnami/postgresql:16.4.0-debian-12-r14",
        requests={"cpu": cpu, "memory": mem},
        limits={"cpu": cpu, "memory": mem},
        ports=(k.container_port(5432, "tcp-postgresql"),),
        env=(
            k.env_var("POSTGRESQL_PORT_NUMBER", "5432"),
            k.env_var("POSTGRESQL_VOLUME_DIR", "/bitnami/postgresql"),
            k.env_var("PGDATA", "/bitnami/postgresql/data"),
        ),
        volume_mounts=(
            k.volume_mount("data", "/bitnami/postgresql"),
            k.volume_mount("dshm", "/dev/shm"),
        ),
        probe_port=5432,
    )
    init = [
        ContainerSpec(
            "init-chmod-data",
            "docker.io/bitnami/os-shell:12-debian-12-r30",
            requests={"cpu": "100m", "memory": "128Mi"},
            limits={"cpu": "100m", "memory": "128Mi"},
            command=("/bin/sh", "-ec", "chown -R 1001:1001 /bitnami/postgresql"),
            volume_mounts=(k.volume_mount("data", "/bitnami/postgresql"),),
        )
    ]
    affinity = _hostname_anti_affinity(app, required=True)
    affinity["nodeAffinity"] = {
        **_required_node_affinity("node-pool", ["memory", "general"]),
        **_preferred_node_affinity("node-pool", ["memory"], 50),
    }
    template = {
        "containers": [pg],
        "init_containers": init,
        "volumes": [{"emptyDir": {"medium": "Memory"}, "name": "dshm"}],
        "affinity": affinity,
        "topology_spread": [_zone_spread(app, hard=True, template_hash=False)],
        "service_account": app,
        "priority_class_name": "high-priority",
        "priority": _PRIORITY["high-priority"],
        "security_context": {"fsGroup": 1001, "fsGroupChangePolicy": "Always"},
        "termination_grace_period_seconds": 120,
    }
    annotations = {"kube-engine.io/evict": "false"} if rng.random() < 0.5 else {}
    return _statefulset(
        g,
        ns,
        app,
        3,
        template,
        labels,
        annotations,
        pdb=("maxUnavailable", 1),
        anti_affinity=True,
        spread=True,
    )


def _batch_template(g: _Gen, app: str, dedicated: bool, restart_policy: str) -> dict[str, Any]:
    rng = g.rng
    cpu = rng.choice(("500m", "1", "2", "4", "8"))
    mem = rng.choice(("1Gi", "2Gi", "4Gi", "8Gi", "16Gi"))
    main = ContainerSpec(
        "main",
        f"{_APP_REGISTRY}/batch/{app}:{rng.randint(100, 999)}",
        requests={"cpu": cpu, "memory": mem},
        limits={"cpu": cpu, "memory": _double(mem)} if rng.random() < 0.5 else {"memory": mem},
        command=("python", "-m", app.replace("-", "_")),
        env=_pod_env((k.env_var("SPARK_LOCAL_DIRS", "/scratch"),)),
        volume_mounts=(k.volume_mount("scratch", "/scratch"),),
    )
    template: dict[str, Any] = {
        "containers": [main],
        "volumes": [{"emptyDir": {}, "name": "scratch"}],
        "tolerations": [
            k.toleration("dedicated", operator="Equal", value="batch", effect="NoSchedule")
        ],
        "priority_class_name": "low-priority",
        "priority": _PRIORITY["low-priority"],
        "restart_policy": restart_policy,
        "service_account": "batch-runner",
    }
    if dedicated:
        template["node_selector"] = {"dedicated": "batch"}
    return template


def _arch_batch_job(g: _Gen) -> _Workload:
    rng = g.rng
    cron = g.unique("batch", f"{rng.choice(_SERVICES)}-{rng.choice(('report', 'etl', 'sync'))}")
    job = f"{cron}-{(NOW // 60) - rng.randint(10, 5000)}"
    labels = {
        "batch.kubernetes.io/job-name": job,
        "job-name": job,
        "app": cron,
    }
    uid = g.ids.uid()
    labels["batch.kubernetes.io/controller-uid"] = uid
    labels["controller-uid"] = uid
    template = _batch_template(g, cron, rng.random() < 0.7, "Never")
    created = NOW - rng.randint(600, 3 * _DAY)
    return _Workload(
        kind="Job",
        name=job,
        namespace="batch",
        replicas=_replicas(rng, (1, 1, 2, 4, 8, 16)),
        created=created,
        template=template,
        labels=labels,
        owner_kind="Job",
        owner_name=job,
        owner_uid=uid,
        pod_prefix=f"{job}-",
        job_phases=(0.55, 0.1),
    )


def _arch_batch_deploy(g: _Gen) -> _Workload:
    rng = g.rng
    app = g.unique("batch", f"{rng.choice(_SERVICES)}-{rng.choice(('spark', 'ray', 'dask'))}")
    labels = _app_labels(app, "batch", "1.0")
    template = _batch_template(g, app, rng.random() < 0.8, "Always")
    replicas = _replicas(rng, (2, 4, 8, 16, 24))
    return _deployment(g, "batch", app, replicas, template, labels, {})


def _arch_besteffort(g: _Gen) -> _Workload:
    rng = g.rng
    ns = rng.choice(_APP_NAMESPACES)
    app = g.unique(ns, rng.choice(("toolbox", "debug", "echo", "canary", "smoke")))
    labels = _app_labels(app, ns, "latest")
    main = ContainerSpec(
        app,
        rng.choice(("docker.io/library/busybox:1.37", "docker.io/nicolaka/netshoot:v0.13")),
        command=("sleep", "infinity"),
        image_pull_policy="Always",
    )
    template = {"containers": [main], "termination_grace_period_seconds": 5}
    return _deployment(g, ns, app, _replicas(rng, (1, 1, 2, 3)), template, labels, {})


def _arch_sandboxed(g: _Gen) -> _Workload:
    rng = g.rng
    ns = rng.choice(_APP_NAMESPACES)
    app = g.unique(ns, f"{rng.choice(_SERVICES)}-sandbox")
    labels = _app_labels(app, ns, "2.1.0")
    cpu, mem = rng.choice(_CPU[2:8]), rng.choice(_MEM[2:8])
    main = ContainerSpec(
        "runner",
        f"{_APP_REGISTRY}/{ns}/{app}:2.1.0",
        requests={"cpu": cpu, "memory": mem},
        limits={"cpu": cpu, "memory": mem},
        ports=(k.container_port(8080, "http"),),
        probe_port="http",
    )
    template = {
        "containers": [main],
        "runtime_class_name": "gvisor",
        "overhead": {"cpu": "250m", "memory": "120Mi"},
        "node_selector": {"node-pool": "general"},
        "service_account": app,
    }
    replicas = _replicas(rng, (1, 2, 3, 4))
    pdb = ("maxUnavailable", 1) if replicas > 1 else None
    return _deployment(g, ns, app, replicas, template, labels, {}, pdb=pdb)


def _gpu_tolerations() -> list[JsonDict]:
    return [k.toleration(k.GPU_RESOURCE, operator="Exists", effect="NoSchedule")]


def _arch_ml_train(g: _Gen) -> _Workload:
    rng = g.rng
    ns = "ml-training"
    app = g.unique(ns, f"{rng.choice(('llm', 'vision', 'ranker', 'asr', 'embed'))}-train")
    labels = _app_labels(app, ns, "0.1")
    gpus = rng.choice((1, 1, 1, 2, 2, 4, 4, 8))
    main = ContainerSpec(
        "trainer",
        f"nvcr.io/nvidia/pytorch:24.{rng.randint(1, 10):02d}-py3",
        requests={"cpu": str(4 * gpus), "memory": f"{24 * gpus}Gi", k.GPU_RESOURCE: str(gpus)},
        limits={"memory": f"{32 * gpus}Gi", k.GPU_RESOURCE: str(gpus)},
        command=("torchrun", f"--nproc-per-node={gpus}", "train.py"),
        env=_pod_env((k.env_var("NCCL_DEBUG", "WARN"),)),
        volume_mounts=(k.volume_mount("dshm", "/dev/shm"),),
    )
    template: dict[str, Any] = {
        "containers": [main],
        "volumes": [{"emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}, "name": "dshm"}],
        "tolerations": _gpu_tolerations(),
        "service_account": "trainer",
    }
    if gpus == 8:
        template["affinity"] = {
            "nodeAffinity": _required_node_affinity(k.GPU_PRODUCT_LABEL, ["NVIDIA-A100-SXM4-40GB"])
        }
    elif rng.random() < 0.5:
        models = rng.sample(_GPU_PRODUCTS, rng.randint(1, 3))
        if gpus == 8:
            models = ["NVIDIA-A100-SXM4-40GB"]
        template["affinity"] = {
            "nodeAffinity": _required_node_affinity(k.GPU_PRODUCT_LABEL, models)
        }
    if rng.random() < 0.5:
        template["priority_class_name"] = "high-priority"
        template["priority"] = _PRIORITY["high-priority"]
    if rng.random() < 0.5:
        return _statefulset(g, ns, app, _replicas(rng, (1, 2, 4)), template, labels, {})
    return _deployment(g, ns, app, _replicas(rng, (1, 1, 2)), template, labels, {})


def _arch_ml_serve(g: _Gen) -> _Workload:
    rng = g.rng
    ns = "ml-serving"
    app = g.unique(ns, f"{rng.choice(('llm', 'vision', 'ranker', 'asr', 'embed'))}-serve")
    labels = _app_labels(app, ns, "0.3")
    share = rng.choice((100, 200, 250, 250, 300, 500, 500, 700))
    main = ContainerSpec(
        "server",
        "nvcr.io/nvidia/tritonserver:24.08-py3",
        requests={
            "cpu": rng.choice(("1", "2")),
            "memory": rng.choice(("4Gi", "8Gi")),
            k.GPU_MILLI_RESOURCE: str(share),
        },
        limits={"memory": "16Gi", k.GPU_MILLI_RESOURCE: str(share)},
        args=("tritonserver", "--model-repository=/models"),
        ports=(
            k.container_port(8000, "http"),
            k.container_port(8001, "grpc"),
            k.container_port(8002, "metrics"),
        ),
        volume_mounts=(k.volume_mount("models", "/models", read_only=True),),
        probe_port="http",
    )
    template = {
        "containers": [main],
        "volumes": [{"emptyDir": {}, "name": "models"}],
        "tolerations": _gpu_tolerations(),
        "node_selector": {k.GPU_PRESENT_LABEL: "true"},
        "service_account": "inference",
    }
    replicas = _replicas(rng, (1, 2, 2, 3, 4, 6, 8))
    pdb = ("minAvailable", "50%") if replicas > 1 else None
    return _deployment(g, ns, app, replicas, template, labels, _metrics_annotations(8002), pdb=pdb)


def _fixed_workloads(g: _Gen, nodes: int) -> list[_Workload]:
    """Cluster add-ons every cluster has (coredns, metrics-server, an ingress controller)."""
    out = []
    coredns = ContainerSpec(
        "coredns",
        f"{_ECR}/eks/coredns:v1.11.3-eksbuild.2",
        requests={"cpu": "100m", "memory": "70Mi"},
        limits={"memory": "170Mi"},
        args=("-conf", "/etc/coredns/Corefile"),
        ports=(
            k.container_port(53, "dns", protocol="UDP"),
            k.container_port(53, "dns-tcp"),
            k.container_port(9153, "metrics"),
        ),
        volume_mounts=(k.volume_mount("config-volume", "/etc/coredns", read_only=True),),
        probe_port=8080,
    )
    out.append(
        _deployment(
            g,
            "kube-system",
            g.unique("kube-system", "coredns"),
            2,
            {
                "containers": [coredns],
                "volumes": [
                    {
                        "configMap": {
                            "defaultMode": 420,
                            "items": [{"key": "Corefile", "path": "Corefile"}],
                            "name": "coredns",
                        },
                        "name": "config-volume",
                    }
                ],
                "affinity": _hostname_anti_affinity("coredns", required=False),
                "tolerations": [
                    k.toleration("node-role.kubernetes.io/control-plane", effect="NoSchedule"),
                    k.toleration("CriticalAddonsOnly"),
                ],
                "priority_class_name": "system-cluster-critical",
                "priority": _PRIORITY["system-cluster-critical"],
                "service_account": "coredns",
                "topology_spread": [_zone_spread("coredns", hard=False, template_hash=False)],
            },
            {"app": "coredns", "eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"},
            {},
            pdb=("maxUnavailable", 1),
        )
    )
    ms = ContainerSpec(
        "metrics-server",
        "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
        requests={"cpu": "100m", "memory": "200Mi"},
        args=("--cert-dir=/tmp", "--secure-port=10250", "--kubelet-use-node-status-port"),
        ports=(k.container_port(10250, "https"),),
        volume_mounts=(k.volume_mount("tmp-dir", "/tmp"),),
        probe_port="https",
    )
    out.append(
        _deployment(
            g,
            "kube-system",
            g.unique("kube-system", "metrics-server"),
            1,
            {
                "containers": [ms],
                "volumes": [{"emptyDir": {}, "name": "tmp-dir"}],
                "priority_class_name": "system-cluster-critical",
                "priority": _PRIORITY["system-cluster-critical"],
                "service_account": "metrics-server",
                "node_selector": {"kubernetes.io/os": "linux"},
            },
            {"app": "metrics-server", "k8s-app": "metrics-server"},
            {},
        )
    )
    ingress = ContainerSpec(
        "controller",
        "registry.k8s.io/ingress-nginx/controller:v1.11.3",
        requests={"cpu": "100m", "memory": "90Mi"},
        args=("/nginx-ingress-controller", "--election-id=ingress-nginx-leader"),
        ports=(
            k.container_port(80, "http", host_port=80),
            k.container_port(443, "https", host_port=443),
            k.container_port(8443, "webhook"),
        ),
        env=_pod_env((k.env_var("LD_PRELOAD", "/usr/local/lib/libmimalloc.so"),)),
        probe_port=10254,
    )
    out.append(
        _deployment(
            g,
            "ingress-nginx",
            g.unique("ingress-nginx", "ingress-nginx-controller"),
            max(1, min(3, nodes // 10)),
            {
                "containers": [ingress],
                "affinity": _hostname_anti_affinity("ingress-nginx-controller", required=True),
                "node_selector": {"node-pool": "general"},
                "service_account": "ingress-nginx",
                "termination_grace_period_seconds": 300,
            },
            {"app": "ingress-nginx-controller", "app.kubernetes.io/component": "controller"},
            {},
            pdb=("minAvailable", 1),
            anti_affinity=True,
        )
    )
    return out


_ARCHETYPES: tuple[tuple[Callable[[_Gen], _Workload], float, bool], ...] = (
    # (builder, weight, needs GPU nodes)
    (_arch_web, 0.22, False),
    (_arch_api, 0.17, False),
    (_arch_worker, 0.15, False),
    (_arch_cache, 0.04, False),
    (_arch_db, 0.03, False),
    (_arch_batch_job, 0.07, False),
    (_arch_batch_deploy, 0.04, False),
    (_arch_besteffort, 0.05, False),
    (_arch_sandboxed, 0.04, False),
    (_arch_ml_train, 0.07, True),
    (_arch_ml_serve, 0.08, True),
)


# --- many small Deployments -------------------------------------------------------------------

# Requests as multiples of the cluster's unit (see `_small_deployments`), cpu and memory drawn
# apart: most pods ask for about the unit, a few for a quarter or four times it.
_SMALL_STEPS = (0.25, 0.5, 0.5, 1.0, 1.0, 1.0, 2.0, 2.0, 4.0)
# How much more the workload pods ask for than the untainted nodes have, in cpu and in memory:
# with fragmentation, hostname anti-affinity and zone spread, about a tenth of them then fit
# nowhere when all are pending (calibrated on 5,000 nodes).
_SMALL_OVERCOMMIT = 1.02
# Replica counts: P(replicas >= r) = r ** -_SMALL_TAIL (a discrete Pareto), at most
# _SMALL_MAX_REPLICAS: 86 % have 1-5, about 1 in 150 has a hundred or more.
_SMALL_TAIL = 1.1
_SMALL_MAX_REPLICAS = 400
_SMALL_KINDS = ("api", "web", "worker", "consumer", "cron", "svc")


def _heavy_tailed_replicas(rng: random.Random) -> int:
    return min(_SMALL_MAX_REPLICAS, int((1.0 - rng.random()) ** (-1 / _SMALL_TAIL)))


def _small_deployments(g: _Gen, recs: Sequence[_NodeRec], pods: int) -> list[_Workload]:
    """Deployments with `pods` replicas in all, sized to the untainted nodes (the only ones they
    tolerate) so that together they ask for `_SMALL_OVERCOMMIT` times what those nodes have."""
    rng = g.rng
    # Replica counts and request steps first: the unit then makes the total exactly so much.
    shapes: list[tuple[int, float, float]] = []
    while pods > 0:
        replicas = min(_heavy_tailed_replicas(rng), pods)
        pods -= replicas
        shapes.append((replicas, rng.choice(_SMALL_STEPS), rng.choice(_SMALL_STEPS)))
    open_nodes = [r.obj["status"]["allocatable"] for r in recs if not r.obj["spec"].get("taints")]
    unit_cpu = _SMALL_OVERCOMMIT * sum(k.resource_units("cpu", a["cpu"]) for a in open_nodes)
    unit_mem = _SMALL_OVERCOMMIT * sum(k.resource_units("memory", a["memory"]) for a in open_nodes)
    unit_cpu /= max(1.0, sum(r * c for r, c, _ in shapes))
    unit_mem /= max(1.0, sum(r * m for r, _, m in shapes))
    out: list[_Workload] = []
    for replicas, cpu_step, mem_step in shapes:
        ns = rng.choice(_APP_NAMESPACES)
        app = g.unique(ns, f"{rng.choice(_SERVICES)}-{rng.choice(_SMALL_KINDS)}")
        version = f"v{rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 9)}"
        labels = _app_labels(app, ns, version)
        cpu = max(10, round(unit_cpu * cpu_step / 10) * 10)
        mem = max(1, round(unit_mem * mem_step / 2**20)) * 2**20
        main = ContainerSpec(
            app,
            f"{_APP_REGISTRY}/{ns}/{app}:{version}",
            requests={"cpu": k.cpu_quantity(cpu), "memory": k.memory_quantity(mem)},
            limits={"memory": k.memory_quantity(2 * mem)},
            ports=(k.container_port(8080, "http"),),
            env=_pod_env(),
            probe_port="http",
        )
        anti_affinity = rng.random() < 0.15
        spread = rng.random() < 0.15
        template: dict[str, Any] = {
            "containers": [main],
            "node_selector": {"kubernetes.io/os": "linux"},
            "service_account": app,
        }
        if anti_affinity:
            template["affinity"] = _hostname_anti_affinity(app, required=True)
        if spread:
            template["topology_spread"] = [_zone_spread(app, hard=True, template_hash=False)]
        pdb = ("maxUnavailable", 1) if replicas > 1 and rng.random() < 0.5 else None
        wl = _deployment(
            g,
            ns,
            app,
            replicas,
            template,
            labels,
            _metrics_annotations(8080),
            pdb=pdb,
            anti_affinity=anti_affinity,
            spread=spread,
        )
        wl.burst = NOW - rng.randint(1, 3600)
        out.append(wl)
    return out


# --- daemonsets -------------------------------------------------------------------------------


def _hostpath(name: str, path: str, kind: str = "") -> JsonDict:
    return {"hostPath": {"path": path, "type": kind}, "name": name}


_PRIVILEGED = {"privileged": True}


def _daemonsets(g: _Gen, count: int) -> list[tuple[_Workload, bool]]:
    """(DaemonSet, GPU nodes only); the first `count` of the generic ones plus the device plugin."""
    all_tol = [k.toleration()]
    crit = {
        "priority_class_name": "system-node-critical",
        "priority": _PRIORITY["system-node-critical"],
    }
    defs: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
        (
            "kube-system",
            "kube-proxy",
            {"k8s-app": "kube-proxy"},
            {
                "containers": [
                    ContainerSpec(
                        "kube-proxy",
                        f"{_ECR}/eks/kube-proxy:v1.31.3-minimal-eksbuild.2",
                        requests={"cpu": "100m"},
                        command=(
                            "kube-proxy",
                            "--v=2",
                            "--config=/var/lib/kube-proxy-config/config",
                        ),
                        env=(k.env_field("NODE_NAME", "spec.nodeName"),),
                        volume_mounts=(
                            k.volume_mount("varlog", "/var/log"),
                            k.volume_mount("xtables-lock", "/run/xtables.lock"),
                            k.volume_mount("lib-modules", "/lib/modules", read_only=True),
                            k.volume_mount("kubeconfig", "/var/lib/kube-proxy/"),
                        ),
                        security_context=_PRIVILEGED,
                    )
                ],
                "volumes": [
                    _hostpath("varlog", "/var/log"),
                    _hostpath("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                    _hostpath("lib-modules", "/lib/modules"),
                    {"configMap": {"defaultMode": 420, "name": "kube-proxy"}, "name": "kubeconfig"},
                ],
                "host_network": True,
                "service_account": "kube-proxy",
                **crit,
            },
        ),
        (
            "kube-system",
            "aws-node",
            {"k8s-app": "aws-node", "app.kubernetes.io/name": "aws-node"},
            {
                "init_containers": [
                    ContainerSpec(
                        "aws-vpc-cni-init",
                        f"{_ECR}/amazon-k8s-cni-init:v1.19.0-eksbuild.1",
                        requests={"cpu": "25m"},
                        env=(k.env_var("DISABLE_TCP_EARLY_DEMUX", "false"),),
                        volume_mounts=(k.volume_mount("cni-bin-dir", "/host/opt/cni/bin"),),
                        security_context=_PRIVILEGED,
                    )
                ],
                "containers": [
                    ContainerSpec(
                        "aws-node",
                        f"{_ECR}/amazon-k8s-cni:v1.19.0-eksbuild.1",
                        requests={"cpu": "25m"},
                        ports=(k.container_port(61678, "metrics"),),
                        env=(
                            k.env_var("AWS_VPC_K8S_CNI_LOGLEVEL", "DEBUG"),
                            k.env_var("WARM_ENI_TARGET", "1"),
                            k.env_field("MY_NODE_NAME", "spec.nodeName"),
                        ),
                        volume_mounts=(
                            k.volume_mount("cni-bin-dir", "/host/opt/cni/bin"),
                            k.volume_mount("cni-net-dir", "/host/etc/cni/net.d"),
                            k.volume_mount("log-dir", "/host/var/log/aws-routed-eni"),
                            k.volume_mount("run-dir", "/var/run/aws-node"),
                            k.volume_mount("xtables-lock", "/run/xtables.lock"),
                        ),
                        security_context={"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                    ),
                    ContainerSpec(
                        "aws-eks-nodeagent",
                        f"{_ECR}/amazon/aws-network-policy-agent:v1.1.5-eksbuild.1",
                        requests={"cpu": "25m"},
                        args=("--enable-ipv6=false", "--enable-network-policy=false"),
                        security_context=_PRIVILEGED,
                    ),
                ],
                "volumes": [
                    _hostpath("cni-bin-dir", "/opt/cni/bin"),
                    _hostpath("cni-net-dir", "/etc/cni/net.d"),
                    _hostpath("log-dir", "/var/log/aws-routed-eni", "DirectoryOrCreate"),
                    _hostpath("run-dir", "/var/run/aws-node", "DirectoryOrCreate"),
                    _hostpath("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                ],
                "host_network": True,
                "service_account": "aws-node",
                "termination_grace_period_seconds": 10,
                **crit,
            },
        ),
        (
            "monitoring",
            "node-exporter",
            {"app": "node-exporter", "app.kubernetes.io/name": "prometheus-node-exporter"},
            {
                "containers": [
                    ContainerSpec(
                        "node-exporter",
                        "quay.io/prometheus/node-exporter:v1.8.2",
                        requests={"cpu": "100m", "memory": "30Mi"},
                        limits={"cpu": "250m", "memory": "50Mi"},
                        args=(
                            "--path.procfs=/host/proc",
                            "--path.sysfs=/host/sys",
                            "--path.rootfs=/host/root",
                        ),
                        ports=(k.container_port(9100, "metrics"),),
                        volume_mounts=(
                            k.volume_mount("proc", "/host/proc", read_only=True),
                            k.volume_mount("sys", "/host/sys", read_only=True),
                            k.volume_mount("root", "/host/root", read_only=True),
                        ),
                        probe_port=9100,
                    )
                ],
                "volumes": [
                    _hostpath("proc", "/proc"),
                    _hostpath("sys", "/sys"),
                    _hostpath("root", "/"),
                ],
                "host_network": True,
                "service_account": "node-exporter",
                "security_context": {"fsGroup": 65534, "runAsNonRoot": True, "runAsUser": 65534},
            },
        ),
        (
            "logging",
            "fluent-bit",
            {"app.kubernetes.io/name": "fluent-bit", "app": "fluent-bit"},
            {
                "containers": [
                    ContainerSpec(
                        "fluent-bit",
                        "cr.fluentbit.io/fluent/fluent-bit:3.1.9",
                        requests={"cpu": "50m", "memory": "64Mi"},
                        limits={"memory": "256Mi"},
                        ports=(k.container_port(2020, "http"),),
                        volume_mounts=(
                            k.volume_mount("config", "/fluent-bit/etc/conf"),
                            k.volume_mount("varlog", "/var/log"),
                            k.volume_mount(
                                "varlibdockercontainers",
                                "/var/lib/docker/containers",
                                read_only=True,
                            ),
                            k.volume_mount("etcmachineid", "/etc/machine-id", read_only=True),
                        ),
                        probe_port="http",
                    )
                ],
                "volumes": [
                    {"configMap": {"defaultMode": 420, "name": "fluent-bit"}, "name": "config"},
                    _hostpath("varlog", "/var/log"),
                    _hostpath("varlibdockercontainers", "/var/lib/docker/containers"),
                    _hostpath("etcmachineid", "/etc/machine-id", "File"),
                ],
                "service_account": "fluent-bit",
            },
        ),
        (
            "kube-system",
            "ebs-csi-node",
            {"app": "ebs-csi-node", "app.kubernetes.io/name": "aws-ebs-csi-driver"},
            {
                "containers": [
                    ContainerSpec(
                        "ebs-plugin",
                        f"{_ECR}/eks/aws-ebs-csi-driver:v1.37.0",
                        requests={"cpu": "10m", "memory": "40Mi"},
                        limits={"memory": "256Mi"},
                        args=("node", "--endpoint=$(CSI_ENDPOINT)", "--logging-format=text"),
                        ports=(k.container_port(9808, "healthz"),),
                        env=(
                            k.env_var("CSI_ENDPOINT", "unix:/csi/csi.sock"),
                            k.env_field("CSI_NODE_NAME", "spec.nodeName"),
                        ),
                        volume_mounts=(
                            k.volume_mount("kubelet-dir", "/var/lib/kubelet"),
                            k.volume_mount("plugin-dir", "/csi"),
                            k.volume_mount("device-dir", "/dev"),
                        ),
                        probe_port="healthz",
                        security_context=_PRIVILEGED,
                    ),
                    ContainerSpec(
                        "node-driver-registrar",
                        f"{_ECR}/eks/csi-node-driver-registrar:v2.12.0-eks-1-31-7",
                        requests={"cpu": "10m", "memory": "40Mi"},
                        limits={"memory": "256Mi"},
                        args=("--csi-address=$(ADDRESS)", "--v=2"),
                        env=(k.env_var("ADDRESS", "/csi/csi.sock"),),
                        volume_mounts=(
                            k.volume_mount("plugin-dir", "/csi"),
                            k.volume_mount("registration-dir", "/registration"),
                        ),
                    ),
                    ContainerSpec(
                        "liveness-probe",
                        f"{_ECR}/eks/livenessprobe:v2.14.0-eks-1-31-7",
                        requests={"cpu": "10m", "memory": "40Mi"},
                        limits={"memory": "256Mi"},
                        args=("--csi-address=/csi/csi.sock",),
                        volume_mounts=(k.volume_mount("plugin-dir", "/csi"),),
                    ),
                ],
                "volumes": [
                    _hostpath("kubelet-dir", "/var/lib/kubelet", "Directory"),
                    _hostpath(
                        "plugin-dir",
                        "/var/lib/kubelet/plugins/ebs.csi.aws.com/",
                        "DirectoryOrCreate",
                    ),
                    _hostpath(
                        "registration-dir", "/var/lib/kubelet/plugins_registry/", "Directory"
                    ),
                    _hostpath("device-dir", "/dev", "Directory"),
                ],
                "service_account": "ebs-csi-node-sa",
                "termination_grace_period_seconds": 30,
                **crit,
            },
        ),
    ]
    out: list[tuple[_Workload, bool]] = []
    for ns, name, labels, template in defs[:count]:
        template.setdefault("tolerations", all_tol)
        out.append((_ds(g, ns, name, labels, template), False))
    if count >= 2 and g.has_gpu:
        template = {
            "containers": [
                ContainerSpec(
                    "nvidia-device-plugin-ctr",
                    "nvcr.io/nvidia/k8s-device-plugin:v0.17.0",
                    env=(k.env_var("FAIL_ON_INIT_ERROR", "false"),),
                    volume_mounts=(
                        k.volume_mount("device-plugin", "/var/lib/kubelet/device-plugins"),
                    ),
                    security_context={
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                )
            ],
            "volumes": [_hostpath("device-plugin", "/var/lib/kubelet/device-plugins")],
            "tolerations": [k.toleration("CriticalAddonsOnly"), *_gpu_tolerations()],
            "node_selector": {k.GPU_PRESENT_LABEL: "true"},
            **crit,
        }
        labels = {"app.kubernetes.io/name": "nvidia-device-plugin", "app": "nvidia-device-plugin"}
        out.append(
            (_ds(g, "kube-system", "nvidia-device-plugin-daemonset", labels, template), True)
        )
    return out


def _ds(g: _Gen, ns: str, name: str, labels: dict[str, str], template: dict[str, Any]) -> _Workload:
    g.unique(ns, name)
    tol = list(template.get("tolerations") or [])
    for t in k.daemonset_tolerations():
        if t not in tol:
            tol.append(t)
    template = {**template, "tolerations": tol}
    labels = {
        **labels,
        "controller-revision-hash": f"{g.rng.randrange(16**9, 16**10):x}"[:10],
        "pod-template-generation": str(g.rng.randint(1, 6)),
    }
    return _Workload(
        kind="DaemonSet",
        name=name,
        namespace=ns,
        replicas=0,
        created=g.created(180),
        template=template,
        labels=labels,
        owner_kind="DaemonSet",
        owner_name=name,
        owner_uid=g.ids.uid(),
        pod_prefix=f"{name}-",
    )


# --- placement --------------------------------------------------------------------------------


def _template_requests(template: Mapping[str, Any]) -> dict[str, int]:
    spec = {
        "containers": [k.container(c) for c in template.get("containers", ())],
        "initContainers": [k.container(c) for c in template.get("init_containers", ())],
        "overhead": template.get("overhead") or {},
    }
    return k.effective_requests(spec)


@dataclass
class _Draft:
    """A pod written unbound, and what its status will say once the core has placed it."""

    obj: JsonDict
    role: str  # "run" (to be placed), "terminal" (Succeeded/Failed), "pending" (just created)
    phase: str
    created: int
    start_delay: int
    restart_count: int
    exit_code: int
    host_network: bool

    @property
    def key(self) -> str:
        meta = self.obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}"


def _pod_ip(r: _NodeRec, host_network: bool) -> str:
    if host_network:
        return r.ip
    ip = f"{r.pod_net}{r.next_ip}"
    r.next_ip = r.next_ip + 1 if r.next_ip < 254 else 4
    return ip


def _settle(
    d: _Draft,
    node: _NodeRec | None,
    devices: list[int],
    ids: k.IdSource,
    unschedulable: str | None,
) -> None:
    """Writes where ``d`` runs (or why it does not) into its pod: spec, annotations, status."""
    spec, meta = d.obj["spec"], d.obj["metadata"]
    if node is None:
        info = PodStatusInfo(phase="Pending", unschedulable_message=unschedulable)
        d.obj["status"] = k.pod_status(ids, spec, info, created=d.created)
        return
    spec["nodeName"] = node.name
    if devices:
        meta.setdefault("annotations", {})[k.GPU_DEVICES_ANNOTATION] = k.devices_annotation(devices)
    info = PodStatusInfo(
        phase=d.phase,
        pod_ip=_pod_ip(node, d.host_network) if d.phase == "Running" else None,
        host_ip=node.ip,
        started=max(d.created, node.created) + d.start_delay,
        restart_count=d.restart_count,
        exit_code=d.exit_code,
        ready=node.ready,
    )
    d.obj["status"] = k.pod_status(ids, spec, info, created=d.created)


# --- the cluster ------------------------------------------------------------------------------


def generate_cluster(
    nodes: int,
    pods: int,
    seed: int = 0,
    *,
    pending_fraction: float = 0.0,
    gpu_fraction: float = 0.12,
    not_ready_fraction: float = 0.01,
    cordoned_fraction: float = 0.01,
    daemonsets: int | None = None,
    small_deployments: bool = False,
) -> JsonDict:
    """A seeded, realistic cluster as a Kubernetes `List` of Nodes, Pods and PDBs.

    `nodes` nodes and exactly `pods` pods. `pending_fraction` of the pods are left unbound
    (freshly created, Pending); pods that fit nowhere are Pending too. `gpu_fraction` of the
    nodes form the GPU pool; `not_ready_fraction` of the nodes are NotReady and
    `cordoned_fraction` cordoned (after placement, so they keep their pods). `daemonsets` is how
    many per-node DaemonSets run (default: up to 5, fewer when pods are scarce: they take at most
    a quarter of the pods), plus the NVIDIA device plugin on GPU nodes.

    `small_deployments` replaces the mix of workloads by many small Deployments: replica counts
    heavy-tailed (most 1-5, a few in the hundreds), 15 % with required anti-affinity by
    hostname, 15 % with a DoNotSchedule zone spread, one container each, tolerating no taint, and
    asking together for about what the untainted nodes have, so that when all are pending about a
    tenth fit nowhere. A Deployment's Pending pods were created in one burst.
    """
    if nodes < 0 or pods < 0:
        raise ValueError("nodes and pods must be >= 0")
    if not 0.0 <= pending_fraction <= 1.0:
        raise ValueError("pending_fraction must be within [0, 1]")
    g = _Gen(seed)
    rng, ids = g.rng, g.ids
    recs = _make_nodes(g, nodes, gpu_fraction, not_ready_fraction) if nodes else []
    gpu_nodes = sum(1 for r in recs if r.gpus)
    g.has_gpu = gpu_nodes > 0

    # DaemonSets first: one pod per node they select.
    if daemonsets is None:
        daemonsets = min(5, (pods // 4) // nodes) if nodes else 0
    ds_list = _daemonsets(g, max(0, min(daemonsets, 5))) if nodes else []
    ds_pods = sum(gpu_nodes if gpu_only else nodes for _, gpu_only in ds_list)
    while ds_list and ds_pods > pods:
        _, gpu_only = ds_list.pop()
        ds_pods -= gpu_nodes if gpu_only else nodes

    # Plan the workloads (replica counts) so the pending pods can be drawn up front.
    budget = pods - ds_pods
    workloads: list[_Workload] = []
    # GPU workloads until they ask for all the GPU devices (some then stay Pending: shares
    # fragment devices that whole-GPU pods need).
    gpu_budget = 1.0 * k.GPU_MILLI_PER_DEVICE * sum(r.gpus for r in recs)
    with_gpu = [(f, w) for f, w, _ in _ARCHETYPES]
    without_gpu = [(f, w) for f, w, gpu in _ARCHETYPES if not gpu]
    if budget > 0 and nodes:
        for wl in _fixed_workloads(g, nodes):
            if wl.replicas <= budget:
                workloads.append(wl)
                budget -= wl.replicas
    if small_deployments:
        workloads += _small_deployments(g, recs, budget)
        budget = 0
    while budget > 0:
        archetypes = with_gpu if gpu_budget > 0 else without_gpu
        build = rng.choices([f for f, _ in archetypes], [w for _, w in archetypes])[0]
        wl = build(g)
        wl.replicas = min(wl.replicas, budget)
        count, milli = k.gpu_need(_template_requests(wl.template))
        gpu_budget -= count * milli * wl.replicas
        if wl.pdb is not None and wl.replicas < 2 and wl.pdb[0] == "minAvailable":
            wl.pdb = None
        budget -= wl.replicas
        workloads.append(wl)
    total_workload_pods = pods - ds_pods
    n_pending = min(round(pending_fraction * pods), total_workload_pods)
    pending = set(rng.sample(range(total_workload_pods), n_pending))

    drafts: list[_Draft] = []
    pdb_objs: list[JsonDict] = []

    # DaemonSet pods, each pinned to its node as the DaemonSet controller pins them.
    for wl, gpu_only in ds_list:
        for r in recs:
            if gpu_only and not r.gpus:
                continue
            name = g.pod_name(wl.namespace, wl.pod_prefix)
            template = dict(wl.template)
            template["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": [r.name]}
                                ]
                            }
                        ]
                    }
                }
            }
            created = max(wl.created, r.created) + rng.randint(5, 120)
            obj = k.pod(
                name,
                wl.namespace,
                ids=ids,
                created=created,
                labels=wl.labels,
                owner=k.owner_reference("DaemonSet", wl.name, wl.owner_uid),
                generate_name=wl.pod_prefix,
                **template,
            )
            restarts = rng.choice((0, 0, 0, 0, 1, 2))
            host_network = bool(template.get("host_network"))
            drafts.append(_Draft(obj, "run", "Running", created, 3, restarts, 0, host_network))

    # Workload pods, in workload creation order.
    workloads.sort(key=lambda w: w.created)
    index = 0
    for wl in workloads:
        for i in range(wl.replicas):
            is_pending = index in pending
            index += 1
            if wl.kind == "StatefulSet":
                name = f"{wl.name}-{i}"
            else:
                name = g.pod_name(wl.namespace, wl.pod_prefix)
            labels = dict(wl.labels)
            extra: dict[str, Any] = {}
            volumes = list(wl.template.get("volumes") or [])
            if wl.kind == "StatefulSet":
                labels["apps.kubernetes.io/pod-index"] = str(i)
                labels["statefulset.kubernetes.io/pod-name"] = name
                extra = {"hostname": name, "subdomain": wl.name}
                volumes.insert(
                    0, {"name": "data", "persistentVolumeClaim": {"claimName": f"data-{name}"}}
                )
            phase = "Running"
            if wl.kind == "Job":
                u = rng.random()
                p_ok, p_fail = wl.job_phases
                phase = "Succeeded" if u < p_ok else "Failed" if u < p_ok + p_fail else "Running"
            if is_pending:
                role = "pending"
                created = wl.burst if wl.burst is not None else NOW - rng.randint(1, 90)
            elif phase in k.TERMINAL_PHASES:
                role = "terminal"
                created = max(wl.created, NOW - 30 * _DAY) + rng.randint(0, 3600)
            else:
                role = "run"
                created = min(wl.created + rng.randint(30, 7 * _DAY), NOW - 600)
            owner_api = "batch/v1" if wl.owner_kind == "Job" else "apps/v1"
            template = {**wl.template, "volumes": volumes, **extra}
            obj = k.pod(
                name,
                wl.namespace,
                ids=ids,
                created=created,
                labels=labels,
                annotations=dict(wl.annotations),
                owner=k.owner_reference(
                    wl.owner_kind, wl.owner_name, wl.owner_uid, api_version=owner_api
                ),
                generate_name=None if wl.kind == "StatefulSet" else wl.pod_prefix,
                **template,
            )
            drafts.append(
                _Draft(
                    obj,
                    role,
                    phase,
                    created,
                    rng.randint(1, 20),
                    rng.choice((0,) * 12 + (1, 2, 5)),
                    rng.choice((1, 2, 137)),
                    bool(template.get("host_network")),
                )
            )
        if wl.pdb is not None and wl.replicas > 0:
            key, value = wl.pdb
            pdb_objs.append(
                k.pdb(
                    g.unique(wl.namespace, f"{wl.name}-pdb"),
                    wl.namespace,
                    ids=ids,
                    created=wl.created,
                    match_labels={"app": wl.labels.get("app", wl.name)},
                    min_available=value if key == "minAvailable" else None,
                    max_unavailable=value if key == "maxUnavailable" else None,
                    labels={"app.kubernetes.io/name": wl.labels.get("app", wl.name)},
                )
            )

    # The core places what is meant to run, and finds terminal pods a node they could have used.
    node_objs = [r.obj for r in recs]
    nodes_doc = document(node_objs)
    placed = random_fit(nodes_doc, [d.obj for d in drafts if d.role == "run"], seed)
    homes = could_run(nodes_doc, [d.obj for d in drafts if d.role == "terminal"], seed)
    by_name = {r.name: r for r in recs}
    for d in drafts:
        if d.role == "pending":
            continue  # written Pending and unbound already
        if d.role == "terminal":
            home = homes.get(d.key)
            _settle(d, by_name[home] if home else None, [], ids, None)
        elif d.key in placed.nodes:
            _settle(d, by_name[placed.nodes[d.key]], placed.devices.get(d.key, []), ids, None)
        else:
            _settle(d, None, [], ids, placed.unschedulable.get(d.key))
    pod_objs = [d.obj for d in drafts]

    # Budgets report what the disruption controller would, from the pods as placed.
    statuses = budget_counts(pod_objs, pdb_objs)
    for obj in pdb_objs:
        meta = obj["metadata"]
        obj["status"] = k.pdb_status(statuses[f"{meta['namespace']}/{meta['name']}"], NOW)

    # NotReady nodes stop reporting, and a few nodes are cordoned (kubectl cordon), now that they
    # hold pods.
    for r in recs:
        if not r.ready:
            lost = NOW - 3600
            taints = r.obj["spec"].setdefault("taints", [])
            taints.append(k.taint("node.kubernetes.io/unreachable", "NoSchedule", added=lost))
            taints.append(k.taint("node.kubernetes.io/unreachable", "NoExecute", added=lost))
    for i in sorted(_pick_count(rng, len(recs), cordoned_fraction)):
        obj = recs[i].obj
        obj["spec"]["unschedulable"] = True
        taints = obj["spec"].setdefault("taints", [])
        taints.append(
            k.taint(
                "node.kubernetes.io/unschedulable", "NoSchedule", added=NOW - rng.randint(600, _DAY)
            )
        )

    node_objs = sorted(node_objs, key=lambda o: o["metadata"]["name"])
    pod_objs.sort(key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
    pdb_objs.sort(key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
    return k.k8s_list([*node_objs, *pod_objs, *pdb_objs])


def generate_cluster_json(
    nodes: int,
    pods: int,
    seed: int = 0,
    *,
    pending_fraction: float = 0.0,
    gpu_fraction: float = 0.12,
    not_ready_fraction: float = 0.01,
    cordoned_fraction: float = 0.01,
    daemonsets: int | None = None,
    small_deployments: bool = False,
    indent: int | None = None,
) -> bytes:
    """`generate_cluster` serialised: keys sorted like kubectl, compact unless `indent` is given
    (kubectl itself prints `indent=4`)."""
    return k.dumps(
        generate_cluster(
            nodes,
            pods,
            seed,
            pending_fraction=pending_fraction,
            gpu_fraction=gpu_fraction,
            not_ready_fraction=not_ready_fraction,
            cordoned_fraction=cordoned_fraction,
            daemonsets=daemonsets,
            small_deployments=small_deployments,
        ),
        indent=indent,
    )


def cluster_json_at(path: Path | None, nodes: int, pods: int, seed: int, **options: Any) -> bytes:
    """`generate_cluster_json(nodes, pods, seed, **options)`, read from `path` when it exists and
    written there when it does not (a benchmark's cluster, generated once for many runs)."""
    if path is not None and path.exists():
        return path.read_bytes()
    data = generate_cluster_json(nodes, pods, seed, **options)
    if path is not None:
        path.write_bytes(data)
    return data
