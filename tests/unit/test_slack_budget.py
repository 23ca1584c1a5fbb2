"""A shared limit that does not bind changes no decision.

The same trace is replayed with no budget and with a budget far above anything the workloads
can use (`budget.maxCostPerHour: 1e6`); every step's decision must be identical, surge holds,
idle holds, rate limits and stabilisation windows included (with PeakPilot's default behaviour,
and with the HPA's, whose scale-up rate limit the default has not). The trace is synthetic, built
in memory: a daily-like swell with bursts, drops and missing samples, so that every hold fires.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest

from peakplan.policy import HPA_SCALE_DOWN, HPA_SCALE_UP, Behavior, Policy, WorkloadPolicy
from peakplan.problem import Budget
from peakplan.replay import ReplaySettings, Trace, replay

T0 = 1_000_000_020.0


def bursty_trace(minutes: int, seed: int, peak: float) -> Trace:
    """Counts per minute: a slow swell to `peak` rps, bursts, sudden drops, a few gaps."""
    rng = random.Random(seed)
    counts: list[float | None] = []
    for k in range(minutes):
        swell = 0.55 + 0.45 * math.sin(2 * math.pi * k / 240.0)
        shock = rng.choice([1.0] * 20 + [3.0, 0.3])
        missing = k > 0 and rng.random() < 0.01
        counts.append(None if missing else 60.0 * peak * swell * shock * rng.uniform(0.8, 1.2))
    return Trace.from_counts(counts, 60.0, T0)


def desired(policy: Policy, traces: dict[str, Trace]) -> dict[str, tuple[int, ...]]:
    run = replay(policy, traces, ReplaySettings(step=15.0, warm=False))
    return {n: s.desired for n, s in run.controllers["peakpilot"].workloads.items()}


@pytest.mark.parametrize(
    "behavior",
    [Behavior(), Behavior(up=HPA_SCALE_UP, down=HPA_SCALE_DOWN)],
    ids=["default", "hpa-rate-limits"],
)
def test_a_slack_budget_changes_no_decision(behavior: Behavior) -> None:
    api = WorkloadPolicy("api", 2, 1000, capacity=5.0, priority=10.0, price=1.0, startup=60.0)
    batch = WorkloadPolicy("batch", 1, 400, capacity=0.5, priority=1.0, price=3.0, startup=90.0)
    free = Policy((api, batch), behavior=behavior)
    slack = replace(free, budget=Budget(max_cost_per_hour=1e6, max_cpu=1e6))
    traces = {"api": bursty_trace(600, 1, 400.0), "batch": bursty_trace(600, 2, 30.0)}
    without, with_budget = desired(free, traces), desired(slack, traces)
    # The trace must exercise the holds: the replicas go up and down many times.
    api_steps = without["api"]
    assert sum(a != b for a, b in itertools.pairwise(api_steps)) > 20
    for name, steps_without in without.items():
        pairs = zip(steps_without, with_budget[name], strict=True)
        steps = [k for k, (a, b) in enumerate(pairs) if a != b]
        assert steps == [], f"{name}: {len(steps)} steps differ, first at step {steps[:1]}"
