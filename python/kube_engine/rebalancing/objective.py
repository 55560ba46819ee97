"""What a rebalance minimises, measured on a whole placement, and the bound no plan can beat.

Three terms, each measured over the nodes of the snapshot:

* ``pack``: the nodes in use (running a pod that is not a DaemonSet or static pod), or the sum of
  their prices when nodes carry one (from a label, or a table by node name);
* ``balance``: for cpu and memory, the highest utilisation of a schedulable node plus the standard
  deviation of the utilisations (requested over allocatable, as ``evaluate`` reports them),
  averaged over the two resources — a fraction, 0 when every node is empty;
* ``defrag``: the GPU devices that are not wholly free (the FGD paper's point: a GPU with any share
  taken cannot take a whole-GPU pod), so minimising it maximises whole free GPUs.

With one term the objective value is that term in its own units (plus ``move_cost`` per move);
with several, each enters relative to its value before the plan (1.0 = unchanged), weighted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kube_engine import arguments
from kube_engine._core import Evaluation, Snapshot
from kube_engine.records import RebalanceProblem

TERMS = ("pack", "balance", "defrag")
# Pinned pods that stay with their node without keeping it in use.
RIDES_ALONG = ("DaemonSet pod", "static (mirror) pod")
BALANCED = ("cpu", "memory")
FULL_GPU = 1000


def pinned_in_use(problem: RebalanceProblem, pod_nodes: Mapping[str, str | None]) -> set[int]:
    """The nodes (by index) a pinned pod keeps in use, whatever the plan."""
    index = {n: i for i, n in enumerate(problem["nodes"])}
    return {
        index[n]
        for p, why in problem["pinned"].items()
        if why not in RIDES_ALONG and (n := pod_nodes[p]) is not None
    }


def parse_objective(objective: str | Mapping[str, float]) -> dict[str, float]:
    """``"pack"``, ``"pack=1,balance=0.5"`` or ``{"pack": 1, "balance": 0.5}`` -> weights."""
    if isinstance(objective, str):
        weights: dict[str, Any] = {}
        for part in objective.split(","):
            key, _, text = part.strip().partition("=")
            try:
                weights[key.strip()] = float(text) if text else 1.0
            except ValueError:
                weights[key.strip()] = text
    elif isinstance(objective, Mapping):
        weights = dict(objective)
    else:
        raise arguments.invalid(
            "objective",
            f"objective must be a string or a mapping of weights, got {arguments.shown(objective)}",
        )
    for key, weight in weights.items():
        if key not in TERMS:
            raise arguments.invalid(
                "objective",
                f"objective {arguments.shown(key)} is not available; choose among {TERMS}",
            )
        weights[key] = arguments.number(f"objective[{key!r}]", weight)
    weights = {k: w for k, w in weights.items() if w > 0}
    if not weights:
        raise arguments.invalid(
            "objective", f"objective {arguments.shown(objective)} gives no term a positive weight"
        )
    return weights


def node_prices(
    snapshot: Snapshot,
    prices: Mapping[str, float] | None = None,
    price_label: str | None = None,
) -> list[float] | None:
    """Per node (snapshot order): its price from ``prices`` (by node name) or else from its label
    ``price_label``; None when neither is given. A node with no price is an error naming it."""
    if prices is None and price_label is None:
        return None
    if prices is not None:
        prices = arguments.mapping("prices", prices)
    names = snapshot.node_names()
    known = set(names)
    for name in prices or {}:
        if name not in known:
            raise arguments.unknown(
                "prices", f"prices: node {arguments.shown(name)} is not in the snapshot"
            )
    out = []
    for name in names:
        if prices is not None and name in prices:
            price = arguments.number(f"prices[{name!r}]", prices[name])
        elif price_label is not None and price_label in (labels := snapshot.node_labels(name)):
            text = labels[price_label]
            try:
                price = float(text)
            except ValueError:
                price = math.nan
            if not 0 <= price < math.inf:
                raise arguments.invalid(
                    "price_label",
                    f"node {name!r}: label {price_label}={text!r} is not a number at least 0",
                )
        else:
            where = f"label {price_label!r}" if price_label else "the price table"
            raise arguments.invalid("prices", f"node {name!r} has no price ({where})")
        out.append(price)
    return out


@dataclass(frozen=True)
class Terms:
    pack: float
    balance: float
    defrag: float

    def get(self, name: str) -> float:
        value: float = getattr(self, name)
        return value


@dataclass
class Scorer:
    """Turns the terms of a placement into the objective value."""

    weights: dict[str, float]
    move_cost: float
    #: Per term: what it is divided by (its value before the plan when there are several terms).
    scale: dict[str, float]

    @classmethod
    def of(cls, weights: dict[str, float], move_cost: float, before: Terms) -> Scorer:
        if len(weights) == 1:
            scale = {k: 1.0 for k in weights}
        else:
            scale = {k: before.get(k) or 1.0 for k in weights}
        return cls(weights, move_cost, scale)

    def value(self, terms: Terms, moves: int) -> float:
        return (
            sum(w * terms.get(k) / self.scale[k] for k, w in self.weights.items())
            + self.move_cost * moves
        )

    def check_finite(self, ceiling: Terms, moves: int, priced: bool) -> None:
        """Refuses weights, prices or a move cost with which some plan's value (at most
        ``ceiling`` per term, at most ``moves`` moves) would pass the largest float: its value
        would be infinite, and so would the search's coefficients."""
        if priced and not math.isfinite(ceiling.pack):
            raise arguments.invalid("prices", "prices add up to more than a float holds")
        total = 0.0
        for k, w in self.weights.items():
            total += w * ceiling.get(k) / self.scale[k]
            if not math.isfinite(total):
                raise arguments.invalid(
                    "objective",
                    f"objective weight of {k!r} ({w:g}) times its largest value "
                    f"({ceiling.get(k):g}) passes the largest float",
                )
        if not math.isfinite(total + self.move_cost * moves):
            raise arguments.invalid(
                "move_cost",
                f"move_cost {self.move_cost:g} times {moves} moves passes the largest float",
            )


def ceiling_of(ev: Evaluation, allocatable: Allocatable, prices: Sequence[float] | None) -> Terms:
    """Per term, a value no placement of the evaluated pods passes: every node in use, every
    node's utilisation at most all the requests over the smallest node (peak and deviation
    each), every GPU device taken."""
    balance = 0.0
    for r in BALANCED:
        smallest = min((a for a in allocatable.balanced[r] if a > 0), default=0)
        if smallest and r in ev.resources:
            balance = max(balance, 2 * ev.resources[r]["requested"] / smallest)
    return Terms(
        pack=float(ev.nodes) if prices is None else sum(prices),
        balance=balance,
        defrag=float(ev.gpu["devices"]),
    )


def utilisation(loads: Sequence[float], alloc: Sequence[float]) -> tuple[float, float, float]:
    """(peak, mean, standard deviation) of node utilisation; nodes with no allocatable do not
    count. Call it only when some node has allocatable."""
    shares = [x / a for x, a in zip(loads, alloc, strict=True) if a > 0]
    mean = sum(shares) / len(shares)
    return max(shares), mean, math.sqrt(sum((s - mean) ** 2 for s in shares) / len(shares))


def balance_of(load: Mapping[str, Sequence[float]], alloc: Mapping[str, Sequence[float]]) -> float:
    """Mean over resources of the peak plus the standard deviation of node utilisation; a
    resource no node has does not count."""
    parts = []
    for r, loads in load.items():
        if any(a > 0 for a in alloc[r]):
            peak, _, std = utilisation(loads, alloc[r])
            parts.append(peak + std)
    return sum(parts) / len(parts) if parts else 0.0


@dataclass(frozen=True)
class Allocatable:
    """Per balanced resource and node (snapshot order): the allocatable, and the allocatable that
    counts for balance (0 on nodes ``evaluate`` leaves out: not ready, cordoned)."""

    total: dict[str, list[int]]
    balanced: dict[str, list[int]]

    @classmethod
    def of(cls, snapshot: Snapshot, ev: Evaluation) -> Allocatable:
        names = snapshot.node_names()
        rows = [snapshot.node_allocatable(n)["resources"] for n in names]
        total = {r: [row.get(r, 0) for row in rows] for r in BALANCED}
        balanced = {}
        for r in BALANCED:
            counted = ev.node_utilisation(r)
            balanced[r] = [0 if u is None else a for a, u in zip(total[r], counted, strict=True)]
        return cls(total, balanced)


def terms_of(ev: Evaluation, snapshot: Snapshot, prices: Sequence[float] | None) -> Terms:
    """The terms of an evaluated placement."""
    if prices is None:
        pack = float(ev.nodes_used)
    else:
        index = {n: i for i, n in enumerate(snapshot.node_names())}
        pack = sum(prices[index[n]] for n in ev.nodes_in_use())
    resources = ev.resources
    parts = [
        resources[r]["node_max"] + resources[r]["node_std"]
        for r in BALANCED
        if r in resources and any(u is not None for u in ev.node_utilisation(r))
    ]
    gpu = ev.gpu
    return Terms(
        pack=pack,
        balance=sum(parts) / len(parts) if parts else 0.0,
        defrag=float(gpu["devices"] - gpu["whole_free"]),
    )
