"""kube_engine.apply under faults: one test per row of the applier's semantics matrix, each run
through the real client over HTTP against the API emulator, each checked on the emulator's own
record and on the report.

1. 429 with Retry-After: waited for, then retried (at once for 0).
2. 429 without Retry-After (the budget stays spent): jittered backoff within the move budget, then
   blocked, a Warning Event, the run stops after the wave and gives its cordons back.
3. 500 "more than one PodDisruptionBudget": blocked at once, both budgets named.
4. 403 (RBAC): blocked.
5. 404 (the pod went): gone, nothing evicted.
6. 409 / a pod replaced under its name: never evicted, replaced.
7. A run killed at any point (SIGKILL of the CLI): the same command again finishes the plan.
8. One run at a time: a live Lease refuses the run; an expired one is taken over.
9. Seeded random faults on the eviction path: completed or stopped cleanly, never unsafe.
10. Binding: through the Binding API; a pod bound meanwhile is done (same node) or moved.
11. A misbehaving server: a Retry-After that is no number counts as absent, an absurd one is cut
    to 60 s; a trickled, oversized, compressed or unreadable answer is no answer, within the
    request timeout.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_apply import FAST, TARGET, shop

import kube_engine as ke
from k8s_emulator import (
    BINDING_PATH,
    EVICTION_PATH,
    LEASES,
    PDBS,
    Fault,
    KubeEmulator,
    Record,
    Request,
    Response,
    node,
    pdb,
    pod,
)
from kube_engine._core import ClusterError
from kube_engine.applying import Report, Result, Settings
from kube_engine.applying.api import Answer, Api
from kube_engine.cluster import connect

pytestmark = pytest.mark.usefixtures("no_real_cluster")

NS = "shop"


def wait_for(what: str, done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    """Four nodes; web pods on each (one budget, one may go at a time), a db pod on n2. TARGET
    empties n2 (db-a and web-c, one wave) and n3 (web-d, a second wave)."""
    with shop() as e:
        yield e


def make_plan(emu: KubeEmulator, tmp_path: Path) -> tuple[Path, ke.Plan]:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    plan = ke.plan(ke.read_snapshot(kubeconfig), TARGET)
    waves = [sorted(a.pod.key for a in wave) for wave in plan.waves]
    assert waves == [["shop/db-a", "shop/web-c"], ["shop/web-d"]], plan.table()
    assert [c.node for c in plan.cordon] == ["n2", "n3"]
    return kubeconfig, plan


def run(
    emu: KubeEmulator,
    kubeconfig: Path,
    plan: ke.Plan,
    tmp_path: Path,
    settings: Settings = FAST,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Record, Report]:
    record = emu.reset_record()
    report = ke.apply(
        plan, kubeconfig=str(kubeconfig), journal=tmp_path / "j", settings=settings, sleep=sleep
    )
    return record, report


class Waits:
    """A ``sleep`` for :func:`kube_engine.apply` that notes every wait; waits longer than ``cap``
    are cut to it (the applier's deadlines still run on the real clock)."""

    def __init__(self, cap: float | None = None) -> None:
        self.cap = cap
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds if self.cap is None else min(seconds, self.cap))

    @property
    def retries(self) -> list[float]:
        """The waits before a retry (the rest are the polls between waves)."""
        return [w for w in self.waits if w != FAST.poll]


def outcomes(report: Report) -> dict[str, str]:
    return {r.target: r.outcome for r in report.results if r.action in ("evict", "bind")}


def result(report: Report, target: str) -> Result:
    (found,) = [r for r in report.results if r.target == target and r.action != "cordon"]
    return found


def eviction_path(name: str) -> str:
    return f"/api/v1/namespaces/{NS}/pods/{name}/eviction"


def eviction_requests(emu: KubeEmulator, name: str) -> list[Request]:
    return emu.requests_for(eviction_path(name), "POST")


def cordoned(emu: KubeEmulator) -> list[str]:
    return [n["metadata"]["name"] for n in emu.objects("nodes") if n["spec"].get("unschedulable")]


def check_safe(emu: KubeEmulator, record: Record, plan: ke.Plan, done: list[str]) -> None:
    """What holds after any run: no pod evicted twice and every eviction with the pod's UID as
    precondition; no budget ever broken; no node left cordoned; the pods reported ``done`` are
    exactly the planned pods (by UID) the record shows evicted."""
    evicted = record.evicted()
    assert len({e.uid for e in evicted}) == len(evicted), evicted
    assert all(e.precondition_uid == e.uid for e in evicted)
    assert record.pdbs_below_minimum() == []
    assert cordoned(emu) == []
    planned = {a.pod.key: a.pod.uid for a in plan.actions if a.action == "evict"}
    assert sorted(planned[key] for key in done) == sorted(str(e.uid) for e in evicted)


def done_evictions(report: Report | dict[str, Any]) -> list[str]:
    """The evictions a report (or its JSON document) says were made."""
    if isinstance(report, Report):
        report = report.to_dict()
    results = report["results"]
    return [r["target"] for r in results if r["action"] == "evict" and r["outcome"] == "done"]


def stopped_after_wave_1(emu: KubeEmulator, report: Report, plan: ke.Plan) -> None:
    """The run ended with wave 1: web-d (wave 2) never asked for, the cordons given back."""
    assert report.outcome == "stopped", report.table()
    assert report.message.startswith("stopped after wave 1")
    assert "shop/web-d" not in outcomes(report)
    assert eviction_requests(emu, "web-d") == []
    assert sorted(report.uncordoned) == sorted(c.node for c in plan.cordon)


# --------------------------------------------------------------------------------------------------
# 1. 429 with Retry-After


@pytest.mark.parametrize("seconds", [1, 0])
def test_a_429_with_retry_after_is_retried_after_that_long(
    emu: KubeEmulator, tmp_path: Path, seconds: int
) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    stamps: list[tuple[str, float]] = []
    emu.inject(
        429,
        path=EVICTION_PATH,
        method="POST",
        retry_after=seconds,
        before=lambda r: stamps.append((r.path, time.monotonic())),
    )
    emu.hook(lambda r: stamps.append((r.path, time.monotonic())), path=EVICTION_PATH)
    waits = Waits()
    # The server's waits count against the move's budget: give it room for one.
    settings = Settings(poll=0.05, wave_timeout=15.0, move_budget=3.0, lease_duration=5)
    record, report = run(emu, kubeconfig, plan, tmp_path, settings, sleep=waits)

    assert report.outcome == "completed", report.table()
    # The refused eviction was asked again (the next eviction request, same pod) after the wait.
    (refused, at), (again, retried_at) = stamps
    assert again == refused
    assert waits.retries == [seconds]
    assert seconds <= retried_at - at < seconds + 0.5
    name = refused.split("/")[-2]
    assert [r.status for r in eviction_requests(emu, name)] == [429, 201]
    assert result(report, f"{NS}/{name}").outcome == "done"
    check_safe(emu, record, plan, done_evictions(report))
    assert len(record.evicted()) == 3


# --------------------------------------------------------------------------------------------------
# 2. 429 without Retry-After


def test_a_budget_that_stays_spent_blocks_the_move_and_stops_the_run(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    # The budget allows nothing from now on: its controller is off, its status says 0.
    emu.controllers(disruption=False, interval=0.02)
    emu.modify(PDBS, "web", NS, lambda b: b["status"].update(disruptionsAllowed=0))
    web_c = next(a.pod for a in plan.actions if a.pod.key == "shop/web-c")
    waits = Waits()
    settings = Settings(poll=0.05, wave_timeout=15.0, move_budget=2.5, lease_duration=5)
    started = time.monotonic()
    record, report = run(emu, kubeconfig, plan, tmp_path, settings, sleep=waits)
    took = time.monotonic() - started

    blocked = result(report, "shop/web-c")
    assert blocked.outcome == "blocked"
    assert "allows no disruption" in blocked.reason and "gave up after 2.5s" in blocked.reason
    asked = eviction_requests(emu, "web-c")
    assert [r.status for r in asked] == [429] * len(asked)
    assert all(r.response is not None and "Retry-After" not in r.response.headers for r in asked)
    # Jittered exponential backoff (1 s, 2 s, ... each times 0.5..1), all within the budget.
    assert len(asked) == len(waits.retries) + 1 >= 2
    for attempt, wait in enumerate(waits.retries, 1):
        assert 0.5 * 2 ** (attempt - 1) <= wait <= 2 ** (attempt - 1)
    assert sum(waits.retries) <= settings.move_budget
    assert took < settings.move_budget + 2
    # The pod says why it was not moved.
    (event,) = [e for e in emu.objects("events") if e["reason"] == "KubeEngineBlocked"]
    assert event["type"] == "Warning"
    assert event["involvedObject"]["name"] == "web-c"
    assert event["involvedObject"]["uid"] == web_c.uid
    assert "allows no disruption" in event["message"]
    # The rest of wave 1 was made; the run stopped there and uncordoned what it cordoned.
    assert outcomes(report) == {"shop/db-a": "done", "shop/web-c": "blocked"}
    stopped_after_wave_1(emu, report, plan)
    check_safe(emu, record, plan, done_evictions(report))
    assert emu.get("pods", "web-c", NS) is not None
    # The same plan, run again with its journal, sends nothing: its assumptions no longer hold.
    record, again = run(emu, kubeconfig, plan, tmp_path, settings, sleep=waits)
    assert again.outcome == "stopped" and "plan again" in again.message
    assert record.evictions == [] and record.node_writes == []


# --------------------------------------------------------------------------------------------------
# 3. 500: several budgets


def test_a_pod_two_budgets_cover_is_blocked_at_once_naming_both(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    emu.add_pdb(pdb(NS, "web-extra", match_labels={"app": "web"}, min_available=1))
    wait_for("the new budget gets a status", lambda: all("status" in b for b in emu.objects(PDBS)))
    waits = Waits()
    record, report = run(emu, kubeconfig, plan, tmp_path, sleep=waits)

    blocked = result(report, "shop/web-c")
    assert blocked.outcome == "blocked"
    assert blocked.reason.startswith(
        "more than one PodDisruptionBudget covers the pod (shop/web, shop/web-extra): "
    )
    assert [r.status for r in eviction_requests(emu, "web-c")] == [500]  # never retried
    assert waits.retries == []
    (event,) = [e for e in emu.objects("events") if e["reason"] == "KubeEngineBlocked"]
    assert "shop/web-extra" in event["message"]
    stopped_after_wave_1(emu, report, plan)
    check_safe(emu, record, plan, done_evictions(report))


# --------------------------------------------------------------------------------------------------
# 4. 403


def test_an_eviction_rbac_forbids_is_blocked(emu: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    # Everything an applier does but pods/eviction ("pods" does not cover its subresources).
    emu.set_rbac(
        [
            {"apiGroups": [""], "resources": ["pods", "nodes", "events"], "verbs": ["*"]},
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["*"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]},
        ]
    )
    waits = Waits()
    record, report = run(emu, kubeconfig, plan, tmp_path, sleep=waits)

    assert outcomes(report) == {"shop/db-a": "blocked", "shop/web-c": "blocked"}
    for r in report.results:
        if r.action == "evict":
            assert r.reason.startswith("forbidden:")
            assert 'cannot create resource "pods/eviction"' in r.reason
    assert [e.status for e in record.evictions] == [403, 403]  # each asked once
    assert record.evicted() == [] and waits.retries == []
    assert len([e for e in emu.objects("events") if e["reason"] == "KubeEngineBlocked"]) == 2
    stopped_after_wave_1(emu, report, plan)
    check_safe(emu, record, plan, done_evictions(report))


# --------------------------------------------------------------------------------------------------
# 5. 404


@pytest.mark.parametrize("when", ["before the run", "at its eviction"])
def test_a_pod_deleted_meanwhile_is_gone_and_nothing_is_evicted_in_its_place(
    emu: KubeEmulator, tmp_path: Path, when: str
) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)

    def delete(_: object = None) -> None:
        # Someone else's disruption, seen by the controllers at once: a disruption controller
        # that lags lets the Eviction API itself break the budget (upstream's race, not ours).
        emu.delete("pods", "web-c", NS)
        emu.reconcile(2)

    if when == "before the run":
        delete()
    else:
        emu.hook(delete, path=eviction_path("web-c"))
    record, report = run(emu, kubeconfig, plan, tmp_path)

    gone = result(report, "shop/web-c")
    assert (gone.outcome, gone.reason) == ("gone", "the pod no longer exists")
    statuses = [r.status for r in eviction_requests(emu, "web-c")]
    assert statuses == ([] if when == "before the run" else [404])
    # A pod that is gone is no move the rest of the plan relied on: the run goes on.
    assert report.outcome == "completed", report.table()
    assert outcomes(report) == {"shop/db-a": "done", "shop/web-c": "gone", "shop/web-d": "done"}
    check_safe(emu, record, plan, done_evictions(report))
    assert "web-c" not in {e.name for e in record.evicted()}


# --------------------------------------------------------------------------------------------------
# 6. 409: replaced


@pytest.mark.parametrize("when", ["before the run", "at its eviction"])
def test_a_pod_replaced_under_its_name_is_never_evicted(
    emu: KubeEmulator, tmp_path: Path, when: str
) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    planned = next(a.pod.uid for a in plan.actions if a.pod.key == "shop/web-c")
    if when == "before the run":
        emu.replace_pod(NS, "web-c")
    else:
        # Replaced in place (bound, Ready) just before the eviction arrives: only the UID
        # precondition tells the two apart. As upstream, the refused eviction spent the budget
        # first, and the new pod (in disruptedPods under its name) counts healthy again only
        # after the disruption controller's DeletionTimeout (2 min upstream; 1 s here), which the
        # run's wait after the wave may see.
        emu.controllers(interval=0.02, disruption_timeout=1.0)
        emu.hook(
            lambda r: emu.replace_pod(NS, "web-c", keep_node=True), path=eviction_path("web-c")
        )
    record, report = run(emu, kubeconfig, plan, tmp_path)

    new = emu.get("pods", "web-c", NS)
    assert new is not None and new["metadata"]["uid"] != planned
    replaced = result(report, "shop/web-c")
    assert replaced.outcome == "replaced"
    asked = eviction_requests(emu, "web-c")
    if when == "before the run":
        assert asked == [] and new["metadata"]["uid"] in replaced.reason
    else:
        assert [r.status for r in asked] == [409]
        assert [r.json()["deleteOptions"]["preconditions"]["uid"] for r in asked] == [planned]
    assert not [e for e in record.evictions if e.uid == new["metadata"]["uid"] and e.status == 201]
    stopped_after_wave_1(emu, report, plan)
    check_safe(emu, record, plan, done_evictions(report))


# --------------------------------------------------------------------------------------------------
# 7. Killed at any point


def nth(n: int) -> Callable[[Request], bool]:
    """Matches the ``n``-th request it is asked about."""
    count = itertools.count(1)
    return lambda r: next(count) == n


def is_uncordon(r: Request) -> bool:
    return r.path.startswith("/api/v1/nodes/") and r.json()["spec"].get("unschedulable") is False


Kill = Callable[[Request], None]
EVICTIONS: dict[str, Any] = {"path": EVICTION_PATH, "method": "POST"}
#: Where the first run dies (a fault that runs ``kill``), and how many pods it evicted by then.
KILL_POINTS: dict[str, tuple[Callable[[KubeEmulator, Kill], Fault], int]] = {
    "before the 2nd eviction is served": (
        lambda emu, kill: emu.inject(drop=True, before=kill, when=nth(2), **EVICTIONS),
        1,
    ),
    "after the 2nd eviction is served, its answer lost": (
        lambda emu, kill: emu.hook(kill, when=nth(2), after=True, **EVICTIONS),
        2,
    ),
    "before the 3rd eviction (wave 2) is served": (
        lambda emu, kill: emu.inject(drop=True, before=kill, when=nth(3), **EVICTIONS),
        2,
    ),
    # The first look at the pods once an eviction was made: the wait after wave 1.
    "in the wait after wave 1": (
        lambda emu, kill: emu.hook(
            kill,
            path=f"/api/v1/namespaces/{NS}/pods",
            method="GET",
            when=lambda r: bool(emu.record.evicted()),
            after=True,
        ),
        2,
    ),
    "before the 1st uncordon is served": (
        lambda emu, kill: emu.inject(drop=True, before=kill, method="PATCH", when=is_uncordon),
        3,
    ),
}


def apply_command(plan_file: Path, kubeconfig: Path, journal: Path) -> list[str]:
    """``kube-engine apply``, as a user runs it (the same command twice to finish a run)."""
    return [
        sys.executable,
        "-m",
        "kube_engine.cli",
        "apply",
        str(plan_file),
        "--kubeconfig",
        str(kubeconfig),
        "--journal",
        str(journal),
        "--move-timeout",
        "5",
        "--wave-timeout",
        "20",
        "-o",
        "json",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_killed_run_is_finished_by_running_it_again(
    emu: KubeEmulator, tmp_path: Path, point: str
) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    plan_file = plan.save(tmp_path / "plan.json")
    planned = {a.pod.uid: a.pod.key for a in plan.actions}
    command = apply_command(plan_file, kubeconfig, tmp_path / "journal.jsonl")
    running: list[subprocess.Popen[str]] = []

    def kill(_: Request) -> None:
        os.kill(running[-1].pid, signal.SIGKILL)

    make_fault, evicted_before_kill = KILL_POINTS[point]
    killer = make_fault(emu, kill)
    # The replacements come at once: the waits between waves find them Ready at their first
    # look (the CLI polls every 2 s).
    emu.hook(lambda r: emu.reconcile(2), times=None, after=True, **EVICTIONS)
    record = emu.reset_record()
    env = dict(os.environ)  # the test's isolation: its HOME, no KUBECONFIG, no proxies

    def go() -> subprocess.CompletedProcess[str]:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running.append(proc)
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        return subprocess.CompletedProcess(command, proc.returncode, out, err)

    first = go()
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    assert killer.hits == 1
    assert len(record.evicted()) == evicted_before_kill
    assert cordoned(emu) == ["n2", "n3"]  # the dead run gave nothing back
    # The dead run's Lease holds others off for its duration (60 s): as if that much had passed.
    stale = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert emu.modify(
        LEASES, "kube-engine", "default", lambda obj: obj["spec"].update(renewTime=stale)
    )
    second = go()
    assert second.returncode == 0, second.stdout + second.stderr

    # Every planned eviction exactly once over the two runs: none repeated, none skipped.
    assert Counter(planned[str(e.uid)] for e in record.evicted()) == Counter(list(TARGET))
    assert record.pdbs_below_minimum() == []
    assert cordoned(emu) == []
    # Every replacement is there and Ready: the ReplicaSets are whole again.
    pods = emu.objects("pods", NS)
    assert all(is_ready(p) for p in pods)
    owners = Counter(p["metadata"]["ownerReferences"][0]["name"] for p in pods)
    assert owners == {"web-1": 4, "db-1": 1}
    assert not {p["metadata"]["uid"] for p in pods} & set(planned)
    # The second run's report tells what the two runs did, as the record has it.
    report = json.loads(second.stdout)
    assert report["outcome"] == "completed"
    assert sorted(done_evictions(report)) == sorted(TARGET)
    assert report["landing"]["evicted"] == report["landing"]["measured"] == 3
    assert sorted(report["uncordoned"]) == ["n2", "n3"]
    assert emu.get(LEASES, "kube-engine", "default") is None  # given back at the end


def is_ready(p: dict[str, Any]) -> bool:
    conditions = p.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


# --------------------------------------------------------------------------------------------------
# 8. One run at a time


def lease(holder: str, renewed: datetime) -> dict[str, Any]:
    return {
        "metadata": {"name": "kube-engine", "namespace": "default"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 60,
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def test_a_lease_another_run_holds_keeps_this_one_off(emu: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    emu.add(LEASES, lease("ops-host-4242-0a1b2c3d", datetime.now(UTC)))
    emu.clear_log()
    with pytest.raises(ClusterError, match="held by ops-host-4242-0a1b2c3d"):
        run(emu, kubeconfig, plan, tmp_path)
    # The command says so too, and fails (1).
    command = apply_command(plan.save(tmp_path / "plan.json"), kubeconfig, tmp_path / "j")
    cli = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "Lease default/kube-engine is held by ops-host-4242-0a1b2c3d" in cli.stderr
    assert {r.method for r in emu.requests} == {"GET"}  # nothing written
    held = emu.get(LEASES, "kube-engine", "default")
    assert held is not None and held["spec"]["holderIdentity"] == "ops-host-4242-0a1b2c3d"
    assert cordoned(emu) == [] and emu.objects("events") == []


def test_an_expired_lease_is_taken_over(emu: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    emu.add(LEASES, lease("dead-host-1-0a1b2c3d", datetime.now(UTC) - timedelta(minutes=2)))
    taken: list[str] = []
    lease_path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/kube-engine"
    emu.hook(
        lambda r: taken.append(r.json()["spec"]["holderIdentity"]), path=lease_path, method="PUT"
    )
    record, report = run(emu, kubeconfig, plan, tmp_path)

    assert report.outcome == "completed", report.table()
    assert len(taken) == 1 and taken[0] != "dead-host-1-0a1b2c3d"
    assert emu.get(LEASES, "kube-engine", "default") is None  # given back at the end
    check_safe(emu, record, plan, done_evictions(report))
    assert len(record.evicted()) == 3


# --------------------------------------------------------------------------------------------------
# 9. Seeded random faults


#: Fault rates on the eviction path (429, 500, dropped before and after serving): moderate (a
#: generous move budget sees every move through) and harsh (a short budget: some moves are
#: blocked and the run stops).
MODERATE = (0.15, 0.1, 0.1, 0.1)
HARSH = (0.2, 0.3, 0.15, 0.15)


@pytest.mark.parametrize(
    ("seed", "rates", "move_budget"),
    [(seed, MODERATE, 10.0) for seed in (1, 3, 4, 7)] + [(seed, HARSH, 2.0) for seed in (1, 4)],
    ids=["moderate-1", "moderate-3", "moderate-4", "moderate-7", "harsh-1", "harsh-4"],
)
def test_random_eviction_faults_never_make_a_run_unsafe(
    emu: KubeEmulator,
    tmp_path: Path,
    seed: int,
    rates: tuple[float, float, float, float],
    move_budget: float,
) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    p429, p500, drop, drop_after = rates
    chaos = emu.inject_random(
        seed, p429=p429, p500=p500, drop=drop, drop_after=drop_after, **EVICTIONS
    )
    settings = Settings(poll=0.05, wave_timeout=15.0, move_budget=move_budget, lease_duration=5)
    record, report = run(emu, kubeconfig, plan, tmp_path, settings, sleep=Waits(cap=0.05))

    assert chaos.hits, "the seed gives faults"
    assert report.outcome in ("completed", "stopped"), report.table()
    check_safe(emu, record, plan, done_evictions(report))
    if report.outcome == "completed":
        assert sorted(done_evictions(report)) == sorted(TARGET)
    else:
        # Stopped cleanly: after a wave, each blocked pod told why, the cordons given back.
        assert report.message.startswith("stopped after wave"), report.table()
        blocked = {r.target for r in report.results if r.outcome == "blocked"}
        warned = {
            f"{NS}/{e['involvedObject']['name']}"
            for e in emu.objects("events")
            if e["reason"] == "KubeEngineBlocked"
        }
        assert blocked and warned == blocked
        assert sorted(report.uncordoned) == ["n2", "n3"]


@pytest.mark.parametrize("deletion_delay", [0.0, 0.5])
def test_an_eviction_whose_answer_was_lost_is_done_not_gone(
    emu: KubeEmulator, tmp_path: Path, deletion_delay: float
) -> None:
    """The server evicted the pod and the answer never came: the retry must not take the pod's
    absence (404) for someone else's deletion, nor evict it again while it terminates."""
    kubeconfig, plan = make_plan(emu, tmp_path)
    emu.pod_deletion_delay = deletion_delay
    emu.inject(drop=True, after_serving=True, path=eviction_path("web-c"), method="POST")
    record, report = run(emu, kubeconfig, plan, tmp_path, sleep=Waits(cap=0.05))

    assert report.outcome == "completed", report.table()
    lost = result(report, "shop/web-c")
    assert (lost.outcome, lost.reason) == ("done", "evicted by an attempt whose answer was lost")
    assert lost.landed_on is not None  # its replacement was waited for, and measured
    (asked,) = eviction_requests(emu, "web-c")  # not asked again
    assert asked.status is None and asked.notes["served_status"] == 201
    check_safe(emu, record, plan, done_evictions(report))
    moves = [e for e in emu.objects("events") if e["reason"] == "KubeEngineMove"]
    assert sorted(e["involvedObject"]["name"] for e in moves) == ["db-a", "web-c", "web-d"]


# --------------------------------------------------------------------------------------------------
# 10. Binding


@pytest.fixture
def pending() -> Iterator[KubeEmulator]:
    """Two nodes and a pending pod of a scheduler this cluster does not run: it waits for us."""
    with KubeEmulator() as e:
        e.add_node(node("n0", cpu="4"))
        e.add_node(node("n1", cpu="4"))
        e.add_pod(pod(NS, "batch-0", cpu="1", scheduler_name="batch-scheduler"))
        e.controllers(interval=0.02)
        yield e


@pytest.mark.parametrize(
    ("bound", "outcome"),
    [
        (None, "done"),
        (("before the run", "n1"), "done"),
        (("before the run", "n0"), "moved"),
        (("at its binding", "n1"), "done"),
        (("at its binding", "n0"), "moved"),
        (("by its binding, the answer lost", "n1"), "done"),
    ],
)
def test_a_pending_pod_is_bound_unless_it_was_bound_meanwhile(
    pending: KubeEmulator, tmp_path: Path, bound: tuple[str, str] | None, outcome: str
) -> None:
    emu = pending
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    plan = ke.plan(ke.read_snapshot(kubeconfig), {"shop/batch-0": "n1"})
    ((action,),) = plan.waves
    assert (action.action, action.to) == ("bind", "n1")
    if bound is not None:
        when, where = bound
        if when == "before the run":
            emu.bind(NS, "batch-0", where)
        elif when == "at its binding":
            emu.hook(lambda r: emu.bind(NS, "batch-0", where), path=BINDING_PATH, method="POST")
        else:
            emu.inject(drop=True, after_serving=True, path=BINDING_PATH, method="POST")
    record, report = run(emu, kubeconfig, plan, tmp_path)

    got = result(report, "shop/batch-0")
    assert got.outcome == outcome, report.table()
    assert report.outcome == ("completed" if outcome == "done" else "stopped")
    pod_now = emu.get("pods", "batch-0", NS)
    assert pod_now is not None and pod_now["spec"]["nodeName"] == (bound[1] if bound else "n1")
    asked = [b for b in record.bindings if b.source == "api"]
    if bound is None:
        (binding,) = asked
        assert (binding.node, binding.uid, binding.status) == ("n1", action.pod.uid, 201)
        (request,) = emu.requests_for(f"/api/v1/namespaces/{NS}/pods/batch-0/binding", "POST")
        assert request.response_json()["kind"] == "Status"  # not a Binding: read raw
    elif bound[0] == "before the run":
        assert asked == [] and got.reason == f"bound to {bound[1]} already"
    elif bound[0] == "at its binding":
        assert [b.status for b in asked] == [409]
        assert got.reason == (
            "the pod is bound to n1" if outcome == "done" else "bound elsewhere meanwhile: n0"
        )
    else:
        # Bound by the run's own request; the answer never came: the pod tells.
        assert [(b.node, b.status) for b in asked] == [("n1", 201)]
        assert got.reason == "the pod is bound to n1"


# --------------------------------------------------------------------------------------------------
# 11. A misbehaving server


@pytest.mark.parametrize("value", ["nan", "-1", "soon"])
def test_a_retry_after_that_is_no_number_counts_as_absent(
    emu: KubeEmulator, tmp_path: Path, value: str
) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    emu.inject(429, path=eviction_path("web-c"), method="POST", retry_after=value)
    waits = Waits(cap=0.05)
    settings = Settings(poll=0.05, wave_timeout=15.0, move_budget=3.0, lease_duration=5)
    record, report = run(emu, kubeconfig, plan, tmp_path, settings, sleep=waits)

    assert report.outcome == "completed", report.table()
    assert [r.status for r in eviction_requests(emu, "web-c")] == [429, 201]
    # The backoff of a 429 without Retry-After (1 s times 0.5..1), not a wait of nan seconds.
    (wait,) = waits.retries
    assert 0.5 <= wait <= 1.0
    check_safe(emu, record, plan, done_evictions(report))


@pytest.mark.parametrize("value", ["99999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_absurd_retry_after_is_cut_to_a_minute_and_blocks_a_shorter_budget(
    emu: KubeEmulator, tmp_path: Path, value: str
) -> None:
    kubeconfig, plan = make_plan(emu, tmp_path)
    emu.inject(429, path=eviction_path("web-c"), method="POST", retry_after=value, times=None)
    waits = Waits()
    settings = Settings(poll=0.05, wave_timeout=15.0, move_budget=3.0, lease_duration=5)
    started = time.monotonic()
    record, report = run(emu, kubeconfig, plan, tmp_path, settings, sleep=waits)

    blocked = result(report, "shop/web-c")
    assert blocked.outcome == "blocked"
    assert blocked.reason.startswith("the server asked to retry after 60s (")
    assert blocked.reason.endswith("; gave up after 3s")
    assert waits.retries == [] and len(eviction_requests(emu, "web-c")) == 1
    assert time.monotonic() - started < 10.0
    stopped_after_wave_1(emu, report, plan)
    check_safe(emu, record, plan, done_evictions(report))


def test_an_eviction_whose_answer_is_trickled_is_done_within_the_timeout(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    """The server evicted the pod and sends its answer a byte at a time: the request ends at
    its timeout, as if no answer came, and the pod tells that it went."""
    kubeconfig, plan = make_plan(emu, tmp_path)
    emu.inject(path=eviction_path("web-c"), method="POST", trickle=0.05)
    settings = Settings(
        poll=0.05, wave_timeout=15.0, move_budget=3.0, lease_duration=5, timeout=0.5
    )
    stamps: list[float] = []
    emu.hook(lambda r: stamps.append(time.monotonic()), path=eviction_path("web-c"), after=True)
    record, report = run(emu, kubeconfig, plan, tmp_path, settings, sleep=Waits(cap=0.05))

    assert report.outcome == "completed", report.table()
    lost = result(report, "shop/web-c")
    assert (lost.outcome, lost.reason) == ("done", "evicted by an attempt whose answer was lost")
    (asked,) = eviction_requests(emu, "web-c")
    assert asked.status == 201 and asked.response is not None and asked.response.trickle
    check_safe(emu, record, plan, done_evictions(report))


@pytest.fixture
def api(emu: KubeEmulator, tmp_path: Path) -> Iterator[Api]:
    client = connect(emu.write_kubeconfig(tmp_path / "kubeconfig"))
    try:
        yield Api(client, timeout=0.3, max_answer_bytes=1 << 20)
    finally:
        client.close()


def timed(call: Callable[[], Answer]) -> tuple[Answer, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


@pytest.mark.parametrize("head", [False, True])
def test_a_trickled_answer_is_no_answer_after_the_timeout(
    emu: KubeEmulator, api: Api, head: bool
) -> None:
    emu.inject(path=f"/api/v1/namespaces/{NS}/pods/web-a", trickle=0.02, trickle_head=head)

    answer, took = timed(lambda: api.get_pod(NS, "web-a"))

    assert answer.status == 0 and "timed out" in answer.message
    assert 0.3 <= took < 0.3 + 0.5


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            Response(
                200, headers={"Content-Length": str(8 << 30)}, stream=itertools.repeat(b" " * 4096)
            ),
            "answer refused: the answer's Content-Length of 8589934592 bytes is over the limit "
            "of 1048576 bytes",
        ),
        (
            Response(200, stream=itertools.repeat(b" " * 4096)),
            "answer refused: the answer is over the limit of 1048576 bytes",
        ),
        (
            Response(500, stream=itertools.repeat(b" " * 4096)),
            "answer refused: the answer is over the limit of 1048576 bytes",
        ),
        (
            Response(200, b"ffffffffffff\r\n", headers={"Transfer-Encoding": "chunked"}),
            "answer refused: the answer announces 281474976710655 bytes, over the limit of "
            "1048576 bytes",
        ),
        (
            Response(200, b"\x1f\x8b" + b"\0" * 100, headers={"Content-Encoding": "gzip"}),
            "answer refused: the answer is compressed (Content-Encoding: gzip), which was not "
            "asked for",
        ),
        (
            Response(200, b"<html>" + b"x" * 200),
            "the answer is not a JSON object: '<html>" + "x" * 94 + "...'",
        ),
        (Response(200, b"[1, 2]"), "the answer is not a JSON object: '[1, 2]'"),
        (Response(200, b"[" * 100_000), "the answer is not a JSON object: '" + "[" * 100 + "...'"),
    ],
    ids=[
        "8-gib-length",
        "endless",
        "endless-500",
        "huge-chunk",
        "gzip",
        "html",
        "array",
        "nested-too-deep",
    ],
)
def test_an_answer_too_big_compressed_or_unreadable_is_no_answer(
    emu: KubeEmulator, api: Api, response: Response, message: str
) -> None:
    emu.inject(path=f"/api/v1/namespaces/{NS}/pods/web-a", answer=response)

    answer, took = timed(lambda: api.get_pod(NS, "web-a"))

    assert (answer.status, answer.message) == (0, message)
    assert took < 0.3 + 0.5


def test_an_answer_that_ends_where_the_connection_does_is_read(emu: KubeEmulator, api: Api) -> None:
    web_a = emu.get("pods", "web-a", NS)
    emu.inject(
        path=f"/api/v1/namespaces/{NS}/pods/web-a", answer=Response(200, web_a, until_close=True)
    )

    answer = api.get_pod(NS, "web-a")

    assert (answer.status, answer.body) == (200, web_a)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), ("nan", None), ("inf", None), ("-1", None), ("999999", 60.0), ("", None)],
)
def test_the_retry_after_of_an_answer(
    emu: KubeEmulator, api: Api, value: str, seconds: float | None
) -> None:
    emu.inject(429, path=eviction_path("web-a"), retry_after=value)

    answer = api.evict(NS, "web-a", "uid")

    assert (answer.status, answer.retry_after) == (429, seconds)
