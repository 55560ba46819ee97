"""Greedy starts for ``balance`` and ``defrag``, on a :class:`~kube_engine.rebalancing.lns.Search`.

``balance``: take the hottest node (highest utilisation of cpu or memory) that has movable pods;
move one of its pods, largest first, to the coolest node it may go to where it fits, if that
lowers the objective value; when none of its pods can go, set the node aside. ``defrag``: take
the partly used GPU device with the least taken; move its pods to the fullest other partly used
devices they fit on (on nodes they may go to), if that lowers the objective value. Both keep every
capacity, GPU device, the move budget and the PodDisruptionBudgets, and stop when nothing
improves; CP-SAT then improves what they leave.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict

from kube_engine.rebalancing.lns import Pod, Search
from kube_engine.rebalancing.objective import BALANCED, FULL_GPU, Terms


class _Tally:
    """The search's placement with what each node has left, the move and disruption budgets
    spent, and the objective's terms, all kept up to date move by move (the search measures a
    placement from scratch, which is too slow for a move at a time)."""

    def __init__(self, search: Search, max_moves: int | None) -> None:
        self.search = search
        self.max_moves = max_moves
        classes = search.problem["classes"]
        self.milli = [c["gpu_milli"] for c in classes]
        self.count = [c["gpu_count"] for c in classes]
        self.free = {r: list(v) for r, v in search.free.items()}
        self.gpu = [list(d) for d in search.gpu_free]
        self.dims = [r for r in BALANCED if any(search.alloc[r])]
        self.load = search.load()
        self.pods_on = [0] * len(search.problem["nodes"])
        for p in search.pods:
            for r, v in search.demand[p.cls].items():
                self.free[r][p.node] -= v
            for d in p.devices:
                self.gpu[p.node][d] -= self.milli[p.cls]
            self.pods_on[p.node] += 1
        self.spent = [0] * len(search.allowed)
        for p in search.pods + search.fixed:
            if p.node != p.origin:
                for b in p.budgets:
                    self.spent[b] += 1
        self.moves = search.moves_made()
        self.pack = sum(
            search.prices[n]
            for n in range(len(self.pods_on))
            if self.pods_on[n] or n in search.kept_in_use
        )
        self.devices_used = sum(f < FULL_GPU for free in self.gpu for f in free)
        # Per balanced resource: utilisation per counted node, and its sum and sum of squares.
        self.share: dict[str, list[float]] = {}
        self.sums: dict[str, list[float]] = {}
        for r in self.dims:
            alloc = search.alloc[r]
            loads = zip(self.load[r], alloc, strict=True)
            self.share[r] = [x / a if a > 0 else -1.0 for x, a in loads]
            counted = [s for s in self.share[r] if s >= 0]
            self.sums[r] = [len(counted), sum(counted), sum(s * s for s in counted)]

    def value(self) -> float:
        parts = []
        for r in self.dims:
            k, s, s2 = self.sums[r]
            std = math.sqrt(max(s2 / k - (s / k) ** 2, 0.0))
            parts.append(max(self.share[r]) + std)
        balance = sum(parts) / len(parts) if parts else 0.0
        terms = Terms(pack=self.pack, balance=balance, defrag=float(self.devices_used))
        return self.search.scorer.value(terms, self.moves)

    def share_of(self, p: Pod, r: str) -> float:
        """``p``'s request of ``r`` over its node's allocatable."""
        a = self.search.alloc[r][p.node]
        return self.search.demand[p.cls].get(r, 0) / a if a > 0 else 0.0

    def hotness(self, n: int) -> float:
        return max((self.share[r][n] for r in self.dims), default=-1.0)

    def may_leave(self, p: Pod) -> bool:
        """The budgets allow ``p`` to go to another node than its own."""
        if p.node != p.origin:
            return True  # a pod moved already spends nothing more
        if self.max_moves is not None and self.moves >= self.max_moves:
            return False
        return all(self.spent[b] < self.search.allowed[b] for b in p.budgets)

    def may_take(self, p: Pod, n: int) -> bool:
        """``p`` may go to ``n``, fits there, and the budgets allow it."""
        s = self.search
        if n != p.origin and n not in s.candidates[p.cls]:
            return False
        if n != p.node and not all(self.free[r][n] >= v for r, v in s.demand[p.cls].items()):
            return False
        return n == p.origin or self.may_leave(p)

    def devices_for(self, p: Pod, n: int) -> tuple[int, ...] | None:
        """GPU devices for ``p`` on ``n``: its own at home, else the fullest that take it."""
        count, milli = self.count[p.cls], self.milli[p.cls]
        if not count:
            return ()
        if n == p.origin:
            devs = p.devices_at_origin
            own = set(p.devices) if n == p.node else set()
            ok = all(self.gpu[n][d] + (milli if d in own else 0) >= milli for d in devs)
            return devs if ok else None
        fits = sorted((f, d) for d, f in enumerate(self.gpu[n]) if f >= milli)[:count]
        return tuple(sorted(d for _, d in fits)) if len(fits) == count else None

    def move(self, p: Pod, n: int, devs: tuple[int, ...]) -> None:
        was = p.node
        for d in p.devices:
            self._device(was, d, self.milli[p.cls])
        self._node(p, was, -1)
        was_moved = p.node != p.origin
        p.node, p.devices = n, devs
        self._node(p, n, 1)
        for d in devs:
            self._device(n, d, -self.milli[p.cls])
        if was_moved != (p.node != p.origin):
            step = -1 if was_moved else 1
            self.moves += step
            for b in p.budgets:
                self.spent[b] += step

    def _device(self, n: int, d: int, give: int) -> None:
        before = self.gpu[n][d] < FULL_GPU
        self.gpu[n][d] += give
        self.devices_used += (self.gpu[n][d] < FULL_GPU) - before

    def _node(self, p: Pod, n: int, sign: int) -> None:
        s = self.search
        for r, v in s.demand[p.cls].items():
            self.free[r][n] -= sign * v
        in_use = self.pods_on[n] > 0 or n in s.kept_in_use
        self.pods_on[n] += sign
        now = self.pods_on[n] > 0 or n in s.kept_in_use
        self.pack += s.prices[n] * (now - in_use)
        for r in self.dims:
            a = s.alloc[r][n]
            self.load[r][n] += sign * s.demand[p.cls].get(r, 0)
            if a <= 0:
                continue
            old, new = self.share[r][n], self.load[r][n] / a
            self.share[r][n] = new
            self.sums[r][1] += new - old
            self.sums[r][2] += new * new - old * old


def greedy_balance(search: Search, max_moves: int | None) -> None:
    t = _Tally(search, max_moves)
    if not t.dims:
        return
    on: dict[int, list[Pod]] = defaultdict(list)
    for p in search.pods:
        on[p.node].append(p)
    # Nodes by hotness, kept sorted as pods move: per set of candidate nodes the classes share,
    # the counted ones (where pods may go); and those with movable pods not yet set aside (where
    # pods come from).
    group_of: dict[frozenset[int], int] = {}
    groups: list[list[tuple[float, int]]] = []
    in_groups: dict[int, list[int]] = defaultdict(list)
    for cands in search.candidates:
        same = frozenset(cands)
        if same not in group_of:
            group_of[same] = len(groups)
            nodes = [n for n in same if t.hotness(n) >= 0]
            groups.append(sorted((t.hotness(n), n) for n in nodes))
            for n in nodes:
                in_groups[n].append(group_of[same])
    group = [group_of[frozenset(c)] for c in search.candidates]
    hot = sorted((t.hotness(n), n) for n in on if t.hotness(n) >= 0)
    value = t.value()

    def shift(p: Pod, n: int, devs: tuple[int, ...]) -> None:
        touched = [(t.hotness(m), m) for m in (p.node, n)]
        t.move(p, n, devs)
        for key in touched:
            for keyed in [groups[g] for g in in_groups[key[1]]] + [hot]:
                i = bisect.bisect_left(keyed, key)
                if i < len(keyed) and keyed[i] == key:
                    del keyed[i]
                    bisect.insort(keyed, (t.hotness(key[1]), key[1]))

    while hot:
        _, h = hot.pop()
        largest_first = sorted(on[h], key=lambda q: -sum(t.share_of(q, r) for r in t.dims))
        for p in largest_first:
            if not t.may_leave(p):
                continue
            # The coolest node that takes the pod; if that does not help, a warmer one will not.
            cool = groups[group[p.cls]]
            to = next((m for _, m in cool if m != h and t.may_take(p, m)), None)
            devs = None if to is None else t.devices_for(p, to)
            if to is None or devs is None:
                continue
            n = to
            origin, origin_devs = p.node, p.devices
            shift(p, n, devs)
            now = t.value()
            if now < value - 1e-12:
                value = now
                on[h].remove(p)
                on[n].append(p)
                key = (t.hotness(n), n)
                i = bisect.bisect_left(hot, key)
                if hot[i : i + 1] != [key]:
                    hot.insert(i, key)
                if on[h]:
                    bisect.insort(hot, (t.hotness(h), h))
                break
            shift(p, origin, origin_devs)
        # Else none of its pods can go anywhere that helps: the node is set aside.


def greedy_defrag(search: Search, max_moves: int | None) -> None:
    t = _Tally(search, max_moves)
    tried: set[tuple[int, int]] = set()
    value = t.value()
    while True:
        holders: dict[tuple[int, int], list[Pod]] = defaultdict(list)
        for p in search.pods:
            for d in p.devices:
                holders[p.node, d].append(p)
        partly = sorted(
            (FULL_GPU - t.gpu[n][d], (n, d))
            for (n, d) in holders
            if 0 < FULL_GPU - t.gpu[n][d] < FULL_GPU and (n, d) not in tried
        )
        if not partly:
            return
        (n, d), others = partly[0][1], [nd for _, nd in reversed(partly[1:])]
        tried.add((n, d))
        pods = holders[n, d]
        if any(t.count[p.cls] != 1 for p in pods):
            continue  # only single-device shares are repacked device by device
        undo: list[tuple[Pod, int, tuple[int, ...]]] = []
        for p in pods:
            if not t.may_leave(p):
                break
            milli = t.milli[p.cls]
            # A pod that stays on its node keeps its devices: only another node is a move.
            spot = next(
                (
                    (m, e)
                    for m, e in others
                    if m not in (p.node, p.origin) and t.gpu[m][e] >= milli and t.may_take(p, m)
                ),
                None,
            )
            if spot is None:
                break
            undo.append((p, p.node, p.devices))
            t.move(p, spot[0], (spot[1],))
        now = t.value()
        if len(undo) == len(pods) and now < value - 1e-12:
            value = now
            continue
        for p, m, devs in reversed(undo):
            t.move(p, m, devs)
