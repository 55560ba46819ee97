"""The `kube-engine` command."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from math import inf
from typing import TYPE_CHECKING, Any

from kube_engine._core import (
    ClusterError,
    ConfigError,
    InternalError,
    InvalidArgumentError,
    KubeEngineError,
    Snapshot,
    evaluate,
)
from kube_engine.arguments import shown
from kube_engine.report import (
    evaluation_to_dict,
    problem_summary,
    render_inspection,
    render_problem,
)
from kube_engine.sources import describe_sources, load_snapshot

if TYPE_CHECKING:
    from kube_engine.applying import Report
    from kube_engine.planning import Plan


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "snapshot",
        nargs="*",
        metavar="SNAPSHOT",
        help="read these instead of the live cluster: files of Kubernetes JSON or YAML (what "
        "kubectl get nodes,pods,pdb -A -o json|yaml prints; multi-document YAML; plain or gzip), "
        "directories (their *.json, *.yaml, *.yml files, also .gz), - for stdin; merged into one "
        "snapshot",
    )
    _add_connection(p)
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse a snapshot with pods bound to nodes it lacks "
        "(default: leave such pods out, with a warning)",
    )
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")
    p.set_defaults(source_parser=p)


# Go durations, as kubectl's --request-timeout takes them.
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_GO_DURATION = re.compile(r"([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|us|µs|ns|h|m|s))+)")


def _duration(text: str) -> float:
    """Seconds, from a number or a Go duration as kubectl takes them (30s, 1m30s, 500ms)."""
    try:
        seconds = float(text)
    except ValueError:
        match = _GO_DURATION.fullmatch(text.strip())
        if match is None:
            raise argparse.ArgumentTypeError(
                f"invalid duration {text!r} (examples: 30, 30s, 1m, 1m30s, 500ms)"
            ) from None
        sign = -1.0 if match.group(1) == "-" else 1.0
        seconds = sign * sum(
            float(number) * _UNITS[unit] for number, unit in _GO_PART.findall(match.group(2))
        )
    if not 0 < seconds < float("inf"):
        # kubectl reads 0 as "no timeout": a read that could hang for ever is what this prevents.
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and finite, got {text!r} "
            "(kubectl's 0 for no timeout is not taken: a read must not hang)"
        )
    return seconds


def _load(args: argparse.Namespace) -> tuple[str, Snapshot]:
    """The snapshot the command works on, and its name for the report's header."""
    parser: argparse.ArgumentParser = args.source_parser
    live = args.kubeconfig is not None or args.context is not None
    if args.snapshot and live:
        parser.error("give either snapshot files or --kubeconfig/--context, not both")
    if args.snapshot:
        name = describe_sources(args.snapshot)
        snapshot = load_snapshot(args.snapshot, strict=args.strict)
    else:
        name, snapshot = _read_cluster(args)
    _warn_left_out(snapshot)
    return name, snapshot


def _read_cluster(args: argparse.Namespace) -> tuple[str, Snapshot]:
    from kube_engine.cluster import NoConfigurationError, describe_config, read_snapshot

    try:
        name = describe_config(args.kubeconfig, args.context)
    except NoConfigurationError as e:
        raise ClusterError(
            f"{e}; give --kubeconfig FILE or a snapshot file (- for stdin)"
        ) from None
    snapshot = read_snapshot(
        args.kubeconfig, args.context, timeout=args.request_timeout, strict=args.strict
    )
    return name, snapshot


#: Left-out pods named on stderr; the rest are counted (-o json lists every one).
LEFT_OUT_SHOWN = 5


def _warn_left_out(snapshot: Snapshot) -> None:
    left_out = snapshot.left_out
    if not left_out:
        return
    shown = ", ".join(f"{pod} (node {node})" for pod, node in left_out[:LEFT_OUT_SHOWN])
    more = len(left_out) - LEFT_OUT_SHOWN
    pods = (
        "1 pod bound to a node" if len(left_out) == 1 else f"{len(left_out):,} pods bound to nodes"
    )
    print(
        f"kube-engine: warning: left out {pods} not in the snapshot: {shown}"
        + (f" and {more:,} more" if more > 0 else ""),
        file=sys.stderr,
    )


def _left_out(snapshot: Snapshot) -> list[dict[str, str]]:
    return [{"pod": pod, "node": node} for pod, node in snapshot.left_out]


def _inspect(args: argparse.Namespace) -> None:
    name, snapshot = _load(args)
    ev = evaluate(snapshot)
    if args.output == "json":
        out = {"source": name, "left_out": _left_out(snapshot)}
        print(json.dumps({**out, **evaluation_to_dict(snapshot, ev)}, indent=2))
    else:
        print(render_inspection(name, snapshot, ev))


#: The share of `--time-limit` that planning (`rebalance()`) takes; the rest is for the actions.
PLANNING_SHARE = 0.95


def _rebalance(args: argparse.Namespace) -> int:
    from kube_engine.rebalancing import rebalance

    name, snapshot = _load(args)
    kinds = [k for k in args.allow_local_storage.split(",") if k]
    allow: dict[str, Any] = {"allow_local_storage": kinds, "allow_bare": args.allow_bare}
    keep = [n for arg in args.keep_node or [] for n in arg.split(",") if n]
    exclude = [n for arg in args.exclude_node or [] for n in arg.split(",") if n]
    result = rebalance(
        snapshot,
        args.objective,
        max_moves=args.max_moves,
        # The rest of the limit turns the plan into actions and prints them (a deterministic
        # plan reads no clock: it gets the whole limit in CP-SAT's units).
        time_limit=args.time_limit * (1.0 if args.deterministic else PLANNING_SHARE),
        workers=args.workers,
        seed=args.seed,
        deterministic=args.deterministic,
        solver=args.solver,
        move_cost=args.move_cost,
        prices=_prices(args.prices) if args.prices else None,
        price_label=args.price_label,
        keep_nodes=keep,
        exclude_nodes=exclude,
        cooldown=args.cooldown,
        **allow,
    )
    problem, ev = result.problem, result.before
    assert problem is not None and ev is not None, "rebalance() returns both"
    actions = _plan(args, snapshot, result, name, allow)
    if args.apply and not args.save_plan:
        # A run that is stopped is finished by `kube-engine apply` with the plan and its journal.
        args.save_plan = f"{actions.name}.json"
    if args.save_plan:
        actions.save(args.save_plan)
    report = _act(args, actions) if args.apply or args.dry_run == "server" else None
    if args.output == "json":
        out = {"source": name, "left_out": _left_out(snapshot), **evaluation_to_dict(snapshot, ev)}
        out["rebalance"] = {**problem_summary(problem), "plan": result.to_dict()}
        out["actions"] = actions.to_dict()
        if report is not None:
            out["applied"] = report.to_dict()
        print(json.dumps(out, indent=2))
    else:
        print(render_inspection(name, snapshot, ev))
        print(render_problem(problem, explain=args.explain))
        print()
        print(result.table())
        print()
        print(actions.table(limit=args.limit))
        if args.save_plan:
            verb = "finishes a run that stopped" if args.apply else "acts on it"
            print(f"\nPlan saved to {args.save_plan} (kube-engine apply {args.save_plan} {verb}).")
        if report is None:
            print("\nDry run: nothing in the cluster was changed (--apply acts).")
        else:
            print()
            print(report.table())
    return EXIT_STOPPED if report is not None and report.outcome != "completed" else 0


def _plan(
    args: argparse.Namespace,
    snapshot: Snapshot,
    target: Any,
    source: str,
    allow: dict[str, bool],
) -> Plan:
    from kube_engine.planning import plan

    return plan(
        snapshot,
        target,
        max_per_node=args.max_per_node,
        max_per_namespace=args.max_per_namespace,
        max_per_wave=args.max_per_wave,
        max_unavailable_per_workload=args.max_unavailable_per_workload,
        cordon=not args.no_cordon,
        cooldown=args.cooldown,
        source=source,
        allow_local_storage=allow["allow_local_storage"],
        allow_bare=allow["allow_bare"],
    )


def _act(args: argparse.Namespace, plan: Plan) -> Report:
    """Carries out ``plan`` on the live cluster (``--dry-run=server``: with dryRun=All)."""
    from kube_engine.applying import Settings, apply

    if getattr(args, "snapshot", None):
        raise ConfigError(
            "--apply and --dry-run=server act on the live cluster: give no snapshot file "
            "(the plan must be made from the cluster it is applied to)"
        )
    settings = Settings(
        mode="server" if args.dry_run == "server" else "apply",
        qps=args.qps,
        burst=args.burst,
        timeout=args.request_timeout,
        max_in_flight=args.max_in_flight,
        max_in_flight_per_node=args.max_in_flight_per_node,
        move_budget=args.move_timeout,
        wave_timeout=args.wave_timeout,
        lease_namespace=args.lease_namespace,
        lease_duration=args.lease_duration,
        keep_cordoned=args.keep_cordoned,
        events=not args.no_events,
    )
    return apply(
        plan,
        kubeconfig=args.kubeconfig,
        context=args.context,
        journal=args.journal,
        settings=settings,
    )


def _apply(args: argparse.Namespace) -> int:
    from kube_engine.planning import Plan

    plan = Plan.load(args.plan)
    args.snapshot = []
    report = _act(args, plan)
    if args.output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
    return EXIT_STOPPED if report.outcome != "completed" else 0


def _scheduler(args: argparse.Namespace) -> int:
    """kube-engine as a secondary scheduler for the pods that name it."""
    from kube_engine.applying.api import Api
    from kube_engine.applying.scheduler import Round, run
    from kube_engine.cluster import connect, read_snapshot
    from kube_engine.scheduling import load_config

    config = load_config(args.profile) if args.profile else None
    profile = json.loads(config) if config else None
    api = Api(
        connect(args.kubeconfig, args.context),
        timeout=args.request_timeout,
        dry_run=args.dry_run == "server",
    )

    def read() -> Snapshot:
        return read_snapshot(args.kubeconfig, args.context, timeout=args.request_timeout)

    def report(r: Round) -> None:
        if args.output == "json":
            print(json.dumps(r.to_dict()), flush=True)
            return
        for b in r.bound:
            detail = f" ({b.reason})" if b.reason else ""
            print(f"{b.target} -> {b.to}: {b.outcome}{detail}", flush=True)
        for pod, why in r.unschedulable.items():
            print(f"{pod}: unschedulable: {why}", flush=True)
        if not r.bound and not r.unschedulable:
            print(f"no pending pod names {args.scheduler_name}", flush=True)

    try:
        run(
            api,
            read=read,
            name=args.scheduler_name,
            profile=profile,
            once=not args.watch,
            interval=args.interval,
            report=report,
        )
    except KeyboardInterrupt:
        pass
    return 0


def _add_connection(p: argparse.ArgumentParser) -> None:
    """Which cluster, and how long to wait for it."""
    p.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG; in a pod, its service account; "
        "else ~/.kube/config)",
    )
    p.add_argument("--context", help="kubeconfig context (default: its current context)")
    p.add_argument(
        "--request-timeout",
        type=_duration,
        default=30.0,
        metavar="DURATION",
        help="how long to wait for each request to the cluster, e.g. 30, 30s, 1m (default: 30s); "
        "a cluster that does not answer at all fails after one such wait",
    )


def _add_live(p: argparse.ArgumentParser, server_dry_run: str) -> None:
    """The live cluster a command writes to, and its output (apply, scheduler)."""
    _add_connection(p)
    p.add_argument(
        "--dry-run", choices=["none", "server"], default="none", help=f"server: {server_dry_run}"
    )
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")


def _add_acting(p: argparse.ArgumentParser) -> None:
    """How a run acts on a cluster (rebalance --apply, apply)."""
    g = p.add_argument_group("acting on the cluster")
    g.add_argument(
        "--journal",
        help="the run's journal (default: PLAN-NAME.journal.jsonl here); run the same plan with "
        "the same journal again to finish a run that was stopped",
    )
    g.add_argument("--qps", type=float, default=20.0, help="requests per second (default 20)")
    g.add_argument("--burst", type=int, default=40, help="requests at once (default 40)")
    g.add_argument(
        "--max-in-flight", type=int, default=5, help="evictions in flight at once (default 5)"
    )
    g.add_argument(
        "--max-in-flight-per-node",
        type=int,
        default=1,
        help="evictions in flight from one node (default 1)",
    )
    g.add_argument(
        "--move-timeout",
        type=_duration,
        default=120.0,
        help="seconds an eviction may be refused (429) before the move is blocked (default 120)",
    )
    g.add_argument(
        "--wave-timeout",
        type=float,
        default=600.0,
        help="seconds to wait after a wave for replacements to be Ready and budgets to recover "
        "(default 600)",
    )
    g.add_argument(
        "--lease-namespace",
        default="default",
        help="namespace of the Lease that keeps runs apart (default: default)",
    )
    g.add_argument(
        "--lease-duration",
        type=int,
        default=60,
        metavar="SECONDS",
        help="how long the Lease of a run that died keeps others off (default 60)",
    )
    g.add_argument(
        "--keep-cordoned",
        action="store_true",
        help="leave the nodes the plan emptied cordoned (for a node autoscaler to remove)",
    )
    g.add_argument("--no-events", action="store_true", help="post no Events on moved pods")


def _prices(path: str) -> dict[str, float]:
    """A price table: a JSON or YAML mapping from node name to price (a number at least 0)."""
    from kube_engine.option_files import load_mapping

    out = {}
    for node, price in load_mapping(path, "a price table").items():
        if isinstance(price, bool) or not isinstance(price, int | float) or not 0 <= price < inf:
            raise ConfigError(
                f"{path}: price of node {shown(node)} must be a number at least 0, "
                f"got {shown(price)}"
            )
        out[str(node)] = float(price)
    return out


def _schedule(args: argparse.Namespace) -> None:
    from kube_engine.scheduling import schedule

    name, snapshot = _load(args)
    placement = schedule(
        snapshot, profile=args.profile or "default", order=args.order, seed=args.seed
    )
    if args.output == "json":
        out = {"source": name, "left_out": _left_out(snapshot)}
        print(json.dumps({**out, **placement.to_dict()}, indent=2))
        return
    print(placement.table())
    placed, pending = len(placement.assignments), len(placement.unschedulable)
    skipped = len(placement.skipped)
    other = f", {skipped:,} skipped (their schedulerName is no profile's)" if skipped else ""
    print(
        f"\n{placed:,} pod(s) placed, {pending:,} unschedulable{other} ({name}); nothing was bound."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kube-engine",
        description="Rust-accelerated scheduling and rebalancing for Kubernetes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="summarise a cluster: usage, fragmentation, lower bound")
    _add_source(p)
    p.set_defaults(func=_inspect)
    p = sub.add_parser("schedule", help="place the pending pods (dry run: prints the placement)")
    _add_source(p)
    p.add_argument("--profile", help="KubeSchedulerConfiguration file (YAML/JSON); default profile")
    p.add_argument("--order", choices=["queue", "dominant-share", "input"], default="queue")
    p.add_argument("--seed", type=int, default=0, help="tie-breaking seed")
    p.set_defaults(func=_schedule)
    p = sub.add_parser(
        "rebalance", help="the rebalancer job: plan moves to pack, balance or defragment (dry run)"
    )
    _add_source(p)
    p.add_argument(
        "--allow-local-storage",
        nargs="?",
        const="emptyDir,hostPath",
        default="",
        metavar="KINDS",
        help="let pods with node-local volumes move (their local data is lost): every kind, or "
        "those listed (emptyDir, hostPath; e.g. --allow-local-storage=emptyDir)",
    )
    p.add_argument(
        "--allow-bare",
        action="store_true",
        help="let pods no controller owns move (evicted, they are not recreated by themselves)",
    )
    p.add_argument(
        "--objective",
        default="pack",
        help="pack, balance, defrag, or weights such as pack=1,balance=0.5 (default: pack)",
    )
    p.add_argument("--max-moves", type=int, help="at most this many pods move (default: no limit)")
    p.add_argument(
        "--move-cost", type=float, default=0.0, help="added per move, in the objective's units"
    )
    p.add_argument("--prices", help="JSON/YAML file mapping node names to prices (for pack)")
    p.add_argument(
        "--keep-node",
        action="append",
        metavar="NAME[,NAME]",
        help="a node kept as it is: its pods stay (repeatable)",
    )
    p.add_argument(
        "--exclude-node",
        action="append",
        metavar="NAME[,NAME]",
        help="a node that takes no pods; its own may leave (repeatable)",
    )
    p.add_argument("--price-label", help="node label holding the node's price (for pack)")
    p.add_argument(
        "--solver",
        choices=["cpsat", "heuristic"],
        default="cpsat",
        help="cpsat (default): CP-SAT improves the start neighbourhood by neighbourhood; "
        "heuristic: the packing heuristic's plan alone (pack only)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=60.0,
        help="seconds for the whole command after reading the cluster (the problem, the "
        "heuristics, CP-SAT, the actions)",
    )
    p.add_argument("--workers", type=int, help="CP-SAT workers (default and cap: the cores)")
    p.add_argument("--seed", type=int, default=0, help="seed (tie-breaking, CP-SAT)")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="count --time-limit in CP-SAT's deterministic time only, never stopping on the "
        "clock: with --workers 1 the same plan on any machine (it may take longer)",
    )
    g = p.add_argument_group("the plan")
    for flag, what in (
        ("--max-per-node", "evictions from one node"),
        ("--max-per-namespace", "evictions in one namespace"),
        ("--max-per-wave", "evictions in one wave"),
        ("--max-unavailable-per-workload", "evictions of one workload in one wave"),
    ):
        g.add_argument(flag, type=int, metavar="N", help=f"at most N {what}")
    g.add_argument(
        "--no-cordon", action="store_true", help="do not cordon the nodes the plan empties first"
    )
    g.add_argument(
        "--cooldown",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="pods kube-engine moved less than this long ago stay (default 3600; 0: none)",
    )
    g.add_argument("--save-plan", metavar="FILE", help="write the plan (JSON) to FILE")
    g.add_argument("--limit", type=int, default=50, help="rows of the plan's table (default 50)")
    g.add_argument(
        "--explain",
        action="store_true",
        help="say, per pod, why it stays (the plan's kept moves say why they are not made)",
    )
    g.add_argument(
        "--apply", action="store_true", help="carry the plan out on the cluster (default: print it)"
    )
    g.add_argument(
        "--dry-run",
        choices=["client", "server"],
        default="client",
        help="client (default): print the plan; server: send every action with dryRun=All",
    )
    _add_acting(p)
    p.set_defaults(func=_rebalance)
    p = sub.add_parser(
        "apply", help="carry out a saved plan on the cluster (rebalance --save-plan writes one)"
    )
    p.add_argument("plan", help="a plan file (kube-engine.io/v1alpha1 Plan, JSON)")
    _add_live(p, "send every action with dryRun=All, change nothing")
    _add_acting(p)
    p.set_defaults(func=_apply)
    p = sub.add_parser(
        "scheduler",
        help="a secondary scheduler: place and bind the pending pods that name it",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one round, then exit (the default)")
    mode.add_argument(
        "--watch", action="store_true", help="a round every --interval seconds until interrupted"
    )
    p.add_argument("--interval", type=_duration, default=2.0, help="seconds between rounds")
    p.add_argument(
        "--scheduler-name",
        default="kube-engine",
        help="the schedulerName of the pods it places (default: kube-engine)",
    )
    p.add_argument("--profile", help="KubeSchedulerConfiguration file (default: default profile)")
    _add_live(p, "send each binding with dryRun=All, change nothing")
    p.set_defaults(func=_scheduler)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        # What is still buffered fails here, not in Python's flush at exit, if stdout is gone.
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("kube-engine: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`| head`): nothing more can be said to it, and
        # Python's own flush at exit must not fail again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except InternalError as e:
        print(f"kube-engine: error: {e}", file=sys.stderr)
        print("kube-engine: this is a bug: please report it with the command", file=sys.stderr)
        return EXIT_BUG
    except (KubeEngineError, OSError) as e:
        given = sys.argv[1:] if argv is None else argv
        print(f"kube-engine: error: {_message(e, given)}", file=sys.stderr)
        return EXIT_ERROR
    return code if isinstance(code, int) else 0


#: Exit codes: 0 done; 2 a usage error (argparse's); and these.
EXIT_ERROR = 1  # the input, an option's value, a file or the cluster: the message says which
EXIT_STOPPED = 3  # a run that acted and stopped before the end of its plan (the report says why)
EXIT_BUG = 70  # an internal error (sysexits' EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
EXIT_BROKEN_PIPE = 141  # stdout closed early, as a shell reports SIGPIPE


def _message(e: BaseException, argv: list[str]) -> str:
    """An error's message for a person: a file error as ``file: reason``, an argument's error
    under the option in ``argv`` that gave it."""
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        return f"{e.filename}: {e.strerror}"
    # A KeyError's str() is its key's repr, quotes and all.
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if isinstance(e, InvalidArgumentError):
        flag = "--" + str(getattr(e, "argument", "")).replace("_", "-")
        if any(a == flag or a.startswith(flag + "=") for a in argv):
            return f"argument {flag}: {text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
