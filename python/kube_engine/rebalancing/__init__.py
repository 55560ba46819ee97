"""Rebalancing: repack items (pods) into fewer bins (nodes) with OR-Tools CP-SAT, fed by the Rust
core's bounds and heuristics. So far: vector bin packing (:mod:`kube_engine.rebalancing.vbp`)."""

from kube_engine.rebalancing.vbp import (
    VbpError,
    VbpInstance,
    VbpResult,
    read_vbp,
    solve,
    verify,
)

__all__ = ["VbpError", "VbpInstance", "VbpResult", "read_vbp", "solve", "verify"]
