"""A reference kube-scheduler for differential tests (an oracle, not a second engine).

Written from kube-scheduler's documented semantics (the scheduling framework, the plugin docs and
the upstream sources under ``pkg/scheduler``), deliberately *not* from kube-engine's Rust code, so
that the two can be compared decision by decision. It is slow and plain on purpose: Python for the
per-object rules (taints, selectors), numpy for the per-node arithmetic (fit, scores).

What it models — the node-local part of the default profile, which is the whole default profile for
pods without inter-pod (anti-)affinity, without topology spread constraints and without owners (the
only pods PodTopologySpread's system-default constraints apply to):

* PreFilter/Filter: NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
  NodeResourcesFit (every requested resource, plus GPU devices as docs/encoding.md defines them);
  a node is rejected by the first filter that fails, and an unschedulable pod gets kube-scheduler's
  FitError text, ``0/N nodes are available: <count> <reason>, ... .`` with the "count reason"
  strings sorted as strings.
* The feasible-node search: from a rotating start index (``nextStartNodeIndex``, one per
  scheduler, shared by its profiles) until ``numFeasibleNodesToFind`` feasible nodes are found
  (``percentageOfNodesToScore``; a profile without score plugins stops at the first feasible
  node). Upstream searches sequentially in effect but in parallel in fact; nodes are visited zone by
  zone, round robin, as its cache's nodeTree lists them.
* Score + NormalizeScore: TaintToleration (untolerated PreferNoSchedule taints, reversed),
  NodeAffinity (weights of matching preferred terms), NodeResourcesFit (LeastAllocated,
  MostAllocated, RequestedToCapacityRatio, with resource weights, over the "non-zero" cpu/memory
  requests), NodeResourcesBalancedAllocation (actual requests; best-effort pods skipped); the
  weighted sum with the profile's weights (upstream defaults 3, 2, 1, 1).
* selectHost: the highest total; among tied nodes (in feasible-node order) one drawn uniformly
  with kube-engine's seeded SplitMix64 (re-implemented here) when there is a tie, one generator per
  profile. Upstream samples a reservoir, one draw per tied node: the same odds.
* Pods placed one at a time in the given order, each bind updating the node's requests, ports and
  GPU devices (best fit: the fullest devices that still fit, lowest index on ties).

Quantities are parsed by ``kube_engine.parse_quantity`` (the engine's single source of truth for
the quantity grammar); everything else here is independent.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from kube_engine import parse_quantity

MAX_NODE_SCORE = 100
# RequestedToCapacityRatio shape scores are 0..10 in the API (config.MaxCustomPriorityScore).
MAX_CUSTOM_PRIORITY_SCORE = 10
# schedutil.DefaultMilliCPURequest / DefaultMemoryRequest: what a container without a cpu/memory
# request counts as when scoring.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
# numFeasibleNodesToFind's constants.
MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5

GPU = "nvidia.com/gpu"
GPU_MILLI = "kube-engine.io/gpu-milli"
GPU_DEVICES_ANNOTATION = "kube-engine.io/gpu-devices"
DEVICE_MILLI = 1000
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
TERMINAL_PHASES = ("Succeeded", "Failed")
NATIVE = ("cpu", "memory", "pods", "ephemeral-storage")

# kube-scheduler v1 defaults (the node-local ones), in order, with their score weights.
DEFAULT_FILTERS = (
    "NodeUnschedulable",
    "NodeName",
    "TaintToleration",
    "NodeAffinity",
    "NodePorts",
    "NodeResourcesFit",
)
DEFAULT_SCORES = (
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodeResourcesFit", 1),
    ("NodeResourcesBalancedAllocation", 1),
)
# Plugins that exist upstream but decide nothing for the pods this oracle is used with.
INERT = {
    "PrioritySort",
    "DefaultBinder",
    "DefaultPreemption",
    "SchedulingGates",
    "ImageLocality",
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeBinding",
    "VolumeZone",
}

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# --- quantities and pod requests ----------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _quantity(text: str) -> tuple[int, int]:
    return parse_quantity(text)


def amount(resource: str, text: str | int | float) -> int:
    """kube-scheduler's integer for a quantity: milli-cores for cpu, whole units otherwise."""
    milli, value = _quantity(str(text))
    return milli if resource == "cpu" else value


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = max(into.get(k, 0), v)


def _container_requests(c: Mapping[str, Any]) -> dict[str, int]:
    """Requests, with limits standing in for missing requests (the API server's defaulting)."""
    res = c.get("resources") or {}
    wanted: dict[str, Any] = dict(res.get("requests") or {})
    for k, v in (res.get("limits") or {}).items():
        wanted.setdefault(k, v)
    return {k: amount(k, v) for k, v in wanted.items()}


def _with_defaults(r: dict[str, int]) -> dict[str, int]:
    # NonMissingContainerRequests: only a *missing* request is defaulted; an explicit 0 stays 0.
    out = dict(r)
    out.setdefault("cpu", DEFAULT_MILLI_CPU)
    out.setdefault("memory", DEFAULT_MEMORY)
    return out


def _pod_requests(spec: Mapping[str, Any], nonzero: bool) -> dict[str, int]:
    """resourcehelper.PodRequests: app containers and sidecars summed; each regular init container
    runs next to the sidecars started before it; the pod needs the larger; overhead on top."""

    def of(c: Mapping[str, Any]) -> dict[str, int]:
        r = _container_requests(c)
        return _with_defaults(r) if nonzero else r

    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        _add(total, of(c))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        r = of(c)
        if c.get("restartPolicy") == "Always":
            _add(total, r)
            _add(sidecars, r)
            step = dict(sidecars)
        else:
            step = dict(sidecars)
            _add(step, r)
        _max(init_peak, step)
    _max(total, init_peak)
    _add(total, {k: amount(k, v) for k, v in (spec.get("overhead") or {}).items()})
    return total


@dataclass(frozen=True)
class PodRequest:
    """What a pod asks of a node."""

    resources: dict[str, int]  # ordinary resources, with pods: 1; GPUs excluded
    gpu_count: int  # devices (0: none)
    gpu_milli: int  # milli on each of them
    nonzero_cpu: int
    nonzero_memory: int


def pod_request(spec: Mapping[str, Any]) -> PodRequest:
    total = _pod_requests(spec, nonzero=False)
    nz = _pod_requests(spec, nonzero=True)
    whole = total.pop(GPU, 0)
    share = total.pop(GPU_MILLI, 0)
    if whole and share:
        raise ValueError("a pod asks for whole GPUs or for a share, not both")
    count, milli = (whole, DEVICE_MILLI) if whole else (1, share) if share else (0, 0)
    resources = {k: v for k, v in total.items() if v != 0}
    resources["pods"] = resources.get("pods", 0) + 1
    return PodRequest(resources, count, milli, nz.get("cpu", 0), nz.get("memory", 0))


def host_ports(spec: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """schedutil.GetHostPorts: (ip, protocol, port) of app containers and of init containers with
    restartPolicy Always (the only init containers that run for the pod's life)."""
    containers = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    containers += list(spec.get("containers") or [])
    out = []
    for c in containers:
        for p in c.get("ports") or []:
            port = int(p.get("hostPort") or 0)
            if port > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", port))
    return out


def ports_conflict(used: Iterable[tuple[str, str, int]], wanted: tuple[str, str, int]) -> bool:
    """HostPortInfo.CheckConflict: 0.0.0.0 clashes with every address."""
    ip, proto, port = wanted
    return any((p, pr) == (port, proto) and (i == ip or "0.0.0.0" in (i, ip)) for i, pr, p in used)


# --- taints, tolerations, node selectors ----------------------------------------------------------


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """v1.Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def first_untolerated(
    taints: Sequence[Mapping[str, Any]],
    tolerations: Sequence[Mapping[str, Any]],
    effects: tuple[str, ...] = ("NoSchedule", "NoExecute"),
) -> Mapping[str, Any] | None:
    """v1helper.FindMatchingUntoleratedTaint: the first taint (in node order) of these effects
    that no toleration tolerates."""
    for t in taints:
        if t.get("effect") in effects and not any(tolerates(tol, t) for tol in tolerations):
            return t
    return None


_INT = re.compile(r"[+-]?[0-9]+")


def _requirement_matches(req: Mapping[str, Any], value: str | None) -> bool:
    op = req["operator"]
    values = list(req.get("values") or [])
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        # strconv.ParseInt on both sides; a missing or non-integer label never matches.
        if value is None or not _INT.fullmatch(value):
            return False
        v, bound = int(value), int(values[0])
        return v > bound if op == "Gt" else v < bound
    raise ValueError(f"unknown operator {op!r}")


def term_matches(term: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> bool:
    """A node selector term: expressions and fields ANDed; an empty term matches no node."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return all(_requirement_matches(r, labels.get(r["key"])) for r in exprs) and all(
        _requirement_matches(r, name if r["key"] == "metadata.name" else None) for r in fields
    )


def _node_affinity(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return (spec.get("affinity") or {}).get("nodeAffinity") or {}


def node_affinity_admits(spec: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> bool:
    """NodeAffinity's filter: every nodeSelector label, and one required term (terms ORed)."""
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = _node_affinity(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    return any(term_matches(t, name, labels) for t in required.get("nodeSelectorTerms") or [])


def preferred_terms(spec: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The pod's preferred node affinity terms; None when it has none (the plugin then skips)."""
    return _node_affinity(spec).get("preferredDuringSchedulingIgnoredDuringExecution")


# --- the generator --------------------------------------------------------------------------------

_U64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class SplitMix64:
    """Steele, Lea & Flood's SplitMix64, seeded as kube-engine seeds it (seed XOR the golden
    gamma), so that ties break the same way."""

    def __init__(self, seed: int) -> None:
        self.state = (seed ^ _GOLDEN) & _U64

    def next_u64(self) -> int:
        self.state = (self.state + _GOLDEN) & _U64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform in 0..n (Lemire's multiply-shift, without rejection)."""
        return (self.next_u64() * n) >> 64


# --- profiles -------------------------------------------------------------------------------------


@dataclass
class Profile:
    """A scheduling profile: filters in order, score plugins with weights, and plugin args."""

    name: str = "default-scheduler"
    filters: list[str] = field(default_factory=lambda: list(DEFAULT_FILTERS))
    scores: list[tuple[str, int]] = field(default_factory=lambda: list(DEFAULT_SCORES))
    percentage: int | None = None
    strategy: str = "LeastAllocated"
    fit_resources: list[tuple[str, int]] = field(
        default_factory=lambda: [("cpu", 1), ("memory", 1)]
    )
    # RequestedToCapacityRatio: (utilisation 0..100, score 0..100) points.
    shape: list[tuple[int, int]] = field(default_factory=list)
    balanced_resources: list[str] = field(default_factory=lambda: ["cpu", "memory"])


def _apply_set(
    current: list[tuple[str, int]], plugin_set: Mapping[str, Any], default_weight: int
) -> list[tuple[str, int]]:
    """One extension point's ``disabled`` (``*``: all) then ``enabled`` lists applied to the
    running (name, weight) list; an enabled plugin keeps its place and takes the new weight."""
    disabled = [p["name"] for p in plugin_set.get("disabled") or []]
    out = [] if "*" in disabled else [(n, w) for n, w in current if n not in disabled]
    for p in plugin_set.get("enabled") or []:
        weight = p.get("weight") or dict(DEFAULT_SCORES).get(p["name"], default_weight)
        out = [(n, weight if n == p["name"] else w) for n, w in out]
        if p["name"] not in [n for n, _ in out]:
            out.append((p["name"], weight))
    return out


def profile_from_config(cfg: Mapping[str, Any], percentage: int | None) -> Profile:
    """One ``profiles[]`` entry; ``percentage`` is the configuration-wide default."""
    prof = Profile(name=cfg.get("schedulerName") or "default-scheduler")
    p = cfg.get("percentageOfNodesToScore")
    prof.percentage = p if p is not None else percentage
    plugins = cfg.get("plugins") or {}
    # multiPoint, in upstream's order: the filters, then BalancedAllocation (score only).
    weights = dict(DEFAULT_SCORES)
    defaults = [(n, weights.get(n, 1)) for n in DEFAULT_FILTERS]
    defaults += [(n, w) for n, w in DEFAULT_SCORES if n not in DEFAULT_FILTERS]
    multi = _apply_set(defaults, plugins.get("multiPoint") or {}, 1)
    filters = _apply_set(multi, plugins.get("filter") or {}, 1)
    scores = _apply_set(multi, plugins.get("score") or {}, 1)
    known = set(DEFAULT_FILTERS) | set(dict(DEFAULT_SCORES))
    for n, _ in filters + scores:
        if n not in known | INERT:
            raise ValueError(f"the reference does not model plugin {n!r}")
    prof.filters = [n for n, _ in filters if n in DEFAULT_FILTERS]
    prof.scores = [(n, w) for n, w in scores if n in dict(DEFAULT_SCORES)]
    for pc in cfg.get("pluginConfig") or []:
        args = pc.get("args") or {}
        if pc["name"] == "NodeResourcesFit":
            strategy = args.get("scoringStrategy") or {}
            prof.strategy = strategy.get("type") or "LeastAllocated"
            if strategy.get("resources") is not None:
                prof.fit_resources = [
                    (r["name"], r.get("weight", 1)) for r in strategy["resources"]
                ]
            if prof.strategy == "RequestedToCapacityRatio":
                shape = strategy["requestedToCapacityRatio"]["shape"]
                scale = MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE
                prof.shape = [(pt["utilization"], pt["score"] * scale) for pt in shape]
        elif pc["name"] == "NodeResourcesBalancedAllocation":
            if args.get("resources") is not None:
                prof.balanced_resources = [r["name"] for r in args["resources"]]
    for name, _ in prof.fit_resources:
        if name in (GPU, GPU_MILLI):
            raise ValueError("scoring GPU devices is kube-engine's own extension; not modelled")
    return prof


def profiles_from_config(config: Mapping[str, Any] | None) -> list[Profile]:
    """The profiles of a KubeSchedulerConfiguration (None: the default profile)."""
    if config is None:
        return [Profile()]
    percentage = config.get("percentageOfNodesToScore")
    profiles = config.get("profiles") or [{}]
    return [profile_from_config(p, percentage) for p in profiles]


def node_tree_order(labels: Sequence[Mapping[str, str]]) -> npt.NDArray[np.int64]:
    """kube-scheduler's nodeTree.list(): nodes grouped by zone key (region and zone, beta labels as
    fallback, "" without either), zones in order of first appearance, then round robin."""
    zones: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        zone = lab.get(
            "topology.kubernetes.io/zone", lab.get("failure-domain.beta.kubernetes.io/zone", "")
        )
        region = lab.get(
            "topology.kubernetes.io/region", lab.get("failure-domain.beta.kubernetes.io/region", "")
        )
        key = f"{region}:\x00:{zone}" if zone or region else ""
        zones.setdefault(key, []).append(i)
    order: list[int] = []
    depth = max((len(v) for v in zones.values()), default=0)
    for i in range(depth):
        order.extend(v[i] for v in zones.values() if i < len(v))
    return np.array(order, dtype=np.int64)


def num_feasible_nodes_to_find(num_nodes: int, percentage: int | None) -> int:
    """numFeasibleNodesToFind: every node in small clusters; else a percentage (adaptive when
    unset or 0: 50% shrinking by 1% per 125 nodes, at least 5%), and never fewer than 100."""
    if num_nodes < MIN_FEASIBLE_NODES:
        return num_nodes
    pct = percentage or 0
    if pct == 0:
        pct = max(50 - num_nodes // 125, MIN_FEASIBLE_PERCENTAGE)
    return max(num_nodes * pct // 100, MIN_FEASIBLE_NODES)


def default_normalize(scores: IntArray, reverse: bool) -> IntArray:
    """helper.DefaultNormalizeScore."""
    top = int(scores.max()) if len(scores) else 0
    if top == 0:
        return np.full_like(scores, MAX_NODE_SCORE if reverse else 0)
    out = MAX_NODE_SCORE * scores // top
    return MAX_NODE_SCORE - out if reverse else out


def _trunc_div(a: IntArray, b: int) -> IntArray:
    """Go's integer division (truncates toward zero; numpy's // floors)."""
    return np.sign(a) * (np.abs(a) // b)


def broken_linear(shape: Sequence[tuple[int, int]], x: IntArray) -> IntArray:
    """helper.BuildBrokenLinearFunction: linear between points, flat outside them."""
    out = np.full_like(x, shape[-1][1])
    done = np.zeros(x.shape, dtype=bool)
    for i, (u, s) in enumerate(shape):
        here = ~done & (x <= u)
        if i == 0:
            out[here] = s
        else:
            u0, s0 = shape[i - 1]
            out[here] = s0 + _trunc_div((s - s0) * (x[here] - u0), u - u0)
        done |= here
    return out


def _go_round(x: npt.NDArray[np.float64]) -> IntArray:
    """math.Round for x >= 0: half away from zero."""
    f = np.floor(x)
    return (f + (x - f >= 0.5)).astype(np.int64)


# --- the cluster ----------------------------------------------------------------------------------


@dataclass
class Pod:
    key: str
    spec: Mapping[str, Any]
    phase: str
    node: str | None
    request: PodRequest
    annotations: Mapping[str, str]
    priority: int
    created: float | None
    ports: list[tuple[str, str, int]]

    @property
    def active(self) -> bool:
        return self.phase not in TERMINAL_PHASES


def _timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _items(objects: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(objects, Mapping):
        return list(objects.get("items") or [])
    return list(objects)


class Cluster:
    """Nodes in snapshot order and what their pods hold, in numpy columns: ``alloc`` and ``used``
    (nodes × resources), ``nonzero_used`` (nodes × [cpu, memory]) and ``gpu_free`` (nodes ×
    devices, -1 where a node has no such device)."""

    def __init__(self, objects: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        items = _items(objects)
        node_objs = [o for o in items if o.get("kind") == "Node"]
        pod_objs = [o for o in items if o.get("kind") == "Pod"]
        self.names = [n["metadata"]["name"] for n in node_objs]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.labels = [dict(n["metadata"].get("labels") or {}) for n in node_objs]
        self.tree_order = node_tree_order(self.labels)
        self.taints = [list((n.get("spec") or {}).get("taints") or []) for n in node_objs]
        self.cordoned = [bool((n.get("spec") or {}).get("unschedulable")) for n in node_objs]
        allocs = []
        devices = []
        for n in node_objs:
            status = n.get("status") or {}
            a = status.get("allocatable")
            a = status.get("capacity") if a is None else a
            a = dict(a or {})
            devices.append(amount(GPU, a.pop(GPU, 0)))
            a.pop(GPU_MILLI, None)  # derived from the device count (docs/encoding.md)
            allocs.append({k: amount(k, v) for k, v in a.items()})
        self.pods = [self._pod(o) for o in pod_objs]
        self.pod_index = {p.key: i for i, p in enumerate(self.pods)}
        names = list(NATIVE)
        for r in [*allocs, *(p.request.resources for p in self.pods)]:
            names += [k for k in r if k not in names]
        self.resources = names
        self.rid = {r: i for i, r in enumerate(names)}
        n, width = len(self.names), len(names)
        self.alloc: IntArray = np.zeros((n, width), dtype=np.int64)
        for i, a in enumerate(allocs):
            for k, v in a.items():
                self.alloc[i, self.rid[k]] = v
        self.used: IntArray = np.zeros((n, width), dtype=np.int64)
        self.nonzero_used: IntArray = np.zeros((n, 2), dtype=np.int64)
        self.gpu_devices = np.array(devices, dtype=np.int64)
        width_d = max([1, *devices])
        self.gpu_free: IntArray = np.full((n, width_d), -1, dtype=np.int64)
        for i, d in enumerate(devices):
            self.gpu_free[i, :d] = DEVICE_MILLI
        self.ports: list[list[tuple[str, str, int]]] = [[] for _ in range(n)]
        self.devices: dict[str, list[int]] = {}
        # Bound pods: annotated GPU devices first, then best fit in input order (docs/encoding.md).
        unannotated = []
        for p in self.pods:
            if p.node is None or not p.active:
                continue
            ni = self.index[p.node]
            self._hold(p, ni)
            if p.request.gpu_count:
                note = p.annotations.get(GPU_DEVICES_ANNOTATION)
                if note is None:
                    unannotated.append(p)
                else:
                    self.take_devices(p, ni, [int(x) for x in note.split(",")])
        for p in unannotated:
            ni = self.index[p.node or ""]
            devices_ = self.best_fit(ni, p.request)
            assert devices_ is not None, f"{p.key}: GPU devices over-committed in the input"
            self.take_devices(p, ni, devices_)

    @staticmethod
    def _pod(o: Mapping[str, Any]) -> Pod:
        meta, spec = o["metadata"], o["spec"]
        return Pod(
            key=f"{meta['namespace']}/{meta['name']}",
            spec=spec,
            phase=(o.get("status") or {}).get("phase") or "Pending",
            node=spec.get("nodeName") or None,
            request=pod_request(spec),
            annotations=meta.get("annotations") or {},
            priority=int(spec.get("priority") or 0),
            created=_timestamp(meta.get("creationTimestamp")),
            ports=host_ports(spec),
        )

    def request_row(self, req: PodRequest) -> IntArray:
        row = np.zeros(len(self.resources), dtype=np.int64)
        for k, v in req.resources.items():
            row[self.rid[k]] = v
        return row

    def _hold(self, p: Pod, ni: int) -> None:
        self.used[ni] += self.request_row(p.request)
        self.nonzero_used[ni] += (p.request.nonzero_cpu, p.request.nonzero_memory)
        self.ports[ni] += p.ports

    def best_fit(self, ni: int, req: PodRequest) -> list[int] | None:
        """The fullest devices that still fit (lowest index on ties); None if too few fit."""
        if not req.gpu_count:
            return []
        free = self.gpu_free[ni]
        fitting = np.flatnonzero(free >= req.gpu_milli)
        if len(fitting) < req.gpu_count:
            return None
        chosen = fitting[np.lexsort((fitting, free[fitting]))][: req.gpu_count]
        return sorted(int(d) for d in chosen)

    def take_devices(self, p: Pod, ni: int, devices: list[int]) -> None:
        self.gpu_free[ni, devices] -= p.request.gpu_milli
        self.devices[p.key] = devices

    def bind(self, p: Pod, ni: int, devices: list[int]) -> None:
        """Reserve: the pod's requests, ports and devices now count on node ``ni``."""
        p.node = self.names[ni]
        self._hold(p, ni)
        if p.request.gpu_count:
            self.take_devices(p, ni, devices)

    def overcommitted(self) -> list[str]:
        """Human-readable over-commits: resources above allocatable, devices above 1000 milli."""
        out = []
        for ni, name in enumerate(self.names):
            for r in np.flatnonzero(self.used[ni] > self.alloc[ni]):
                out.append(f"{name}: {self.resources[r]} {self.used[ni, r]} > {self.alloc[ni, r]}")
            for d in np.flatnonzero(
                (self.gpu_free[ni] < 0) & (np.arange(self.gpu_free.shape[1]) < self.gpu_devices[ni])
            ):
                out.append(f"{name}: GPU device {d} over-committed")
        return out


# --- the scheduler --------------------------------------------------------------------------------


@dataclass
class Result:
    assignments: dict[str, str] = field(default_factory=dict)
    unschedulable: dict[str, str] = field(default_factory=dict)
    gpu_devices: dict[str, list[int]] = field(default_factory=dict)
    order: list[tuple[str, str]] = field(default_factory=list)


class Filters:
    """One cycle's filter verdicts for every node: ``failed[k][node]`` is True where the profile's
    k-th filter rejects the node; ``reasons(node)`` is what kube-scheduler reports for it."""

    def __init__(self, cluster: Cluster, pod: Pod, profile: Profile) -> None:
        c, spec, req = cluster, pod.spec, pod.request
        n = len(c.names)
        tolerations = list(spec.get("tolerations") or [])
        self.cluster, self.pod = c, pod
        self.names: list[str] = []
        self.failed: list[BoolArray] = []
        self.untolerated: list[Mapping[str, Any] | None] = [None] * n
        row = c.request_row(req)
        self.short: BoolArray = (row > 0) & (row > c.alloc - c.used)
        fitting = (c.gpu_free >= req.gpu_milli).sum(axis=1)
        self.gpu_short: BoolArray = np.asarray(fitting < req.gpu_count) & (req.gpu_count > 0)
        for name in profile.filters:
            if name == "NodeUnschedulable":
                ok = not any(tolerates(t, UNSCHEDULABLE_TAINT) for t in tolerations)
                fail = np.array(c.cordoned, dtype=bool) & ok
            elif name == "NodeName":
                # Pending pods name no node: the plugin has nothing to check (PreFilter Skip).
                wanted = spec.get("nodeName")
                fail = np.array([bool(wanted) and wanted != nm for nm in c.names], dtype=bool)
            elif name == "TaintToleration":
                self.untolerated = [
                    first_untolerated(ts, tolerations) if ts else None for ts in c.taints
                ]
                fail = np.array([t is not None for t in self.untolerated], dtype=bool)
            elif name == "NodeAffinity":
                required = _node_affinity(spec).get(
                    "requiredDuringSchedulingIgnoredDuringExecution"
                )
                if spec.get("nodeSelector") or required is not None:
                    admits = [
                        node_affinity_admits(spec, nm, c.labels[i]) for i, nm in enumerate(c.names)
                    ]
                    fail = ~np.array(admits, dtype=bool)
                else:
                    fail = np.zeros(n, dtype=bool)
            elif name == "NodePorts":
                fail = np.array(
                    [any(ports_conflict(used, w) for w in pod.ports) for used in c.ports]
                    if pod.ports
                    else [False] * n,
                    dtype=bool,
                )
            elif name == "NodeResourcesFit":
                fail = self.short.any(axis=1) | self.gpu_short
            else:
                raise AssertionError(name)
            self.names.append(name)
            self.failed.append(fail.reshape(n))

    def feasible(self) -> BoolArray:
        ok = np.ones(len(self.cluster.names), dtype=bool)
        for f in self.failed:
            ok &= ~f
        return ok

    def reasons(self, ni: int) -> list[str]:
        """The reasons of the first filter that rejects node ``ni`` (Filter stops there)."""
        for name, fail in zip(self.names, self.failed, strict=True):
            if not fail[ni]:
                continue
            if name == "NodeUnschedulable":
                return ["node(s) were unschedulable"]
            if name == "NodeName":
                return ["node(s) didn't match the requested node name"]
            if name == "TaintToleration":
                t = self.untolerated[ni] or {}
                return [f"node(s) had untolerated taint {{{t.get('key')}: {t.get('value') or ''}}}"]
            if name == "NodeAffinity":
                return ["node(s) didn't match Pod's node affinity/selector"]
            if name == "NodePorts":
                return ["node(s) didn't have free ports for the requested pod ports"]
            out = [
                "Too many pods"
                if self.cluster.resources[r] == "pods"
                else f"Insufficient {self.cluster.resources[r]}"
                for r in np.flatnonzero(self.short[ni])
            ]
            if self.gpu_short[ni]:
                out.append(f"Insufficient {GPU}")
            return out
        return []


def fit_error(num_nodes: int, reasons: Iterable[str]) -> str:
    """framework.FitError.Error(): reasons counted, "count reason" strings sorted as strings."""
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    parts = sorted(f"{n} {r}" for r, n in counts.items())
    msg = f"0/{num_nodes} nodes are available:"
    if parts:
        msg += " " + ", ".join(parts)
    return msg + "."


class Scores:
    """Score + NormalizeScore of each plugin over the feasible nodes ``nodes``."""

    def __init__(self, cluster: Cluster, pod: Pod, profile: Profile, nodes: IntArray) -> None:
        self.c, self.pod, self.profile, self.nodes = cluster, pod, profile, nodes

    def total(self) -> IntArray:
        total = np.zeros(len(self.nodes), dtype=np.int64)
        for name, weight in self.profile.scores:
            s = self.plugin(name)
            if s is not None:  # None: the plugin skipped this pod (PreScore Skip), 0 everywhere
                total += weight * s
        return total

    def plugin(self, name: str) -> IntArray | None:
        if name == "TaintToleration":
            return default_normalize(self.taint_toleration(), reverse=True)
        if name == "NodeAffinity":
            raw = self.node_affinity()
            return None if raw is None else default_normalize(raw, reverse=False)
        if name == "NodeResourcesFit":
            return self.resources_fit()
        if name == "NodeResourcesBalancedAllocation":
            return self.balanced_allocation()
        raise AssertionError(name)

    def taint_toleration(self) -> IntArray:
        tols = [
            t
            for t in self.pod.spec.get("tolerations") or []
            if (t.get("effect") or "") in ("", "PreferNoSchedule")
        ]
        counts = [
            sum(
                1
                for t in self.c.taints[ni]
                if t.get("effect") == "PreferNoSchedule" and not any(tolerates(x, t) for x in tols)
            )
            for ni in self.nodes
        ]
        return np.array(counts, dtype=np.int64)

    def node_affinity(self) -> IntArray | None:
        terms = preferred_terms(self.pod.spec)
        if terms is None:
            return None
        sums = [
            sum(
                int(t["weight"])
                for t in terms
                if term_matches(t.get("preference") or {}, self.c.names[ni], self.c.labels[ni])
            )
            for ni in self.nodes
        ]
        return np.array(sums, dtype=np.int64)

    def _alloc_requested(
        self, resource: str, pod_amount: int, nonzero: bool
    ) -> tuple[IntArray, IntArray] | None:
        """resourceAllocationScorer.calculateResourceAllocatableRequest over the nodes; None for
        an extended resource the pod does not ask for (not scored)."""
        if pod_amount == 0 and resource not in NATIVE:
            return None
        r = self.c.rid.get(resource)
        if r is None:
            zero = np.zeros(len(self.nodes), dtype=np.int64)
            return zero, zero
        alloc = self.c.alloc[self.nodes, r]
        if nonzero and resource in ("cpu", "memory"):
            used = self.c.nonzero_used[self.nodes, 0 if resource == "cpu" else 1]
        else:
            used = self.c.used[self.nodes, r]
        return alloc, used + pod_amount

    def resources_fit(self) -> IntArray:
        req = self.pod.request
        node_score = np.zeros(len(self.nodes), dtype=np.int64)
        weights = np.zeros(len(self.nodes), dtype=np.int64)
        for resource, weight in self.profile.fit_resources:
            pod_amount = {"cpu": req.nonzero_cpu, "memory": req.nonzero_memory}.get(
                resource, req.resources.get(resource, 0)
            )
            ar = self._alloc_requested(resource, pod_amount, nonzero=True)
            if ar is None:
                continue
            cap, requested = ar
            counted = cap != 0
            safe = np.where(counted, cap, 1)
            if self.profile.strategy == "LeastAllocated":
                s = np.where(requested > cap, 0, (cap - requested) * MAX_NODE_SCORE // safe)
            elif self.profile.strategy == "MostAllocated":
                s = np.minimum(requested, cap) * MAX_NODE_SCORE // safe
            elif self.profile.strategy == "RequestedToCapacityRatio":
                utilisation = np.where(requested > cap, 100, np.maximum(requested, 0) * 100 // safe)
                s = broken_linear(self.profile.shape, utilisation)
                # Upstream counts a resource only where its shape score is positive.
                counted &= s > 0
            else:
                raise ValueError(self.profile.strategy)
            node_score += np.where(counted, s * weight, 0)
            weights += np.where(counted, weight, 0)
        safe_w = np.where(weights == 0, 1, weights)
        if self.profile.strategy == "RequestedToCapacityRatio":
            out = _go_round(node_score / safe_w)
        else:
            out = node_score // safe_w
        return np.where(weights == 0, 0, out)

    def balanced_allocation(self) -> IntArray | None:
        req = self.pod.request
        wanted = [(r, req.resources.get(r, 0)) for r in self.profile.balanced_resources]
        if all(v == 0 for _, v in wanted):
            return None  # best-effort pods are not scored (kubernetes#129138)
        fractions: list[npt.NDArray[np.float64]] = []
        present: list[BoolArray] = []
        for resource, pod_amount in wanted:
            ar = self._alloc_requested(resource, pod_amount, nonzero=False)
            if ar is None:
                continue
            cap, requested = ar
            ok = cap != 0
            f = np.minimum(requested.astype(np.float64) / np.where(ok, cap, 1), 1.0)
            fractions.append(f)
            present.append(ok)
        count = np.sum(present, axis=0) if present else np.zeros(len(self.nodes), dtype=np.int64)
        std = np.zeros(len(self.nodes))
        # Two resources: |f1 - f2| / 2; more: the population standard deviation, summed in
        # resource order as upstream does (float sums depend on the order).
        firsts = [np.full(len(self.nodes), np.nan), np.full(len(self.nodes), np.nan)]
        total = np.zeros(len(self.nodes))
        seen = np.zeros(len(self.nodes), dtype=np.int64)
        for f, ok in zip(fractions, present, strict=True):
            for k in (0, 1):
                firsts[k] = np.where(ok & (seen == k), f, firsts[k])
            total = np.where(ok, total + f, total)
            seen += ok
        two = count == 2
        std = np.where(two, np.abs((firsts[0] - firsts[1]) / 2), std)
        many = count > 2
        if many.any():
            mean = total / np.where(many, count, 1)
            sq = np.zeros(len(self.nodes))
            for f, ok in zip(fractions, present, strict=True):
                sq = np.where(ok, sq + (f - mean) * (f - mean), sq)
            std = np.where(many, np.sqrt(sq / np.where(many, count, 1)), std)
        return np.trunc((1 - std) * MAX_NODE_SCORE).astype(np.int64)


def queue_order(pods: list[Pod]) -> list[Pod]:
    """PrioritySort: higher priority first, then older first (stable)."""
    inf = float("inf")
    return sorted(pods, key=lambda p: (-p.priority, p.created if p.created is not None else inf))


def schedule(
    objects: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    pods: Sequence[str] | None = None,
    config: Mapping[str, Any] | None = None,
    order: str = "queue",
    seed: int = 0,
) -> Result:
    """Places pending pods one at a time, as kube-scheduler would (see the module docstring)."""
    return schedule_cluster(Cluster(objects), pods, config, order, seed)


def schedule_cluster(
    c: Cluster,
    pods: Sequence[str] | None = None,
    config: Mapping[str, Any] | None = None,
    order: str = "queue",
    seed: int = 0,
) -> Result:
    """`schedule` on a cluster already built (and changed by it): set-up apart, for timing."""
    profiles = profiles_from_config(config)
    if pods is None:
        queue = [p for p in c.pods if p.node is None and p.active]
    else:
        queue = [c.pods[c.pod_index[k]] for k in pods]
    if order == "queue":
        queue = queue_order(queue)
    elif order != "input":
        raise ValueError(f"the reference does not model order {order!r}")
    rngs = [SplitMix64(seed) for _ in profiles]
    n = len(c.names)
    start = 0  # nextStartNodeIndex: a field of the scheduler, not of a profile
    result = Result()
    for pod in queue:
        which = next(
            (
                i
                for i, pr in enumerate(profiles)
                if pr.name == (pod.spec.get("schedulerName") or "default-scheduler")
            ),
            None,
        )
        if which is None:
            continue  # not this scheduler's pod: upstream leaves it alone
        profile = profiles[which]
        filters = Filters(c, pod, profile)
        want = num_feasible_nodes_to_find(n, profile.percentage)
        if not profile.scores:
            want = 1  # nothing to score: the first feasible node will do
        visit = c.tree_order[(start + np.arange(n)) % n]
        ok = filters.feasible()[visit]
        found = np.cumsum(ok)
        processed = int(np.argmax(found >= want)) + 1 if n and found[-1] >= want else n
        if n:
            start = (start + processed) % n
        feasible = visit[:processed][ok[:processed]]
        if len(feasible) == 0:
            reasons = [r for ni in visit[:processed] for r in filters.reasons(int(ni))]
            result.unschedulable[pod.key] = fit_error(n, reasons)
            continue
        if len(feasible) == 1:
            chosen = int(feasible[0])
        else:
            totals = np.asarray(Scores(c, pod, profile, feasible).total())
            tied = np.flatnonzero(totals == totals.max())
            pick = rngs[which].below(len(tied)) if len(tied) > 1 else 0
            chosen = int(feasible[tied[pick]])
        devices = c.best_fit(chosen, pod.request)
        assert devices is not None, "the fit filter checked the devices"
        c.bind(pod, chosen, devices)
        result.assignments[pod.key] = c.names[chosen]
        result.order.append((pod.key, c.names[chosen]))
        if devices:
            result.gpu_devices[pod.key] = devices
    return result


# --- random small clusters for the differential and property tests --------------------------------

ZONES = ("z1", "z2", "z3")
TAINTS = (
    {"key": "dedicated", "value": "batch", "effect": "NoSchedule"},
    {"key": "gpu", "value": "true", "effect": "NoSchedule"},
    {"key": "spot", "effect": "PreferNoSchedule"},
    {"key": "noisy", "value": "1", "effect": "PreferNoSchedule"},
    {"key": "maint", "value": "x", "effect": "NoExecute"},
)
TOLERATIONS = (
    {"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"},
    {"key": "dedicated", "operator": "Exists"},
    {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"},
    {"key": "noisy", "value": "1"},
    {"key": "noisy", "value": "2"},
    {"key": "maint", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    {"operator": "Exists", "effect": "PreferNoSchedule"},
)
SHAPES = (
    [(0, 0), (100, 10)],  # bin packing
    [(0, 10), (100, 0)],  # spreading
    [(20, 0), (80, 10)],
    [(0, 3), (50, 9), (100, 1)],
    [(10, 2), (90, 8)],
)


def _node_obj(rng: Any, name: str) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": rng.choice(ZONES)}
    if rng.random() < 0.7:
        labels["disk"] = rng.choice(("ssd", "hdd"))
    if rng.random() < 0.7:
        labels["tier"] = str(rng.randint(1, 5))
    alloc = {
        "cpu": rng.choice(("1", "2", "4", "4", "8", "16", "3500m")),
        "memory": rng.choice(("2Gi", "4Gi", "8Gi", "16Gi", "64Gi")),
        "pods": "110" if rng.random() < 0.9 else str(rng.randint(1, 4)),
    }
    if rng.random() < 0.3:
        alloc["ephemeral-storage"] = rng.choice(("10Gi", "50Gi"))
    if rng.random() < 0.2:
        alloc["example.com/foo"] = str(rng.randint(1, 4))
    if rng.random() < 0.25:
        alloc[GPU] = str(rng.choice((1, 2, 4, 8)))
        labels["nvidia.com/gpu.product"] = rng.choice(("T4", "A100"))
    taints = [dict(t) for t in rng.sample(TAINTS, rng.choice((0, 0, 0, 1, 1, 2)))]
    cordoned = rng.random() < 0.08
    if cordoned and rng.random() < 0.5:
        taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints, "unschedulable": cordoned},
        "status": {"allocatable": alloc, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def _requests(rng: Any, gpu: bool) -> dict[str, Any]:
    r: dict[str, Any] = {}
    if rng.random() < 0.7:
        r["cpu"] = rng.choice(("50m", "100m", "250m", "500m", "1", "1500m", "2", "3"))
    if rng.random() < 0.7:
        r["memory"] = rng.choice(("64Mi", "256Mi", "512Mi", "1Gi", "2Gi", "6Gi"))
    if rng.random() < 0.03:
        r[rng.choice(("cpu", "memory"))] = "0"
    if rng.random() < 0.05:
        r["example.com/foo"] = str(rng.randint(1, 2))
    if rng.random() < 0.05:
        r["ephemeral-storage"] = rng.choice(("1Gi", "20Gi"))
    if gpu:
        u = rng.random()
        if u < 0.1:
            r[GPU] = str(rng.choice((1, 1, 2, 4)))
        elif u < 0.2:
            r[GPU_MILLI] = str(rng.randrange(100, 1001, 50))
    return r


def _container(rng: Any, name: str, requests: dict[str, Any]) -> dict[str, Any]:
    if requests and rng.random() < 0.1:
        return {"name": name, "image": "app", "resources": {"limits": requests}}
    return {"name": name, "image": "app", "resources": {"requests": requests}}


def _pod_obj(rng: Any, name: str, node: str | None, *, gpu: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [_container(rng, "main", _requests(rng, gpu))]}
    if rng.random() < 0.15:
        spec["containers"].append(_container(rng, "side", _requests(rng, False)))
    if rng.random() < 0.1:
        init = _container(rng, "init", _requests(rng, False))
        if rng.random() < 0.5:
            init["restartPolicy"] = "Always"
        spec["initContainers"] = [init]
    if rng.random() < 0.05:
        spec["overhead"] = {"cpu": "50m", "memory": "32Mi"}
    if rng.random() < 0.08:
        port = {"containerPort": 80, "hostPort": rng.choice((8080, 9090))}
        if rng.random() < 0.3:
            port["hostIP"] = rng.choice(("10.0.0.1", "10.0.0.2"))
        spec["containers"][0]["ports"] = [port]
    if node is None:
        spec.update(_placement_rules(rng))
    else:
        spec["nodeName"] = node
    meta: dict[str, Any] = {"name": name, "namespace": rng.choice(("default", "team")), "uid": name}
    if rng.random() < 0.9:
        meta["creationTimestamp"] = (
            f"2025-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        )
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": {}}


def _requirement(rng: Any) -> dict[str, Any]:
    u = rng.random()
    if u < 0.35:
        return {
            "key": "topology.kubernetes.io/zone",
            "operator": "In",
            "values": rng.sample(ZONES, 2),
        }
    if u < 0.5:
        return {"key": "disk", "operator": "NotIn", "values": ["hdd"]}
    if u < 0.65:
        return {"key": "disk", "operator": rng.choice(("Exists", "DoesNotExist"))}
    return {"key": "tier", "operator": rng.choice(("Gt", "Lt")), "values": [str(rng.randint(1, 5))]}


def _placement_rules(rng: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    tolerations = rng.sample(TOLERATIONS, rng.choice((0, 0, 1, 1, 2, 3)))
    if rng.random() < 0.03:
        tolerations.append({"operator": "Exists"})
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if rng.random() < 0.15:
        key = rng.choice(("topology.kubernetes.io/zone", "disk"))
        spec["nodeSelector"] = {
            key: rng.choice(ZONES) if "zone" in key else rng.choice(("ssd", "hdd"))
        }
    affinity: dict[str, Any] = {}
    if rng.random() < 0.15:
        terms = [
            {"matchExpressions": [_requirement(rng) for _ in range(rng.randint(1, 2))]}
            for _ in range(rng.randint(1, 2))
        ]
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
    if rng.random() < 0.3:
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": rng.randint(1, 100), "preference": {"matchExpressions": [_requirement(rng)]}}
            for _ in range(rng.randint(1, 3))
        ]
    if affinity:
        spec["affinity"] = {"nodeAffinity": affinity}
    priority = rng.choice((None, None, 0, 10, 100, -5))
    if priority is not None:
        spec["priority"] = priority
    return spec


def random_cluster(
    rng: Any, nodes: int, pending: int, *, bound_per_node: int = 3
) -> list[dict[str, Any]]:
    """A small random cluster: nodes with taints, labels, GPUs and cordons; pods bound within
    capacity (GPU devices annotated or left to the loader's best fit); ``pending`` pods with random
    requests (incl. GPUs, none at all, limits only, init containers), tolerations, node selectors
    and required/preferred node affinity. ``rng`` is a ``random.Random``."""
    node_objs = [_node_obj(rng, f"n{i:03d}") for i in range(nodes)]
    items: list[dict[str, Any]] = list(node_objs)
    count = 0
    for n in node_objs:
        alloc = n["status"]["allocatable"]
        free = {k: amount(k, v) for k, v in alloc.items() if k != GPU}
        gpu_free = [DEVICE_MILLI] * amount(GPU, alloc.get(GPU, 0))
        # A node's GPU pods all carry the devices annotation or none does: the loader takes
        # annotated devices first and then infers the others by best fit in input order, which
        # is then the order they were chosen in here.
        annotate = rng.random() < 0.5
        for _ in range(rng.randint(0, bound_per_node)):
            p = _pod_obj(rng, f"b{count:04d}", n["metadata"]["name"])
            count += 1
            if rng.random() < 0.05:
                p["status"]["phase"] = rng.choice(TERMINAL_PHASES)
                items.append(p)
                continue
            p["status"]["phase"] = "Running"
            req = pod_request(p["spec"])
            if any(v > free.get(k, 0) for k, v in req.resources.items()):
                continue
            fitting = [d for d, f in enumerate(gpu_free) if f >= req.gpu_milli]
            if len(fitting) < req.gpu_count:
                continue
            if req.gpu_count and annotate:
                # Any devices with room.
                devices = sorted(rng.sample(fitting, req.gpu_count))
                p["metadata"]["annotations"] = {GPU_DEVICES_ANNOTATION: ",".join(map(str, devices))}
            else:
                devices = sorted(fitting, key=lambda d: (gpu_free[d], d))[: req.gpu_count]
            items.append(p)
            for k, v in req.resources.items():
                free[k] -= v
            for d in devices:
                gpu_free[d] -= req.gpu_milli
    for i in range(pending):
        items.append(_pod_obj(rng, f"p{i:04d}", None))
    return items
