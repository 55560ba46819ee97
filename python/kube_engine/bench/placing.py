"""Where the generators' pods run: the core places them, so every rule they obey is the core's.

A generator writes its pods unbound and Pending, then asks for a placement:

- :func:`random_fit` places the pods meant to run one at a time, in the order given, each on a
  node drawn uniformly among those the default profile's filters let it go to (resources, GPU
  devices, node affinity, taints, ports, inter-pod affinity, topology spread) as the earlier ones
  left the cluster; GPU devices are drawn as the ``Random`` policy draws them. A pod that fits
  nowhere keeps kube-scheduler's message.
- :func:`could_run` gives terminal (Succeeded/Failed) pods a node they could have run on: the same
  draw on the empty cluster, so they never compete with the running ones for room.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kube_engine import Snapshot, budget_status, schedule
from kube_engine.bench.objects import JsonDict, k8s_list


def _profile(seed: int, filters: Sequence[str] | None) -> dict[str, Any]:
    """The default profile with ``Random`` as its only score (and only ``filters``, if given),
    every feasible node scored so that the draw is uniform over all of them."""
    plugins: dict[str, Any] = {
        "score": {"disabled": [{"name": "*"}], "enabled": [{"name": "Random"}]}
    }
    if filters is not None:
        plugins["filter"] = {
            "disabled": [{"name": "*"}],
            "enabled": [{"name": f} for f in filters],
        }
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "profiles": [
            {
                "schedulerName": "default-scheduler",
                "percentageOfNodesToScore": 100,
                "plugins": plugins,
                "pluginConfig": [{"name": "Random", "args": {"seed": seed}}],
            }
        ],
    }


@dataclass(frozen=True)
class Placed:
    """Where each pod (``namespace/name``) went, on which GPU devices, and why others did not."""

    nodes: dict[str, str]
    devices: dict[str, list[int]]
    unschedulable: dict[str, str]


def _key(pod: JsonDict) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def document(items: Sequence[JsonDict]) -> bytes:
    """``items`` as one ``List`` for the core (compact, keys unsorted: only the core reads it)."""
    return json.dumps(k8s_list(items), separators=(",", ":")).encode()


def random_fit(nodes: bytes, pods: Sequence[JsonDict], seed: int) -> Placed:
    """Places the unbound ``pods`` on ``nodes`` (a :func:`document`) in order (see the module
    doc)."""
    if not pods:
        return Placed({}, {}, {})
    snapshot = Snapshot.from_documents([nodes, document(pods)])
    placement = schedule(
        snapshot, [_key(p) for p in pods], profile=_profile(seed, None), order="input", seed=seed
    )
    return Placed(placement.assignments, placement.gpu_devices, placement.unschedulable)


#: What makes a node one a pod could have run on, room aside.
ELIGIBILITY = ("NodeResourcesFit", "NodeAffinity", "TaintToleration")


def could_run(nodes: bytes, pods: Sequence[JsonDict], seed: int) -> dict[str, str]:
    """A node each terminal pod could have run on, drawn uniformly among those that would take it
    on the empty cluster (``nodes``, a :func:`document`); pods no node would take are left out.
    The draw is made in rounds, so that the pods placed in one round do not crowd out the next."""
    out: dict[str, str] = {}
    todo = list(pods)
    round_ = 0
    while todo:
        snapshot = Snapshot.from_documents([nodes, document(todo)])
        placement = schedule(
            snapshot,
            [_key(p) for p in todo],
            profile=_profile(seed + round_, ELIGIBILITY),
            order="input",
            seed=seed + round_,
        )
        placed = placement.assignments
        if not placed:
            break  # what is left fits no node even alone
        out.update(placed)
        todo = [p for p in todo if _key(p) not in placed]
        round_ += 1
    return out


def budget_counts(pods: Sequence[JsonDict], budgets: Sequence[JsonDict]) -> dict[str, Any]:
    """What the disruption controller would report for each of ``budgets`` (by
    ``namespace/name``), as :func:`kube_engine.budget_status` works it out from ``pods``."""
    if not budgets:
        return {}
    # Only what a budget looks at: namespace, labels, phase.
    namespaces = {b["metadata"]["namespace"] for b in budgets}
    slim = [
        {
            "kind": "Pod",
            "metadata": {
                "name": p["metadata"]["name"],
                "namespace": p["metadata"]["namespace"],
                "labels": p["metadata"].get("labels", {}),
            },
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": p["status"]["phase"]},
        }
        for p in pods
        if p["metadata"]["namespace"] in namespaces
    ]
    return dict(budget_status(Snapshot.from_bytes(document([*slim, *budgets]))))
