"""The envelope every benchmark's results file shares, and writing it.

A results file (`benches/results/<benchmark>.json`, written by a script's `--results PATH`) is the
current table of one benchmark: which benchmark, the exact command that produced it, when (UTC),
on which commit, on which machine, and then the script's own figures. `benches/report.py` renders
docs/performance.md from these files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: What the benchmarks write: a tree differing from HEAD only here is not "dirty", so the runs of
#: one `make bench` all name the commit they measured.
OUTPUTS = ("benches/results", "docs/performance.md")
#: Environment variables that change what a benchmark measures, shown in its command.
ENVIRONMENT = ("RAYON_NUM_THREADS",)
#: The envelope: the fields every results file has, and those of its machine.
FIELDS = ("benchmark", "command", "date", "commit", "machine")
MACHINE = ("cpu", "cores", "python")


def commit() -> str:
    """HEAD's short hash, with "+dirty" when the tree has other changes than the results."""
    try:
        head = _git("rev-parse", "--short", "HEAD").strip()
        excluded = [f":(exclude){p}" for p in OUTPUTS]
        changes = _git("status", "--porcelain", "--", ".", *excluded).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty" if changes else head


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine(packages: Iterable[str] = ()) -> dict[str, Any]:
    """CPU model, usable cores, Python, and the version of each named package (the contender or
    solver a benchmark depends on, e.g. `kubernetes`, `ortools`)."""
    out: dict[str, Any] = {"cpu": cpu(), "cores": cores(), "python": platform.python_version()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def command(script: str, argv: Sequence[str] | None) -> str:
    """The command line that ran `script` with `argv` (default: this process's arguments), from the
    repository's root, with the environment variables that matter in front."""
    args = sys.argv[1:] if argv is None else list(argv)
    path = Path(script).resolve()
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    env = [f"{k}={os.environ[k]}" for k in ENVIRONMENT if k in os.environ]
    return shlex.join([*env, "python", str(shown), *args])


def envelope(
    benchmark: str, script: str, argv: Sequence[str] | None, packages: Iterable[str] = ()
) -> dict[str, Any]:
    """The fields every results file starts with; the script adds its figures after them."""
    return {
        "benchmark": benchmark,
        "command": command(script, argv),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "machine": machine(packages),
    }


def add_options(ap: argparse.ArgumentParser) -> None:
    """The output options every bench script takes: `--results PATH` and `-o table|json`."""
    ap.add_argument("--results", type=Path, help="write the machine-readable results here")
    ap.add_argument("-o", "--output", choices=["table", "json"], default="table")


def emit(
    result: dict[str, Any], args: argparse.Namespace, render: Callable[[dict[str, Any]], str]
) -> None:
    """Writes the results file when asked, and prints the result: as JSON, or the script's table."""
    write(args.results, result)
    print(json.dumps(result, indent=2) if args.output == "json" else render(result))


def write(path: Path | None, result: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def read(path: Path) -> dict[str, Any]:
    """A results file, checked for the envelope's fields."""
    result: dict[str, Any] = json.loads(path.read_text())
    missing = [k for k in FIELDS if k not in result]
    missing += [f"machine.{k}" for k in MACHINE if k not in result.get("machine", {})]
    if missing:
        raise ValueError(f"{path}: not a results file, it has no {', '.join(missing)}")
    return result


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
