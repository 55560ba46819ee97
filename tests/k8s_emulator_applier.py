"""What an applier does through the API, as the emulator serves it.

* ``pods/eviction`` (:func:`handle_eviction`), after ``pkg/registry/core/pod/storage/eviction.go``;
* ``pods/binding`` (:func:`handle_binding`, :func:`bind_pod`), after ``BindingREST`` in
  ``pkg/registry/core/pod/storage/storage.go``;
* graceful pod deletion (:func:`delete_pod`), after the pod strategy's ``CheckGracefulDelete``;
* the :class:`Record` of evictions, bindings, node writes and PDB lows that end-to-end tests assert
  on (:func:`record_request`, :func:`observe_pdbs`).

Split out of ``k8s_emulator`` for size: these functions are the emulator's own. They take it as
first argument, read and write its store through ``_objects``/``_commit`` and run under its lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from k8s_emulator_protocol import (
    EVICTION_BLOCKED_MESSAGE,
    JSON,
    MULTIPLE_PDBS_MESSAGE,
    NODES,
    PDBS,
    PODS,
    ApiError,
    Request,
    ResourceType,
    Response,
    check_delete_preconditions,
    clone,
    conflict,
    dry_run,
    forbidden,
    json_body,
    label_selector_matches,
    labels_of,
    meta_of,
    not_found,
    pod_is_ready,
    storage_precondition,
    success_body,
    timestamp,
    too_many_requests,
)

if TYPE_CHECKING:
    from k8s_emulator import KubeEmulator

TERMINAL_PHASES = ("Succeeded", "Failed")
# The eviction subresource refuses to add to a disruptedPods map larger than this.
MAX_DISRUPTED_PODS = 2000


# --------------------------------------------------------------------------------------------------
# The record


@dataclass(frozen=True)
class EvictionRecord:
    """One eviction request the emulator answered (a fault injected before serving pre-empts the
    request: it is in the request log, not here)."""

    namespace: str
    name: str
    uid: str | None  # the UID of the pod the eviction met (None: no such pod, or not looked up)
    precondition_uid: str | None  # deleteOptions.preconditions.uid, as sent
    dry_run: bool
    status: int  # the HTTP status answered
    reason: str  # "Success", or the Status reason (TooManyRequests, Conflict, NotFound, ...)
    pdb: str | None  # the covering PodDisruptionBudget, when one was consulted
    budget_spent: bool  # its disruptionsAllowed was decremented and persisted (never in dry run)
    time: float  # time.time() when answered


@dataclass(frozen=True)
class BindingRecord:
    namespace: str
    name: str
    uid: str | None  # the UID of the pod bound (or met)
    node: str
    dry_run: bool
    status: int
    reason: str
    source: str  # "api" (a pods/binding request) or "scheduler" (the emulated default scheduler)
    time: float


@dataclass(frozen=True)
class NodeWriteRecord:
    """A PATCH or PUT of a node object (a cordon, an uncordon, a label change)."""

    name: str
    method: str
    content_type: str | None
    body: Any  # the patch or the object, as sent
    dry_run: bool
    status: int
    unschedulable: bool | None  # spec.unschedulable after the write (None: the write failed)
    time: float


@dataclass
class PdbLow:
    """The lowest values one PodDisruptionBudget had since the record was reset.

    ``min_disruptions_allowed``/``min_current_healthy`` are what its status published (None until
    the disruption controller, or a test, published one); ``min_ready`` counts, at every change of
    its pods, the Ready pods it selects that are not being deleted; ``min_margin`` is the lowest
    ``ready - desiredHealthy`` (negative: the budget was broken).
    """

    namespace: str
    name: str
    min_disruptions_allowed: int | None = None
    min_current_healthy: int | None = None
    desired_healthy: int | None = None  # as last published
    min_ready: int | None = None
    min_margin: int | None = None

    def observe(self, status: Mapping[str, Any], ready: int) -> None:
        if status.get("observedGeneration"):
            allowed = int(status.get("disruptionsAllowed") or 0)
            healthy = int(status.get("currentHealthy") or 0)
            self.desired_healthy = int(status.get("desiredHealthy") or 0)
            self.min_disruptions_allowed = _lowest(self.min_disruptions_allowed, allowed)
            self.min_current_healthy = _lowest(self.min_current_healthy, healthy)
        self.min_ready = _lowest(self.min_ready, ready)
        if self.desired_healthy is not None:
            self.min_margin = _lowest(self.min_margin, ready - self.desired_healthy)


def _lowest(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


@dataclass
class Record:
    """What happened to the cluster through the API, for end-to-end assertions."""

    evictions: list[EvictionRecord] = field(default_factory=list)
    bindings: list[BindingRecord] = field(default_factory=list)
    node_writes: list[NodeWriteRecord] = field(default_factory=list)
    pdbs: dict[str, PdbLow] = field(default_factory=dict)  # "namespace/name" -> lows

    def evicted(self) -> list[EvictionRecord]:
        """The evictions that deleted (or began to delete) a pod: persisted, answered 201."""
        return [e for e in self.evictions if e.status == 201 and not e.dry_run]

    def pdbs_below_minimum(self) -> list[str]:
        """PDBs ("namespace/name") whose ready pods ever fell below their desiredHealthy."""
        return sorted(k for k, low in self.pdbs.items() if (low.min_margin or 0) < 0)


def record_request(emu: KubeEmulator, req: Request, resp: Response) -> None:
    """Add an answered eviction, binding or node write to ``emu.record``."""
    node_writes = (f"{NODES.key}:patch", f"{NODES.key}:update")
    if req.route not in ("pods/eviction", "pods/binding", *node_writes):
        return
    body = resp.body if isinstance(resp.body, dict) else {}
    # The several-PDBs Status has no reason (eviction.go returns it as a result, not an error).
    reason = "Success" if resp.status < 300 else str(body.get("reason") or "InternalError")
    notes = req.notes
    dry = bool(notes.get("dry_run", "All" in req.query.get("dryRun", [])))
    now = time.time()
    namespace, name = req.params.get("namespace", ""), req.params.get("name", "")
    with emu._lock:
        if req.route == "pods/eviction":
            emu.record.evictions.append(
                EvictionRecord(
                    namespace=namespace,
                    name=name,
                    uid=notes.get("uid"),
                    precondition_uid=notes.get("precondition_uid"),
                    dry_run=dry,
                    status=resp.status,
                    reason=reason,
                    pdb=notes.get("pdb"),
                    budget_spent=bool(notes.get("budget_spent")),
                    time=now,
                )
            )
        elif req.route == "pods/binding":
            emu.record.bindings.append(
                BindingRecord(
                    namespace=namespace,
                    name=name,
                    uid=notes.get("uid"),
                    node=str(notes.get("node", "")),
                    dry_run=dry,
                    status=resp.status,
                    reason=reason,
                    source="api",
                    time=now,
                )
            )
        else:
            try:
                sent = req.json()
            except ValueError:
                sent = req.body
            unschedulable = (
                bool((body.get("spec") or {}).get("unschedulable")) if resp.status == 200 else None
            )
            emu.record.node_writes.append(
                NodeWriteRecord(
                    name=name,
                    method=req.method,
                    content_type=req.header("Content-Type"),
                    body=sent,
                    dry_run=dry,
                    status=resp.status,
                    unschedulable=unschedulable,
                    time=now,
                )
            )


def observe_pdbs(
    emu: KubeEmulator, rt: ResourceType, key: tuple[str, str], old: JSON | None, new: JSON | None
) -> None:
    """Update the PDB lows after a write of a pod or a PDB (caller holds the lock): the PDBs of
    the namespace that select the pod before or after, or the PDB written."""
    budgets = emu._objects.get(PDBS.key)
    if not budgets:
        return
    for pdb_key, budget in budgets.items():
        if pdb_key[0] != key[0] or (rt.key == PDBS.key and pdb_key != key):
            continue
        selector = (budget.get("spec") or {}).get("selector")
        if rt.key == PODS.key and not any(
            o is not None and label_selector_matches(selector, labels_of(o)) for o in (old, new)
        ):
            continue
        observe_pdb(emu, pdb_key, budget)


def observe_pdb(emu: KubeEmulator, pdb_key: tuple[str, str], budget: JSON) -> None:
    selector = (budget.get("spec") or {}).get("selector")
    ready = sum(
        1
        for (namespace, _), p in emu._objects.get(PODS.key, {}).items()
        if namespace == pdb_key[0]
        and not meta_of(p).get("deletionTimestamp")
        and pod_is_ready(p)
        and label_selector_matches(selector, labels_of(p))
    )
    low = emu.record.pdbs.setdefault(f"{pdb_key[0]}/{pdb_key[1]}", PdbLow(*pdb_key))
    low.observe(budget.get("status") or {}, ready)


# --------------------------------------------------------------------------------------------------
# Conditions


def set_condition(obj: JSON, condition: Mapping[str, Any]) -> None:
    """podutil.UpdatePodCondition: replace the condition of the same type; its
    lastTransitionTime changes only when its status does."""
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    now = timestamp()
    for i, existing in enumerate(conditions):
        if existing.get("type") == condition["type"]:
            changed = existing.get("status") != condition.get("status")
            since = now if changed else existing.get("lastTransitionTime") or now
            conditions[i] = {**existing, **condition, "lastTransitionTime": since}
            return
    conditions.append({**condition, "lastProbeTime": None, "lastTransitionTime": now})


def set_disruption_allowed_condition(budget: JSON) -> None:
    """pdbhelper.UpdateDisruptionAllowedCondition: DisruptionAllowed follows disruptionsAllowed."""
    status = budget.setdefault("status", {})
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    wanted = {
        "type": "DisruptionAllowed",
        "status": "True" if allowed else "False",
        "reason": "SufficientPods" if allowed else "InsufficientPods",
        "message": "",
        "observedGeneration": int(status.get("observedGeneration") or 0),
    }
    conditions = status.setdefault("conditions", [])
    for i, existing in enumerate(conditions):
        if existing.get("type") == "DisruptionAllowed":
            same = existing.get("status") == wanted["status"]
            since = existing.get("lastTransitionTime") if same else None
            conditions[i] = {**wanted, "lastTransitionTime": since or timestamp()}
            return
    conditions.append({**wanted, "lastTransitionTime": timestamp()})


# --------------------------------------------------------------------------------------------------
# Graceful pod deletion


def delete_pod(
    emu: KubeEmulator, key: tuple[str, str], current: JSON, grace: int | None, dry: bool
) -> JSON:
    """Delete a pod (caller holds the lock and checked the preconditions); returns the pod as a
    DELETE answers it: its last state, or its terminating state.

    CheckGracefulDelete: a bound, non-terminal pod gets a deletionTimestamp and stays
    ``emu.pod_deletion_delay`` seconds (its kubelet stopping it); an unbound or terminal pod, or a
    grace period of 0, goes at once.
    """
    meta = current["metadata"]
    spec, status = current.get("spec") or {}, current.get("status") or {}
    if meta.get("deletionTimestamp"):
        if grace == 0 and not dry:  # a forced deletion ends the grace period
            emu._commit(PODS, key, None)
        out: JSON = clone(current)
        return out
    graceful = (
        emu.pod_deletion_delay > 0
        and bool(spec.get("nodeName"))
        and status.get("phase") not in TERMINAL_PHASES
        and grace != 0
    )
    if not graceful:
        if not dry:
            emu._commit(PODS, key, None)
        gone: JSON = clone(current)
        return gone
    seconds = grace if grace is not None else int(spec.get("terminationGracePeriodSeconds", 30))
    new: JSON = clone(current)
    new["metadata"]["deletionTimestamp"] = timestamp(time.time() + seconds)
    new["metadata"]["deletionGracePeriodSeconds"] = seconds
    if not dry:
        emu._commit(PODS, key, new)
        timer = threading.Timer(
            emu.pod_deletion_delay, _finish_deletion, (emu, key, meta.get("uid"))
        )
        timer.daemon = True
        emu._timers.add(timer)
        timer.start()
    terminating: JSON = clone(new)
    return terminating


def _finish_deletion(emu: KubeEmulator, key: tuple[str, str], uid: str | None) -> None:
    with emu._lock:
        emu._timers = {t for t in emu._timers if t.is_alive()}
        current = emu._objects[PODS.key].get(key)
        if current is not None and current["metadata"].get("uid") == uid:
            emu._commit(PODS, key, None)


# --------------------------------------------------------------------------------------------------
# pods/binding


def bind_pod(
    emu: KubeEmulator,
    namespace: str,
    name: str,
    node_name: str,
    *,
    uid: str | None = None,
    resource_version: str | None = None,
    annotations: Mapping[str, str] | None = None,
    dry: bool = False,
    notes: JSON | None = None,
) -> JSON:
    """BindingREST.assignPod (caller holds the lock): set spec.nodeName if the pod is unbound,
    not being deleted and not gated; the binding's uid/resourceVersion are storage
    preconditions. Binding to a node that does not exist succeeds, as upstream."""
    notes = {} if notes is None else notes
    key = (namespace, name)
    current = emu._objects[PODS.key].get(key)
    if current is None:
        raise not_found(PODS, name)
    meta, spec = current["metadata"], current.get("spec") or {}
    notes["uid"] = meta.get("uid")
    if uid and uid != meta.get("uid"):
        raise storage_precondition(PODS, key, "UID", uid, meta.get("uid"))
    if resource_version and resource_version != meta.get("resourceVersion"):
        raise storage_precondition(
            PODS, key, "ResourceVersion", resource_version, meta.get("resourceVersion")
        )
    # assignPod turns these plain errors into Conflicts on pods/binding.
    if meta.get("deletionTimestamp"):
        why = f"pod {name} is being deleted, cannot be assigned to a host"
        raise conflict("pods/binding", "", name, why)
    if spec.get("nodeName"):
        why = f'pod {name} is already assigned to node "{spec["nodeName"]}"'
        raise conflict("pods/binding", "", name, why)
    if spec.get("schedulingGates"):
        raise conflict("pods/binding", "", name, f"pod {name} has non-empty .spec.schedulingGates")
    new: JSON = clone(current)
    new.setdefault("spec", {})["nodeName"] = node_name
    if annotations:
        new["metadata"].setdefault("annotations", {}).update(annotations)
    set_condition(new, {"type": "PodScheduled", "status": "True"})
    if not dry:
        emu._commit(PODS, key, new)
    return new


def handle_binding(emu: KubeEmulator, req: Request) -> Response:
    """POST pods/{name}/binding, or namespaces/{ns}/bindings (the legacy form, named by the body):
    201 with a Status, not a Binding, which the Python client's ``create_namespaced_binding`` and
    ``create_namespaced_pod_binding`` cannot read: they raise ValueError even on success."""
    namespace = req.params["namespace"]
    body = json_body(req)
    meta = meta_of(body)
    name = req.params.setdefault("name", str(meta.get("name") or ""))
    if meta.get("name") != name:
        raise ApiError(400, "name in URL does not match name in Binding object")
    target = body.get("target") or {}
    req.notes["node"] = target.get("name", "")
    if target.get("kind") not in (None, "", "Node") or not target.get("name"):
        # ValidatePodBinding's errors reach the client as a plain error: a 500.
        raise ApiError(500, "target.name: Required value, target.kind: must be empty or 'Node'")
    dry = dry_run(req)
    req.notes["dry_run"] = dry
    with emu._lock:
        bind_pod(
            emu,
            namespace,
            name,
            target["name"],
            uid=meta.get("uid"),
            resource_version=meta.get("resourceVersion"),
            annotations=meta.get("annotations"),
            dry=dry,
            notes=req.notes,
        )
    return Response(201, success_body(201))


# --------------------------------------------------------------------------------------------------
# pods/eviction


def handle_eviction(emu: KubeEmulator, req: Request) -> Response:
    """POST pods/{name}/eviction (EvictionREST.Create)."""
    namespace, name = req.params["namespace"], req.params["name"]
    body = json_body(req)
    if meta_of(body).get("name") != name:
        raise ApiError(400, "name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "deleteOptions is not an object")
    preconditions = options.get("preconditions") or {}
    req.notes["precondition_uid"] = preconditions.get("uid")
    # propagateDryRun: the query's dryRun and the DeleteOptions' must agree when both are given.
    in_query, in_body = req.query.get("dryRun", []), options.get("dryRun") or []
    if in_query and in_body and list(in_query) != list(in_body):
        raise ApiError(
            500, f"Non-matching dry-run options in request and content: {in_query} and {in_body}"
        )
    dry = dry_run(req, options)
    req.notes["dry_run"] = dry
    grace = options.get("gracePeriodSeconds")
    with emu._lock:
        key = (namespace, name)
        current = emu._objects[PODS.key].get(key)
        if current is None:
            raise not_found(PODS, name)
        req.notes["uid"] = current["metadata"].get("uid")
        if not can_ignore_pdb(current):
            budgets = pdbs_covering(emu, current)
            if len(budgets) > 1:
                # Returned as the result, not raised: a Status with a code and no reason.
                failure = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": MULTIPLE_PDBS_MESSAGE,
                    "code": 500,
                }
                return Response(500, failure)
            if budgets:
                pdb_key, budget = budgets[0]
                req.notes["pdb"] = pdb_key[1]
                if not unhealthy_pod_may_go(current, budget):
                    check_and_decrement(emu, pdb_key, budget, name, dry)
                    req.notes["budget_spent"] = not dry
        # The budget is spent before the delete's preconditions are checked, as upstream: a
        # failed precondition leaves it spent until the disruption controller gives it back.
        check_delete_preconditions(PODS, current, preconditions)
        if not dry:
            # addConditionAndDeletePod: the pod learns why it goes before it goes.
            current = clone(current)
            set_condition(
                current,
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "EvictionByEvictionAPI",
                    "message": "Eviction API: evicting",
                },
            )
            emu._commit(PODS, key, current)
        delete_pod(emu, key, current, None if grace is None else int(grace), dry)
    return Response(201, success_body(201))


def can_ignore_pdb(pod: Mapping[str, Any]) -> bool:
    """canIgnorePDB: a terminal, Pending or terminating pod disrupts nothing any more."""
    phase = (pod.get("status") or {}).get("phase") or ""
    return phase in ("Succeeded", "Failed", "Pending") or bool(
        meta_of(pod).get("deletionTimestamp")
    )


def pdbs_covering(emu: KubeEmulator, pod: Mapping[str, Any]) -> list[tuple[tuple[str, str], JSON]]:
    """The PDBs of the pod's namespace whose selector selects it. As in eviction.go, a missing or
    empty selector covers nothing here (the disruption controller reads an empty one as
    everything)."""
    namespace = meta_of(pod).get("namespace", "")
    out = []
    for key, budget in sorted(emu._objects.get(PDBS.key, {}).items()):
        selector = (budget.get("spec") or {}).get("selector")
        if key[0] != namespace or not selector:
            continue
        if not (selector.get("matchLabels") or selector.get("matchExpressions")):
            continue
        if label_selector_matches(selector, labels_of(pod)):
            out.append((key, budget))
    return out


def unhealthy_pod_may_go(pod: Mapping[str, Any], budget: Mapping[str, Any]) -> bool:
    """An unready pod is not guarded when the budget says so (AlwaysAllow) or when the
    application is healthy without it (IfHealthyBudget, the default)."""
    if pod_is_ready(pod):
        return False
    if (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    status = budget.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired and desired > 0


def check_and_decrement(
    emu: KubeEmulator, key: tuple[str, str], budget: JSON, pod_name: str, dry: bool
) -> None:
    """checkAndDecrement: refuse (429/403) or spend one disruption (caller holds the lock)."""
    meta, status = budget["metadata"], budget.get("status") or {}
    name = meta["name"]
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        # The controller has not seen this spec yet: a status that lags cannot be trusted.
        cause = f"The disruption budget {name} is still being processed by the server."
        raise too_many_requests(
            EVICTION_BLOCKED_MESSAGE, 10, [{"reason": "DisruptionBudget", "message": cause}]
        )
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise forbidden(
            "poddisruptionbudget", "policy", name, "pdb disruptions allowed is negative"
        )
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise forbidden(
            "poddisruptionbudget",
            "policy",
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        )
    if allowed == 0:
        # No Retry-After: nothing says when the budget will allow a disruption again.
        cause = (
            f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} "
            f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently"
        )
        raise too_many_requests(
            EVICTION_BLOCKED_MESSAGE, 0, [{"reason": "DisruptionBudget", "message": cause}]
        )
    if dry:
        return
    new: JSON = clone(budget)
    new_status = new.setdefault("status", {})
    new_status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        set_disruption_allowed_condition(new)
    # Tells the disruption controller not to count the pod as healthy while it goes.
    new_status.setdefault("disruptedPods", {})[pod_name] = timestamp()
    emu._commit(PDBS, key, new)
