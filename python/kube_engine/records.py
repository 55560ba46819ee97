"""Shapes of the dictionaries the compiled core returns (for type checkers and readers)."""

from typing import TypedDict


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
    candidates: list[int]
    interacts: bool


class DisruptionBudget(TypedDict):
    name: str
    allowed: int
    pods: list[str]


class RebalanceProblem(TypedDict):
    nodes: list[str]
    free: dict[str, list[int]]
    gpu_free: list[list[int]]
    pinned: dict[str, str]
    classes: list[PodClass]
    budgets: list[DisruptionBudget]


# "from" is a Python keyword, so this one takes the functional form.
PodMove = TypedDict("PodMove", {"pod": str, "from": str, "to": str, "gpu_devices": list[int]})


class DrainPlan(TypedDict):
    moves: list[PodMove]
    freed: list[str]
