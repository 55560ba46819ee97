"""kube-engine as a secondary scheduler: the pending pods that name it are placed by the engine
(its profile, in queue order, as one batch) and bound through the Binding API.

Each round reads the cluster afresh (a snapshot: nodes, pods, budgets), schedules the pending
pods whose ``schedulerName`` is this scheduler's, and binds each to its node with the pod's UID as
a precondition (a pod replaced meanwhile is not bound), its GPU devices recorded first in the
``kube-engine.io/gpu-devices`` annotation (docs/encoding.md). Pods that fit nowhere stay Pending
until a later round. Pods naming other schedulers are left alone, as kube-scheduler leaves pods
that name another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kube_engine.applying.api import Api
from kube_engine.applying.run import GPU_DEVICES, Result

#: The ``schedulerName`` pods name to be placed by kube-engine.
SCHEDULER_NAME = "kube-engine"


@dataclass
class Round:
    """One round: what was bound, and what could not be placed."""

    bound: list[Result] = field(default_factory=list)
    unschedulable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bound": [r.to_dict() for r in self.bound],
            "unschedulable": dict(self.unschedulable),
        }


def profile_for(name: str, profile: Mapping[str, Any] | None) -> dict[str, Any]:
    """A KubeSchedulerConfiguration whose profile named ``name`` places the pods naming it: the
    given one (its profile of that name, else its first, renamed), or the default profile."""
    config: dict[str, Any] = json.loads(json.dumps(profile)) if profile else {}
    profiles = config.setdefault("profiles", [])
    if not profiles:
        profiles.append({})
    if not any(p.get("schedulerName") == name for p in profiles):
        profiles[0]["schedulerName"] = name
    return config


def schedule_round(
    api: Api,
    *,
    read: Callable[[], Any],
    name: str = SCHEDULER_NAME,
    profile: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Round:
    """Reads the cluster (``read()`` returns a Snapshot), places the pending pods that name
    ``name`` and binds them."""
    from kube_engine.scheduling import schedule

    snapshot = read()
    uids = dict(zip(snapshot.pod_names(), snapshot.pod_uids(), strict=True))
    placement = schedule(snapshot, profile=profile_for(name, profile), seed=seed)
    out = Round(unschedulable=dict(placement.unschedulable))
    devices = placement.gpu_devices
    for pod, node in placement.order():
        ns, pod_name = pod.split("/", 1)
        if pod in devices:
            listed = ",".join(str(d) for d in devices[pod])
            patched = api.patch_pod(
                ns, pod_name, {"metadata": {"annotations": {GPU_DEVICES: listed}}}
            )
            if not patched.ok:
                why = f"cannot record its GPU devices: {patched.describe()}"
                out.bound.append(Result(0, "bind", pod, "blocked", why, None, node))
                continue
        ans = api.bind(ns, pod_name, uids[pod], node)
        if ans.ok:
            outcome, why = ("dry-run" if api.dry_run else "done"), ""
        elif ans.status == 409:
            outcome, why = "skipped", f"bound or replaced meanwhile: {ans.message}"
        elif ans.status == 404:
            outcome, why = "gone", "the pod no longer exists"
        else:
            outcome, why = "blocked", ans.describe()
        out.bound.append(Result(0, "bind", pod, outcome, why, None, node, node if ans.ok else None))
    return out


def run(
    api: Api,
    *,
    read: Callable[[], Any],
    name: str = SCHEDULER_NAME,
    profile: Mapping[str, Any] | None = None,
    once: bool = True,
    interval: float = 2.0,
    rounds: int | None = None,
    report: Callable[[Round], None] = lambda r: None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Round]:
    """Rounds of :func:`schedule_round`: one with ``once``, else every ``interval`` seconds (at most
    ``rounds``; without, until interrupted)."""
    done: list[Round] = []
    while True:
        r = schedule_round(api, read=read, name=name, profile=profile, seed=len(done))
        report(r)
        done.append(r)
        if once or (rounds is not None and len(done) >= rounds):
            return done
        sleep(interval)
