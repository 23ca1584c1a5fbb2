"""Greedy marginal-benefit allocation: the always-available plan, the solver's warm start and its
fallback.

Start every workload at its floor; repeatedly buy the step (to a larger candidate count) with the
highest objective gain per unit of normalised shared budget, while it fits. For convex cost curves
(the utilisation SLO) the next step is always the best one to look at.
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


def greedy_counts(curves: Sequence[Curve], limits: Mapping[str, float]) -> list[int]:
    """A feasible count per curve (same order), never below the first candidate.

    `limits` are the effective limits: a soft limit is passed as the floors' own usage, so the
    greedy never adds to an overrun.
    """
    index = [0] * len(curves)
    remaining = {
        r: limit - budget_use(curves, [c.counts[0] for c in curves], r)
        for r, limit in limits.items()
    }
    scale = {r: 1.0 / limit if limit > TOL else 1e9 for r, limit in limits.items()}
    convex = [c.is_convex() for c in curves]

    def step_use(i: int, added: int) -> dict[str, float]:
        return {r: usage(curves[i].workload, r, added) for r in limits}

    def best_jump(i: int, j: int, max_count: float = math.inf) -> tuple[float, int] | None:
        curve = curves[i]
        stop = j + 2 if convex[i] else len(curve.counts)
        best: tuple[float, int] | None = None
        for k in range(j + 1, min(stop, len(curve.counts))):
            if curve.counts[k] > max_count:
                break
            gain = curve.totals[j] - curve.totals[k]
            weight = sum(
                scale[r] * u for r, u in step_use(i, curve.counts[k] - curve.counts[j]).items()
            )
            ratio = gain / (weight + 1e-12) if limits else gain
            if gain > TOL and (best is None or ratio > best[0]):
                best = (ratio, k)
        return best

    heap: list[tuple[float, int, int, int]] = []
    for i in range(len(curves)):
        jump = best_jump(i, 0)
        if jump:
            heapq.heappush(heap, (-jump[0], i, 0, jump[1]))
    while heap:
        _, i, j, k = heapq.heappop(heap)
        if index[i] != j:
            continue
        curve = curves[i]
        use = step_use(i, curve.counts[k] - curve.counts[j])
        if all(use[r] <= remaining[r] + TOL for r in limits):
            for r in limits:
                remaining[r] -= use[r]
            index[i] = k
            nxt = best_jump(i, k)
        else:
            # The jump does not fit; the largest count that still fits may.
            fits = min(
                (
                    curve.counts[j] + math.floor((remaining[r] + TOL) / per)
                    for r in limits
                    if (per := usage(curve.workload, r, 1)) > 0
                ),
                default=math.inf,
            )
            nxt = best_jump(i, j, fits) if fits > curve.counts[j] else None
            k = j
        if nxt:
            heapq.heappush(heap, (-nxt[0], i, k, nxt[1]))
    return [c.counts[j] for c, j in zip(curves, index, strict=True)]
