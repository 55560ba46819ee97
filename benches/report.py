"""Renders docs/performance.md from the machine-readable results in benches/results/*.json.

    python benches/report.py [--results benches/results] [--out docs/performance.md]

Each results file is one benchmark's current table (written by its script with --results; the
envelope is `results_file.py`): what was run (command), where (machine), when (date, commit), and
the figures. The page is regenerated whole, so it always shows the latest run of each benchmark,
never a log of runs. Per benchmark, a `Section` says what is measured, draws the table, states the
ratio against the benchmark's baseline and notes how to read it; every number on the page comes
from the results file.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import results_file

HERE = Path(__file__).resolve().parent

Result = dict[str, Any]


@dataclass(frozen=True)
class Section:
    title: str
    what: Callable[[Result], str]
    """What is measured and against which baseline (markdown, above the table)."""
    table: Callable[[Result], list[str]]
    """The table and the claim under it (markdown lines)."""
    note: Callable[[Result], str]
    """How to read the table (markdown, under it)."""


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> list[str]:
    """A markdown table; the first `left` columns are text, the others right-aligned."""
    align = ["---" if i < left else "---:" for i in range(len(headers))]
    return [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
    ]


def _pct(x: float) -> str:
    return f"{x:.1%}"


# --- ingest ---------------------------------------------------------------------------------


def _ingest_what(r: Result) -> str:
    parts, size = r["input"]["parts"], r["input"]["list_bytes"]
    pods = parts["V1PodList"]["items"]
    return (
        "A seeded synthetic cluster "
        "(`kube_engine.bench.synthetic.generate_cluster`: node pools over three zones, taints, "
        "Deployments/StatefulSets/Jobs/DaemonSets with replicas, selectors, affinity and "
        "anti-affinity, spread constraints, sidecars, PDBs, GPU pods; "
        f"{size / pods / 1024:.1f} KiB of JSON per pod, like `kubectl` output) with "
        f"{parts['V1NodeList']['items']:,} nodes, {pods:,} pods and "
        f"{parts['V1PodDisruptionBudgetList']['items']:,} PDBs in one `List` file "
        f"({size / 2**20:,.0f} MiB). Each contender runs in its own fresh process, one after the "
        "other: `kube_engine.Snapshot.from_bytes` on the `List` against the baseline, the official "
        "client's deserialisation of the same objects as the API server serves them "
        '(`ApiClient().deserialize(raw, "V1PodList", "application/json")`, likewise the NodeList '
        "and the PodDisruptionBudgetList)."
    )


def _ingest_table(r: Result) -> list[str]:
    res = r["results"]
    lines = table(
        ["contender", "runs", "wall s (best)", "peak RSS Δ MiB"],
        [
            [f"`{c['call']}`", c["runs"], f"{c['best_seconds']:.3f}"]
            + [f"{c['peak_delta_bytes'] / 2**20:,.1f}"]
            for c in res.values()
        ],
    )
    if "part_seconds" in res.get("kubernetes-client", {}):
        parts = res["kubernetes-client"]["part_seconds"]
        each = ", ".join(f"`{m}` {s:.2f} s" for m, s in parts.items())
        lines += ["", f"The client per list: {each}."]
    if "speedup" in r:
        ke = res["kube-engine"]
        memory = (
            f" and uses {r['memory_ratio']:,.1f}× less memory"
            if r["memory_ratio"] is not None
            else ""
        )
        agree = "agree" if r["agree"] else "**disagree**"
        lines += [
            "",
            f"**kube-engine reads the cluster {r['speedup']:,.1f}× faster than the official "
            f"client{memory}**; the results {agree} ({ke['pods']:,} pods, {ke['bound']:,} "
            "bound, the same pod → node digest).",
        ]
    return lines


def _ingest_note(r: Result) -> str:
    client = r["machine"].get("kubernetes")
    return (
        "Wall time is around the call only, the best of the runs (the client, slow, runs "
        "once by default); peak RSS Δ is the growth of the contender process's high-water mark "
        "during its first run, over a baseline taken after the imports and after the input "
        "bytes were read. The results agree when the node, pod and PDB counts are equal and so "
        "is a digest of every pod's `namespace/name → node`. Equal nodeSelectors, affinity, "
        "tolerations and spread constraints of replicas are stored once, which is most of the "
        "memory difference. "
        + (f"The client is `kubernetes` {client}. " if client else "")
        + "The cluster's size is `make bench`'s, kept small enough for the whole run's time "
        "budget (the client's time grows with the pods); `--nodes` and `--pods` set another. "
        "The machines are shared and noisy: the ratio moves with the load of the moment. "
        "`pytest` runs the benchmark once on a small cluster as a test (agreement only; "
        "timings are never asserted)."
    )


# --- schedule -------------------------------------------------------------------------------


def _schedule_what(r: Result) -> str:
    c = r["cluster"]
    ref = r["rows"][-1]
    return (
        f"{c['nodes']:,} nodes and {c['pending']:,} pending pods from the "
        "seeded generator (node pools over three zones, taints, nodeSelectors, "
        "required/preferred node affinity, hostname anti-affinity, zone spread constraints, "
        "sidecars, GPU pods; DaemonSet pods bound), scheduled as one batch in queue order with "
        "kube-scheduler's default profile and a resource-only profile (NodeResourcesFit and "
        "NodeResourcesBalancedAllocation), with one and two threads. The baseline is the plain "
        "Python/numpy reference scheduler of the tests (`tests/reference_scheduler.py`, "
        f"vectorised over nodes), resource-only, on the first {ref['pods']:,} pods of the same "
        "queue, whose decisions the engine must reproduce exactly."
    )


def _schedule_rows(rows: list[Result]) -> list[str]:
    return table(
        ["contender", "pods", "placed", "seconds", "pods/s"],
        [
            [row["contender"], f"{row['pods']:,}", f"{row['placed']:,}"]
            + [f"{row['seconds']:.3f}", f"{row['pods_per_s']:,.0f}"]
            for row in rows
        ],
    )


def _schedule_table(r: Result) -> list[str]:
    agree = "agree" if r["reference_agrees_on_first_pods"] else "**disagree**"
    lines = [
        *_schedule_rows(r["rows"]),
        "",
        f"**Resource-only, one thread: kube-engine schedules {r['engine_vs_reference']:,.0f}× "
        "as many pods per second as the Python reference**; their decisions on the first "
        f"{r['rows'][-1]['pods']:,} pods {agree}.",
    ]
    small = r.get("small_deployments")
    if small is not None:
        c, default = small["cluster"], small["rows"][0]
        lines += [
            "",
            f"A full cluster of many small Deployments, of the same size ({c['nodes']:,} nodes, "
            f"{c['pending']:,} pending pods; `small_deployments=True`: replica counts "
            "heavy-tailed, most 1–5 and a few in the hundreds, 15 % of the Deployments with "
            "required hostname anti-affinity, 15 % with a DoNotSchedule zone spread, together "
            "asking for a little more than the untainted nodes have): with the default profile "
            f"{default['pods'] - default['placed']:,} pods fit nowhere, and each gets "
            "kube-scheduler's full reasons. Resource-only ignores taints, so it also has the "
            "tainted pools.",
            "",
            *_schedule_rows(small["rows"]),
        ]
    return lines


def _schedule_note(r: Result) -> str:
    per_pod = [row["seconds"] / row["pods"] * 1e6 for row in r["rows"][:2]]
    return (
        "Seconds are wall time around the scheduling call only, the best of `--repeat` runs. "
        "Every timed run schedules a freshly parsed snapshot, so what a snapshot keeps for later "
        "calls (its pods' constraint classes) is paid in each. The reference's time is its "
        "scheduling loop only, on a cluster it built beforehand. Resource-only ignores taints, "
        "selectors, affinity and spread, so it places more pods than the default profile. "
        "Two threads are not reliably faster than one: a pod's cycle is "
        f"{min(per_pod):.1f}–{max(per_pod):.1f} µs on average, too little to split; threads only "
        "share the work that spans all nodes (each new group's node-constraint plugins, the "
        "reasons of an unschedulable pod), and the placements are identical for any number of "
        "threads (the script checks). The machine is shared and its speed drifts within the "
        "hour: compare builds with alternating runs, not across tables."
    )


# --- plan -----------------------------------------------------------------------------------


def _plan_what(r: Result) -> str:
    return (
        "`kube_engine.plan` turns a target placement of a seeded synthetic cluster "
        "(every pod bound; Deployments, StatefulSets, DaemonSets, PDBs, affinity and spread "
        "constraints) into waves of evictions and cordons, within the PDBs. Two targets: *pack*, "
        "the packing heuristic's drain plan, which empties nodes; *swap*, pairs of "
        "interchangeable pods on different nodes trading places, so every move waits on another."
    )


def _plan_table(r: Result) -> list[str]:
    rows = [
        [row["target"], f"{row['moves']:,}", f"{row['plan_seconds']:.3f}"]
        + [f"{row['evaluate_seconds']:.3f}"]
        + [f"{row[k]:,}" for k in ("waves", "evictions", "cordons", "detours", "kept")]
        for row in r["rows"]
    ]
    head = ["target", "moves", "plan (s)", "evaluate (s), yardstick", "waves", "evictions"]
    return table([*head, "cordons", "detours", "kept"], rows)


def _plan_note(r: Result) -> str:
    return (
        "`plan (s)`: `kube_engine.plan` on the target, best of the repeats, one thread (the "
        "planner is single-threaded), the predicted landing of every replacement included; the "
        "bar is 1 s for 100,000 pods / 5,000 nodes / 5,000 moves. `evaluate (s)` is the same "
        "run's time for one pass of `kube_engine.evaluate` over the target placement, a "
        "yardstick of the machine's speed at that moment, not a contender. `evictions` counts "
        "detours (a stop on a node with room that breaks a cycle) twice; `kept` are moves the "
        "plan does not make, with why in the plan (for swap: hard topology spread that a "
        "one-at-a-time swap would break, PDBs that allow no disruption, targets on cordoned "
        "nodes, cycles no detour could break)."
    )


# --- evaluate -------------------------------------------------------------------------------


def _evaluate_what(r: Result) -> str:
    return (
        "`kube_engine.evaluate` (utilisation and balance, GPU fragmentation, every violation, "
        "lower bounds) of a seeded synthetic cluster (every pod bound; DaemonSet pods pinned to "
        "their nodes, node affinity, pod anti-affinity and spread constraints) in two placements: "
        "the snapshot's own (*current*) and the packing heuristic's drain plan (*moved*). A "
        "rebalance calls it three times within its time limit; the bar is "
        f"{r['bar_seconds']:g} s per call, one thread."
    )


def _evaluate_table(r: Result) -> list[str]:
    rows = [
        [
            row["placement"],
            f"{row['moves']:,}",
            f"{row['seconds']:.3f}",
            f"{row['nodes_used']:,}",
            f"{row['violations']:,}",
        ]
        for row in r["rows"]
    ]
    worst = max(row["seconds"] for row in r["rows"])
    return [
        *table(["placement", "moves", "seconds", "nodes used", "violations"], rows),
        "",
        f"- **Slowest call: {worst:.3f} s, {worst / r['bar_seconds']:.0%} of the bar.**",
    ]


def _evaluate_note(r: Result) -> str:
    return (
        "`seconds`: one call, wall clock, the best of the repeats, the placement's conversion "
        "from Python included. The snapshot's first call took "
        f"{r['first_call_seconds']:.3f} s: it also numbers the pods' node constraints, which the "
        "snapshot keeps for later calls."
    )


# --- greedy ---------------------------------------------------------------------------------


def _greedy_what(r: Result) -> str:
    c = r["cluster"]
    return (
        f"The rebalancer on a seeded synthetic cluster of {c['nodes']:,} nodes and "
        f"{c['pods']:,} pods, placed as the generator places them ({c['movable pods']:,} "
        "movable, pods with local storage allowed to move). The problem build, timed on its "
        f"own: the rebalance space (pins, classes of interchangeable pods, candidate nodes, "
        f"disruption budgets, inter-pod rules) in {r['space_seconds']:.2f} s, and its "
        f"conversion to the Python model's data in {r['problem_seconds']:.2f} s. Then each "
        "heuristic start as `kube_engine.rebalance` runs it (Rust: `drain_plan` for pack, "
        "`greedy_start` for balance and defrag), and each objective planned whole with "
        f"`max_moves={r['plan_moves']:,}` and `time_limit={r['time_limit']:g}`, as "
        "`kube-engine rebalance` plans after reading the cluster."
    )


def _greedy_table(r: Result) -> list[str]:
    rows = [
        [
            row["start"],
            "none" if row["max_moves"] is None else f"{row['max_moves']:,}",
            f"{row['moves']:,}",
            "" if row["value"] is None else f"{row['value']:.6g}",
            f"{row['seconds']:.3f}",
            "yes" if row["complete"] else "no (deadline)",
        ]
        for row in r["rows"]
    ]
    lines = table(["start", "max moves", "moves", "value", "seconds", "complete"], rows)
    plans = []
    for row in r["plans"]:
        obj = row["objective"]
        total = row["seconds"] + row["plan_seconds"]
        plans.append(
            [obj, row["status"], f"{row['moves']:,}"]
            + [_term(obj, row["before"]), _term(obj, row["after"])]
            + [f"{row['seconds']:.2f}", f"{row['plan_seconds']:.2f}"]
            + ["yes" if total <= r["time_limit"] else "no"]
        )
    head = ["objective", "status", "moves", "before", "after", "seconds", "actions (s)"]
    lines += ["", *table([*head, "within limit"], plans)]
    for row in r["plans"]:
        if "spread_before" in row:
            was, now = row["spread_before"], row["spread_after"]
            changes = ", ".join(f"{k} {_pct(was[k])} → {_pct(now[k])}" for k in was)
            lines += ["", f"- **balance plan**: {changes}."]
    return lines


def _greedy_note(r: Result) -> str:
    return (
        "Starts: `seconds` is one start, wall clock, the best of the repeats; the bars are 1 s "
        "for the problem build and 2 s per start on 5,000 nodes / 100,000 pods. `value` is the "
        "start's term alone (balance: the peak plus the standard deviation of cpu and memory "
        "utilisation, averaged over the two; defrag: GPU devices not wholly free; the packing "
        "heuristic measures none). `max moves`: no budget, or 10 % of the movable pods. A start "
        "stops at the rebalance's time limit with its best placement so far (`complete` no); "
        "here none had a limit. Whole plans: `seconds` is `kube_engine.rebalance` (the problem "
        "build, the starts, CP-SAT and the checks, all counted against the time limit) and "
        "`actions` is `kube_engine.plan` turning the result into waves of actions; `within "
        "limit` compares their sum with the time limit (reading the cluster is not counted)."
    )


# --- fgd ------------------------------------------------------------------------------------


def _seeds(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _fgd_what(r: Result) -> str:
    return (
        "The packing policies of the FGD paper (Weng et al., USENIX ATC '23) are score "
        "plugins here (`BestFit`, `DotProduct`, "
        "`GpuPacking`, `GpuClustering`, `FGD`, `Random`), each in a profile with "
        "kube-scheduler's default filters. The protocol replays openb's "
        f"`{r['pods']}` pod list ({r['pod_list']:,} pods) on its {r['nodes']:,} GPU nodes "
        f"({r['gpus']:,} GPUs): shuffled, topped up by draws with replacement to "
        f"{r['load']:g}× the cluster's GPUs, placed one at a time, never deleted. The baseline is "
        "the authors' published results of their simulator for the same pod list and seeds: the "
        f"GPU allocation at {r['load'] * 100:.0f} % arrived, mean of seeds {_seeds(r['seeds'])}."
    )


def _fgd_table(r: Result) -> list[str]:
    rows, deltas = [], []
    for name, p in r["policies"].items():
        paper = "–" if p["paper_mean_130"] is None else f"{p['paper_mean_130']:.2f}"
        delta = "–" if p["delta_pp"] is None else f"{p['delta_pp']:+.2f}"
        idle = "–" if p["paper_idle_gpus_130"] is None else f"{p['paper_idle_gpus_130']:,}"
        rows.append(
            [name, f"`{p['plugin']}`", f"{p['mean_130']:.2f}", f"{p['sd_130']:.2f}", paper]
            + [delta, f"{p['idle_gpus_130']:,}", idle]
        )
        if p["delta_pp"] is not None:
            deltas.append((abs(p["delta_pp"]), name))
    head = ["policy", "plugin", "kube-engine %", "sd", "paper %", "delta (pp)", "idle GPUs"]
    lines = table([*head, "paper idle GPUs"], rows, left=2)
    if deltas:
        worst, name = max(deltas)
        lines += [
            "",
            f"**Every policy's mean allocation is within {worst:.2f} percentage points of the "
            f"paper's** (the largest difference: {name}).",
        ]
    return lines


def _fgd_note(r: Result) -> str:
    t = r["timing_s"]
    return (
        "GPU allocation is allocated GPU milli over the cluster's, at the arrival that brings "
        f"the load to {r['load'] * 100:.0f} %; idle GPUs are the unallocated share in whole "
        "GPUs. Seeds do not "
        "carry over between simulators, means do: compare the means, not single seeds. The "
        f"{t['runs']} runs (policies × seeds) take {t['sweep']:.1f} s in one call, in parallel "
        f"in Rust on {r['threads']} threads, after {t['cluster']:.1f} s building the cluster. "
        "One policy: `kube-engine-bench fgd --policy FGD --seeds "
        f"{r['seeds'][0]}-{r['seeds'][-1]}`. Semantics, tie-breaking and the curves: "
        "[packing.md](packing.md)."
    )


# --- rebalance ------------------------------------------------------------------------------


def _term(objective: str, value: float) -> str:
    return f"{value:.1%}" if objective == "balance" else f"{value:,.0f}"


def _rebalance_what(r: Result) -> str:
    shares = sorted({row["budget_share"] for row in r["rows"]} - {None})
    budgets = ", ".join(f"{s * 100:g}" for s in shares)
    return (
        "Each objective from the current placement, on the openb example cluster "
        "(its pods are bare, so `allow_bare`) and on a seeded synthetic cluster (its emptyDir "
        "pods allowed to move, as cluster-autoscaler's scale-down does by default), for move "
        f"budgets of {budgets} % of the movable pods (and none, for pack): the heuristics "
        f"alone, and CP-SAT from their plan with `time_limit={r['time_limit']:g}`. The baseline "
        "is the best any plan can do: each plan's proven bound."
    )


def _rebalance_table(r: Result) -> list[str]:
    rows = []
    for row in r["rows"]:
        obj = row["objective"]
        budget = "none" if row["budget_share"] is None else f"{row['budget_share']:.0%}"
        rows.append(
            [row["cluster"], obj, budget, row["solver"], f"{row['moves']:,}"]
            + [_term(obj, row[k]) for k in ("before", "after", "bound")]
            + ["cpsat" if row["bound_source"] == "cpsat" else "relax", _pct(row["gap"])]
            + [f"{row['lower_bound']:,}" if obj == "pack" else "", f"{row['seconds']:.1f}"]
        )
    head = ["cluster", "objective", "budget", "solver", "moves", "before", "after", "bound"]
    lines = table([*head, "by", "gap", "pack LB", "seconds"], rows, left=4)
    lines.append("")
    for cluster in dict.fromkeys(row["cluster"] for row in r["rows"]):
        gaps: dict[str, list[float]] = {}
        for row in r["rows"]:
            if row["cluster"] == cluster:
                gaps.setdefault(row["objective"], []).append(row["gap"])
        span = ", ".join(f"{o} {_pct(min(g))}–{_pct(max(g))}" for o, g in gaps.items())
        lines.append(f"- **{cluster}: plans proven within {span} of their bound.**")
    return lines


def _rebalance_note(r: Result) -> str:
    return (
        "`before`/`after` are the objective's term (pack: nodes in use; balance: peak + standard "
        "deviation of utilisation, averaged over cpu and memory; defrag: GPUs not wholly free); "
        "`bound` is the plan's proven bound (`RebalanceResult.bound`: pins, candidate nodes, the "
        "move budget) and `gap` the distance to it; `by` says what proved it (`relax`: the "
        "relaxations of `bounds.py`; `cpsat`: CP-SAT on the aggregated model of `pack_bound.py` "
        "or `defrag_bound.py`). `pack LB` is `evaluate`'s lower bound for all the cluster's "
        "pods, pending ones included, ignoring pins and budgets, so no plan need reach it. "
        "Balance's bound (the peak is at least the average) is weak: its gaps measure the "
        "bound as much as the plan. Seconds: wall time of planning only. `--plot FILE` draws "
        "nodes freed against pods moved, with the proven bound."
    )


# --- vbp ------------------------------------------------------------------------------------


def _vbp_what(r: Result) -> str:
    return (
        f"The {r['total']['instances']:,} two-dimensional instances of `ct01` are packed by the "
        "best of the Rust core's seven greedy packings (first fit and best fit decreasing by "
        "sum, L2 norm and max of normalised sizes, and Panigrahy's bin-centric dot product), and "
        "by the `cpsat` solver: the core's local search from that packing (after Buljubašić & "
        "Vasquez's consistent neighbourhood search, 2016: it empties the two lightest bins and "
        "swaps items between those set aside and the other bins, within capacity, until the "
        "rest fits one bin), then, if the packing is still above the lower bound, CP-SAT "
        "(`kube_engine.bench.vbp_cpsat`) minimises the bins in the remaining time; "
        f"`--time-limit {r['time_limit']:g}` seconds per instance, everything included. The "
        "baseline is the optimum in `INDEX.csv`, or, where it is open, the best proven lower "
        "bound."
    )


def _vbp_table(r: Result) -> list[str]:
    rows = []
    for name, s in [*r["classes"].items(), ("all", r["total"])]:
        h, c = s["heuristic"], s["cpsat"]
        rows.append(
            [name, s["instances"], s["open"], f"{h['mean_pct_above']:.2f}"]
            + [_pct(h["optimal_share"]), f"{c['mean_pct_above']:.2f}", _pct(c["optimal_share"])]
            + [f"{c['seconds']:.1f}"]
        )
    head = ["class", "instances", "open", "heuristic % above", "heuristic optimal"]
    t = r["total"]
    cpsat = [i["cpsat"] for i in r["instances"]]
    optimal = sum(c["optimal"] for c in cpsat)
    missed, open_, closed = Counter[str](), Counter[str](), Counter[str]()
    for i in r["instances"]:
        group = i["instance"].rsplit("_", 1)[0]
        if not i["cpsat"]["optimal"]:
            missed[group] += 1
            open_[group] += not i["optimum_known"]
        elif not i["optimum_known"]:
            closed[group] += 1
    lines = [
        *table([*head, "cpsat % above", "cpsat optimal", "cpsat total s"], rows),
        "",
        f"**cpsat: {t['cpsat']['mean_pct_above']:.2f} % above the optimum on average, the "
        f"optimum on {optimal:,} of {t['instances']:,} instances "
        f"({_pct(t['cpsat']['optimal_share'])}); the slowest instance took "
        f"{max(c['seconds'] for c in cpsat):.2f} s, everything included.**",
    ]
    if missed:
        each = [
            f"{g} ({n}" + (f", {open_[g]} open" if open_[g] else "") + ")"
            for g, n in _groups(missed)
        ]
        lines += ["", f"cpsat above the reference: {', '.join(each)}."]
    if closed:
        each = [f"{g} ({n})" for g, n in _groups(closed)]
        lines += [
            "",
            "Open instances packed in as many bins as their lower bound, which proves their "
            f"optimum: {', '.join(each)}.",
        ]
    return lines


def _groups(counts: Counter[str]) -> list[tuple[str, int]]:
    """Counts by instance group (`CL_<class>_<n>`), in the order of class, then size."""
    return sorted(counts.items(), key=lambda g: tuple(int(x) for x in g[0].split("_")[1:]))


def _vbp_note(r: Result) -> str:
    return (
        "`% above` is the mean over instances of (bins − reference) / reference; `optimal` the "
        "share of instances packed in the reference's bins. The "
        f"{r['total']['open']} instances whose optimum is open in `INDEX.csv` are compared with "
        "their best lower bound, so they count as misses unless they meet it, and their % above "
        "is an upper bound on the truth. The local search's budget is a count of work units "
        "proportional to `--time-limit`, so a seed fixes its packing; CP-SAT then works with the "
        "bound as a constraint, a clique of pairwise-conflicting items fixed to their own bins, "
        "ordered bins, and the local search's packing as a complete hint. Every packing is "
        f"checked by the core before it is reported. Wall time of the sweep: {r['seconds']:,.0f} s."
    )


SECTIONS: dict[str, Section] = {
    "ingest": Section("Ingestion", _ingest_what, _ingest_table, _ingest_note),
    "schedule": Section("Batch scheduling", _schedule_what, _schedule_table, _schedule_note),
    "plan": Section(
        "Planning: a target placement into waves of actions", _plan_what, _plan_table, _plan_note
    ),
    "fgd": Section("GPU packing: the FGD paper's protocol", _fgd_what, _fgd_table, _fgd_note),
    "rebalance": Section(
        "Rebalancing: objectives within a move budget",
        _rebalance_what,
        _rebalance_table,
        _rebalance_note,
    ),
    "evaluate": Section(
        "Evaluation: placement quality of a large cluster",
        _evaluate_what,
        _evaluate_table,
        _evaluate_note,
    ),
    "greedy": Section(
        "Rebalancing a large cluster within its time limit",
        _greedy_what,
        _greedy_table,
        _greedy_note,
    ),
    "vbp": Section("Vector bin packing (Caprara–Toth)", _vbp_what, _vbp_table, _vbp_note),
}
"""The page's sections, in its order."""


def _machine(m: dict[str, Any]) -> str:
    packages = [f"{k} {v}" for k, v in m.items() if k not in ("cpu", "cores", "python")]
    return ", ".join([m["cpu"], f"{m['cores']} cores", f"Python {m['python']}", *packages])


def _cluster(c: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {v}" if k == "seed" or not isinstance(v, int) else f"{v:,} {k}" for k, v in c.items()
    )


def _generic(r: Result) -> list[str]:
    rows = r.get("rows") or []
    keys = list(rows[0]) if rows else []
    return table(keys, [[row[k] for k in keys] for row in rows])


def section(r: Result) -> list[str]:
    s = SECTIONS.get(str(r["benchmark"]))
    lines = ["", f"## {s.title if s else r['benchmark']}", ""]
    if s:
        lines += [s.what(r), "", *s.table(r), "", s.note(r)]
    else:
        lines += _generic(r)
    lines += ["", f"- reproduce: `{r['command']}`", f"- machine: {_machine(r['machine'])}"]
    if "cluster" in r:
        lines.append(f"- cluster: {_cluster(r['cluster'])}")
    lines.append(f"- date: {r['date']}, commit `{r['commit']}`")
    return lines


def render(results: list[Result]) -> str:
    order = list(SECTIONS)
    results = sorted(
        results,
        key=lambda r: (
            order.index(r["benchmark"]) if r["benchmark"] in order else len(order),
            str(r["benchmark"]),
        ),
    )
    lines = [
        "# Performance",
        "",
        "Generated by `make bench` (`benches/report.py`) from `benches/results/*.json`; do not",
        "edit by hand. Each section is the latest run of its benchmark: what is measured and",
        "against which baseline, the table, how to read it, and the command, machine, date and",
        "commit of the run. The machines are shared and noisy: compare the ratios within one",
        "run, not absolute times across runs.",
    ]
    for r in results:
        lines += section(r)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--out", type=Path, default=HERE.parent / "docs" / "performance.md")
    args = ap.parse_args(argv)
    results = [results_file.read(p) for p in sorted(args.results.glob("*.json"))]
    args.out.write_text(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
