"""Carrying out a plan: cordons, then wave after wave of evictions and bindings, each checked
against the cluster as it is before it is sent, with the journal, the Lease and the waits between
waves that make a run safe to stop, resume and repeat.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kube_engine import arguments
from kube_engine.applying.api import Answer, Api, now_rfc3339
from kube_engine.applying.journal import Journal
from kube_engine.applying.lease import Lease
from kube_engine.planning import Action, Plan

#: The annotation on a node this tool cordoned: which plan did it, so that only its own cordons
#: are ever undone.
CORDONED_BY = "kube-engine.io/cordoned-by"
#: The annotations on the replacement of a pod this tool moved: when (RFC 3339) and by which
#: plan. A rebalance or plan leaves such a pod where it is for its cooldown, so that no run moves
#: it straight back or on.
MOVED_AT = "kube-engine.io/moved-at"
MOVED_BY = "kube-engine.io/moved-by"
#: Where a pod's GPU devices are recorded (docs/encoding.md).
GPU_DEVICES = "kube-engine.io/gpu-devices"
MODES = ("apply", "server")


@dataclass(frozen=True)
class Settings:
    """How a run acts. Times in seconds."""

    #: ``apply`` acts; ``server`` sends every write with ``dryRun=All`` (nothing persists).
    mode: str = "apply"
    qps: float = 20.0
    burst: int = 40
    timeout: float = 30.0
    #: Evictions in flight at once, in all and from one node.
    max_in_flight: int = 5
    max_in_flight_per_node: int = 1
    #: How long one eviction may keep being refused (429: the disruption budget is spent, or the
    #: server is busy) before the move is reported blocked.
    move_budget: float = 120.0
    #: How long to wait after a wave for its replacements to be Ready and its budgets to recover.
    wave_timeout: float = 600.0
    poll: float = 2.0
    lease_namespace: str = "default"
    lease_name: str = "kube-engine"
    lease_duration: int = 60
    events: bool = True
    #: Leave the nodes the plan emptied cordoned (for a node autoscaler to remove); by default
    #: they are uncordoned once the plan is done, as they are when a run stops early.
    keep_cordoned: bool = False
    #: When a wave's replacements landed off their targets, read the cluster and plan the rest
    #: of the moves again from where things really are.
    replan: bool = True

    def __post_init__(self) -> None:
        arguments.choice("mode", self.mode, MODES)
        for name in ("qps", "timeout", "move_budget", "wave_timeout", "poll"):
            high = float("inf") if name == "qps" else arguments.MAX_SECONDS
            arguments.number(name, getattr(self, name), positive=True, high=high)
        for name in ("burst", "max_in_flight", "max_in_flight_per_node", "lease_duration"):
            # Counts of threads and seconds: beyond 32 bits is a mistake, not a setting.
            arguments.integer(name, getattr(self, name), low=1, high=arguments.I32)
        for name in ("lease_namespace", "lease_name"):
            arguments.text(name, getattr(self, name))
        for name in ("events", "keep_cordoned", "replan"):
            arguments.flag(name, getattr(self, name))


@dataclass
class Result:
    """What became of one action."""

    wave: int
    action: str
    target: str  # the pod (namespace/name) or, for cordons, the node
    outcome: str  # done, dry-run, blocked, gone, replaced, moved, skipped
    reason: str = ""
    from_node: str | None = None
    to: str | None = None
    landed_on: str | None = None
    predicted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "wave": self.wave,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
        }
        for k, v in (
            ("from", self.from_node),
            ("to", self.to),
            ("landedOn", self.landed_on),
            ("reason", self.reason),
        ):
            if v:
                out[k] = v
        return out


@dataclass
class Report:
    plan: str
    mode: str
    started: str
    finished: str = ""
    #: ``completed``, ``stopped`` (a wave had moves that could not be made: re-plan), or
    #: ``aborted`` (replacements not Ready in time, the Lease lost, an error).
    outcome: str = "completed"
    message: str = ""
    results: list[Result] = field(default_factory=list)
    uncordoned: list[str] = field(default_factory=list)
    #: How often the rest of the plan was planned again after replacements landed off target.
    replans: int = 0

    def landing(self) -> dict[str, Any]:
        moved = [r for r in self.results if r.action == "evict" and r.outcome == "done"]
        measured = [r for r in moved if r.landed_on]
        on_target = [r for r in measured if r.landed_on == r.to]
        as_predicted = [r for r in measured if r.landed_on == r.predicted]
        rate = len(on_target) / len(measured) if measured else None
        return {
            "evicted": len(moved),
            "measured": len(measured),
            "onTarget": len(on_target),
            "asPredicted": len(as_predicted),
            "rate": rate,
        }

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.results:
            out[r.outcome] += 1
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "kube-engine.io/v1alpha1",
            "kind": "ApplyReport",
            "plan": self.plan,
            "mode": self.mode,
            "started": self.started,
            "finished": self.finished,
            "outcome": self.outcome,
            "message": self.message,
            "counts": self.counts(),
            "landing": self.landing(),
            "uncordoned": self.uncordoned,
            "replans": self.replans,
            "results": [r.to_dict() for r in self.results],
        }

    def table(self) -> str:
        land = self.landing()
        rate = "n/a" if land["rate"] is None else f"{land['rate']:.0%}"
        counts = ", ".join(f"{n} {k}" for k, n in self.counts().items()) or "no actions"
        lines = [
            f"Run of {self.plan} ({self.mode}): {self.outcome}; {counts}",
            f"landing: {land['onTarget']} of {land['measured']} measured replacements on their "
            f"target ({rate}), {land['asPredicted']} where predicted",
        ]
        if self.message:
            lines.append(self.message)
        for r in self.results:
            if r.outcome not in ("done", "dry-run"):
                lines.append(f"  wave {r.wave} {r.action} {r.target}: {r.outcome}: {r.reason}")
            elif r.action == "evict" and r.landed_on:
                lines.append(
                    f"  wave {r.wave} evict {r.target}: {r.from_node} -> {r.to}, landed on "
                    f"{r.landed_on}" + ("" if r.landed_on == r.predicted else " (not as predicted)")
                )
        return "\n".join(lines)


class _Stop(Exception):
    """The run stops here; the message says why."""


def apply(
    plan: Plan,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    journal: str | Path | None = None,
    settings: Settings | None = None,
    api_client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Carries out ``plan`` on the cluster (the kubeconfig's, as :func:`read_snapshot` chooses).

    Every action is checked against the cluster first (the pod's UID and node, a node's state)
    and recorded in ``journal`` before and after (default: ``<plan name>.journal.jsonl``); a
    run killed at any point is finished by running the same plan with the same journal again.
    Evictions go through the Eviction API with the pod's UID as a precondition, never a delete.
    After each wave the run waits for the replacements to be Ready and the budgets to recover,
    and measures where the replacements landed; when one landed off its target, the rest of the
    plan is planned again from the cluster as it is (``settings.replan``). A wave with moves that
    could not be made ends the run (``stopped``): plan again from the cluster as it is. Nodes this
    run cordoned are uncordoned at the end (unless ``settings.keep_cordoned``) and whenever it
    stops early.
    """
    if not isinstance(plan, Plan):
        raise arguments.invalid("plan", f"plan must be a Plan, got {arguments.shown(plan)}")
    settings = settings or Settings()
    if not isinstance(settings, Settings):
        raise arguments.invalid(
            "settings", f"settings must be a Settings, got {arguments.shown(settings)}"
        )
    if api_client is None:
        from kube_engine.cluster import connect

        api_client = connect(kubeconfig, context)
    api = Api(
        api_client,
        qps=settings.qps,
        burst=settings.burst,
        timeout=settings.timeout,
        dry_run=settings.mode == "server",
    )
    dry = settings.mode == "server"
    book = None if dry else Journal.open(journal or f"{plan.name}.journal.jsonl", plan.name)
    lease = Lease(api, settings.lease_namespace, settings.lease_name, settings.lease_duration)
    lease.acquire()

    def read() -> Any:
        from kube_engine.cluster import read_snapshot

        return read_snapshot(kubeconfig, context, timeout=settings.timeout)

    run = _Run(plan, api, book, settings, lease, sleep, read if settings.replan else None)
    try:
        run.go()
    finally:
        lease.release()
    return run.report


class _Run:
    def __init__(
        self,
        plan: Plan,
        api: Api,
        journal: Journal | None,
        settings: Settings,
        lease: Lease,
        sleep: Callable[[float], None],
        read: Callable[[], Any] | None = None,
    ) -> None:
        self.plan, self.api, self.journal, self.s = plan, api, journal, settings
        self.lease, self.sleep, self.read = lease, sleep, read
        # The waves to carry out: the plan's, then, after a re-plan, the new plan's.
        self.waves: list[list[Action]] = list(plan.waves)
        if journal is not None and journal.replanned is not None:
            after, doc = journal.replanned
            self.waves = self.waves[:after] + Plan.from_dict(doc).waves
        self.dry = settings.mode == "server"
        self.report = Report(plan.name, settings.mode, now_rfc3339())
        self._lock = threading.Lock()
        # A server-side dry run's evicted pods (nothing moves, so a detour's second leg is moot).
        self._dry_evicted: set[str] = set()

    # ---------------------------------------------------------------------------------------------
    # The run

    def go(self) -> None:
        if self.journal is not None and self.journal.stopped:
            # The rest of the plan assumed moves that were not made: carrying on could crowd
            # nodes the plan meant to free. Only a new plan, made from the cluster as it is, may.
            self.report.outcome = "stopped"
            self.report.message = (
                f"a run of this plan stopped ({self.journal.stopped}); nothing was sent: plan "
                "again from the cluster as it is now"
            )
            self.report.finished = now_rfc3339()
            return
        if self.journal is not None and self.journal.finished:
            self.report.message = (
                f"carried out already by an earlier run (journal {self.journal.path}); "
                "nothing was sent"
            )
        try:
            for c in self.plan.cordon:
                self._once(0, "cordon", f"cordon:{c.node}", c.node, self._cordoner(c.node))
            i = 0
            while i < len(self.waves):
                i += 1
                off_target = self._wave(i, self.waves[i - 1])
                if off_target and i < len(self.waves):
                    self._replan(i)
            if not self.s.keep_cordoned:
                self._uncordon_all()
            if self.journal is not None:
                self.journal.finish()
        except _Stop as e:
            self.report.outcome = "stopped" if str(e).startswith("stopped") else "aborted"
            self.report.message = str(e)
            self._uncordon_all()
            if self.report.outcome == "stopped" and self.journal is not None:
                self.journal.stop(str(e))
        except BaseException as e:
            self.report.outcome = "aborted"
            self.report.message = f"aborted: {type(e).__name__}: {e}"
            self._uncordon_all()
            raise
        finally:
            self.report.finished = now_rfc3339()

    def _wave(self, i: int, wave: list[Action]) -> bool:
        """Carries out wave ``i``; whether some replacement landed off its target."""
        if self.lease.lost.is_set():
            raise _Stop(f"aborted before wave {i}: the Lease was taken by another run")
        j = self.journal
        if j is not None and i in j.waves_done:
            for a in wave:
                self._record_ended(i, a)
            return False
        before = self._before(i, wave)
        # Made before the workers start: a defaultdict filled from several threads can hand
        # two of them different semaphores for one node.
        per_node = {
            n: threading.Semaphore(self.s.max_in_flight_per_node)
            for n in {a.from_node or a.to for a in wave}
        }

        def one(a: Action) -> Result:
            gate = per_node[a.from_node or a.to]
            with gate:
                return self._action(i, a)

        with ThreadPoolExecutor(max_workers=self.s.max_in_flight) as pool:
            results = list(pool.map(one, wave))
        if self.dry:
            return False
        evicted = [(a, r) for a, r in zip(wave, results, strict=True) if r.outcome == "done"]
        evicted = [(a, r) for a, r in evicted if a.action == "evict"]
        self._wait_and_measure(i, before, evicted)
        if j is not None:
            j.wave_done(i)
        unmade = [r for r in results if r.outcome in ("blocked", "replaced", "moved")]
        if unmade:
            raise _Stop(
                f"stopped after wave {i}: {len(unmade)} move(s) could not be made "
                f"({unmade[0].target}: {unmade[0].outcome}: {unmade[0].reason}); the rest of the "
                "plan assumed them: plan again from the cluster as it is now"
            )
        return any(r.landed_on is not None and r.landed_on != a.to for a, r in evicted)

    def _replan(self, done: int) -> None:
        """Plans the moves of the waves after ``done`` again, from the cluster as it is now: a
        replacement that landed elsewhere than its target changed the room the rest assumed. A
        move's pod is the one the plan named, or, after a detour, its replacement."""
        if self.read is None:
            return
        from kube_engine.planning import plan as make_plan

        j = self.journal
        target: dict[str, str] = {}
        for wave in self.waves[done:]:
            for a in wave:
                r = j.replacements.get(a.pod.uid) if j is not None else None
                key = f"{r['namespace']}/{r['name']}" if r else a.pod.key
                target[key] = a.to  # a detour's last leg is the pod's target
        snapshot = self.read()
        known = set(snapshot.pod_names())
        limits = self.plan.limits
        spent = sum(1 for r in self.report.results if r.action == "evict" and r.outcome == "done")
        total = limits.get("max_total")
        rest = make_plan(
            snapshot,
            {pod: node for pod, node in target.items() if pod in known},
            max_total=None if total is None else max(total - spent, 0),
            max_per_wave=limits.get("max_per_wave"),
            max_unavailable_per_workload=limits.get("max_unavailable_per_workload"),
            # The pods were allowed to move when the plan was made; only opt-outs added since
            # keep them now. The replacements it moved are its own to move on.
            allow_local_storage=True,
            allow_bare=True,
            cordon=False,
            cooldown=0,
            binding_scheduler=self.plan.binding_scheduler,
            reason=self.plan.reason,
            source=self.plan.source,
        )
        if j is not None:
            j.replan(done, rest.to_dict())
        self.waves = self.waves[:done] + rest.waves
        with self._lock:
            for k in rest.kept:
                self.report.results.append(
                    Result(done, "evict", k.pod, "skipped", f"re-planned: {k.reason}", None, k.to)
                )
        self.report.replans += 1

    def _once(
        self, wave: int, action: str, key: str, target: str, act: Callable[[bool], Result]
    ) -> Result:
        """Runs ``act`` unless the journal says it ended. ``act(uncertain)``: an action an earlier
        run began and did not see end is decided by what the cluster is now."""
        j = self.journal
        uncertain = j is not None and key in j.begun
        if j is not None and key in j.ended:
            e = j.ended[key]
            result = Result(
                wave,
                action,
                target,
                str(e.get("outcome")),
                str(e.get("reason", "")),
                e.get("from"),
                e.get("to"),
                None,
                e.get("predicted"),
            )
        else:
            if j is not None and not uncertain:
                j.begin(key, action=action, target=target, wave=wave)
            result = act(uncertain)
            if j is not None:
                j.end(
                    key,
                    result.outcome,
                    action=action,
                    node=target if action in ("cordon", "uncordon") else None,
                    reason=result.reason,
                    wave=wave,
                    predicted=result.predicted,
                    **{"from": result.from_node, "to": result.to},
                )
        with self._lock:
            self.report.results.append(result)
        return result

    def _record_ended(self, wave: int, a: Action) -> None:
        key = _key(a)
        j = self.journal
        e = j.ended.get(key, {}) if j is not None else {}
        result = Result(
            wave,
            a.action,
            a.pod.key,
            str(e.get("outcome", "done")),
            str(e.get("reason", "")),
            a.from_node,
            a.to,
            None,
            a.predicted,
        )
        if j is not None and (r := j.replacements.get(a.pod.uid)):
            result.landed_on = r.get("node")
        self.report.results.append(result)

    # ---------------------------------------------------------------------------------------------
    # Actions

    def _action(self, wave: int, a: Action) -> Result:
        if a.action == "bind":
            return self._once(wave, "bind", _key(a), a.pod.key, lambda _: self._bind(wave, a))
        return self._once(wave, "evict", _key(a), a.pod.key, lambda u: self._evict(wave, a, u))

    def _evict(self, wave: int, a: Action, uncertain: bool) -> Result:
        ns, name, uid, source = a.pod.namespace, a.pod.name, a.pod.uid, a.from_node
        j = self.journal
        if self.dry:
            with self._lock:
                second_leg = uid in self._dry_evicted
                self._dry_evicted.add(uid)
            if second_leg:
                return self._result(
                    wave, a, "dry-run", "not checked: it follows a move a dry run did not make"
                )
        # The second leg of a detour moves the first leg's replacement.
        if j is not None and (r := j.replacements.get(uid)):
            ns, name, uid, source = r["namespace"], r["name"], r["uid"], r["node"]
            if source == a.to:
                return self._result(wave, a, "done", f"its replacement landed on {a.to} already")

        def result(outcome: str, reason: str = "") -> Result:
            return self._result(wave, a, outcome, reason)

        got = self.api.get_pod(ns, name)
        meta, spec = got.body.get("metadata") or {}, got.body.get("spec") or {}
        if uncertain and (
            got.status == 404
            or (got.ok and (meta.get("uid") != uid or meta.get("deletionTimestamp")))
        ):
            # Begun by a run that was stopped before it saw the answer: the pod went, so that
            # eviction was made (nothing else evicts by this plan's journal).
            return result("done", "evicted by an earlier run")
        if got.status == 404:
            return result("gone", "the pod no longer exists")
        if not got.ok:
            return result("blocked", f"cannot read the pod: {got.describe()}")
        if meta.get("uid") != uid:
            return result("replaced", f"{ns}/{name} is another pod now (UID {meta.get('uid')})")
        if spec.get("nodeName") != source:
            return result("moved", f"the pod is on {spec.get('nodeName')}, not {source}")
        if meta.get("deletionTimestamp"):
            return result("gone", "the pod is being deleted already")
        deadline = time.monotonic() + self.s.move_budget
        attempt = 0
        lost = False  # an attempt had no answer: the server may have carried it out
        while True:
            attempt += 1
            ans = self.api.evict(ns, name, uid)
            if ans.ok:
                self._event(a, wave, ns, name, uid, "Normal", "KubeEngineMove")
                return result("dry-run" if self.dry else "done")
            if ans.status == 0 or (lost and ans.status in (404, 409)):
                # Asked before retrying: a pod already going would be evicted twice, and a 404
                # or 409 would be taken for someone else's doing.
                lost = True
                if not self.dry and self._went(ns, name, uid):
                    self._event(a, wave, ns, name, uid, "Normal", "KubeEngineMove")
                    return result("done", "evicted by an attempt whose answer was lost")
            if ans.status == 404:
                return result("gone", "the pod no longer exists")
            if ans.status == 409:
                return result("replaced", f"the pod changed before its eviction: {ans.message}")
            if ans.status == 403:
                return self._blocked(wave, a, ns, name, uid, f"forbidden: {ans.message}")
            if ans.status == 500 and "more than one PodDisruptionBudget" in ans.message:
                return self._blocked(wave, a, ns, name, uid, self._many_budgets(ns, name, ans))
            if ans.status == 429:
                wait = ans.retry_after
                why = "its PodDisruptionBudget allows no disruption now"
                if wait is None:
                    wait = _backoff(attempt)
                else:
                    why = f"the server asked to retry after {wait:g}s ({ans.message})"
            elif ans.status == 0 or ans.status >= 500:
                wait, why = _backoff(attempt), ans.describe()
            else:
                return self._blocked(wave, a, ns, name, uid, ans.describe())
            if time.monotonic() + wait > deadline:
                return self._blocked(
                    wave, a, ns, name, uid, f"{why}; gave up after {self.s.move_budget:g}s"
                )
            self.sleep(wait)

    def _went(self, ns: str, name: str, uid: str) -> bool:
        """Whether pod ``uid`` is gone or going (deleted, terminating, or another pod has its
        name now)."""
        got = self.api.get_pod(ns, name)
        meta = got.body.get("metadata") or {}
        return got.status == 404 or (
            got.ok and (meta.get("uid") != uid or bool(meta.get("deletionTimestamp")))
        )

    def _blocked(self, wave: int, a: Action, ns: str, name: str, uid: str, why: str) -> Result:
        self._event(a, wave, ns, name, uid, "Warning", "KubeEngineBlocked", why)
        return self._result(wave, a, "blocked", why)

    def _many_budgets(self, ns: str, name: str, ans: Answer) -> str:
        """The server's 500 for a pod several budgets cover, with their names (matched by the
        core, as the Eviction API matches them)."""
        from kube_engine._core import Snapshot, covering_budgets

        pod, pdbs = self.api.get_pod(ns, name), self.api.list_pdbs(ns)
        names: list[str] = []
        if pod.ok and pdbs.ok:
            import json

            doc = {
                "kind": "List",
                "apiVersion": "v1",
                "items": [{"kind": "Pod", "apiVersion": "v1", **pod.body}]
                + [
                    {"kind": "PodDisruptionBudget", "apiVersion": "policy/v1", **p}
                    for p in pdbs.body.get("items") or []
                ],
            }
            # The pod's node is not in this small snapshot: it is left out of nothing that
            # matters here, as budgets match by labels alone.
            doc["items"][0].get("spec", {}).pop("nodeName", None)
            try:
                covering = covering_budgets(Snapshot.from_bytes(json.dumps(doc).encode()))
                names = covering.get(f"{ns}/{name}", [])
            except Exception:  # a budget the core cannot read: the server's message stands
                names = []
        which = f" ({', '.join(names)})" if names else ""
        return f"more than one PodDisruptionBudget covers the pod{which}: {ans.message}"

    def _bind(self, wave: int, a: Action) -> Result:
        ns, name, uid = a.pod.namespace, a.pod.name, a.pod.uid
        got = self.api.get_pod(ns, name)
        if got.status == 404:
            return self._result(wave, a, "gone", "the pod no longer exists")
        if not got.ok:
            return self._result(wave, a, "blocked", f"cannot read the pod: {got.describe()}")
        meta, spec = got.body.get("metadata") or {}, got.body.get("spec") or {}
        if meta.get("uid") != uid:
            return self._result(wave, a, "replaced", "another pod has its name now")
        bound = spec.get("nodeName")
        if bound:
            outcome = "done" if bound == a.to else "moved"
            return self._result(wave, a, outcome, f"bound to {bound} already")
        ans = self.api.bind(ns, name, uid, a.to)
        if ans.ok:
            return self._result(wave, a, "dry-run" if self.dry else "done")
        if ans.status in (0, 409):
            # Bound meanwhile (409), or perhaps by this very request, its answer lost: the pod
            # tells.
            again = self.api.get_pod(ns, name)
            bound = (again.body.get("spec") or {}).get("nodeName") if again.ok else None
            if bound == a.to:
                return self._result(wave, a, "done", f"the pod is bound to {a.to}")
            if bound or ans.status == 409:
                why = f"bound elsewhere meanwhile: {bound or ans.message}"
                return self._result(wave, a, "moved", why)
        return self._result(wave, a, "blocked", ans.describe())

    def _result(self, wave: int, a: Action, outcome: str, reason: str = "") -> Result:
        return Result(
            wave, a.action, a.pod.key, outcome, reason, a.from_node, a.to, None, a.predicted
        )

    def _cordoner(self, node: str) -> Callable[[bool], Result]:
        return lambda _uncertain: self._cordon(node)

    def _uncordoner(self, node: str) -> Callable[[bool], Result]:
        return lambda _uncertain: self._uncordon(node)

    def _cordon(self, node: str) -> Result:
        for _ in range(3):
            got = self.api.get_node(node)
            if got.status == 404:
                return Result(0, "cordon", node, "gone", "the node no longer exists")
            if not got.ok:
                return Result(
                    0, "cordon", node, "blocked", f"cannot read the node: {got.describe()}"
                )
            meta, spec = got.body.get("metadata") or {}, got.body.get("spec") or {}
            if spec.get("unschedulable"):
                if (meta.get("annotations") or {}).get(CORDONED_BY) == self.plan.name:
                    return Result(0, "cordon", node, "done", "cordoned by an earlier run")
                # Someone else's cordon: it is theirs to undo, not this run's.
                return Result(0, "cordon", node, "skipped", "cordoned already")
            patch = {
                "metadata": {
                    "resourceVersion": meta.get("resourceVersion"),
                    "annotations": {CORDONED_BY: self.plan.name},
                },
                "spec": {"unschedulable": True},
            }
            ans = self.api.patch_node(node, patch)
            if ans.ok:
                return Result(0, "cordon", node, "dry-run" if self.dry else "done")
            if ans.status != 409:
                raise _Stop(f"aborted: cannot cordon {node}: {ans.describe()}")
        raise _Stop(f"aborted: cannot cordon {node}: it kept changing (409 three times)")

    def _uncordon_all(self) -> None:
        j = self.journal
        if j is None:
            return
        for node in dict.fromkeys(j.cordoned):
            if node in j.uncordoned:
                continue
            self._once(-1, "uncordon", f"uncordon:{node}", node, self._uncordoner(node))

    def _uncordon(self, node: str) -> Result:
        got = self.api.get_node(node)
        if got.status == 404:
            return Result(-1, "uncordon", node, "gone", "the node no longer exists")
        meta = got.body.get("metadata") or {}
        if (meta.get("annotations") or {}).get(CORDONED_BY) != self.plan.name:
            return Result(-1, "uncordon", node, "skipped", "not cordoned by this plan")
        patch = {
            "metadata": {"annotations": {CORDONED_BY: None}},
            "spec": {"unschedulable": False},
        }
        ans = self.api.patch_node(node, patch)
        outcome = "done" if ans.ok else "blocked"
        if ans.ok:
            self.report.uncordoned.append(node)
        return Result(-1, "uncordon", node, outcome, "" if ans.ok else ans.describe())

    def _event(
        self,
        a: Action,
        wave: int,
        ns: str,
        name: str,
        uid: str,
        kind: str,
        reason: str,
        why: str = "",
    ) -> None:
        if not self.s.events or self.dry:
            return
        message = (
            f"kube-engine plan {self.plan.name}, wave {wave}: evicted from {a.from_node} "
            f"to move to {a.to}"
            if kind == "Normal"
            else f"kube-engine plan {self.plan.name}, wave {wave}: cannot move {a.from_node} -> "
            f"{a.to}: {why}"
        )
        now = now_rfc3339()
        self.api.create_event(
            ns,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{name}.kube-engine-", "namespace": ns},
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "namespace": ns,
                    "name": name,
                    "uid": uid,
                },
                "reason": reason,
                "message": message[:1024],
                "type": kind,
                "source": {"component": "kube-engine"},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            },
        )

    # ---------------------------------------------------------------------------------------------
    # Between waves

    def _before(self, i: int, wave: list[Action]) -> dict[str, Any]:
        """What the wave's waits compare with: the UIDs of the pods in its namespaces, and the
        healthy count of its budgets (kept in the journal, so a resumed run compares with the
        cluster before the wave, not after)."""
        j = self.journal
        if j is not None and i in j.wave_state:
            return j.wave_state[i]
        state: dict[str, Any] = {"pods": {}, "healthy": {}}
        if self.dry:
            return state
        for ns in sorted({a.pod.namespace for a in wave if a.action == "evict"}):
            listed = self.api.list_pods(ns)
            if not listed.ok:
                raise _Stop(
                    f"aborted before wave {i}: cannot list pods in {ns}: {listed.describe()}"
                )
            state["pods"][ns] = [
                (p.get("metadata") or {}).get("uid") for p in listed.body.get("items") or []
            ]
        for budget in sorted({a.budget for a in wave if a.budget}):
            pdb_ns, pdb_name = budget.split("/", 1)
            got = self.api.get_pdb(pdb_ns, pdb_name)
            if got.ok:
                state["healthy"][budget] = (got.body.get("status") or {}).get("currentHealthy", 0)
        if j is not None:
            j.wave(i, state)
        return state

    def _wait_and_measure(
        self, i: int, before: dict[str, Any], evicted: list[tuple[Action, Result]]
    ) -> None:
        """Waits until every evicted pod of a controller has a Ready replacement and every budget
        the wave spent is as healthy as before it; then records where the replacements landed."""
        if not evicted:
            return
        deadline = time.monotonic() + self.s.wave_timeout
        old = {ns: set(uids) for ns, uids in (before.get("pods") or {}).items()}
        owners: dict[str, str | None] = {}
        for a, _ in evicted:
            owners[a.pod.uid] = None
        # Replacements that name the binding scheduler wait for this run to bind them.
        targets: dict[str, list[Action]] = defaultdict(list)
        for a, _ in evicted:
            if a.landing == "binding" and a.controller is not None:
                targets[f"{a.pod.namespace}/{a.controller}"].append(a)
        while True:
            fresh, pending = self._replacements(old, evicted, owners)
            if any(targets.values()) and self._bind_replacements(i, fresh, targets):
                continue  # look again at once: the bound ones are on their way to Ready
            unhealthy = self._unhealthy(before.get("healthy") or {})
            if not pending and not unhealthy:
                break
            if time.monotonic() > deadline:
                what = pending[:3] or unhealthy[:3]
                raise _Stop(
                    f"aborted after wave {i}: not back within {self.s.wave_timeout:g}s: "
                    + ", ".join(what)
                    + " (the next wave would disrupt more than the budgets allow)"
                )
            self.sleep(self.s.poll)
        self._measure(evicted, fresh)

    def _bind_replacements(
        self, wave: int, fresh: dict[str, list[dict[str, Any]]], targets: dict[str, list[Action]]
    ) -> bool:
        """Binds each unbound replacement that names the binding scheduler to a target of its
        controller's evicted pods (GPU devices recorded first, as docs/encoding.md says). Returns
        whether it bound any."""
        bound = False
        for key, wanted in targets.items():
            for p in fresh.get(key, []):
                if not wanted:
                    break
                meta, spec = p.get("metadata") or {}, p.get("spec") or {}
                if spec.get("nodeName") or spec.get("schedulerName") != self.plan.binding_scheduler:
                    continue
                a = wanted[0]
                ns, name, uid = (
                    str(meta.get("namespace")),
                    str(meta.get("name")),
                    str(meta.get("uid")),
                )
                if a.gpu_devices:
                    devices = ",".join(str(d) for d in a.gpu_devices)
                    self.api.patch_pod(
                        ns, name, {"metadata": {"annotations": {GPU_DEVICES: devices}}}
                    )
                ans = self.api.bind(ns, name, uid, a.to)
                if ans.status in (0, 409):
                    # Bound by someone (or by this request, its answer lost): the pod tells.
                    again = self.api.get_pod(ns, name)
                    if again.ok and (again.body.get("spec") or {}).get("nodeName") == a.to:
                        ans = Answer(201)
                outcome = "done" if ans.ok else "blocked"
                if ans.ok or ans.status == 409:
                    wanted.pop(0)
                    bound = bound or ans.ok
                with self._lock:
                    self.report.results.append(
                        Result(
                            wave,
                            "bind",
                            f"{ns}/{name}",
                            outcome,
                            f"the replacement of {a.pod.key}"
                            + ("" if ans.ok else f": {ans.describe()}"),
                            None,
                            a.to,
                            a.to if ans.ok else None,
                            a.to,
                        )
                    )
        return bound

    def _replacements(
        self,
        old: dict[str, set[str]],
        evicted: list[tuple[Action, Result]],
        owners: dict[str, str | None],
    ) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """Per controller UID, its pods made since the wave began; and what is still awaited."""
        fresh: dict[str, list[dict[str, Any]]] = defaultdict(list)
        need: dict[str, int] = defaultdict(int)
        for a, _ in evicted:
            owner = a.controller
            if owner is None:
                continue  # a bare pod: nothing makes it again
            need[f"{a.pod.namespace}/{owner}"] += 1
        for ns in sorted({a.pod.namespace for a, _ in evicted}):
            listed = self.api.list_pods(ns)
            if not listed.ok:
                return fresh, [f"pods in {ns} (cannot list: {listed.describe()})"]
            for p in listed.body.get("items") or []:
                meta = p.get("metadata") or {}
                if meta.get("uid") in old.get(ns, set()) or meta.get("deletionTimestamp"):
                    continue
                ref = next(
                    (o for o in meta.get("ownerReferences") or [] if o.get("controller")), None
                )
                if ref is None:
                    continue
                key = f"{ns}/{ref.get('kind')}/{ref.get('name')}"
                fresh[key].append(p)
        pending = []
        for key, n in need.items():
            ready = [p for p in fresh.get(key, []) if _ready(p)]
            if len(ready) < n:
                pending.append(f"{key}: {len(ready)} of {n} replacement(s) Ready")
        return fresh, pending

    def _unhealthy(self, healthy: dict[str, int]) -> list[str]:
        out = []
        for budget, was in healthy.items():
            ns, name = budget.split("/", 1)
            got = self.api.get_pdb(ns, name)
            if not got.ok:
                continue  # a budget deleted meanwhile guards nothing
            now = (got.body.get("status") or {}).get("currentHealthy", 0)
            if now < was:
                out.append(f"PodDisruptionBudget {budget}: {now} healthy, was {was}")
        return out

    def _measure(
        self, evicted: list[tuple[Action, Result]], fresh: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Matches each evicted pod with a replacement of its controller, on its target when one
        landed there: where replacements really went."""
        left = {k: list(v) for k, v in fresh.items()}
        order = sorted(evicted, key=lambda ar: ar[0].pod.key)
        for a, r in order:
            if a.controller is None:
                continue
            pool = left.get(f"{a.pod.namespace}/{a.controller}", [])
            if not pool:
                continue
            match = next(
                (p for p in pool if (p.get("spec") or {}).get("nodeName") == a.to), pool[0]
            )
            pool.remove(match)
            meta, spec = match.get("metadata") or {}, match.get("spec") or {}
            r.landed_on = spec.get("nodeName")
            # Best effort: a replacement without the mark is only protected by the PDBs.
            self.api.patch_pod(
                str(meta.get("namespace", a.pod.namespace)),
                str(meta.get("name", "")),
                {"metadata": {"annotations": {MOVED_AT: now_rfc3339(), MOVED_BY: self.plan.name}}},
            )
            if self.journal is not None:
                self.journal.replacement(
                    a.pod.uid,
                    {
                        "namespace": str(meta.get("namespace", a.pod.namespace)),
                        "name": str(meta.get("name", "")),
                        "uid": str(meta.get("uid", "")),
                        "node": str(r.landed_on or ""),
                    },
                )


def _key(a: Action) -> str:
    return f"{a.action}:{a.pod.uid}:{a.from_node}>{a.to}"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): exponential from 1 s, at most 30 s, jittered
    so that runs waiting on one budget do not retry in step."""
    return min(30.0, 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


__all__ = ["CORDONED_BY", "MODES", "MOVED_AT", "MOVED_BY", "Report", "Result", "Settings", "apply"]
