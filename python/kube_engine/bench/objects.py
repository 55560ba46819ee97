"""Kubernetes objects as JSON dicts, shaped like what `kubectl get -o json` prints.

This is the one place that knows the shapes of the Node, Pod and PodDisruptionBudget objects the
workload generators write (synthetic clusters and the openb trace), and the conventions of
``docs/encoding.md`` (GPU devices, GPU shares), and helpers to split a ``List`` into the typed
lists the official client can deserialize. It decides nothing a Kubernetes rule decides: effective
requests, quantities and budgets come from the core, and placement from
:mod:`kube_engine.bench.placing`.

Builders may share immutable-in-practice sub-dicts (affinity, tolerations, ports) between the
objects they return: copy an object (``copy.deepcopy``) before mutating it in place.

Everything here is plain data: dicts of str/int/bool/list/dict, ready for ``json.dumps``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kube_engine._core import effective_request as _effective_request
from kube_engine._core import parse_quantity as _parse_quantity

JsonDict = dict[str, Any]

# --- well-known names -------------------------------------------------------------------------

GPU_RESOURCE = "nvidia.com/gpu"
GPU_MILLI_RESOURCE = "kube-engine.io/gpu-milli"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_DEVICES_ANNOTATION = "kube-engine.io/gpu-devices"
EVICT_ANNOTATION = "kube-engine.io/evict"
HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_MILLI_PER_DEVICE = 1000
SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

# --- quantities (parsed by the Rust core: one implementation of Kubernetes' rules) -------------


def resource_units(resource: str, value: str | int | float) -> int:
    """A quantity in the integer unit kube-scheduler counts: milli for cpu, else whole units."""
    milli, units = _parse_quantity(str(value))
    return milli if resource == "cpu" else units


def cpu_quantity(milli: int) -> str:
    """CPU as Kubernetes prints it: whole cores as "2", otherwise milli as "250m"."""
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(n_bytes: int) -> str:
    """Bytes in the largest binary suffix that divides them exactly ("4Gi", "1536Mi", "12Ki")."""
    for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n_bytes and n_bytes % factor == 0:
            return f"{n_bytes // factor}{suffix}"
    return str(n_bytes)


# --- identifiers and times --------------------------------------------------------------------

# Kubernetes' rand.SafeEncodeString alphabet: generated name suffixes, pod-template-hash.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class IdSource:
    """Deterministic identifiers (UIDs, resourceVersions, name suffixes) from a seeded RNG."""

    def __init__(self, rng: random.Random, first_resource_version: int = 1000) -> None:
        self.rng = rng
        self._rv = first_resource_version

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def resource_version(self) -> str:
        self._rv += self.rng.randint(1, 40)
        return str(self._rv)

    def suffix(self, n: int = 5) -> str:
        return "".join(self.rng.choice(_SAFE_ALPHABET) for _ in range(n))

    def hex(self, n_chars: int) -> str:
        return f"{self.rng.getrandbits(4 * n_chars):0{n_chars}x}"


def timestamp(epoch_seconds: int | float) -> str:
    """RFC 3339 UTC timestamp with second precision, as the API server prints it."""
    return datetime.fromtimestamp(int(epoch_seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(ts: str) -> int:
    """Inverse of `timestamp`."""
    return int(datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def image_digest(image: str) -> str:
    """A stable fake registry digest for an image reference (same image → same digest)."""
    return hashlib.sha256(image.encode()).hexdigest()


def image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{image_digest(image)}"


# --- metadata ---------------------------------------------------------------------------------


def owner_reference(
    kind: str, name: str, uid: str, *, api_version: str = "apps/v1", controller: bool = True
) -> JsonDict:
    return {
        "apiVersion": api_version,
        "blockOwnerDeletion": True,
        "controller": controller,
        "kind": kind,
        "name": name,
        "uid": uid,
    }


def object_meta(
    name: str,
    *,
    uid: str,
    resource_version: str,
    created: int,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    owner_references: Sequence[JsonDict] | None = None,
    generate_name: str | None = None,
    generation: int | None = None,
) -> JsonDict:
    meta: JsonDict = {
        "creationTimestamp": timestamp(created),
        "name": name,
        "resourceVersion": resource_version,
        "uid": uid,
    }
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner_references:
        meta["ownerReferences"] = list(owner_references)
    if generate_name is not None:
        meta["generateName"] = generate_name
    if generation is not None:
        meta["generation"] = generation
    return meta


def k8s_list(items: Iterable[JsonDict], *, kind: str = "List", api_version: str = "v1") -> JsonDict:
    """A list as `kubectl get ... -o json` prints it (kind `List` for mixed kinds)."""
    return {
        "apiVersion": api_version,
        "items": list(items),
        "kind": kind,
        "metadata": {"resourceVersion": ""},
    }


def dumps(obj: Any, *, indent: int | None = None) -> bytes:
    """Serialise deterministically: keys sorted (as kubectl prints them), compact by default."""
    if indent is None:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(obj, sort_keys=True, indent=indent, ensure_ascii=False)
    return text.encode()


# --- taints and tolerations -------------------------------------------------------------------


def taint(key: str, effect: str, value: str | None = None, *, added: int | None = None) -> JsonDict:
    t: JsonDict = {"effect": effect, "key": key}
    if value is not None:
        t["value"] = value
    if added is not None:
        t["timeAdded"] = timestamp(added)
    return t


def toleration(
    key: str | None = None,
    *,
    operator: str = "Exists",
    value: str | None = None,
    effect: str | None = None,
    seconds: int | None = None,
) -> JsonDict:
    t: JsonDict = {"operator": operator}
    if key is not None:
        t["key"] = key
    if value is not None:
        t["value"] = value
    if effect is not None:
        t["effect"] = effect
    if seconds is not None:
        t["tolerationSeconds"] = seconds
    return t


def default_tolerations(seconds: int = 300) -> list[JsonDict]:
    """The NoExecute tolerations the DefaultTolerationSeconds admission plugin adds to every pod."""
    return [
        toleration("node.kubernetes.io/not-ready", effect="NoExecute", seconds=seconds),
        toleration("node.kubernetes.io/unreachable", effect="NoExecute", seconds=seconds),
    ]


def daemonset_tolerations() -> list[JsonDict]:
    """The tolerations the DaemonSet controller adds to its pods."""
    return [
        toleration("node.kubernetes.io/not-ready", effect="NoExecute"),
        toleration("node.kubernetes.io/unreachable", effect="NoExecute"),
        toleration("node.kubernetes.io/disk-pressure", effect="NoSchedule"),
        toleration("node.kubernetes.io/memory-pressure", effect="NoSchedule"),
        toleration("node.kubernetes.io/pid-pressure", effect="NoSchedule"),
        toleration("node.kubernetes.io/unschedulable", effect="NoSchedule"),
    ]


# --- containers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerSpec:
    """What varies between containers; `container()` fills in the fields the API server defaults."""

    name: str
    image: str
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    ports: Sequence[JsonDict] = ()
    env: Sequence[JsonDict] = ()
    volume_mounts: Sequence[JsonDict] = ()
    command: Sequence[str] = ()
    args: Sequence[str] = ()
    restart_policy: str | None = None  # "Always" on an init container makes it a sidecar
    probe_port: int | str | None = None  # HTTP liveness/readiness probes on this port
    security_context: JsonDict | None = None
    image_pull_policy: str = "IfNotPresent"


def container_port(
    port: int, name: str | None = None, *, protocol: str = "TCP", host_port: int | None = None
) -> JsonDict:
    p: JsonDict = {"containerPort": port, "protocol": protocol}
    if name is not None:
        p["name"] = name
    if host_port is not None:
        p["hostPort"] = host_port
    return p


def env_var(name: str, value: str) -> JsonDict:
    return {"name": name, "value": value}


def env_field(name: str, field_path: str) -> JsonDict:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}}


def volume_mount(name: str, path: str, *, read_only: bool = False) -> JsonDict:
    m: JsonDict = {"mountPath": path, "name": name}
    if read_only:
        m["readOnly"] = True
    return m


def _probe(port: int | str, path: str, *, initial_delay: int) -> JsonDict:
    return {
        "failureThreshold": 3,
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": 10,
        "successThreshold": 1,
        "timeoutSeconds": 1,
    }


def container(spec: ContainerSpec, extra_mounts: Sequence[JsonDict] = ()) -> JsonDict:
    """A container as the API server stores it (defaults filled in)."""
    c: JsonDict = {
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "name": spec.name,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    requests = dict(spec.requests)
    limits = dict(spec.limits)
    # The API server defaults a missing request to the limit.
    for k, v in limits.items():
        requests.setdefault(k, v)
    if requests:
        c["resources"]["requests"] = requests
    if limits:
        c["resources"]["limits"] = limits
    if spec.command:
        c["command"] = list(spec.command)
    if spec.args:
        c["args"] = list(spec.args)
    if spec.ports:
        c["ports"] = list(spec.ports)
    if spec.env:
        c["env"] = list(spec.env)
    mounts = list(spec.volume_mounts) + list(extra_mounts)
    if mounts:
        c["volumeMounts"] = mounts
    if spec.restart_policy is not None:
        c["restartPolicy"] = spec.restart_policy
    if spec.probe_port is not None:
        c["livenessProbe"] = _probe(spec.probe_port, "/healthz", initial_delay=15)
        c["readinessProbe"] = _probe(spec.probe_port, "/ready", initial_delay=5)
    if spec.security_context is not None:
        c["securityContext"] = spec.security_context
    return c


def service_account_volume(suffix: str) -> JsonDict:
    """The projected token volume the ServiceAccount admission plugin adds to every pod."""
    return {
        "name": f"kube-api-access-{suffix}",
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        "name": "kube-root-ca.crt",
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "fieldRef": {
                                    "apiVersion": "v1",
                                    "fieldPath": "metadata.namespace",
                                },
                                "path": "namespace",
                            }
                        ]
                    }
                },
            ],
        },
    }


# --- effective requests (docs/encoding.md) ----------------------------------------------------


def effective_requests(pod_spec: Mapping[str, Any]) -> dict[str, int]:
    """What kube-scheduler charges a pod, computed by the Rust core (the snapshot's own code):
    cpu in milli, memory/storage in bytes, others in units, plus 1 of `pods`; a GPU demand is given
    back in the encoding's resource names (`nvidia.com/gpu: k` or `kube-engine.io/gpu-milli: m`).
    """
    r = _effective_request(json.dumps(pod_spec).encode())
    out = dict(r["resources"])
    if r["gpu_count"]:
        if r["gpu_milli"] == GPU_MILLI_PER_DEVICE:
            out[GPU_RESOURCE] = r["gpu_count"]
        else:
            out[GPU_MILLI_RESOURCE] = r["gpu_milli"]
    return out


def gpu_need(requests: Mapping[str, int]) -> tuple[int, int]:
    """(devices, milli per device) a pod needs: (k, 1000) for k whole GPUs, (1, m) for a share."""
    whole = requests.get(GPU_RESOURCE, 0)
    share = requests.get(GPU_MILLI_RESOURCE, 0)
    if whole and share:
        raise ValueError("a pod asks for whole GPUs or for a share, never both")
    if whole:
        return whole, GPU_MILLI_PER_DEVICE
    if share:
        if not 1 <= share <= GPU_MILLI_PER_DEVICE:
            raise ValueError(f"{GPU_MILLI_RESOURCE} must be 1..=1000, got {share}")
        return 1, share
    return 0, 0


def node_allocatable(node: Mapping[str, Any]) -> dict[str, int]:
    alloc = (node.get("status") or {}).get("allocatable") or {}
    return {k: resource_units(k, v) for k, v in alloc.items()}


def devices_annotation(devices: Sequence[int]) -> str:
    return ",".join(str(d) for d in devices)


# --- nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeInfo:
    kernel_version: str = "6.1.119-129.201.amzn2023.x86_64"
    os_image: str = "Amazon Linux 2023.6.20241212"
    container_runtime_version: str = "containerd://1.7.23"
    kubelet_version: str = "v1.31.4-eks-aeac579"
    architecture: str = "amd64"
    operating_system: str = "linux"


def _node_condition(kind: str, status: str, reason: str, message: str, at: int) -> JsonDict:
    return {
        "lastHeartbeatTime": timestamp(at),
        "lastTransitionTime": timestamp(at),
        "message": message,
        "reason": reason,
        "status": status,
        "type": kind,
    }


def node(
    name: str,
    *,
    ids: IdSource,
    created: int,
    now: int,
    labels: Mapping[str, str],
    capacity: Mapping[str, str],
    allocatable: Mapping[str, str],
    internal_ip: str | None = None,
    pod_cidr: str | None = None,
    provider_id: str | None = None,
    taints: Sequence[JsonDict] = (),
    unschedulable: bool = False,
    ready: bool = True,
    annotations: Mapping[str, str] | None = None,
    info: NodeInfo | None = None,
    images: Sequence[tuple[str, int]] = (),
) -> JsonDict:
    """A Node with the status the kubelet reports (conditions, addresses, nodeInfo, images)."""
    info = info or NodeInfo()
    ann = {"node.alpha.kubernetes.io/ttl": "0"}
    ann["volumes.kubernetes.io/controller-managed-attach-detach"] = "true"
    if internal_ip:
        ann["alpha.kubernetes.io/provided-node-ip"] = internal_ip
    ann.update(annotations or {})
    spec: JsonDict = {}
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    if provider_id:
        spec["providerID"] = provider_id
    if taints:
        spec["taints"] = list(taints)
    if unschedulable:
        spec["unschedulable"] = True
    beat = now - 17
    if ready:
        conditions = [
            _node_condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                beat,
            ),
            _node_condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                beat,
            ),
            _node_condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                beat,
            ),
            _node_condition(
                "Ready", "True", "KubeletReady", "kubelet is posting ready status", beat
            ),
        ]
    else:
        lost = now - 3600
        conditions = [
            _node_condition(
                kind, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.", lost
            )
            for kind in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
        ]
    addresses = []
    if internal_ip:
        addresses.append({"address": internal_ip, "type": "InternalIP"})
    addresses.append({"address": name, "type": "Hostname"})
    status: JsonDict = {
        "addresses": addresses,
        "allocatable": dict(allocatable),
        "capacity": dict(capacity),
        "conditions": conditions,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": info.architecture,
            "bootID": ids.uid(),
            "containerRuntimeVersion": info.container_runtime_version,
            "kernelVersion": info.kernel_version,
            "kubeProxyVersion": info.kubelet_version,
            "kubeletVersion": info.kubelet_version,
            "machineID": ids.hex(32),
            "operatingSystem": info.operating_system,
            "osImage": info.os_image,
            "systemUUID": "ec2" + ids.hex(5) + "-" + ids.uid()[9:],
        },
    }
    if images:
        status["images"] = [
            {"names": [image_id(img), img], "sizeBytes": size} for img, size in images
        ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": object_meta(
            name,
            uid=ids.uid(),
            resource_version=ids.resource_version(),
            created=created,
            labels=labels,
            annotations=ann,
        ),
        "spec": spec,
        "status": status,
    }


# --- pods -------------------------------------------------------------------------------------


def qos_class(pod_spec: Mapping[str, Any]) -> str:
    """The pod's QoS class as the API server computes it (cpu and memory only)."""
    containers = list(pod_spec.get("containers") or []) + list(pod_spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        for r in ("cpu", "memory"):
            if r in req or r in lim:
                any_set = True
            if r not in lim or resource_units(r, req.get(r, lim[r])) != resource_units(r, lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _condition(
    kind: str, status: str, at: int, reason: str | None = None, message: str | None = None
) -> JsonDict:
    c: JsonDict = {
        "lastProbeTime": None,
        "lastTransitionTime": timestamp(at),
        "status": status,
        "type": kind,
    }
    if reason is not None:
        c["reason"] = reason
    if message is not None:
        c["message"] = message
    return c


@dataclass(frozen=True)
class PodStatusInfo:
    """What the kubelet and scheduler report about a pod."""

    phase: str = "Pending"
    pod_ip: str | None = None
    host_ip: str | None = None
    started: int | None = None
    restart_count: int = 0
    exit_code: int = 0  # for terminal pods
    unschedulable_message: str | None = None  # for unbound Pending pods the scheduler has seen
    ready: bool = True  # False for running pods on a node that stopped reporting


def _container_statuses(
    ids: IdSource,
    containers: Sequence[JsonDict],
    st: PodStatusInfo,
    *,
    init: bool,
) -> list[JsonDict]:
    out = []
    started = st.started or 0
    for i, c in enumerate(containers):
        state: JsonDict
        ready = True
        if st.phase in TERMINAL_PHASES:
            code = 0 if init or st.phase == "Succeeded" else st.exit_code
            state = {
                "terminated": {
                    "containerID": "containerd://" + ids.hex(64),
                    "exitCode": code,
                    "finishedAt": timestamp(started + 60 + 7 * i),
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": timestamp(started + i),
                }
            }
            ready = False
        elif init and c.get("restartPolicy") != "Always":
            state = {
                "terminated": {
                    "containerID": "containerd://" + ids.hex(64),
                    "exitCode": 0,
                    "finishedAt": timestamp(started + 2 + i),
                    "reason": "Completed",
                    "startedAt": timestamp(started + i),
                }
            }
            ready = False
        else:
            state = {"running": {"startedAt": timestamp(started + 1 + i)}}
            ready = st.ready
        cs: JsonDict = {
            "containerID": "containerd://" + ids.hex(64),
            "image": c["image"],
            "imageID": image_id(c["image"]),
            "lastState": {},
            "name": c["name"],
            "ready": ready,
            "restartCount": 0 if init else st.restart_count,
            "started": "running" in state,
            "state": state,
        }
        if "terminated" in state:
            cs["containerID"] = state["terminated"]["containerID"]
        mounts = [
            {
                "mountPath": m["mountPath"],
                "name": m["name"],
                **(
                    {"readOnly": True, "recursiveReadOnly": "Disabled"} if m.get("readOnly") else {}
                ),
            }
            for m in c.get("volumeMounts") or []
        ]
        if mounts:
            cs["volumeMounts"] = mounts
        out.append(cs)
    return out


def pod_status(
    ids: IdSource, spec: Mapping[str, Any], st: PodStatusInfo, *, created: int
) -> JsonDict:
    status: JsonDict = {"phase": st.phase, "qosClass": qos_class(spec)}
    bound = bool(spec.get("nodeName"))
    if not bound:
        if st.unschedulable_message is not None:
            status["conditions"] = [
                _condition(
                    "PodScheduled", "False", created + 1, "Unschedulable", st.unschedulable_message
                )
            ]
        return status
    started = st.started if st.started is not None else created + 2
    st = replace(st, started=started)
    running = st.phase == "Running" and st.ready
    terminal = st.phase in TERMINAL_PHASES
    ready_reason = "PodCompleted" if terminal else None
    status["conditions"] = [
        _condition("PodReadyToStartContainers", "False" if terminal else "True", started + 1),
        _condition("Initialized", "True", started + 2, ready_reason),
        _condition("Ready", "True" if running else "False", started + 9, ready_reason),
        _condition("ContainersReady", "True" if running else "False", started + 9, ready_reason),
        _condition("PodScheduled", "True", started),
    ]
    if st.host_ip:
        status["hostIP"] = st.host_ip
        status["hostIPs"] = [{"ip": st.host_ip}]
    if st.pod_ip and not terminal:
        status["podIP"] = st.pod_ip
        status["podIPs"] = [{"ip": st.pod_ip}]
    status["startTime"] = timestamp(started)
    status["containerStatuses"] = _container_statuses(ids, spec["containers"], st, init=False)
    if spec.get("initContainers"):
        status["initContainerStatuses"] = _container_statuses(
            ids, spec["initContainers"], st, init=True
        )
    return status


def pod(
    name: str,
    namespace: str,
    *,
    ids: IdSource,
    created: int,
    containers: Sequence[ContainerSpec],
    init_containers: Sequence[ContainerSpec] = (),
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    owner: JsonDict | None = None,
    generate_name: str | None = None,
    node_name: str | None = None,
    status: PodStatusInfo | None = None,
    priority: int = 0,
    priority_class_name: str | None = None,
    node_selector: Mapping[str, str] | None = None,
    affinity: JsonDict | None = None,
    tolerations: Sequence[JsonDict] = (),
    topology_spread: Sequence[JsonDict] = (),
    volumes: Sequence[JsonDict] = (),
    overhead: Mapping[str, str] | None = None,
    runtime_class_name: str | None = None,
    service_account: str = "default",
    host_network: bool = False,
    restart_policy: str = "Always",
    termination_grace_period_seconds: int = 30,
    hostname: str | None = None,
    subdomain: str | None = None,
    security_context: JsonDict | None = None,
) -> JsonDict:
    """A Pod as stored by the API server after admission (service-account token volume, default
    tolerations, priority, defaults) with the status the kubelet reports for its phase."""
    sa_volume = service_account_volume(ids.suffix())
    sa_mount = volume_mount(sa_volume["name"], SERVICE_ACCOUNT_MOUNT, read_only=True)
    all_tolerations = list(tolerations)
    for t in default_tolerations():
        if t not in all_tolerations and not any(
            x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in all_tolerations
        ):
            all_tolerations.append(t)
    spec: JsonDict = {
        "containers": [container(c, [sa_mount]) for c in containers],
        "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": priority,
        "restartPolicy": restart_policy,
        "schedulerName": "default-scheduler",
        "securityContext": security_context or {},
        "serviceAccount": service_account,
        "serviceAccountName": service_account,
        "terminationGracePeriodSeconds": termination_grace_period_seconds,
        "tolerations": all_tolerations,
        "volumes": list(volumes) + [sa_volume],
    }
    if host_network:
        # The API server defaults hostPort to containerPort on the host network.
        spec["hostNetwork"] = True
        for c in spec["containers"]:
            if "ports" in c:
                c["ports"] = [{"hostPort": p["containerPort"], **p} for p in c["ports"]]
    if init_containers:
        spec["initContainers"] = [container(c, [sa_mount]) for c in init_containers]
    if priority_class_name:
        spec["priorityClassName"] = priority_class_name
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if affinity:
        spec["affinity"] = affinity
    if topology_spread:
        spec["topologySpreadConstraints"] = list(topology_spread)
    if overhead:
        spec["overhead"] = dict(overhead)
    if runtime_class_name:
        spec["runtimeClassName"] = runtime_class_name
    if node_name:
        spec["nodeName"] = node_name
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    meta = object_meta(
        name,
        namespace=namespace,
        uid=ids.uid(),
        resource_version=ids.resource_version(),
        created=created,
        labels=labels,
        annotations=annotations,
        owner_references=[owner] if owner else None,
        generate_name=generate_name,
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": pod_status(ids, spec, status or PodStatusInfo(), created=created),
    }


# --- pod disruption budgets -------------------------------------------------------------------


def pdb(
    name: str,
    namespace: str,
    *,
    ids: IdSource,
    created: int,
    match_labels: Mapping[str, str],
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
    labels: Mapping[str, str] | None = None,
) -> JsonDict:
    """A policy/v1 PodDisruptionBudget, without a status until :func:`pdb_status` gives it one."""
    if (min_available is None) == (max_unavailable is None):
        raise ValueError("give exactly one of min_available and max_unavailable")
    spec: JsonDict = {"selector": {"matchLabels": dict(match_labels)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    else:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(
            name,
            namespace=namespace,
            uid=ids.uid(),
            resource_version=ids.resource_version(),
            created=created,
            labels=labels,
            generation=1,
        ),
        "spec": spec,
    }


def pdb_status(counts: Mapping[str, int], now: int) -> JsonDict:
    """The status the disruption controller writes, from its counts (``expectedPods``,
    ``currentHealthy``, ``desiredHealthy``, ``disruptionsAllowed``: what
    :func:`kube_engine.budget_status` works out)."""
    allowed = counts["disruptionsAllowed"]
    return {
        "conditions": [
            {
                "lastTransitionTime": timestamp(now - 600),
                "message": "",
                "observedGeneration": 1,
                "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                "status": "True" if allowed > 0 else "False",
                "type": "DisruptionAllowed",
            }
        ],
        **{key: counts[key] for key in sorted(counts)},
        "observedGeneration": 1,
    }


# --- lists and the official client ------------------------------------------------------------

CLIENT_LIST_TYPES: dict[str, tuple[str, str, str]] = {
    # item kind -> (client model, list kind, apiVersion)
    "Node": ("V1NodeList", "NodeList", "v1"),
    "Pod": ("V1PodList", "PodList", "v1"),
    "PodDisruptionBudget": ("V1PodDisruptionBudgetList", "PodDisruptionBudgetList", "policy/v1"),
}


def split_list(lst: Mapping[str, Any]) -> dict[str, JsonDict]:
    """Split a `List` of Nodes, Pods and PDBs into the typed lists the API serves, keyed by the
    official client's model name ("V1NodeList", "V1PodList", "V1PodDisruptionBudgetList")."""
    groups: dict[str, list[JsonDict]] = {k: [] for k in CLIENT_LIST_TYPES}
    for i, item in enumerate(lst.get("items") or []):
        kind = item.get("kind")
        if kind not in groups:
            raise ValueError(f"items[{i}].kind: unsupported kind {kind!r}")
        groups[kind].append(item)
    out: dict[str, JsonDict] = {}
    for kind, (model, list_kind, api_version) in CLIENT_LIST_TYPES.items():
        out[model] = k8s_list(groups[kind], kind=list_kind, api_version=api_version)
    return out


class _Response:
    """The minimal response object older clients' `ApiClient.deserialize` reads `.data` from."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def client_deserialize(api_client: Any, data: bytes, response_type: str) -> Any:
    """Deserialize raw JSON bytes with the official client, whatever its generation.

    Clients up to v33 take a response object with `.data`; newer (pydantic) clients take the
    response text and a content type.
    """
    params = list(inspect.signature(api_client.deserialize).parameters)
    if params and params[0] == "response_text":
        return api_client.deserialize(data, response_type, "application/json")
    if len(params) >= 3:
        return api_client.deserialize(_Response(data), response_type, "application/json")
    return api_client.deserialize(_Response(data), response_type)
