"""Hypothesis strategies for Kubernetes-shaped snapshots: nodes, pods (containers, init
containers and sidecars, overhead, tolerations, node selectors, node and pod (anti-)affinity,
topology spread, host ports, owners) and PodDisruptionBudgets.

:func:`clusters` draws valid ones (every value is what the API server accepts, so the engine
must load them); :func:`hostile_clusters` then puts hostile values at a few drawn places (wrong
types, extreme numbers, odd strings, deep nesting), which hypothesis shrinks to the one that
matters.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

Json = Any

ZONES = ["zone-a", "zone-b", "zone-c"]
APPS = ["web", "api", "db"]
NAMESPACES = ["default", "team"]
MODELS = ["T4", "A100"]
SELECTOR_KEYS = ["app", "tier", "disk", "topology.kubernetes.io/zone"]
SELECTOR_VALUES = ["web", "api", "db", "ssd", "hdd", "zone-a", "zone-b", "front"]

TAINTS = st.fixed_dictionaries(
    {
        "key": st.sampled_from(["dedicated", "gpu", "example.com/special"]),
        "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
    },
    optional={"value": st.sampled_from(["batch", "true", ""])},
)
TOLERATIONS = st.one_of(
    st.fixed_dictionaries(
        {"key": st.sampled_from(["dedicated", "gpu"]), "operator": st.just("Equal")},
        optional={
            "value": st.sampled_from(["batch", "true"]),
            "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule"]),
        },
    ),
    # The API server takes tolerationSeconds only with the NoExecute effect.
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(["dedicated", "gpu"]),
            "operator": st.just("Equal"),
            "effect": st.just("NoExecute"),
        },
        optional={
            "value": st.sampled_from(["batch", "true"]),
            "tolerationSeconds": st.integers(0, 3600),
        },
    ),
    st.fixed_dictionaries(
        {"operator": st.just("Exists")},
        optional={"key": st.sampled_from(["dedicated", "gpu"]), "effect": st.just("NoSchedule")},
    ),
)
EXPRESSIONS = st.one_of(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(SELECTOR_KEYS),
            "operator": st.sampled_from(["In", "NotIn"]),
            "values": st.lists(st.sampled_from(SELECTOR_VALUES), min_size=1, max_size=2),
        }
    ),
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(SELECTOR_KEYS),
            "operator": st.sampled_from(["Exists", "DoesNotExist"]),
        }
    ),
)
LABEL_SELECTORS = st.fixed_dictionaries(
    {},
    optional={
        "matchLabels": st.dictionaries(st.just("app"), st.sampled_from(APPS), max_size=1),
        "matchExpressions": st.lists(EXPRESSIONS, max_size=2),
    },
)
NODE_TERMS = st.fixed_dictionaries(
    {"matchExpressions": st.lists(EXPRESSIONS, min_size=1, max_size=2)}
)
POD_TERMS = st.fixed_dictionaries(
    {
        "labelSelector": LABEL_SELECTORS,
        "topologyKey": st.sampled_from(["kubernetes.io/hostname", "topology.kubernetes.io/zone"]),
    }
)


def _weighted(term: st.SearchStrategy[Json], key: str) -> st.SearchStrategy[Json]:
    return st.fixed_dictionaries({"weight": st.integers(1, 100), key: term})


AFFINITY = st.fixed_dictionaries(
    {},
    optional={
        "nodeAffinity": st.fixed_dictionaries(
            {},
            optional={
                "requiredDuringSchedulingIgnoredDuringExecution": st.fixed_dictionaries(
                    {"nodeSelectorTerms": st.lists(NODE_TERMS, min_size=1, max_size=2)}
                ),
                "preferredDuringSchedulingIgnoredDuringExecution": st.lists(
                    _weighted(
                        st.fixed_dictionaries(
                            {"matchExpressions": st.lists(EXPRESSIONS, max_size=2)}
                        ),
                        "preference",
                    ),
                    max_size=2,
                ),
            },
        ),
        "podAffinity": st.fixed_dictionaries(
            {},
            optional={
                "requiredDuringSchedulingIgnoredDuringExecution": st.lists(POD_TERMS, max_size=1),
                "preferredDuringSchedulingIgnoredDuringExecution": st.lists(
                    _weighted(POD_TERMS, "podAffinityTerm"), max_size=2
                ),
            },
        ),
        "podAntiAffinity": st.fixed_dictionaries(
            {},
            optional={
                "requiredDuringSchedulingIgnoredDuringExecution": st.lists(POD_TERMS, max_size=1),
                "preferredDuringSchedulingIgnoredDuringExecution": st.lists(
                    _weighted(POD_TERMS, "podAffinityTerm"), max_size=2
                ),
            },
        ),
    },
)
SPREAD = st.one_of(
    st.fixed_dictionaries(
        {"whenUnsatisfiable": st.just("DoNotSchedule")}, optional={"minDomains": st.integers(1, 3)}
    ),
    # minDomains is only allowed with DoNotSchedule.
    st.just({"whenUnsatisfiable": "ScheduleAnyway"}),
).flatmap(
    lambda policy: st.fixed_dictionaries(
        {
            "maxSkew": st.integers(1, 3),
            "topologyKey": st.sampled_from(
                ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
            ),
            "labelSelector": LABEL_SELECTORS,
        }
    ).map(lambda c: {**c, **policy})
)
CPU = st.sampled_from(["0", "100m", "250m", "500m", "1", "1.5", "2", "3"])
MEMORY = st.sampled_from(["0", "64Mi", "256Mi", "1Gi", "1.5Gi", "2G", "3e9"])
REQUESTS = st.fixed_dictionaries(
    {},
    optional={
        "cpu": CPU,
        "memory": MEMORY,
        "ephemeral-storage": st.sampled_from(["1Gi", "10Gi"]),
    },
)


@st.composite
def containers(draw: st.DrawFn, prefix: str, sidecars: bool = False) -> list[Json]:
    out = []
    for i in range(draw(st.integers(0 if sidecars else 1, 2))):
        requests = draw(REQUESTS)
        c: Json = {"name": f"{prefix}{i}", "image": "busybox", "resources": {"requests": requests}}
        if draw(st.booleans()) and not sidecars:
            c["ports"] = [{"containerPort": 80, "hostPort": draw(st.sampled_from([80, 8080]))}]
        if sidecars and draw(st.booleans()):
            c["restartPolicy"] = "Always"
        out.append(c)
    return out


@st.composite
def nodes(draw: st.DrawFn, name: str) -> Json:
    labels = {
        "kubernetes.io/hostname": name,
        "topology.kubernetes.io/zone": draw(st.sampled_from(ZONES)),
    }
    if draw(st.booleans()):
        labels["disk"] = draw(st.sampled_from(["ssd", "hdd"]))
    allocatable = {
        "cpu": draw(st.sampled_from(["2", "4", "8", "3500m"])),
        "memory": draw(st.sampled_from(["4Gi", "8Gi", "16Gi"])),
        "pods": draw(st.sampled_from(["3", "10", "110"])),
        "ephemeral-storage": "100Gi",
    }
    gpus = draw(st.sampled_from([0, 0, 1, 2, 4]))
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
        labels["nvidia.com/gpu.product"] = draw(st.sampled_from(MODELS))
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "taints": draw(
                st.lists(TAINTS, max_size=2, unique_by=lambda t: (t["key"], t["effect"]))
            ),
            "unschedulable": draw(st.booleans()) and draw(st.booleans()),
        },
        "status": {
            "allocatable": allocatable,
            "capacity": dict(allocatable),
            "conditions": [
                {"type": "Ready", "status": draw(st.sampled_from(["True"] * 5 + ["False"]))}
            ],
        },
    }


@st.composite
def pods(draw: st.DrawFn, name: str, node_names: list[str]) -> Json:
    app = draw(st.sampled_from(APPS))
    spec: Json = {"containers": draw(containers("c"))}
    # A pod asks for whole GPUs or for a share of one (docs/encoding.md), in one container.
    gpu = draw(
        st.sampled_from(
            [
                None,
                None,
                None,
                ("nvidia.com/gpu", "1"),
                ("nvidia.com/gpu", "2"),
                ("kube-engine.io/gpu-milli", "250"),
                ("kube-engine.io/gpu-milli", "1000"),
            ]
        )
    )
    if gpu:
        resources = spec["containers"][0]["resources"]
        resources["requests"][gpu[0]] = gpu[1]
        if gpu[0] == "nvidia.com/gpu":
            # An extended resource's limit equals its request, as the API server requires.
            resources["limits"] = {gpu[0]: gpu[1]}
    init = draw(containers("init", sidecars=True))
    if init:
        spec["initContainers"] = init
    node = draw(st.none() | st.sampled_from(node_names)) if node_names else None
    if node:
        spec["nodeName"] = node
    optional = {
        "overhead": st.fixed_dictionaries({"cpu": st.just("100m"), "memory": st.just("64Mi")}),
        "tolerations": st.lists(TOLERATIONS, max_size=2),
        "nodeSelector": st.dictionaries(
            st.sampled_from(["disk", "topology.kubernetes.io/zone"]),
            st.sampled_from(SELECTOR_VALUES),
            max_size=1,
        ),
        "affinity": AFFINITY,
        "topologySpreadConstraints": st.lists(
            SPREAD, max_size=2, unique_by=lambda s: (s["topologyKey"], s["whenUnsatisfiable"])
        ),
        "priority": st.integers(-10, 1000),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    phase = "Running" if node else "Pending"
    if draw(st.integers(0, 9)) == 0:
        phase = "Succeeded"
    metadata: Json = {
        "name": name,
        "namespace": draw(st.sampled_from(NAMESPACES)),
        "uid": f"uid-{name}",
        "labels": {"app": app, "tier": draw(st.sampled_from(["front", "back"]))},
        "creationTimestamp": f"2024-01-0{draw(st.integers(1, 9))}T00:00:00Z",
    }
    if draw(st.booleans()):
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{app}-rs",
                "uid": f"rs-{app}",
                "controller": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": phase},
    }


@st.composite
def budgets(draw: st.DrawFn, name: str) -> Json:
    policy = draw(
        st.one_of(
            st.builds(
                lambda v: {"minAvailable": v}, st.integers(0, 3) | st.sampled_from(["50%", "100%"])
            ),
            st.builds(
                lambda v: {"maxUnavailable": v}, st.integers(0, 2) | st.sampled_from(["25%"])
            ),
        )
    )
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": draw(st.sampled_from(NAMESPACES))},
        "spec": {"selector": {"matchLabels": {"app": draw(st.sampled_from(APPS))}}, **policy},
    }


@st.composite
def clusters(draw: st.DrawFn, max_nodes: int = 5, max_pods: int = 10) -> list[Json]:
    """A valid cluster's objects (what ``kubectl get nodes,pods,pdb -A -o json`` lists)."""
    node_names = [f"node-{i}" for i in range(draw(st.integers(0, max_nodes)))]
    items = [draw(nodes(n)) for n in node_names]
    items += [draw(pods(f"pod-{i}", node_names)) for i in range(draw(st.integers(0, max_pods)))]
    items += [draw(budgets(f"pdb-{i}")) for i in range(draw(st.integers(0, 2)))]
    return items


def document(items: list[Json]) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}).encode()


# What a hostile writer puts in a field.
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(2**62, 2**70) | st.integers(-(2**70), -(2**62)),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["", "-1", "1.5", "-1Gi", "9Ei", "1e999999", "150%", "a/b", "x" * 5000]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.recursive(st.just([]), lambda inner: st.lists(inner, max_size=1), max_leaves=60),
)


def places(doc: Json, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``doc``, the root excluded, in a stable order."""
    out: list[tuple[Any, ...]] = []
    children = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for k, v in children:
        out.append((*at, k))
        out.extend(places(v, (*at, k)))
    return out


@st.composite
def hostile_clusters(draw: st.DrawFn) -> list[Json]:
    """A valid cluster with hostile values put at one to three drawn places."""
    items = draw(clusters(max_nodes=3, max_pods=5))
    if not items:
        return items
    for _ in range(draw(st.integers(1, 3))):
        spots = places(items)
        path = spots[draw(st.integers(0, len(spots) - 1))]
        parent = items
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = draw(HOSTILE)
    return items
