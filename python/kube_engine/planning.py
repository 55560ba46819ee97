"""Plans: the ordered actions that take a cluster from where its pods are to a target placement.

:func:`plan` asks the core to sequence a target (from :func:`kube_engine.rebalance`,
:func:`kube_engine.schedule`, or a ``{pod: node}`` mapping of your own) into waves of evictions and
bindings, after cordoning the nodes the plan empties. A :class:`Plan` is data before it is action:
a versioned JSON document (``apiVersion: kube-engine.io/v1alpha1``, ``kind: Plan``; the schema is
``kube_engine/schemas/plan.v1alpha1.json``) that can be saved, reviewed, and applied later.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kube_engine import _core, arguments
from kube_engine._core import KubeEngineError, Snapshot
from kube_engine.option_files import read_limited

if TYPE_CHECKING:
    from kube_engine._core import Placement
    from kube_engine.rebalancing import RebalanceResult

__all__ = ["API_VERSION", "KIND", "Action", "Kept", "Plan", "PlanError", "plan", "schema"]

API_VERSION = "kube-engine.io/v1alpha1"
KIND = "Plan"
#: The most bytes :meth:`Plan.load` reads: a plan of 100,000 moves is about 60 MB.
MAX_PLAN_BYTES = 256 * 1024 * 1024
#: How an evicted pod's replacement finds its node. ``scheduler``: its controller recreates it and
#: the scheduler it names places it (the target is then a prediction). ``binding``: it names the
#: plan's binding scheduler, so the applier binds it to the target itself (exact).
LANDINGS = ("scheduler", "binding")
#: The ``schedulerName`` whose pods the applier binds itself (see ``kube-engine scheduler``).
BINDING_SCHEDULER = "kube-engine"
_LIMITS = (
    "max_per_node",
    "max_per_namespace",
    "max_total",
    "max_per_wave",
    "max_unavailable_per_workload",
)


class PlanError(KubeEngineError):
    """A plan document is not valid; the message names the field."""


def schema() -> dict[str, Any]:
    """The JSON Schema of plan documents."""
    text = (resources.files("kube_engine") / "schemas" / "plan.v1alpha1.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str
    resource_version: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Action:
    """One step of a wave: ``evict`` a bound pod so that its replacement lands on ``to``, or
    ``bind`` a pending pod to ``to``. ``uid``/``resource_version`` of the pod and ``from_node``
    are the preconditions the applier checks before it acts."""

    action: str
    pod: PodRef
    from_node: str | None
    to: str
    why: str
    gpu_devices: tuple[int, ...] = ()
    detour: bool = False
    controller: str | None = None
    budget: str | None = None
    budget_left: int | None = None
    #: Where the replacement is predicted to land (kube-scheduler's default profile, or the
    #: plan's, simulated at the wave's state); None when it would stay Pending. Bindings: ``to``.
    predicted: str | None = None
    #: How the replacement lands (see :data:`LANDINGS`).
    landing: str = "scheduler"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "pod": {
                "namespace": self.pod.namespace,
                "name": self.pod.name,
                "uid": self.pod.uid,
                "resourceVersion": self.pod.resource_version,
            },
        }
        if self.from_node is not None:
            out["from"] = self.from_node
        out["to"] = self.to
        out["gpuDevices"] = list(self.gpu_devices)
        if self.action == "evict":
            out["detour"] = self.detour
            out["landing"] = self.landing
            out["predicted"] = self.predicted
            out["controller"] = self.controller
            out["budget"] = (
                None
                if self.budget is None
                else {"name": self.budget, "allowedAfter": self.budget_left}
            )
        out["why"] = self.why
        return out


@dataclass(frozen=True)
class Cordon:
    node: str
    resource_version: str
    why: str = "emptied by this plan"


@dataclass(frozen=True)
class Kept:
    """A pod of the target the plan does not move."""

    pod: str
    to: str
    kind: str
    reason: str


@dataclass
class Plan:
    """Cordons, then waves of actions; what of the target is kept, and why."""

    name: str
    created: str
    source: str
    reason: str
    binding_scheduler: str | None
    limits: dict[str, int | None]
    cordon: list[Cordon]
    waves: list[list[Action]]
    emptied: list[str]
    kept: list[Kept] = field(default_factory=list)

    @property
    def actions(self) -> list[Action]:
        return [a for wave in self.waves for a in wave]

    def summary(self) -> dict[str, int]:
        acts = self.actions
        return {
            "waves": len(self.waves),
            "evictions": sum(a.action == "evict" for a in acts),
            "bindings": sum(a.action == "bind" for a in acts),
            "cordons": len(self.cordon),
            "detours": sum(a.detour for a in acts),
            "kept": len(self.kept),
        }

    # ---------------------------------------------------------------------------------------------
    # The document

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name, "creationTimestamp": self.created},
            "spec": {
                "source": self.source,
                "reason": self.reason,
                "bindingScheduler": self.binding_scheduler,
                "limits": {_camel(k): v for k, v in self.limits.items()},
                "cordon": [
                    {"node": c.node, "resourceVersion": c.resource_version, "why": c.why}
                    for c in self.cordon
                ],
                "waves": [
                    {"wave": i, "actions": [a.to_dict() for a in wave]}
                    for i, wave in enumerate(self.waves, 1)
                ],
            },
            "status": {
                "emptied": list(self.emptied),
                "kept": [
                    {"pod": k.pod, "to": k.to, "kind": k.kind, "reason": k.reason}
                    for k in self.kept
                ],
                "summary": self.summary(),
            },
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | os.PathLike[str]) -> Path:
        out = Path(path)
        out.write_text(self.to_json() + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Plan:
        """Reads a plan file (at most :data:`MAX_PLAN_BYTES`); any fault is a :class:`PlanError`."""
        name = os.fspath(path)
        data = read_limited(name, MAX_PLAN_BYTES, PlanError)
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as e:
            # ValueError: not JSON, or not UTF-8 (nor UTF-16/32) text at all.
            raise PlanError(f"{name}: not JSON: {e}") from None
        try:
            return cls.from_dict(doc)
        except PlanError as e:
            raise PlanError(f"{name}: {e}") from None

    @classmethod
    def from_dict(cls, doc: Any) -> Plan:
        """Reads a plan document, checking every field the applier relies on."""
        r = _Reader(doc)
        r.expect("apiVersion", API_VERSION)
        r.expect("kind", KIND)
        meta, spec, status = r.obj("metadata"), r.obj("spec"), r.obj("status")
        binding = spec.raw.get("bindingScheduler")
        if binding is not None and not isinstance(binding, str):
            raise PlanError(f"spec.bindingScheduler: a scheduler name or null, got {binding!r}")
        limits_in = spec.obj("limits")
        limits: dict[str, int | None] = {}
        for k in _LIMITS:
            limits[k] = limits_in.opt_integer(_camel(k))
        cordon = [
            Cordon(c.text("node"), c.text("resourceVersion"), c.text("why"))
            for c in spec.objs("cordon")
        ]
        waves: list[list[Action]] = []
        for i, w in enumerate(spec.objs("waves"), 1):
            if w.integer("wave") != i:
                raise PlanError(f"{w.path}.wave: expected {i}, got {w.raw['wave']!r}")
            waves.append([_action(a) for a in w.objs("actions")])
        kept = [
            Kept(k.text("pod"), k.text("to"), k.text("kind"), k.text("reason"))
            for k in status.objs("kept")
        ]
        return cls(
            name=meta.text("name"),
            created=meta.text("creationTimestamp"),
            source=spec.text("source"),
            reason=spec.text("reason"),
            binding_scheduler=binding,
            limits=limits,
            cordon=cordon,
            waves=waves,
            emptied=status.texts("emptied"),
            kept=kept,
        )

    # ---------------------------------------------------------------------------------------------
    # For people

    def table(self, limit: int | None = 50) -> str:
        """Wave by wave: action, pod, from -> to, why, and what its PDB allows after it."""
        limit = arguments.optional_integer("limit", limit)
        s = self.summary()
        lines = [
            f"Plan {self.name} ({self.reason}): {s['waves']} wave(s), "
            f"{s['evictions']} eviction(s), {s['bindings']} binding(s), {s['cordons']} cordon(s)"
            + (f", {s['detours']} detour(s)" if s["detours"] else "")
            + (f"; {s['kept']} move(s) kept" if s["kept"] else "")
        ]
        if self.cordon:
            names = [c.node for c in self.cordon]
            more = f", ... {len(names) - 10:,} more" if len(names) > 10 else ""
            lines.append(f"Cordon first ({len(names):,}): {', '.join(names[:10])}{more}")
        rows = [("WAVE", "ACTION", "POD", "FROM -> TO", "PREDICTED", "WHY", "PDB LEFT")]
        for i, wave in enumerate(self.waves, 1):
            for a in wave:
                left = "" if a.budget is None else f"{a.budget}: {a.budget_left}"
                if a.action == "bind" or a.predicted == a.to:
                    predicted = "="
                else:
                    predicted = a.predicted or "(pending)"
                rows.append(
                    (
                        str(i),
                        a.action + ("*" if a.detour else ""),
                        a.pod.key,
                        f"{a.from_node or '(pending)'} -> {a.to}",
                        predicted,
                        a.why,
                        left,
                    )
                )
        shown = rows if limit is None else rows[: limit + 1]
        if len(shown) > 1:
            widths = [max(len(r[c]) for r in shown) for c in range(len(rows[0]))]
            lines.append("")
            lines += [
                "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                for r in shown
            ]
            if len(rows) > len(shown):
                lines.append(f"... {len(rows) - len(shown):,} more (-o json lists all)")
        if s["detours"]:
            lines.append("* a detour: a stop on a node with room that breaks a cycle of moves")
        evictions = [a for a in self.actions if a.action == "evict"]
        if evictions:
            hits = sum(a.predicted == a.to for a in evictions)
            lines.append(
                f"PREDICTED: where the default scheduler is expected to place each replacement "
                f"(= its target): {hits} of {len(evictions)} on target"
            )
        if self.kept:
            lines.append("")
            lines.append("Kept (not moved):")
            lines += [f"  {k.pod} -> {k.to}: {k.reason}" for k in self.kept[: limit or None]]
        return "\n".join(lines)

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"Plan({self.name!r}, waves={s['waves']}, evictions={s['evictions']}, "
            f"bindings={s['bindings']}, cordons={s['cordons']}, kept={s['kept']})"
        )


def plan(
    snapshot: Snapshot,
    target: Mapping[str, str] | RebalanceResult | Placement,
    *,
    gpu_devices: Mapping[str, list[int]] | None = None,
    profile: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    max_per_node: int | None = None,
    max_per_namespace: int | None = None,
    max_total: int | None = None,
    max_per_wave: int | None = None,
    max_unavailable_per_workload: int | None = None,
    allow_local_storage: bool | Sequence[str] = False,
    allow_bare: bool = False,
    cordon: bool = True,
    cooldown: float = 3600.0,
    binding_scheduler: str | None = BINDING_SCHEDULER,
    reason: str | None = None,
    source: str = "",
) -> Plan:
    """The plan that takes ``snapshot``'s placement to ``target``.

    ``target`` is a :class:`~kube_engine.RebalanceResult` (its moves and GPU devices), a
    :class:`~kube_engine.Placement` (pending pods to bind), or ``{"namespace/name": node}``;
    pods not named stay where they are. ``profile`` (a KubeSchedulerConfiguration, as for
    :func:`kube_engine.schedule`; its first profile) decides where a pod fits at each moment
    (default: kube-scheduler's default profile).

    Caps, ``None`` for none: evictions per source node, per namespace and in total over the
    plan (the descheduler's ``maxNoOfPodsToEvict*``), per wave, and of one workload within a wave.
    ``allow_local_storage``: ``True`` for every kind of node-local volume, or the kinds
    (``["emptyDir"]``: pods with emptyDir volumes may move, pods with hostPath ones stay).
    Each PodDisruptionBudget's ``disruptionsAllowed`` bounds the evictions of its pods per wave;
    pods no budget lets go, or that several budgets cover, are kept. Pods that must stay
    (DaemonSet, static, system-critical, opted out, local storage unless
    ``allow_local_storage``, bare unless ``allow_bare``, on control-plane nodes, moved by
    kube-engine less than ``cooldown`` seconds ago) are kept. With ``cordon``, the nodes the plan
    empties are cordoned before its first wave.
    """
    from kube_engine.rebalancing.plan import moved_since_for
    from kube_engine.scheduling import load_config

    snapshot = arguments.snapshot(snapshot)
    limits: dict[str, int | None] = {
        name: arguments.optional_integer(name, value, high=2**32 - 1)
        for name, value in (
            ("max_per_node", max_per_node),
            ("max_per_namespace", max_per_namespace),
            ("max_total", max_total),
            ("max_per_wave", max_per_wave),
            ("max_unavailable_per_workload", max_unavailable_per_workload),
        )
    }
    moves, devices, default_reason = _target(target)
    if gpu_devices is not None:
        devices = {**devices, **arguments.mapping("gpu_devices", gpu_devices)}
    raw = _core.plan(
        snapshot,
        moves,
        devices or None,
        load_config(profile) if profile is not None else None,
        max_per_node=limits["max_per_node"],
        max_per_namespace=limits["max_per_namespace"],
        max_total=limits["max_total"],
        max_per_wave=limits["max_per_wave"],
        max_unavailable_per_workload=limits["max_unavailable_per_workload"],
        allow_local_storage=arguments.local_storage("allow_local_storage", allow_local_storage),
        allow_bare=arguments.flag("allow_bare", allow_bare),
        cordon=arguments.flag("cordon", cordon),
        moved_since=moved_since_for(cooldown),
        binding_scheduler=arguments.optional_text("binding_scheduler", binding_scheduler),
    )
    why = arguments.optional_text("reason", reason) or default_reason
    source = arguments.text("source", source)
    emptied = set(raw["emptied"])
    waves = [
        [
            Action(
                action="evict" if s["from"] is not None else "bind",
                pod=PodRef(**s["pod"]),
                from_node=s["from"],
                to=s["to"],
                why=_why(s, why, emptied),
                gpu_devices=tuple(s["gpu_devices"]),
                detour=s["detour"],
                controller=s["controller"],
                budget=s["budget"],
                budget_left=s["budget_left"],
                predicted=s["predicted"],
                landing="binding"
                if s["from"] is not None and s["scheduler_name"] == binding_scheduler
                else "scheduler",
            )
            for s in wave
        ]
        for wave in raw["waves"]
    ]
    result = Plan(
        name="",
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        source=source,
        reason=why,
        binding_scheduler=binding_scheduler,
        limits=limits,
        cordon=[Cordon(c["name"], c["resource_version"]) for c in raw["cordon"]],
        waves=waves,
        emptied=list(raw["emptied"]),
        kept=[Kept(**k) for k in raw["kept"]],
    )
    result.name = "plan-" + _digest(result)
    return result


def _target(
    target: Mapping[str, str] | RebalanceResult | Placement,
) -> tuple[dict[str, str], dict[str, list[int]], str]:
    from kube_engine._core import Placement
    from kube_engine.rebalancing import RebalanceResult

    if isinstance(target, RebalanceResult):
        moves = {m.pod: m.to_node for m in target.moves}
        return moves, target.gpu_devices, f"rebalance ({target.objective})"
    if isinstance(target, Placement):
        return dict(target.assignments), dict(target.gpu_devices), "schedule"
    if not isinstance(target, Mapping):
        raise arguments.invalid(
            "target",
            "target must be a RebalanceResult, a Placement or a mapping, "
            f"got {arguments.shown(target)}",
        )
    out: dict[str, str] = {}
    for pod, node in target.items():
        if not isinstance(pod, str) or not isinstance(node, str):
            raise arguments.invalid(
                "target",
                "target maps pod names to node names, "
                f"got {arguments.shown(pod)}: {arguments.shown(node)}",
            )
        out[pod] = node
    return out, {}, "requested placement"


def _why(step: Mapping[str, Any], reason: str, emptied: set[str]) -> str:
    if step["from"] is None:
        return "pending pod"
    if step["detour"]:
        return f"detour: frees room on {step['from']} for a move that waits on it"
    if step["from"] in emptied:
        return f"{reason}: empties {step['from']}"
    return reason


def _digest(p: Plan) -> str:
    """The plan's name: a digest of what it does, so two runs can tell one plan from another."""
    spec = p.to_dict()["spec"]
    data = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _action(a: _Reader) -> Action:
    kind = a.text("action")
    if kind not in ("evict", "bind"):
        raise PlanError(f"{a.path}.action: unknown action {kind!r} (evict or bind)")
    pod = a.obj("pod")
    ref = PodRef(
        pod.text("namespace"), pod.text("name"), pod.text("uid"), pod.text("resourceVersion")
    )
    from_node = a.text("from") if kind == "evict" else None
    budget = a.raw.get("budget") if kind == "evict" else None
    budget_name, budget_left = None, None
    if budget is not None:
        b = a.obj("budget")
        budget_name, budget_left = b.text("name"), b.integer("allowedAfter")
    devices = a.raw.get("gpuDevices", [])
    if not isinstance(devices, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 64 for d in devices
    ):
        raise PlanError(f"{a.path}.gpuDevices: a list of device indices 0..63, got {devices!r}")
    detour = a.raw.get("detour", False)
    if not isinstance(detour, bool):
        raise PlanError(f"{a.path}.detour: a boolean, got {detour!r}")
    controller = a.raw.get("controller")
    if controller is not None and not isinstance(controller, str):
        raise PlanError(f"{a.path}.controller: a string, got {controller!r}")
    predicted = a.raw.get("predicted", a.raw.get("to") if kind == "bind" else None)
    if predicted is not None and not isinstance(predicted, str):
        raise PlanError(f"{a.path}.predicted: a node name or null, got {predicted!r}")
    landing = a.raw.get("landing", "scheduler")
    if landing not in LANDINGS:
        raise PlanError(f"{a.path}.landing: unknown landing {landing!r} (known: {LANDINGS})")
    return Action(
        action=kind,
        pod=ref,
        from_node=from_node,
        to=a.text("to"),
        why=a.text("why"),
        gpu_devices=tuple(devices),
        detour=detour,
        controller=controller,
        budget=budget_name,
        budget_left=budget_left,
        predicted=predicted,
        landing=landing if kind == "evict" else "scheduler",
    )


class _Reader:
    """Typed access to a JSON object that names the path of what is wrong."""

    def __init__(self, raw: Any, path: str = "") -> None:
        if not isinstance(raw, dict):
            where = path or "the document"
            raise PlanError(f"{where}: expected an object, got {type(raw).__name__}")
        self.raw: dict[str, Any] = raw
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str) -> Any:
        if key not in self.raw:
            raise PlanError(f"{self._at(key)}: missing")
        return self.raw[key]

    def expect(self, key: str, value: str) -> None:
        got = self._get(key)
        if got != value:
            raise PlanError(f"{self._at(key)}: expected {value!r}, got {got!r}")

    def text(self, key: str) -> str:
        v = self._get(key)
        if not isinstance(v, str):
            raise PlanError(f"{self._at(key)}: expected a string, got {v!r}")
        return v

    def integer(self, key: str) -> int:
        v = self._get(key)
        if isinstance(v, bool) or not isinstance(v, int):
            raise PlanError(f"{self._at(key)}: expected an integer, got {v!r}")
        return v

    def opt_integer(self, key: str) -> int | None:
        if self.raw.get(key) is None:
            return None
        v = self.integer(key)
        if v < 0:
            raise PlanError(f"{self._at(key)}: must be >= 0, got {v}")
        return v

    def obj(self, key: str) -> _Reader:
        return _Reader(self._get(key), self._at(key))

    def objs(self, key: str) -> list[_Reader]:
        v = self._get(key)
        if not isinstance(v, list):
            raise PlanError(f"{self._at(key)}: expected a list, got {type(v).__name__}")
        return [_Reader(x, f"{self._at(key)}[{i}]") for i, x in enumerate(v)]

    def texts(self, key: str) -> list[str]:
        v = self._get(key)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise PlanError(f"{self._at(key)}: expected a list of strings, got {v!r}")
        return list(v)
