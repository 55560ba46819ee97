"""Batch scheduling: place pending pods with kube-scheduler's framework and plugins (in Rust)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kube_engine._core import ConfigError, Placement, Snapshot
from kube_engine._core import explain as _explain
from kube_engine._core import schedule as _schedule
from kube_engine.records import Explanation

ProfileSpec = str | os.PathLike[str] | Mapping[str, Any]


def load_config(profile: ProfileSpec) -> str | None:
    """A KubeSchedulerConfiguration as JSON for the core: ``"default"`` (None), a YAML or JSON
    file, or an already-parsed mapping."""
    if isinstance(profile, Mapping):
        return json.dumps(profile)
    if str(profile) == "default":
        return None
    path = Path(profile)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror or e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a KubeSchedulerConfiguration mapping")
    return json.dumps(data)


def schedule(
    snapshot: Snapshot,
    pods: Sequence[str] | None = None,
    profile: ProfileSpec = "default",
    order: str = "queue",
    threads: int | None = None,
    seed: int = 0,
) -> Placement:
    """Place pending pods as a batch, one at a time as kube-scheduler would.

    ``pods``: ``namespace/name`` of pending pods (default: every active pending pod). ``profile``:
    ``"default"`` (kube-scheduler's default profile) or a KubeSchedulerConfiguration (file path or
    mapping); each pod uses the profile named by its ``schedulerName`` (pods naming no profile
    are left alone, as kube-scheduler leaves them: ``placement.skipped``).
    ``order``: ``"queue"`` (priority, then creation time), ``"dominant-share"`` (largest first) or
    ``"input"``. Ties between equally good nodes are broken by a generator seeded with ``seed``.
    ``threads``: worker threads for the work that spans every node (the node-constraint plugins
    of each new group of pods, the reasons of an unschedulable pod); a pod's own filtering and
    scoring is a few microseconds and stays on one thread (None: 1). The placement is the same
    for any number. The snapshot is not changed;
    ``snapshot.apply(placement)`` binds the pods in it.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return _schedule(
        snapshot,
        list(pods) if pods is not None else None,
        load_config(profile),
        order,
        seed,
        threads or 1,
    )


def explain(snapshot: Snapshot, pod: str, profile: ProfileSpec = "default") -> Explanation:
    """What one scheduling cycle finds for pending pod ``pod`` (``namespace/name``): every node's
    filter verdict (the first filter in profile order that rejects it, with its reasons, as
    kube-scheduler's Filter status) and every score plugin's normalised score per feasible node,
    with the weighted totals selectHost compares.

    It runs the cycle :func:`schedule` would run first for the pod, under the profile its
    ``schedulerName`` names, except that every node is filtered and every feasible node scored
    (as with ``percentageOfNodesToScore: 100``) and no node is chosen. The snapshot is not
    changed.
    """
    return _explain(snapshot, pod, load_config(profile))
