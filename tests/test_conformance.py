"""kube-scheduler's own plugin unit-test tables, translated to data in ``tests/conformance/``
and run through the public API (see docs/conformance.md).

Each case is a cluster (nodes and the pods bound to them), an incoming pending pod, a profile
that enables the plugin under test (with its args) and what upstream expects: per node, the
plugin's Filter status, and/or its normalised scores. ``kube_engine.explain`` shows the first
cycle ``schedule`` would run for the pod, every node filtered and every feasible node scored, so
the cluster is the one upstream builds: no node is hidden from the plugin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import kube_engine as ke

DATA = Path(__file__).parent / "conformance"
INCOMING = "incoming"
NOT_READ = {"Namespace"}
"""Kinds upstream's cases hold that a snapshot does not read (its reader rejects them): they are
kept in the data, as upstream has them, and left out here; the cases whose verdict depends on
them are marked as disagreements."""


def load_suites() -> list[dict[str, Any]]:
    return [{"suite": p.stem, **yaml.safe_load(p.read_text())} for p in sorted(DATA.glob("*.yaml"))]


def node_object(spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Node", "apiVersion": "v1", **spec}


def pod_object(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """A pod with upstream's defaults: the default namespace, no containers unless given."""
    meta = {"name": name, "namespace": "default", **spec.get("metadata", {})}
    meta.setdefault("uid", f"uid-{meta['namespace']}-{meta['name']}")
    body = {"containers": [], **spec.get("spec", {})}
    out = {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": body}
    if "status" in spec:
        out["status"] = spec["status"]
    return out


def profile_of(suite: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """The suite's profile (the plugin under test alone, at the extension points the case
    checks), with the case's plugin args."""
    profile: dict[str, Any] = {
        "schedulerName": "default-scheduler",
        "plugins": case.get("plugins", suite["plugins"]),
    }
    args = case.get("args", suite.get("args"))
    if args is not None:
        profile["pluginConfig"] = [{"name": suite["plugin"], "args": args}]
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "profiles": [profile],
    }


def cluster(case: dict[str, Any]) -> ke.Snapshot:
    items: list[dict[str, Any]] = [node_object(n) for n in case.get("nodes", [])]
    items += [pod_object(p, f"existing-{i}") for i, p in enumerate(case.get("pods", []))]
    items.append(pod_object(case.get("pod", {}), INCOMING))
    items += [o for o in case.get("objects", []) if o["kind"] not in NOT_READ]
    return ke.Snapshot.from_bytes(json.dumps({"kind": "List", "items": items}).encode())


def incoming_key(case: dict[str, Any]) -> str:
    meta = case.get("pod", {}).get("metadata", {})
    return f"{meta.get('namespace', 'default')}/{meta.get('name', INCOMING)}"


def cases() -> list[Any]:
    out = []
    for suite in load_suites():
        for case in suite["cases"]:
            marks = []
            if "disagreement" in case:
                marks.append(pytest.mark.xfail(reason=case["disagreement"], strict=True))
            out.append(
                pytest.param(suite, case, id=f"{suite['suite']}:{case['name']}", marks=marks)
            )
    return out


def as_reasons(want: str | list[str] | None) -> list[str] | None:
    return [want] if isinstance(want, str) else want


@pytest.mark.parametrize(("suite", "case"), cases())
def test_upstream_case(suite: dict[str, Any], case: dict[str, Any]) -> None:
    want = case["want"]
    if "config_error" in want:
        with pytest.raises(ke.ConfigError, match=want["config_error"]):
            ke.explain(cluster(case), incoming_key(case), profile_of(suite, case))
        return
    e = ke.explain(cluster(case), incoming_key(case), profile_of(suite, case))
    if "pre_filter" in want:
        assert e["pre_filter"] == {"plugin": suite["plugin"], "reasons": [want["pre_filter"]]}
        return
    assert e["pre_filter"] is None
    if "filter" in want:
        got = {
            n: None if r is None else r["reasons"]
            for n, r in e["filters"].items()
            if n in want["filter"]
        }
        assert got == {n: as_reasons(w) for n, w in want["filter"].items()}
        for rejection in e["filters"].values():
            assert rejection is None or rejection["plugin"] == suite["plugin"]
    if want.get("pre_score") == "skip":
        assert e["scores"][suite["plugin"]] is None
    if "scores" in want:
        scores = e["scores"][suite["plugin"]]
        if scores is None:
            # PreScore skipped the pod, which the framework scores 0 on every node: upstream's
            # cases that call Score without PreScore expect just that.
            assert set(want["scores"].values()) == {0}
            assert set(e["totals"]) == set(want["scores"])
        else:
            assert scores == want["scores"]


def test_every_inexpressible_case_gives_a_reason() -> None:
    names: set[tuple[str, str]] = set()
    for suite in load_suites():
        assert {"plugin", "upstream", "plugins", "cases"} <= suite.keys()
        for case in suite["cases"] + suite.get("inexpressible", []):
            key = (suite["suite"], case["name"])
            assert key not in names, f"{case['name']} twice"
            names.add(key)
        for case in suite.get("inexpressible", []):
            assert case.get("reason"), case["name"]


def test_inter_pod_affinity_counts_pods_being_deleted() -> None:
    """Upstream's InterPodAffinity counts every pod on a node, terminating or not (its PreFilter
    and PreScore walk the NodeInfo's pods with no deletionTimestamp check, unlike
    PodTopologySpread), for the incoming pod's terms and for the existing pods' own."""
    deleted = {"name": "db-0", "labels": {"app": "db"}, "deletionTimestamp": "2024-01-01T00:00:00Z"}
    nodes = [{"metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}}} for n in "ab"]
    term = {
        "labelSelector": {"matchLabels": {"app": "db"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    only = {"disabled": [{"name": "*"}], "enabled": [{"name": "InterPodAffinity"}]}
    suite = {"plugin": "InterPodAffinity", "plugins": {"multiPoint": only}}
    anti = {
        "nodes": nodes,
        "pods": [{"metadata": deleted, "spec": {"nodeName": "a"}}],
        "pod": {
            "spec": {
                "affinity": {
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
                }
            }
        },
    }
    e = ke.explain(cluster(anti), incoming_key(anti), profile_of(suite, anti))
    assert e["filters"] == {
        "a": {
            "plugin": "InterPodAffinity",
            "reasons": ["node(s) didn't match pod anti-affinity rules"],
        },
        "b": None,
    }
    preferred = {
        **anti,
        "pod": {
            "spec": {
                "affinity": {
                    "podAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 1, "podAffinityTerm": term}
                        ]
                    }
                }
            }
        },
    }
    e = ke.explain(cluster(preferred), incoming_key(preferred), profile_of(suite, preferred))
    assert e["scores"]["InterPodAffinity"] == {"a": 100, "b": 0}
    # The existing pod's own anti-affinity term keeps the incoming pod away while it terminates.
    holder = {
        "nodes": nodes,
        "pods": [
            {
                "metadata": deleted,
                "spec": {
                    "nodeName": "a",
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [term]
                        }
                    },
                },
            }
        ],
        "pod": {"metadata": {"labels": {"app": "db"}}},
    }
    e = ke.explain(cluster(holder), incoming_key(holder), profile_of(suite, holder))
    assert e["filters"]["a"] == {
        "plugin": "InterPodAffinity",
        "reasons": ["node(s) didn't satisfy existing pods anti-affinity rules"],
    }
    assert e["filters"]["b"] is None
