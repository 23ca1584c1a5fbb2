"""Replay load traces through `decide()` and the HPA baseline, causally, scored by DESIGN 5.

At every step t of the window (t0, t0 + step, ... before the end):

- the load the pods must serve is `trace.rate(t)` (constant within the trace's interval);
- both controllers see what Prometheus would show at t: `trace.observed(t - lag)`, the same
  value for both (None before the trace starts or over a missing interval). The lag is applied
  here, once, so the HPA model gets metric_lag 0 and exactly PeakPilot's observations;
- PeakPilot calls `decide()` with current = its previous desired count and ready = the pods it
  requested at least `startup` ago (the scorer's `PodModel`, online), and applies the plan;
- the HPA (Kubernetes v2 defaults, target `baseline_target`) steps once per step;
- both start with the same replicas, ready, and are scored with `scoring.score`.

Causality: a decision at t reads the trace only through `observed(t - lag)` (and the policy's
calendar); the demand series is read only for scoring. History before the window, up to the
policy's `forecast.history`, warms PeakPilot's forecaster as an operator's Prometheus range
query would: it is the past.

Pure: no file I/O, no clock. `progress(done, total)` is called now and then for long replays.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from peakplan.controller import Memory, Observation, WorkloadObservation, decide, warm
from peakplan.planner import SolveOptions
from peakplan.policy import Policy
from peakplan.replay.hpa import Hpa, HpaConfig
from peakplan.replay.scoring import PodModel, Score, score, total
from peakplan.replay.trace import Trace

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReplaySettings:
    step: float = 15.0  # seconds between decisions
    start: float | None = None  # epoch seconds; default: the latest trace start
    end: float | None = None  # epoch seconds (exclusive); default: the earliest trace end
    metrics_lag: float = 30.0  # seconds between the load and what either controller sees
    baseline_target: float = 0.7  # the HPA's target utilisation
    options: SolveOptions = field(default_factory=lambda: SolveOptions(explain=False))
    warm: bool = True  # warm PeakPilot's forecaster with the trace before the window

    def __post_init__(self) -> None:
        if not (math.isfinite(self.step) and self.step > 0):
            raise ValueError(f"step must be > 0 seconds, got {self.step}")
        if not (math.isfinite(self.metrics_lag) and self.metrics_lag >= 0):
            raise ValueError(f"metrics lag must be >= 0 seconds, got {self.metrics_lag}")
        if not 0 < self.baseline_target <= 1:
            raise ValueError(f"baseline target must be in (0, 1], got {self.baseline_target}")


@dataclass(frozen=True)
class Series:
    """One controller on one workload: per-step arrays and the score."""

    demand: tuple[float, ...]  # requests/s
    desired: tuple[int, ...]
    ready: tuple[int, ...]
    score: Score
    extra: Mapping[str, Any] = field(default_factory=dict)  # JSON-able details


@dataclass(frozen=True)
class ControllerRun:
    workloads: Mapping[str, Series]
    total: Score


@dataclass(frozen=True)
class Replay:
    step: float
    start: float  # epoch seconds of the first step (t = 0)
    steps: int
    initial: Mapping[str, int]  # replicas running, ready, before the first step (both controllers)
    controllers: Mapping[str, ControllerRun]
    events: tuple[tuple[str, float, float], ...]  # (name, start, end) in seconds from t = 0
    metrics_lag: float
    baseline_target: float

    @property
    def times(self) -> list[float]:
        """Seconds from the start of the window, per step."""
        return [k * self.step for k in range(self.steps)]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of DESIGN section 5 (its keys exactly), plus a few more."""
        t = [_number(x) for x in self.times]
        controllers: dict[str, Any] = {}
        for name, run in self.controllers.items():
            workloads: dict[str, Any] = {}
            for workload, s in run.workloads.items():
                workloads[workload] = {
                    "t": t,
                    "demand_rps": [round(x, 6) for x in s.demand],
                    "desired": list(s.desired),
                    "ready": list(s.ready),
                    "summary": summary_dict(s.score),
                    **s.extra,
                }
            controllers[name] = {"workloads": workloads, "summary": summary_dict(run.total)}
        return {
            "step_seconds": _number(self.step),
            "controllers": controllers,
            "start": _number(self.start),
            "metrics_lag_seconds": _number(self.metrics_lag),
            "baseline_target": self.baseline_target,
            "initial_replicas": dict(self.initial),
            "events": [
                {"name": n, "start": _number(a), "end": _number(b)} for n, a, b in self.events
            ],
        }


def summary_dict(s: Score) -> dict[str, float | int | None]:
    """The summary S of DESIGN section 5; a non-finite ratio (no oracle cost) becomes null."""
    return {k: _finite(v) for k, v in s.as_dict().items()}


def _finite(value: float | int) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def window(traces: Mapping[str, Trace], settings: ReplaySettings) -> tuple[float, float]:
    """[start, end) of the replay: the traces' common span, narrowed by the settings."""
    start = max(tr.start for tr in traces.values())
    end = min(tr.end for tr in traces.values())
    if settings.start is not None:
        start = settings.start
    if settings.end is not None:
        end = settings.end
    for name, tr in traces.items():
        if not (tr.start <= start < tr.end and start < end <= tr.end):
            raise ValueError(
                f"the window [{start:g}, {end:g}) is not inside the trace of {name} "
                f"[{tr.start:g}, {tr.end:g})"
            )
    return start, end


def initial_replicas(
    policy: Policy, traces: Mapping[str, Trace], start: float, target: float
) -> dict[str, int]:
    """What both controllers start with: the first load at the baseline's target, within bounds."""
    out: dict[str, int] = {}
    for wp in policy.workloads:
        need = math.ceil(traces[wp.name].rate(start) / (wp.capacity * target) - 1e-9)
        out[wp.name] = min(wp.max_replicas, max(wp.min_replicas, need))
    return out


@dataclass(frozen=True)
class _Window:
    """What both controllers are replayed on: the steps, the demand, the lagged observations."""

    names: tuple[str, ...]
    start: float
    steps: int
    demand: Mapping[str, list[float]]  # requests/s per step: what the pods must serve
    seen: Mapping[str, list[float | None]]  # what Prometheus shows per step: the lagged load
    initial: Mapping[str, int]


def _window(policy: Policy, traces: Mapping[str, Trace], settings: ReplaySettings) -> _Window:
    names = tuple(wp.name for wp in policy.workloads)
    missing = [n for n in names if n not in traces]
    if missing:
        raise ValueError(f"no trace for workload(s) {', '.join(missing)}")
    start, end = window({n: traces[n] for n in names}, settings)
    step, lag = settings.step, settings.metrics_lag
    steps = max(1, math.ceil((end - start) / step - 1e-9))
    times = [start + k * step for k in range(steps)]
    return _Window(
        names=names,
        start=start,
        steps=steps,
        demand={n: [traces[n].rate(t) for t in times] for n in names},
        seen={n: [traces[n].observed(t - lag) for t in times] for n in names},
        initial=initial_replicas(policy, traces, start, settings.baseline_target),
    )


def _scored(
    policy: Policy,
    w: _Window,
    step: float,
    desired: Mapping[str, list[int]],
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> ControllerRun:
    runs: dict[str, Series] = {}
    for n in w.names:
        wp = policy.workload(n)
        s = score(
            step,
            w.demand[n],
            desired[n],
            startup=wp.startup,
            capacity=wp.capacity,
            min_replicas=wp.min_replicas,
            initial_replicas=w.initial[n],
        )
        details = dict(extra[n]) if extra is not None else {}
        runs[n] = Series(tuple(w.demand[n]), tuple(desired[n]), s.ready, s, details)
    return ControllerRun(runs, total(r.score for r in runs.values()))


def _hpa(
    policy: Policy, w: _Window, settings: ReplaySettings, target: float
) -> dict[str, list[int]]:
    """The HPA on the same observations, from the same replicas."""
    out: dict[str, list[int]] = {}
    for n in w.names:
        wp = policy.workload(n)
        config = HpaConfig(
            capacity=wp.capacity,
            target_utilization=target,
            min_replicas=wp.min_replicas,
            max_replicas=wp.max_replicas,
            metric_lag=0.0,  # the replay applies the lag to both controllers alike
        )
        hpa = Hpa(config, w.initial[n])
        out[n] = [hpa.step(w.start + k * settings.step, load) for k, load in enumerate(w.seen[n])]
    return out


def baseline(
    policy: Policy,
    traces: Mapping[str, Trace],
    settings: ReplaySettings | None = None,
    target: float | None = None,
) -> ControllerRun:
    """The HPA alone at `target` (default the settings' baseline target), as `replay` runs it:
    the same window, observations and initial replicas (those follow the settings' target)."""
    settings = settings or ReplaySettings()
    w = _window(policy, traces, settings)
    chosen = settings.baseline_target if target is None else target
    return _scored(policy, w, settings.step, _hpa(policy, w, settings, chosen))


def baselines(
    policy: Policy,
    traces: Mapping[str, Trace],
    settings: ReplaySettings,
    targets: Sequence[float],
) -> dict[float, ControllerRun]:
    """The HPA at each of `targets`, as `baseline` runs it, on one window (read once)."""
    w = _window(policy, traces, settings)
    return {t: _scored(policy, w, settings.step, _hpa(policy, w, settings, t)) for t in targets}


def replay(
    policy: Policy,
    traces: Mapping[str, Trace],
    settings: ReplaySettings | None = None,
    progress: Progress | None = None,
) -> Replay:
    """Replay `traces` (one per workload of `policy`) through PeakPilot and the HPA."""
    settings = settings or ReplaySettings()
    w = _window(policy, traces, settings)
    names, step = w.names, settings.step

    memory = Memory()
    if settings.warm:
        for n in names:
            history = _history(policy, traces[n], w.start, step, settings.metrics_lag)
            warm(policy, memory, n, history)
    pods = {n: PodModel(step, policy.workload(n).startup, w.initial[n]) for n in names}
    current = dict(w.initial)
    desired: dict[str, list[int]] = {n: [] for n in names}
    methods: dict[str, Counter[str]] = {n: Counter() for n in names}
    bases: dict[str, Counter[str]] = {n: Counter() for n in names}
    surging = dict.fromkeys(names, 0)
    every = max(1, w.steps // 200)

    for k in range(w.steps):
        t = w.start + k * step
        seen: dict[str, WorkloadObservation] = {}
        for n in names:
            load = w.seen[n][k]
            error = None if load is not None else "no sample in the trace"
            seen[n] = WorkloadObservation(current[n], load, error, ready=pods[n].ready(k))
        decision = decide(policy, Observation(t, seen), memory, settings.options)
        for change in decision.changes:  # the replay applies every change
            memory.applied(change)
        for d in decision.plan.workloads:
            current[d.name] = d.desired
            pods[d.name].scale(k, d.desired)
            desired[d.name].append(d.desired)
        for given in decision.inputs:  # one per planned workload, as the plan has
            if given.forecast is not None:
                methods[given.name][given.forecast.method] += 1
                bases[given.name][given.forecast.basis] += 1
            surging[given.name] += given.surge is not None
        if progress is not None and (k % every == 0 or k == w.steps - 1):
            progress(k + 1, w.steps)

    extra = {
        n: {
            "forecast_methods": dict(methods[n]),
            "sized_by": dict(bases[n]),
            "surge_steps": surging[n],
        }
        for n in names
    }
    controllers = {
        "peakpilot": _scored(policy, w, step, desired, extra),
        "hpa": _scored(policy, w, step, _hpa(policy, w, settings, settings.baseline_target)),
    }
    end = w.start + w.steps * step
    events = tuple(
        (e.name, e.start - w.start, e.end - w.start)
        for e in policy.events
        if e.end > w.start and e.start < end
    )
    return Replay(
        step=step,
        start=w.start,
        steps=w.steps,
        initial=dict(w.initial),
        controllers=controllers,
        events=events,
        metrics_lag=settings.metrics_lag,
        baseline_target=settings.baseline_target,
    )


def _history(
    policy: Policy, trace: Trace, start: float, step: float, lag: float
) -> list[tuple[float, float | None]]:
    """What Prometheus held before the window, at the replay's step, oldest first."""
    first = max(trace.start, start - policy.forecast.history)
    count = math.floor((start - first) / step + 1e-9)
    times: Sequence[float] = [start - j * step for j in range(count, 0, -1)]
    return [(t, trace.observed(t - lag)) for t in times]
