"""The journal of a run: every action written down before it is tried and after it ends, so a
run killed at any point (even by SIGKILL) is finished by the next without repeating or skipping
an action.

One JSON object per line, appended and flushed to disk (fsync) before the action it announces
is sent. A line cut short by a kill is ignored. An action with a ``begin`` and no ``end`` is
*uncertain*: the next run looks at the cluster to tell whether it happened.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kube_engine.applying.api import now_rfc3339
from kube_engine.option_files import read_limited
from kube_engine.planning import MAX_PLAN_BYTES, PlanError


@dataclass
class Journal:
    path: Path
    plan: str
    #: Action key -> its last outcome (``done``, ``blocked``, ``skipped``, ...).
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Actions begun and not ended.
    begun: set[str] = field(default_factory=set)
    #: Waves whose replacements were waited for.
    waves_done: set[int] = field(default_factory=set)
    #: Per wave, what the cluster had before it (written before its first action).
    wave_state: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Nodes this plan's runs cordoned, and those they gave back.
    cordoned: list[str] = field(default_factory=list)
    uncordoned: set[str] = field(default_factory=set)
    #: Evicted pod UID -> its replacement (namespace, name, uid, node).
    replacements: dict[str, dict[str, str]] = field(default_factory=dict)
    finished: bool = False
    #: Why a run of this plan stopped for good (moves it could not make), if one did.
    stopped: str = ""
    #: The latest re-plan: the wave it followed, and the plan document of the rest.
    replanned: tuple[int, dict[str, Any]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str], plan: str) -> Journal:
        """The journal at ``path`` (made if absent), read back; one journal holds one plan."""
        j = cls(Path(path), plan)
        if j.path.exists():
            data = read_limited(str(j.path), MAX_PLAN_BYTES, PlanError)
            try:
                # Entries are ASCII (json.dumps escapes the rest): no cut line splits a character.
                text = data.decode("ascii")
            except UnicodeDecodeError:
                raise PlanError(f"{j.path}: not a journal (not text)") from None
            for line in text.splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # the last line of a run killed while writing it
                if isinstance(entry, dict):
                    j._replay(entry)
        else:
            j.path.parent.mkdir(parents=True, exist_ok=True)
            j._write({"kind": "plan", "plan": plan})
        return j

    def _replay(self, e: dict[str, Any]) -> None:
        kind = e.get("kind")
        if kind == "plan" and e.get("plan") != self.plan:
            raise PlanError(
                f"{self.path} is the journal of plan {e.get('plan')!r}, not of {self.plan!r}"
            )
        key = str(e.get("key", ""))
        if kind == "begin":
            self.begun.add(key)
        elif kind == "end":
            self.begun.discard(key)
            self.ended[key] = e
            if e.get("action") == "cordon" and e.get("outcome") == "done":
                self.cordoned.append(str(e["node"]))
            if e.get("action") == "uncordon" and e.get("outcome") in ("done", "gone"):
                self.uncordoned.add(str(e["node"]))
        elif kind == "wave":
            self.wave_state[int(e["wave"])] = dict(e.get("state") or {})
        elif kind == "wave-done":
            self.waves_done.add(int(e["wave"]))
        elif kind == "replacement":
            self.replacements[str(e["evicted"])] = dict(e["replacement"])
        elif kind == "finished":
            self.finished = True
        elif kind == "stopped":
            self.stopped = str(e.get("message", ""))
        elif kind == "replan":
            self.replanned = (int(e["after"]), dict(e["plan"]))

    def _write(self, entry: dict[str, Any]) -> None:
        entry = {"time": now_rfc3339(micro=True), **entry}
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def begin(self, key: str, **what: Any) -> None:
        self._write({"kind": "begin", "key": key, **what})
        self.begun.add(key)

    def end(self, key: str, outcome: str, **what: Any) -> None:
        entry = {"kind": "end", "key": key, "outcome": outcome, **what}
        self._write(entry)
        self.begun.discard(key)
        self.ended[key] = entry
        if what.get("action") == "cordon" and outcome == "done":
            self.cordoned.append(str(what["node"]))
        if what.get("action") == "uncordon" and outcome in ("done", "gone"):
            self.uncordoned.add(str(what["node"]))

    def wave(self, wave: int, state: dict[str, Any]) -> None:
        self._write({"kind": "wave", "wave": wave, "state": state})
        self.wave_state[wave] = state

    def wave_done(self, wave: int) -> None:
        self._write({"kind": "wave-done", "wave": wave})
        self.waves_done.add(wave)

    def replacement(self, evicted: str, replacement: dict[str, str]) -> None:
        self._write({"kind": "replacement", "evicted": evicted, "replacement": replacement})
        self.replacements[evicted] = replacement

    def finish(self) -> None:
        self._write({"kind": "finished"})
        self.finished = True

    def replan(self, after: int, plan: dict[str, Any]) -> None:
        """From wave ``after + 1`` on, the run follows ``plan`` (a document)."""
        self._write({"kind": "replan", "after": after, "plan": plan})
        self.replanned = (after, plan)

    def stop(self, message: str) -> None:
        """The plan's assumptions no longer hold: no run may carry on with it."""
        self._write({"kind": "stopped", "message": message})
        self.stopped = message
