"""Seeded mutation fuzzing: small real snapshots, mutated, through the reader, the API and the CLI.

The corpus: a slice of the bundled openb example (a few nodes with their pods, and pending
pods), a small synthetic cluster (``kube_engine.bench.synthetic``: affinity, spread, init
containers, sidecars, overhead, PDBs) and the reference scheduler's random cluster (taints,
tolerations, node affinity, GPUs). Case ``i`` of seed ``s`` is a pure function of ``(s, i)``: one
corpus snapshot with one to four structural mutations (fields dropped, duplicated, retyped or
swapped; extreme numbers, huge strings, deep nesting, odd unicode, empty lists and maps, invalid
quantities, duplicate names, dangling references), handed over as documents, a JSON, YAML or
gzip file, or a mutated command line of the ``kube-engine`` CLI.

A snapshot that loads is walked through the API (``fuzz_support.walk``). The only acceptable
outcomes are success or a ``KubeEngineError`` other than ``InternalError``; for the CLI, exit
status 0, 1 (an error, one line on stderr) or 2 (a usage error), never a traceback.

Cases run in a worker process with an address-space cap, one at a time, each within a time limit:
a case that hangs or exhausts memory is a finding and the worker is restarted. A failing case is
written out (its documents and command line) under a temporary directory, with the command that
runs it again in-process, with the full traceback:

    python tests/fuzz/mutants.py --cases 3000 --seed 7     # a run, findings grouped by kind
    python tests/fuzz/mutants.py --seed 7 --case 123       # one case, in this process
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import gzip
import io
import json
import os
import random
import resource
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import fuzz_support as fs  # noqa: E402
import kube_engine as ke  # noqa: E402
import reference_scheduler as ref  # noqa: E402
from fuzz_objects import places  # noqa: E402
from kube_engine import cli  # noqa: E402
from kube_engine.bench.synthetic import generate_cluster  # noqa: E402
from kube_engine.sources import load_snapshot  # noqa: E402

EXAMPLE = HERE.parents[1] / "examples" / "openb" / "openb-example.json.gz"

Json = Any

# --------------------------------------------------------------------------------------------------
# The corpus


@functools.cache
def corpus() -> list[list[Json]]:
    """The seed snapshots, each a list of objects (small: every case runs the whole API)."""
    with gzip.open(EXAMPLE) as f:
        example = json.load(f)["items"]
    nodes = [o for o in example if o["kind"] == "Node"]
    gpu_node = next(n for n in nodes if "nvidia.com/gpu" in n["status"]["allocatable"])
    chosen = [nodes[0], nodes[1], gpu_node]
    names = {n["metadata"]["name"] for n in chosen}
    pods = [o for o in example if o["kind"] == "Pod"]
    bound = [p for p in pods if p["spec"].get("nodeName") in names][:10]
    pending = [p for p in pods if not p["spec"].get("nodeName")][:4]
    synthetic = generate_cluster(6, 24, 1, pending_fraction=0.25)["items"]
    return [chosen + bound + pending, synthetic, ref.random_cluster(random.Random(1), 4, 6)]


# --------------------------------------------------------------------------------------------------
# Mutations


@dataclass(frozen=True)
class Raw:
    """Bytes put into the serialised document as they are: what ``json.dumps`` cannot write."""

    data: bytes


HUGE = "x" * 2_000_000
NUMBERS: list[Json] = [
    0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 1.5, -0.0, 1e308,
    Raw(b"1e999"), Raw(b"-1e999"), Raw(b"NaN"), Raw(b"Infinity"), Raw(b"0x10"), Raw(b"01"),
]  # fmt: skip
QUANTITIES: list[Json] = [
    "", "0", "-1", "-1Gi", "1K", "1.5.5", ".", "+", "1e", "1e99999999999999999999", "1e-99999",
    "9Ei", "8Ei", "4Ei", "10E", "5e15", "1e18", "999999999999999999999999999", "0.0000000001",
    "1__0", " 1", "1 ", "١", "NaN", "Infinity", "0x10", "1Mi ", "-0.0000001m", "1m", 1, -1, 1.5,
]  # fmt: skip
HUGE_AMOUNTS = ["4Ei", "8Ei", "9Ei", "5e15", "1e18", "9223372036854775807", "1e30"]
STRINGS: list[Json] = [
    "", " ", "a/b", "A", "-a", "a" * 64, "a" * 254, "a" * 300, "ñ", "名前", "\u202e", "\u0000",
    "\ud800", "🙂", "e\u0301", "../..", "kubernetes.io/", "/", "a=b", "*", "%", "50%", "150%",
    "1.5", "-5%", "2023-01-01T00:00:00Z", "not a time", "9999-12-31T23:59:59Z", HUGE,
]  # fmt: skip
ANNOTATION_VALUES = ["63", "-1", "0,0", "a", "99999999999999999999", "0,1,2,3,4,5,6,7,8", ""]


def _get(doc: Json, path: tuple[Any, ...]) -> Json:
    for step in path:
        doc = doc[step]
    return doc


def _set(doc: Json, path: tuple[Any, ...], value: Json) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _deep(depth: int) -> Raw:
    return Raw(b"[" * depth + b"]" * depth)


def _other_type(rng: random.Random, value: Json) -> Json:
    pool: list[Json] = [None, True, 0, 1.5, "1", [], {}, [value], {"x": value}]
    return rng.choice([v for v in pool if type(v) is not type(value)])


def _extreme(rng: random.Random, path: tuple[Any, ...], value: Json) -> Json:
    """An extreme value of the kind the field holds."""
    keys = {str(k) for k in path}
    if keys & {"requests", "limits", "allocatable", "capacity", "overhead"}:
        return rng.choice(QUANTITIES)
    if "annotations" in keys:
        return rng.choice(ANNOTATION_VALUES + STRINGS)
    if isinstance(value, bool | int | float) or path[-1] in ("minAvailable", "maxUnavailable"):
        return rng.choice(NUMBERS + ["1.5", "50%", "-1", "abc%"])
    return rng.choice(STRINGS)


def _mutate(rng: random.Random, items: list[Json]) -> str:
    """One mutation of ``items`` in place; says what it did."""
    paths = places(items)
    path = rng.choice(paths)
    value = _get(items, path)
    kind = rng.choice(
        ["drop", "retype", "extreme", "extreme", "extreme", "swap", "empty", "duplicate",
         "rename", "nest", "dangling", "kind", "huge", "inflate"]
    )  # fmt: skip
    if kind == "drop":
        del _get(items, path[:-1])[path[-1]]
    elif kind == "retype":
        _set(items, path, _other_type(rng, value))
    elif kind == "extreme":
        _set(items, path, _extreme(rng, path, value))
    elif kind == "swap":
        other = rng.choice(paths)
        if path[: len(other)] == other or other[: len(path)] == path:
            return _mutate(rng, items)
        b = _get(items, other)
        _set(items, path, b)
        _set(items, other, value)
        return f"swap {_show(path)} <-> {_show(other)}"
    elif kind == "empty":
        _set(items, path, {} if isinstance(value, dict) else [] if isinstance(value, list) else "")
    elif kind == "duplicate":
        item = rng.randrange(len(items))
        items.insert(rng.randrange(len(items) + 1), copy.deepcopy(items[item]))
        return f"duplicate items[{item}]"
    elif kind == "rename":
        named = [o for o in items if isinstance(o, dict) and isinstance(o.get("metadata"), dict)]
        if len(named) < 2:
            return _mutate(rng, items)
        a, b = rng.sample(named, 2)
        a["metadata"]["name"] = b["metadata"].get("name")
        return f"{a.get('kind')} takes the name of {b['metadata'].get('name')}"
    elif kind == "inflate":
        # The same huge amount everywhere: sums of amounts the parser accepts one by one.
        resource, amount = (
            rng.choice(["cpu", "memory", "pods", "nvidia.com/gpu"]),
            rng.choice(HUGE_AMOUNTS),
        )
        for o in items:
            if isinstance(o, dict) and o.get("kind") == "Node":
                o.get("status", {}).get("allocatable", {})[resource] = amount
            elif isinstance(o, dict) and o.get("kind") == "Pod":
                for c in o.get("spec", {}).get("containers", [])[:1]:
                    c.get("resources", {}).setdefault("requests", {})[resource] = amount
        return f"{resource}: {amount} on every node and pod"
    elif kind == "nest":
        _set(items, path, _deep(rng.choice([3, 200, 100_000])))
    elif kind == "dangling":
        pods = [o for o in items if o.get("kind") == "Pod"]
        if not pods:
            return _mutate(rng, items)
        p = rng.choice(pods)
        if rng.random() < 0.5:
            p["spec"]["nodeName"] = rng.choice(["missing-node", "", HUGE[:300]])
        else:
            annotations = p["metadata"].setdefault("annotations", {})
            annotations["kube-engine.io/gpu-devices"] = rng.choice(ANNOTATION_VALUES)
        return f"dangling reference in {p['metadata'].get('name')}"
    elif kind == "kind":
        item = rng.randrange(len(items))
        items[item]["kind"] = rng.choice(["Pod", "Node", "List", "PodDisruptionBudget", "", "X"])
        return f"items[{item}].kind"
    elif kind == "huge":
        item = rng.choice([o for o in items if o.get("kind") == "Node"] or items)
        labels = item.setdefault("metadata", {}).setdefault("labels", {})
        labels.update({f"k{i}": "v" for i in range(rng.choice([1000, 20_000]))})
        return "many labels"
    return f"{kind} {_show(path)}"


def _show(path: tuple[Any, ...]) -> str:
    return "items" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _serialise(doc: Json) -> bytes:
    """JSON bytes of ``doc``; :class:`Raw` values go in verbatim."""
    if isinstance(doc, Raw):
        return doc.data
    if isinstance(doc, dict):
        inner = b",".join(_serialise(k) + b":" + _serialise(v) for k, v in doc.items())
        return b"{" + inner + b"}"
    if isinstance(doc, list):
        return b"[" + b",".join(_serialise(v) for v in doc) + b"]"
    return json.dumps(doc).encode()


def _has_raw(doc: Json) -> bool:
    if isinstance(doc, Raw):
        return True
    if isinstance(doc, dict):
        return any(_has_raw(v) for v in doc.values())
    return isinstance(doc, list) and any(_has_raw(v) for v in doc)


# --------------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    """One fuzz case: what it is (for the report) and how to run it."""

    seed: int
    index: int
    what: list[str] = field(default_factory=list)
    #: A snapshot case: files (name, bytes) to load, or documents for ``Snapshot.from_documents``.
    files: list[tuple[str, bytes]] = field(default_factory=list)
    documents: list[bytes] = field(default_factory=list)
    #: A CLI case: the command line, files named in it relative to the case's directory.
    argv: list[str] = field(default_factory=list)
    #: What makes the snapshot one the API server refuses, when something does.
    refuse: str | None = None


# Changes the API server refuses (apimachinery and core/v1 validation), one object of a kind at a
# time: a snapshot holding one must be refused, not read as if it were valid. (Names outside
# RFC 1123 and pods without containers are taken on purpose: see docs/semantics.md.)
INVALID: list[tuple[str, tuple[Any, ...], Json]] = [
    ("Node", ("metadata", "name"), ""),
    ("Pod", ("metadata", "name"), ""),
    ("Pod", ("metadata", "name"), "a/b"),
    ("Pod", ("metadata", "creationTimestamp"), "not a time"),
    ("Pod", ("spec", "containers", 0, "ports"), [{"containerPort": 80, "hostPort": 70000}]),
    ("Pod", ("spec", "containers", 0, "ports"), [{"containerPort": 80, "hostPort": -1}]),
    ("Pod", ("spec", "tolerations"), [{"key": "a b", "operator": "Exists"}]),
    ("Pod", ("spec", "containers", 0, "resources"), {"requests": {"cpu": "1e9999999999999999999"}}),
    ("Node", ("spec", "taints"), [{"key": "", "effect": "NoSchedule"}]),
    ("Node", ("spec", "taints"), [{"key": "a", "effect": "Sometimes"}]),
    ("Node", ("metadata", "labels"), {"-bad-": "v"}),
    ("Node", ("metadata", "labels"), {"a": "v" * 64}),
    ("PodDisruptionBudget", ("status", "disruptionsAllowed"), -1),
    ("PodDisruptionBudget", ("spec", "minAvailable"), "1.5"),
]  # fmt: skip


def _invalid(rng: random.Random, case: Case) -> list[Json]:
    """A corpus snapshot with one change the API server refuses."""
    kind, path, value = rng.choice(INVALID)
    source = next(i for i, items in enumerate(corpus()) if any(o["kind"] == kind for o in items))
    items = copy.deepcopy(corpus()[source])
    target = rng.choice([o for o in items if o["kind"] == kind])
    parent = target
    for step in path[:-1]:
        parent = parent.setdefault(step, {}) if isinstance(step, str) else parent[step]
    parent[path[-1]] = value
    case.refuse = f"{kind} {'.'.join(map(str, path))}: {str(value)[:80]!r}"
    case.what += [f"corpus[{source}]", f"invalid {case.refuse}"]
    return items


def make_case(seed: int, index: int) -> Case:
    rng = random.Random(f"{seed}:{index}")
    case = Case(seed, index)
    if rng.random() < 0.2:
        _cli_case(rng, case)
        return case
    if rng.random() < 0.1:
        items = _invalid(rng, case)
        _deliver(rng, case, items)
        return case
    source = rng.randrange(len(corpus()))
    items = copy.deepcopy(corpus()[source])
    case.what.append(f"corpus[{source}]")
    for _ in range(rng.choice([1, 1, 2, 3, 4])):
        try:
            case.what.append(_mutate(rng, items))
        except (TypeError, KeyError, IndexError, AttributeError):
            # An earlier mutation changed the shape this one expects; the case is still
            # a function of its seed and index.
            case.what.append("(a mutation found no place)")
    _deliver(rng, case, items)
    return case


def _deliver(rng: random.Random, case: Case, items: list[Json]) -> None:
    """How the case hands ``items`` over: documents, split documents, or a JSON, YAML or gzip
    file."""
    delivery = rng.choice(["documents", "documents", "split", "json", "yaml", "gzip"])
    doc = {"kind": "List", "apiVersion": "v1", "items": items}
    case.what.append(delivery)
    if delivery == "documents":
        case.documents = [_serialise(doc)]
    elif delivery == "split":
        case.documents = [_serialise({"kind": "List", "items": [o]}) for o in items]
    elif delivery == "yaml" and not _has_raw(doc):
        # A lone surrogate goes in as the invalid UTF-8 it then is.
        text = yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass")
        case.files = [("snapshot.yaml", text)]
    elif delivery == "gzip":
        case.files = [("snapshot.json.gz", gzip.compress(_serialise(doc), mtime=0))]
    else:
        case.files = [("snapshot.json", _serialise(doc))]


GOOD_PROFILE = b"apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
PROFILES: list[bytes] = [
    GOOD_PROFILE,
    b"[]",
    b"",
    b"\xff\xfe\x00binary",
    b"{: [",
    GOOD_PROFILE + b"profiles: [{schedulerName: x, plugins: {score: {enabled: [{name: Nope}]}}}]",
    GOOD_PROFILE + b"percentageOfNodesToScore: 1180591620717411303424\n",
    GOOD_PROFILE + b"profiles: [{plugins: {score: {enabled: [{name: NodeAffinity, weight: -1}]}}}]",
    # A YAML alias bomb small enough to keep a case within its limits if it is refused early.
    b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
    b"e: [*d, *d, *d, *d, *d, *d, *d, *d]\n",
]
PRICES: list[bytes] = [
    b"{}",
    b"openb-node-0000: 1.5\n",
    b"[]",
    b"{: [",
    b"\xff\xfe\x00",
    b"a: .nan\nb: .inf\n",
    b"a: 1e999\n",
    b"a: abc\n",
]
ARG_VALUES = [
    "-1", "0", "1", "1.5", "inf", "-inf", "nan", "1e309", "1180591620717411303424", "", "abc",
    "0x10", " 5", "١", "9" * 400, "-0", "1e-9",
]  # fmt: skip
OPTIONS = {
    "schedule": ["--seed", "--order", "--profile"],
    "rebalance": [
        "--seed", "--max-moves", "--move-cost", "--time-limit", "--workers", "--limit",
        "--cooldown", "--objective", "--max-per-node", "--max-per-wave", "--prices",
        "--price-label", "--keep-node", "--exclude-node", "--allow-local-storage", "--profile",
    ],
    "inspect": [],
}  # fmt: skip


def _cli_case(rng: random.Random, case: Case) -> None:
    """A command line of a read-only command, on a corpus snapshot, with odd argument values."""
    command = rng.choice(sorted(OPTIONS))
    case.files = [("snapshot.json", _serialise({"kind": "List", "items": corpus()[0]}))]
    snapshot = rng.choice(["snapshot.json"] * 6 + ["missing.json", ".", "/dev/null", "profile"])
    case.argv = [command, snapshot]
    if command == "rebalance":
        # Bounded unless an option's value is what is being fuzzed.
        case.argv += ["--time-limit", "1", "--workers", "1", "--allow-bare"]
    for option in rng.sample(OPTIONS[command], min(len(OPTIONS[command]), rng.randint(1, 3))):
        if option == "--profile":
            case.files.append(("profile", rng.choice(PROFILES)))
            value = rng.choice(["profile", "profile", "missing.yaml", "/dev/null"])
        elif option == "--prices":
            case.files.append(("prices", rng.choice(PRICES)))
            value = "prices"
        elif option == "--objective":
            value = rng.choice(["pack", "balance=1e309", "pack=-1", "nope", "pack=1,pack=2", ""])
        elif option == "--time-limit":
            # A huge limit is the user's to give: the search may use all of it.
            value = rng.choice(["-1", "0", "inf", "nan", "", "abc", "1e-9", "0.5", "1e309"])
        elif option == "--order":
            value = rng.choice(["queue", "input", "", "QUEUE"])
        else:
            value = rng.choice(ARG_VALUES)
        case.argv.append(f"{option}={value}")
    case.what.append(" ".join(case.argv))


def run_case(case: Case, directory: Path) -> str:
    """Runs ``case`` with its files in ``directory``; returns how it ended ("ok", "rejected: ...",
    "exit N"), or raises :class:`fuzz_support.Finding`."""
    for name, data in case.files:
        (directory / name).write_bytes(data)
    if case.argv:
        return _run_cli(case.argv, directory)
    try:
        if case.documents:
            snap = ke.Snapshot.from_documents(case.documents)
        else:
            snap = load_snapshot([str(directory / name) for name, _ in case.files])
    except Exception as e:
        fs.check_error(e)
        return f"rejected: {type(e).__name__}"
    if case.refuse:
        raise fs.Finding(f"accepted what the API server refuses: {case.refuse}")
    try:
        fs.walk(snap, solver="heuristic" if case.index % 2 else "cpsat")
    except Exception as e:
        fs.check_error(e)
        return f"API rejected: {type(e).__name__}"
    return "ok"


def _run_cli(argv: list[str], directory: Path) -> str:
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except Exception as e:
        raise fs.Finding(f"CLI: leaked {type(e).__name__}: {fs.head(str(e))}") from e
    finally:
        os.chdir(cwd)
    stderr = err.getvalue()
    if "Traceback" in stderr:
        raise fs.Finding(f"CLI: traceback on stderr: {fs.head(stderr[-300:])}")
    if code not in (0, 1, 2):
        raise fs.Finding(f"CLI: exit status {code}")
    if code == 1 and not stderr.startswith("kube-engine: error: "):
        raise fs.Finding(f"CLI: exit status 1 without an error line: {stderr[:300]!r}")
    if len(stderr) > fs.MAX_MESSAGE:
        raise fs.Finding(f"CLI: {len(stderr):,} characters on stderr: {fs.head(stderr)}")
    return f"exit {code}"


def write_case(case: Case, root: Path) -> Path:
    """``case`` as files under ``root`` (its documents, files and command line)."""
    directory = root / f"fuzz-seed{case.seed}-case{case.index}"
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in case.files:
        (directory / name).write_bytes(data)
    for i, data in enumerate(case.documents):
        (directory / f"document-{i}.json").write_bytes(data)
    (directory / "case.txt").write_text("\n".join([*case.what, "", again(case)]) + "\n")
    return directory


# --------------------------------------------------------------------------------------------------
# The worker process and its supervisor


@dataclass
class Result:
    index: int
    outcome: str
    finding: str | None
    seconds: float


def _worker() -> None:
    """Serves cases: reads ``seed index`` lines, answers one JSON line each."""
    # Stray writes to fd 1 (from native code too) must not break the protocol.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    with tempfile.TemporaryDirectory(prefix="kube-engine-fuzz-") as tmp:
        for line in sys.stdin:
            seed, index = map(int, line.split())
            started = time.perf_counter()
            directory = Path(tmp) / str(index)
            directory.mkdir()
            finding = None
            try:
                outcome = run_case(make_case(seed, index), directory)
            except fs.Finding as e:
                outcome, finding = "finding", str(e)
            except BaseException as e:  # noqa: BLE001 - the harness itself failing is a finding too
                outcome, finding = "finding", f"harness: {type(e).__name__}: {e}"
            seconds = time.perf_counter() - started
            row = {"index": index, "outcome": outcome, "finding": finding, "seconds": seconds}
            protocol.write(json.dumps(row) + "\n")
            protocol.flush()


class Worker:
    """A worker process with an address-space cap; restarted after a case kills it or runs out
    of time."""

    def __init__(self, timeout: float = fs.TIMEOUT, memory_mb: int = fs.MEMORY_MB) -> None:
        self.timeout = timeout
        self.memory = memory_mb * 2**20
        self.log = tempfile.NamedTemporaryFile(prefix="kube-engine-fuzz-", suffix=".log")
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory, self.memory))

        env = {
            **os.environ,
            # Never a real cluster: no kubeconfig, no in-cluster service.
            "KUBECONFIG": os.devnull,
            "KUBERNETES_SERVICE_HOST": "",
            "RAYON_NUM_THREADS": "1",
        }
        return subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
            preexec_fn=limit,
        )

    def run(self, seed: int, index: int) -> Result:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{seed} {index}\n")
        self.proc.stdin.flush()
        started = time.perf_counter()
        # The first case also pays for the worker's start (imports, the corpus).
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout + 10)
        line = self.proc.stdout.readline() if ready else ""
        seconds = time.perf_counter() - started
        if line:
            row = json.loads(line)
            return Result(index, row["outcome"], row["finding"], row["seconds"])
        self.close()
        finding = (
            f"no answer within {self.timeout + 10:.0f} s (hang)"
            if not ready
            else f"worker died (status {self.proc.returncode if self.proc else '?'}): "
            f"{self._log_tail()}"
        )
        return Result(index, "finding", finding, seconds)

    def _log_tail(self) -> str:
        self.log.seek(0, io.SEEK_END)
        size = self.log.tell()
        self.log.seek(max(0, size - 600))
        return self.log.read().decode(errors="replace").strip().replace("\n", " | ")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def report(case: Case, result: Result, root: Path) -> str:
    """A failing case, written out, and what to tell the user."""
    directory = write_case(case, root)
    return (
        f"case {case.index} (seed {case.seed}, {result.seconds:.1f} s): {result.finding}\n"
        f"  what: {'; '.join(case.what)}\n  files: {directory}\n"
        f"  again: {again(case)}"
    )


def again(case: Case) -> str:
    return f"python tests/fuzz/mutants.py --seed {case.seed} --case {case.index}"


def _summary(results: list[Result]) -> dict[str, list[int]]:
    """Findings grouped by their first words (one line per kind of failure)."""
    kinds: dict[str, list[int]] = {}
    for r in results:
        if r.finding:
            key = " ".join(r.finding.split()[:6])[:90]
            kinds.setdefault(key, []).append(r.index)
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, help="default: random, printed")
    parser.add_argument("--cases", type=int, default=fs.CASES)
    parser.add_argument("--case", type=int, help="run this one case here, with its traceback")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker()
        return 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    if args.case is not None:
        case = make_case(seed, args.case)
        print("\n".join(case.what))
        with tempfile.TemporaryDirectory() as tmp:
            print(run_case(case, Path(tmp)))
        return 0
    print(f"seed {seed}, {args.cases} cases", flush=True)
    root = Path(tempfile.mkdtemp(prefix=f"kube-engine-fuzz-{seed}-"))
    worker = Worker()
    results = []
    try:
        for index in range(args.cases):
            result = worker.run(seed, index)
            results.append(result)
            if result.finding:
                print(report(make_case(seed, index), result, root), flush=True)
    finally:
        worker.close()
    kinds = _summary(results)
    slowest = max(results, key=lambda r: r.seconds, default=None)
    print(f"\n{len(results)} cases, {sum(map(len, kinds.values()))} findings of {len(kinds)} kinds")
    for key, indices in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(indices):5} {key}  (cases {', '.join(map(str, indices[:8]))})")
    if slowest:
        print(f"slowest case: {slowest.index}, {slowest.seconds:.2f} s; files in {root}")
    return 1 if kinds else 0


if __name__ == "__main__":
    sys.exit(main())
