"""Greedy marginal-benefit allocation: the always-available plan, the solver's warm start and its
fallback.

Start every workload at its floor (or at given counts); repeatedly buy the jump (to a larger
candidate count) with the highest objective gain per unit of normalised shared budget, while it
fits. On a convex run of a curve the gain per replica is constant up to the next kink, so a jump
goes to the next kink, and only the next one is worth looking at; past the end of a run (a
non-convex curve) every larger candidate is.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence

from peakplan.curves import Curve
from peakplan.problem import usage

TOL = 1e-9


def budget_use(curves: Sequence[Curve], counts: Sequence[int], resource: str) -> float:
    return sum(usage(c.workload, resource, n) for c, n in zip(curves, counts, strict=True))


class _Greedy:
    def __init__(
        self,
        curves: Sequence[Curve],
        limits: Mapping[str, float],
        start: Sequence[int],
        weigh: Sequence[str] | None = None,
    ) -> None:
        self.curves = curves
        self.names = list(limits)
        self.unit = [[usage(c.workload, r, 1) for r in self.names] for c in curves]
        self.index = [c.index(n) for c, n in zip(curves, start, strict=True)]
        self.remaining = [
            limits[r] - sum(u[k] * n for u, n in zip(self.unit, start, strict=True))
            for k, r in enumerate(self.names)
        ]
        # A limit the best counts fit never stops the greedy (it never goes past a best count),
        # so it should not weigh on the choice; a binding one weighs by how little room is left.
        need = [
            sum(u[k] * c.best for u, c in zip(self.unit, curves, strict=True)) - limits[r]
            for k, r in enumerate(self.names)
        ]
        self.binding = [r for r, over in zip(self.names, need, strict=True) if over > TOL]
        weighed = self.binding if weigh is None else weigh
        scale = [
            1.0 / max(room, TOL) if r in weighed else 0.0
            for r, room in zip(self.names, self.remaining, strict=True)
        ]
        # Normalised budget one replica uses; a workload outside every limit costs ~nothing.
        self.weight = [sum(s * u for s, u in zip(scale, units, strict=True)) for units in self.unit]

    def ratio(self, i: int, j: int, k: int) -> float:
        c = self.curves[i]
        gain = c.totals[j] - c.totals[k]
        return gain / (self.weight[i] * (c.counts[k] - c.counts[j]) + 1e-12)

    def best_jump(self, i: int, j: int, max_count: float = math.inf) -> tuple[float, int] | None:
        """The jump from index j with the best ratio, to a count of at most `max_count`."""
        curve = self.curves[i]
        last = len(curve.counts) - 1
        if j == last:
            return None
        if len(curve.runs) == 1:  # convex: go to the next kink, or as far as fits
            k = curve.kinks[j]
            if curve.counts[k] > max_count:
                k = j + int(max_count - curve.counts[j])  # runs are contiguous
            return (self.ratio(i, j, k), k) if k > j else None
        best: tuple[float, int] | None = None
        for k in range(j + 1, last + 1):
            if curve.counts[k] > max_count:
                break
            ratio = self.ratio(i, j, k)
            # Among equal ratios (a straight stretch) prefer the longer jump.
            tie = best is not None and ratio >= best[0] * (1.0 - 1e-12)
            if curve.totals[j] - curve.totals[k] > TOL and (best is None or tie):
                best = (ratio, k)
        return best

    def fits_up_to(self, i: int) -> float:
        """The largest count of workload i that the remaining budget allows."""
        base = self.curves[i].counts[self.index[i]]
        room = (
            base + math.floor((left + TOL) / per)
            for left, per in zip(self.remaining, self.unit[i], strict=True)
            if per > 0
        )
        return min(room, default=math.inf)

    def run(self) -> list[int]:
        heap: list[tuple[float, int, int, int]] = []
        for i in range(len(self.curves)):
            jump = self.best_jump(i, self.index[i], self.fits_up_to(i))
            if jump:
                heap.append((-jump[0], i, self.index[i], jump[1]))
        heapq.heapify(heap)
        while heap:
            _, i, j, k = heapq.heappop(heap)
            if self.index[i] != j:
                continue  # stale
            curve = self.curves[i]
            added = curve.counts[k] - curve.counts[j]
            fits = all(
                u * added <= left + TOL
                for u, left in zip(self.unit[i], self.remaining, strict=True)
            )
            if fits:
                self.remaining = [
                    left - u * added for u, left in zip(self.unit[i], self.remaining, strict=True)
                ]
                self.index[i] = j = k
            # Look again from where it stands, within what still fits.
            nxt = self.best_jump(i, j, self.fits_up_to(i))
            if nxt and (fits or nxt[1] < k):  # never retry a jump that did not fit
                heapq.heappush(heap, (-nxt[0], i, j, nxt[1]))
        return [c.counts[j] for c, j in zip(self.curves, self.index, strict=True)]


def greedy_counts(
    curves: Sequence[Curve], limits: Mapping[str, float], start: Sequence[int] | None = None
) -> list[int]:
    """A feasible count per curve (same order), never below the first candidate nor `start`.

    `limits` are the effective limits: a soft limit is passed as the floors' own usage, so the
    greedy never adds to an overrun. `start` (candidate counts that fit) defaults to the floors.
    """
    first = [c.counts[0] for c in curves] if start is None else list(start)
    both = _Greedy(curves, limits, first)
    if len(both.binding) < 2:
        return both.run()
    # With several binding limits no fixed weighting is right for every instance (one that
    # ends with room to spare should not have weighed at all): try each alone and all together.
    tries = [both.run()]
    tries += [_Greedy(curves, limits, first, [r]).run() for r in both.binding]
    return min(tries, key=lambda counts: sum(map(Curve.total, curves, counts)))
