"""The `kube-engine` command."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

from kube_engine._core import KubeEngineError, Snapshot, evaluate
from kube_engine.report import evaluation_to_dict, render_inspection

BUNDLED_EXAMPLE = "openb-example.json.gz"


def bundled_example() -> Path:
    """The example cluster shipped with the package (built from the Alibaba openb trace)."""
    return Path(str(resources.files("kube_engine") / "data" / BUNDLED_EXAMPLE))


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "snapshot",
        nargs="?",
        help="snapshot file (Kubernetes List JSON, plain or .gz); default: the bundled example",
    )
    p.add_argument("--kubeconfig", help="read a live cluster through this kubeconfig instead")
    p.add_argument("--context", help="kubeconfig context (with --kubeconfig)")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")


def _load(args: argparse.Namespace) -> tuple[str, Snapshot]:
    if args.kubeconfig or args.context:
        if args.snapshot:
            raise SystemExit("give either a snapshot file or --kubeconfig/--context, not both")
        from kube_engine.cluster import read_snapshot

        name = f"{args.kubeconfig or 'default kubeconfig'}" + (
            f" (context {args.context})" if args.context else ""
        )
        return name, read_snapshot(args.kubeconfig, args.context)
    path = Path(args.snapshot) if args.snapshot else bundled_example()
    return str(path), Snapshot.from_file(path)


def _inspect(args: argparse.Namespace) -> None:
    name, snapshot = _load(args)
    ev = evaluate(snapshot)
    if args.output == "json":
        print(json.dumps({"source": name, **evaluation_to_dict(snapshot, ev)}, indent=2))
    else:
        print(render_inspection(name, snapshot, ev))


def _rebalance(args: argparse.Namespace) -> None:
    _inspect(args)
    if args.output == "table":
        print(
            "\nPlanning (moves that pack, balance or defragment this cluster) arrives with the "
            "rebalancer; this release inspects only."
        )


def _schedule(args: argparse.Namespace) -> None:
    from kube_engine.scheduling import schedule

    name, snapshot = _load(args)
    placement = schedule(
        snapshot, profile=args.profile or "default", order=args.order, seed=args.seed
    )
    if args.output == "json":
        print(json.dumps({"source": name, **placement.to_dict()}, indent=2))
        return
    print(placement.table())
    placed, pending = len(placement.assignments), len(placement.unschedulable)
    print(f"\n{placed:,} pod(s) placed, {pending:,} unschedulable ({name}); nothing was bound.")


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
    p = sub.add_parser("rebalance", help="the rebalancer job (currently: inspection)")
    _add_source(p)
    p.set_defaults(func=_rebalance)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (KubeEngineError, OSError) as e:
        print(f"kube-engine: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
