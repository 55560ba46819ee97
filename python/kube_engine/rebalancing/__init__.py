"""Rebalancing: which pods to move where, with a bounded number of moves (:func:`rebalance`)."""

from kube_engine.rebalancing.plan import Move, RebalanceResult, rebalance

__all__ = ["Move", "RebalanceResult", "rebalance"]
