"""kube-engine: a Rust-accelerated scheduling and rebalancing engine for Kubernetes.

Load a cluster with :class:`Snapshot` (a file, bytes, or :func:`kube_engine.cluster.read_snapshot`),
measure a placement with :func:`evaluate`, place pending pods with :func:`schedule` (and see one
scheduling cycle laid open with :func:`explain`), plan moves that free nodes with
:func:`rebalance`, and sequence any target into safe waves of actions with :func:`plan`, and
carry a plan out on a cluster with :func:`apply`.
"""

from kube_engine._core import (
    ClusterError,
    ConfigError,
    Evaluation,
    InternalError,
    InvalidArgumentError,
    KubeEngineError,
    Placement,
    QuantityError,
    Snapshot,
    SnapshotError,
    UnknownNameError,
    __version__,
    budget_status,
    evaluate,
    parse_quantity,
)
from kube_engine.applying import apply
from kube_engine.cluster import read_snapshot, save_snapshot
from kube_engine.planning import Plan, PlanError, plan
from kube_engine.rebalancing import RebalanceResult, rebalance
from kube_engine.scheduling import explain, schedule

__all__ = [
    "ClusterError",
    "ConfigError",
    "Evaluation",
    "InternalError",
    "InvalidArgumentError",
    "KubeEngineError",
    "Placement",
    "Plan",
    "PlanError",
    "QuantityError",
    "RebalanceResult",
    "Snapshot",
    "SnapshotError",
    "UnknownNameError",
    "__version__",
    "apply",
    "budget_status",
    "evaluate",
    "explain",
    "parse_quantity",
    "plan",
    "read_snapshot",
    "rebalance",
    "save_snapshot",
    "schedule",
]
