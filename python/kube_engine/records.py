"""Shapes of the dictionaries the compiled core returns (for type checkers and readers)."""

from typing import Literal, TypedDict


class PodRequest(TypedDict):
    resources: dict[str, int]
    gpu_count: int
    gpu_milli: int
    gpu_devices: list[int]


class EffectiveRequest(TypedDict):
    resources: dict[str, int]
    gpu_count: int
    gpu_milli: int


class NodeAllocatable(TypedDict):
    resources: dict[str, int]
    gpu_devices: int
    gpu_model: str | None


class ResourceUse(TypedDict):
    requested: int
    pending: int
    allocatable: int
    utilisation: float
    node_mean: float
    node_std: float
    node_max: float


class GpuUse(TypedDict):
    devices: int
    allocated_milli: int
    pending_milli: int
    utilisation: float
    whole_free: int
    fragmentation_milli: float
    fragmentation_ratio: float
    fragmentation_pct: float


class LowerBounds(TypedDict):
    l1: int
    strong: int
    infeasible: bool


class Diagnosis(TypedDict):
    """Why a pod is unschedulable, the numbers behind kube-scheduler's message."""

    nodes: int
    """Nodes in the cluster."""
    reasons: dict[str, int]
    """Per reason, the nodes that gave it (a node may give several)."""
    plugins: dict[str, str]
    """The plugin behind each reason, and behind ``pre_filter``."""
    pre_filter: str | None
    """A PreFilter's rejection, before any node was filtered (``reasons`` is then empty)."""


class Rejection(TypedDict):
    """A filter's verdict against a node (or a PreFilter's against the pod)."""

    plugin: str
    reasons: list[str]


class Explanation(TypedDict):
    """One scheduling cycle laid open (:func:`kube_engine.explain`)."""

    profile: str
    """The profile the pod's ``schedulerName`` names."""
    pre_filter: Rejection | None
    """A PreFilter's rejection: no node was filtered, nothing scored."""
    filters: dict[str, Rejection | None]
    """Per node, the first filter (in profile order) that rejects it; None: every filter passes."""
    scores: dict[str, dict[str, int] | None]
    """Per score plugin, its normalised score (0-100, before the weight) of each feasible node;
    None when its PreScore skips the pod."""
    weights: dict[str, int]
    """Per score plugin, its weight in the profile."""
    totals: dict[str, int]
    """Per feasible node, the weighted sum selectHost compares."""


class Violation(TypedDict):
    kind: str
    node: str
    pod: str | None
    detail: str


class PodClass(TypedDict):
    """Movable pods that are interchangeable (same controller, labels, requests, constraints)."""

    pods: list[str]
    nodes: list[str]
    controller: str | None
    request: dict[str, int]
    gpu_count: int
    gpu_milli: int
    # Classes with the same candidates share one list (thousands of classes, a few sets of
    # thousands of nodes): read it, never change it.
    candidates: list[int]
    interacts: bool


class DisruptionBudget(TypedDict):
    name: str
    allowed: int
    pods: list[str]


class BudgetStatus(TypedDict):
    """A PodDisruptionBudget's status as the disruption controller would report it from the pods
    (the API's field names)."""

    expectedPods: int
    currentHealthy: int
    desiredHealthy: int
    disruptionsAllowed: int


class InterPodRule(TypedDict):
    """A rule that depends on where movable pods go, as counts per topology domain (computed in
    Rust with the placement plugins' matching): for every domain holding a pod that carries it,
    ``anti-affinity`` and ``host-port`` ask that at most ``counts_itself`` counted pods be there,
    ``affinity`` at least ``1 + counts_itself`` (unless no other pod matches anywhere and the
    carriers count themselves), ``spread`` at most ``max_skew`` more than the emptiest domain (0
    with fewer domains than ``min_domains``)."""

    kind: Literal["affinity", "anti-affinity", "spread", "host-port"]
    #: Index into ``RebalanceProblem["domains"]``.
    domains: int
    #: Classes whose pods carry the rule, and pinned carriers as (domain, count).
    owners: list[int]
    fixed_owners: list[tuple[int, int]]
    #: Classes whose pods the rule counts, and pinned pods it counts as (domain, count).
    counted: list[int]
    fixed_counted: list[tuple[int, int]]
    counts_itself: bool
    max_skew: int
    min_domains: int
    name: str


class RebalanceProblem(TypedDict):
    nodes: list[str]
    free: dict[str, list[int]]
    gpu_free: list[list[int]]
    pinned: dict[str, str]
    classes: list[PodClass]
    budgets: list[DisruptionBudget]
    #: Per distinct topology of the rules: each node's domain, numbered from 0; -1 for none.
    domains: list[list[int]]
    rules: list[InterPodRule]


# "from" is a Python keyword, so this one takes the functional form.
PodMove = TypedDict("PodMove", {"pod": str, "from": str, "to": str, "gpu_devices": list[int]})


class DrainPlan(TypedDict):
    """The packing heuristic's plan: its moves, the nodes it empties in order, and whether it ran
    to the end (False: its time limit stopped it, with the nodes emptied so far)."""

    moves: list[PodMove]
    freed: list[str]
    complete: bool


class GreedyStart(TypedDict):
    """A greedy start's plan: its moves, the objective value it measured, and whether it ran to
    the end (False: its time limit stopped it, with the best placement so far)."""

    moves: list[PodMove]
    value: float
    complete: bool
