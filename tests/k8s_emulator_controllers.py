"""Simulated cluster components for the Kubernetes API emulator.

A live cluster reacts to what an applier does: an evicted pod of a ReplicaSet comes back under a new
name, a bound pod starts and turns Ready, the disruption controller recounts each
PodDisruptionBudget, the scheduler places what is Pending. :class:`Controllers` plays those parts
on the emulator's store, so end-to-end tests see the same consequences:

* **ReplicaSet**: a pod whose controller is a ReplicaSet and that stops being active (deleted,
  terminating or terminal) is replaced by a new one from its template (labels, annotations, owner
  references and spec, without nodeName), named by ``generateName`` ``<replicaset>-``, Pending;
  the replica count is the most active pods the owner was seen with (or :meth:`set_replicas`).
* **StatefulSet**: a pod that is gone comes back under the same name (ordinal kept), new UID.
  Both wait ``recreate_delay`` seconds before creating.
* **kubelet**: a bound Pending pod on an existing node becomes Running, Ready after ``ready_delay``
  seconds; pods for which ``unready(pod)`` is true are (or become) Running but not Ready.
* **disruption controller**: every PDB's status (expectedPods, currentHealthy, desiredHealthy,
  disruptionsAllowed, observedGeneration, disruptedPods, the DisruptionAllowed condition) as
  ``pkg/controller/disruption`` computes it: percentages rounded up, nothing allowed while no pod
  is expected, a pod in disruptedPods not counted healthy for ``disruption_timeout`` seconds, its
  entry dropped once the pod is gone or terminating.
* **default scheduler**: Pending pods of ``default-scheduler`` (or of the profiles of
  ``scheduler_config``) are placed by the reference scheduler of ``tests/reference_scheduler.py``
  (its filters, cordons included, and scores) and bound through the binding logic; pods it cannot
  place get ``PodScheduled=False`` with its FitError; pods of other schedulers stay Pending.

A pass runs the five in that order (recreate, schedule, start, recount), under the emulator's lock
for the PDB recount so it cannot interleave with an eviction. Turned on by
``KubeEmulator.controllers(...)``; passes run when a test calls ``emu.reconcile()`` or, with an
``interval``, on a background thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from k8s_emulator_applier import set_condition, set_disruption_allowed_condition
from k8s_emulator_protocol import (
    JSON,
    NODES,
    PDBS,
    PODS,
    ApiError,
    label_selector_matches,
    labels_of,
    meta_of,
    pod_is_ready,
    timestamp,
)

from reference_scheduler import Cluster, schedule_cluster

if TYPE_CHECKING:
    from k8s_emulator import KubeEmulator

__all__ = ["Controllers"]

TERMINAL_PHASES = ("Succeeded", "Failed")
RECREATED_KINDS = ("ReplicaSet", "StatefulSet")
# What a pod carries over into its replacement (the rest is the server's or the kubelet's).
_TEMPLATE_METADATA = ("labels", "annotations", "ownerReferences")


@dataclass
class _Owner:
    """A pod controller as far as its pods show it."""

    kind: str
    namespace: str
    name: str
    uid: str
    replicas: int = 0  # its scale: the most active pods seen at once, or set by the test
    pinned: bool = False  # replicas set by the test: do not learn it
    template: JSON | None = None  # ReplicaSet: the newest active pod, as a template
    members: dict[str, JSON] = field(default_factory=dict)  # StatefulSet: name -> template
    due: list[float] = field(default_factory=list)  # ReplicaSet: when missing replicas come
    due_by_name: dict[str, float] = field(default_factory=dict)  # StatefulSet: the same by name


def _controller_ref(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    refs = meta_of(pod).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def _active(pod: Mapping[str, Any]) -> bool:
    """controller.IsPodActive: not terminal and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in TERMINAL_PHASES and not meta_of(pod).get("deletionTimestamp")


def _template(pod: Mapping[str, Any]) -> JSON:
    meta = meta_of(pod)
    spec: JSON = dict(pod.get("spec") or {})
    spec.pop("nodeName", None)
    return {
        "metadata": {k: meta[k] for k in _TEMPLATE_METADATA if k in meta},
        "spec": spec,
    }


def _scaled(value: int | str, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent, rounding up (as the disruption controller asks)."""
    if isinstance(value, int):
        return value
    if value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def _seconds(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return time.time()


class Controllers:
    """The simulated controllers of one emulator (see the module docstring).

    ``unready``: pods it returns True for are kept (or made) not Ready by the kubelet; it may be
    changed at any time. ``scheduler_config``/``seed``: the reference scheduler's configuration
    and tie-breaking seed. ``errors`` collects exceptions a background pass raised.
    """

    def __init__(
        self,
        emu: KubeEmulator,
        *,
        replicasets: bool = True,
        statefulsets: bool = True,
        kubelet: bool = True,
        disruption: bool = True,
        scheduler: bool = True,
        recreate_delay: float = 0.0,
        ready_delay: float = 0.0,
        unready: Callable[[JSON], bool] | None = None,
        disruption_timeout: float = 120.0,
        scheduler_config: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.emu = emu
        self.replicasets, self.statefulsets = replicasets, statefulsets
        self.kubelet, self.disruption, self.scheduler = kubelet, disruption, scheduler
        self.recreate_delay = recreate_delay
        self.ready_delay = ready_delay
        self.unready = unready
        self.disruption_timeout = disruption_timeout  # the disruption controller's DeletionTimeout
        self.scheduler_config = scheduler_config
        self.seed = seed
        self.errors: list[BaseException] = []
        self.passes = 0
        self._owners: dict[str, _Owner] = {}  # by owner uid
        self._bound_at: dict[str, float] = {}  # pod uid -> when the kubelet first saw it bound
        self._pass_lock = threading.Lock()  # one pass at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observe(self.emu.objects(PODS))  # learn the owners' scales as the cluster is now

    # ---------------------------------------------------------------- running

    def reconcile(self) -> None:
        """One pass of every controller turned on."""
        with self._pass_lock:
            pods = self.emu.objects(PODS)
            self._observe(pods)
            if self.replicasets or self.statefulsets:
                self._recreate(pods)
            if self.scheduler:
                self._schedule()
            if self.kubelet:
                self._run_pods()
            if self.disruption:
                self._recount_budgets()
            self.passes += 1

    def start(self, interval: float = 0.02) -> Controllers:
        """Run passes on a background thread, ``interval`` seconds apart."""
        if self._thread is not None:
            return self
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.reconcile()
                except Exception as exc:  # kept for the test to see; the loop goes on
                    self.errors.append(exc)
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="k8s-emulator-controllers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def set_replicas(self, namespace: str, kind: str, name: str, replicas: int) -> None:
        """Fix the scale of a pod controller (otherwise learnt from its pods)."""
        with self._pass_lock:
            owner = next(
                (
                    o
                    for o in self._owners.values()
                    if (o.namespace, o.kind, o.name) == (namespace, kind, name)
                ),
                None,
            )
            if owner is None:
                raise KeyError(f"no pods seen for {kind} {namespace}/{name}")
            owner.replicas, owner.pinned = replicas, True

    # ---------------------------------------------------------------- owners

    def _observe(self, pods: list[JSON]) -> None:
        active: dict[str, int] = {}
        for p in pods:
            ref = _controller_ref(p)
            if ref is None or not ref.get("uid"):
                continue
            meta = meta_of(p)
            owner = self._owners.setdefault(
                ref["uid"],
                _Owner(str(ref.get("kind")), meta["namespace"], str(ref.get("name")), ref["uid"]),
            )
            if owner.kind == "StatefulSet":
                owner.members[meta["name"]] = _template(p)
            if _active(p):
                active[owner.uid] = active.get(owner.uid, 0) + 1
                owner.template = _template(p)
        for owner in self._owners.values():
            if owner.kind == "StatefulSet":
                owner.replicas = max(owner.replicas, len(owner.members))
            elif not owner.pinned:
                owner.replicas = max(owner.replicas, active.get(owner.uid, 0))

    # ---------------------------------------------------------------- ReplicaSet, StatefulSet

    def _recreate(self, pods: list[JSON]) -> None:
        now = time.monotonic()
        present = {(meta_of(p)["namespace"], meta_of(p)["name"]) for p in pods}
        active: dict[str, int] = {}
        for p in pods:
            ref = _controller_ref(p)
            if ref is not None and _active(p):
                active[ref.get("uid", "")] = active.get(ref.get("uid", ""), 0) + 1
        for owner in list(self._owners.values()):
            if owner.kind == "ReplicaSet" and self.replicasets and owner.template is not None:
                missing = owner.replicas - active.get(owner.uid, 0)
                del owner.due[max(missing, 0) :]
                owner.due += [now + self.recreate_delay] * (missing - len(owner.due))
                for _ in [d for d in owner.due if d <= now]:
                    replacement = _copy_template(owner.template)
                    replacement["metadata"]["generateName"] = f"{owner.name}-"
                    self._create(owner.namespace, replacement)
                owner.due = [d for d in owner.due if d > now]
            elif owner.kind == "StatefulSet" and self.statefulsets:
                for name, template in owner.members.items():
                    if (owner.namespace, name) in present:
                        owner.due_by_name.pop(name, None)
                        continue
                    due = owner.due_by_name.setdefault(name, now + self.recreate_delay)
                    if due <= now:
                        replacement = _copy_template(template)
                        replacement["metadata"]["name"] = name
                        self._create(owner.namespace, replacement)
                        del owner.due_by_name[name]

    def _create(self, namespace: str, obj: JSON) -> None:
        try:
            self.emu.create(PODS, obj, namespace=namespace)
        except ApiError as exc:
            if exc.code != 409:  # a test (or a hook) created it first: fine
                raise

    # ---------------------------------------------------------------- scheduler

    def _schedule(self) -> None:
        nodes = self.emu.objects(NODES)
        pods = self.emu.objects(PODS)
        waiting = [
            p
            for p in pods
            if not (p.get("spec") or {}).get("nodeName")
            and _active(p)
            and not (p.get("spec") or {}).get("schedulingGates")
        ]
        if not waiting:
            return
        names = {meta_of(n)["name"] for n in nodes}
        # The reference scheduler needs every bound pod's node: pods on vanished nodes are left
        # out (they hold nothing any node has).
        objects = [{"kind": "Node", **n} for n in nodes] + [
            {"kind": "Pod", **p}
            for p in pods
            if not (p.get("spec") or {}).get("nodeName") or p["spec"]["nodeName"] in names
        ]
        keys = [f"{meta_of(p)['namespace']}/{meta_of(p)['name']}" for p in waiting]
        uids = {k: meta_of(p).get("uid") for k, p in zip(keys, waiting, strict=True)}
        result = schedule_cluster(Cluster(objects), keys, self.scheduler_config, "queue", self.seed)
        for key, node_name in result.order:
            namespace, name = key.split("/", 1)
            try:
                self.emu.bind(namespace, name, node_name, uid=uids[key], source="scheduler")
            except ApiError:
                continue  # the pod changed since it was read: the next pass sees it again
        for key, why in result.unschedulable.items():
            namespace, name = key.split("/", 1)
            uid = uids[key]

            def unschedulable(p: JSON, uid: str | None = uid, why: str = why) -> None:
                if meta_of(p).get("uid") == uid and not (p.get("spec") or {}).get("nodeName"):
                    set_condition(
                        p,
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": why,
                        },
                    )

            self.emu.modify(PODS, name, namespace, unschedulable)

    # ---------------------------------------------------------------- kubelet

    def _run_pods(self) -> None:
        now = time.monotonic()
        nodes = {meta_of(n)["name"] for n in self.emu.objects(NODES)}
        for p in self.emu.objects(PODS):
            meta, spec = meta_of(p), p.get("spec") or {}
            phase = (p.get("status") or {}).get("phase")
            if spec.get("nodeName") not in nodes or not _active(p):
                continue
            seen = self._bound_at.setdefault(meta["uid"], now)
            ready = not (self.unready is not None and self.unready(p))
            if phase == "Pending" and now < seen + self.ready_delay:
                continue
            if phase == "Running" and pod_is_ready(p) == ready:
                continue
            if phase not in ("Pending", "Running"):
                continue

            def start(pod: JSON, uid: str = meta["uid"], ready: bool = ready) -> None:
                if meta_of(pod).get("uid") != uid or not _active(pod):
                    return
                status = pod.setdefault("status", {})
                if status.get("phase") == "Pending":
                    status["phase"] = "Running"
                    status["startTime"] = timestamp()
                flag = "True" if ready else "False"
                for kind, value in (
                    ("PodScheduled", "True"),
                    ("Initialized", "True"),
                    ("ContainersReady", flag),
                    ("Ready", flag),
                ):
                    set_condition(pod, {"type": kind, "status": value})

            self.emu.modify(PODS, meta["name"], meta["namespace"], start)

    # ---------------------------------------------------------------- disruption controller

    def _recount_budgets(self) -> None:
        # Under the store's lock: an eviction cannot spend a disruption between the count and
        # the write (upstream relies on the status update's resourceVersion for that).
        with self.emu.lock:
            pods = self.emu.objects(PODS)
            for budget in self.emu.objects(PDBS):
                meta = meta_of(budget)
                selected = [
                    p
                    for p in pods
                    if meta_of(p)["namespace"] == meta["namespace"]
                    and label_selector_matches(
                        (budget.get("spec") or {}).get("selector"), labels_of(p)
                    )
                ]
                wanted = self._budget_status(budget, selected)

                def publish(b: JSON, wanted: JSON = wanted) -> None:
                    status = b.setdefault("status", {})
                    conditions = status.get("conditions")
                    b["status"] = dict(wanted)
                    if conditions:
                        b["status"]["conditions"] = conditions
                    set_disruption_allowed_condition(b)

                self.emu.modify(PDBS, meta["name"], meta["namespace"], publish)

    def _budget_status(self, budget: JSON, selected: list[JSON]) -> JSON:
        """The status the disruption controller's trySync would publish."""
        spec, status = budget.get("spec") or {}, budget.get("status") or {}
        expected, desired = self._expected(spec, selected)
        now = time.time()
        recorded = status.get("disruptedPods") or {}
        disrupted = {
            meta_of(p)["name"]: recorded[meta_of(p)["name"]]
            for p in selected
            if meta_of(p)["name"] in recorded
            and not meta_of(p).get("deletionTimestamp")
            and _seconds(recorded[meta_of(p)["name"]]) + self.disruption_timeout >= now
        }
        healthy = sum(
            1
            for p in selected
            if not meta_of(p).get("deletionTimestamp")
            and meta_of(p)["name"] not in disrupted
            and pod_is_ready(p)
        )
        # No pod expected yet: allow nothing (the controller's guard for PDBs created first).
        allowed = healthy - desired if expected > 0 and healthy > desired else 0
        out: JSON = {
            "observedGeneration": int(meta_of(budget).get("generation") or 0),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
        }
        if disrupted:
            out["disruptedPods"] = disrupted
        return out

    def _expected(self, spec: Mapping[str, Any], selected: list[JSON]) -> tuple[int, int]:
        """getExpectedPodCount: (expectedPods, desiredHealthy)."""
        max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
        if max_unavailable is not None:
            expected = self._scale(selected)
            return expected, max(0, expected - _scaled(max_unavailable, expected))
        if isinstance(min_available, int):
            return len(selected), min_available
        if min_available is not None:
            expected = self._scale(selected)
            return expected, _scaled(min_available, expected)
        return 0, 0

    def _scale(self, selected: list[JSON]) -> int:
        """getExpectedScale: the sum of the scales of the selected pods' controllers (pods
        without one are left out, as upstream does with unmanaged pods)."""
        owners = {ref["uid"] for p in selected if (ref := _controller_ref(p)) and ref.get("uid")}
        return sum(self._owners[uid].replicas for uid in owners if uid in self._owners)


def _copy_template(template: JSON) -> JSON:
    out: JSON = {"metadata": dict(template["metadata"]), "spec": dict(template["spec"])}
    return out
