"""Rebalancing: which pods to move where (:mod:`kube_engine.rebalancing.plan`), and the vector bin
packing solvers it is measured with (:mod:`kube_engine.rebalancing.vbp`: the Rust core's bounds and
greedy packings, then OR-Tools CP-SAT)."""

from kube_engine.rebalancing.plan import Move, RebalanceResult, rebalance
from kube_engine.rebalancing.vbp import (
    VbpError,
    VbpInstance,
    VbpResult,
    read_vbp,
    solve,
    verify,
)

__all__ = [
    "Move",
    "RebalanceResult",
    "VbpError",
    "VbpInstance",
    "VbpResult",
    "read_vbp",
    "rebalance",
    "solve",
    "verify",
]
