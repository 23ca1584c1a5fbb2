"""One reconcile as a pure step: Policy x Observation x Memory -> Decision.

The operator, `peakpilot plan` and `peakpilot simulate` all call `decide()`. The clock is
`Observation.at`; the history the controller needs (last good load, recent changes and
recommendations, pre-event baselines, each workload's forecaster and short-term model) lives in
`Memory`, which `decide()` updates in place so a replay of a week stays linear. Copy it first
(`copy.deepcopy`) to ask "what if" without effects. `decide()` never assumes its plan is carried
out: the caller reports each change it applied (`Memory.applied`), and only those count against
the rate limits of later reconciles (a failed /scale write, a preview or a one-off plan does not).

Demand is sized for the lead time of a workload (startup + one interval: what a decision now
must carry until its pods are ready and the next decision can act): the forecaster's upper
quantile (the model its accuracy gate picks, or reactive), never below the short-term band
(recent level + z sigmas of recent volatility). `forecast.method: reactive` sizes for the last
load alone. In a surge (load beyond the ready pods' capacity, or a jump of several sigmas) the
scale-up is not stabilised and nothing scales down until a calm window has passed.

Scale changes are damped without ever sizing below the load at hand: a scale-up sizes for
where the band settles if the load holds (one step, not a string of one-replica steps); one for
headroom alone waits while it is within half the tolerance (`behavior.tolerance`, as the HPA's);
replicas the load no longer needs are kept until their idle time adds up to what a change is
worth (`behavior.change_cost`, replica-seconds; the ski-rental rule: a one-replica excess waits
ten minutes, a large one goes at once). All are bounds, like every other limit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from peakplan import surge
from peakplan.allocation import Plan
from peakplan.behavior import (
    scale_down_limit,
    scale_up_limit,
    stabilized_ceiling,
    stabilized_floor,
)
from peakplan.calendar import active_events, event_floor, event_multiplier
from peakplan.curves import REL_TOL, Load, needed_replicas
from peakplan.forecast import ForecastConfig, Forecaster
from peakplan.planner import SolveOptions, plan
from peakplan.policy import Policy, WorkloadPolicy
from peakplan.problem import Budget, Problem, Workload, usage
from peakplan.values import quick_init

HISTORY_SECONDS = 3600.0  # longest HPA window/period is 1800 s; keep some margin
MIN_INTERVAL = 1.0  # seconds: the shortest reconcile period the idle hold counts with
# The one rule for missing data, applied by the operator, `peakpilot plan` and `simulate` alike:
# fail closed. A workload whose load is unavailable keeps at least its current replicas, even
# when it runs above maxReplicas (someone else put it there; a blind cut could drop traffic).
MISSING_DATA_RULE = "no scale-down on missing data, even above maxReplicas"
MISSING_FLOOR = f"current replicas (load unavailable: {MISSING_DATA_RULE})"


@quick_init
@dataclass(frozen=True)
class WorkloadObservation:
    """What the shell observed for one workload. `load` is None when it could not be read."""

    current: int
    load: float | None
    error: str | None = None  # why the load is missing, for status and events
    hold: str | None = None  # keep `current` as it is (paused, owned by another autoscaler): why
    ready: int | None = None  # replicas ready to serve (None: take `current` as ready)
    # Why the target's replicas could not be read (None: they were). `current` is then unknown
    # and ignored: the workload is held at its last known replicas, or left out of the plan.
    unreadable: str | None = None


@quick_init
@dataclass(frozen=True)
class Observation:
    at: float  # epoch seconds
    workloads: Mapping[str, WorkloadObservation]


@quick_init
@dataclass(frozen=True)
class Change:
    """A scale change a decision asks for; the shell reports it to `Memory.applied` once done."""

    name: str
    at: float
    current: int
    desired: int


@dataclass
class WorkloadMemory:
    last_load: float | None = None
    last_load_at: float | None = None
    changes: deque[tuple[float, int]] = field(default_factory=deque)  # (t, signed change)
    recommendations: deque[tuple[float, int]] = field(default_factory=deque)
    baselines: dict[str, float] = field(default_factory=dict)  # event -> load just before it
    forecaster: Forecaster | None = None  # built on first use for the workload's lead time
    short: surge.ShortTerm = field(default_factory=surge.ShortTerm)  # level, slope, surge state
    # The idle hold: replica-seconds the replicas the load does not need have run since the
    # excess appeared at `idle_current` replicas, counted up to `idle_at`.
    idle_paid: float = 0.0
    idle_at: float | None = None
    idle_current: int | None = None
    # The replicas last observed (None: never): the count an unreadable target is held at, and
    # the first recommendation on first sight, as the HPA records (recordInitialRecommendation).
    last_current: int | None = None
    # The recommendations are in time order (appended through `recommend`, none dated before
    # the last): the stabilisation windows then read only their newest entries, not the hour
    # kept. Cleared for good by a reconcile dated earlier (a clock step back).
    in_order: bool = field(default=True, repr=False, compare=False)

    def forget_before(self, cutoff: float) -> None:
        for series in (self.changes, self.recommendations):
            while series and series[0][0] < cutoff:
                series.popleft()

    def recommend(self, at: float, replicas: int) -> None:
        """Remember what a reconcile at `at` recommends, for later stabilisation windows."""
        if self.recommendations and self.recommendations[-1][0] > at:
            self.in_order = False
        self.recommendations.append((at, replicas))


@dataclass
class Memory:
    """The controller's state between reconciles (one per policy)."""

    workloads: dict[str, WorkloadMemory] = field(default_factory=dict)

    def of(self, name: str) -> WorkloadMemory:
        mem = self.workloads.get(name)
        if mem is None:  # not setdefault: that would build a WorkloadMemory at every call
            mem = self.workloads[name] = WorkloadMemory()
        return mem

    def applied(self, change: Change) -> None:
        """The shell carried out `change`: it counts against the behaviour rate limits."""
        self.of(change.name).changes.append((change.at, change.desired - change.current))


@quick_init
@dataclass(frozen=True)
class ForecastUse:
    """How the demand was sized from an observed load, and why."""

    method: str  # seasonal | trend | reactive: what the forecaster used
    reason: str  # why that method (its gate, its scores, or the policy's forecast.method)
    horizon: float  # seconds ahead: the lead time (startup + one interval)
    value: float  # the forecast's upper quantile over the horizon (requests/s)
    band: float  # the short-term band: recent level + z sigmas (0 with method reactive); on a
    # scale-up, where it settles if the load holds (surge.settled_band)
    basis: str  # forecast | band | load | daily envelope | weekly envelope | event NAME
    scores: Mapping[str, float] = field(default_factory=dict)  # method -> recent error (WAPE)


@quick_init
@dataclass(frozen=True)
class WorkloadInput:
    """What the planner was given for one workload, and why."""

    name: str
    load: float | None  # the observed load (None: missing)
    demand: float  # what the plan sized for
    source: str  # observed | held | static | current | missing
    events: tuple[str, ...] = ()
    note: str = ""
    forecast: ForecastUse | None = None  # None when the load was not observed
    surge: str | None = None  # why the workload is in surge mode (None: it is not)


@quick_init
@dataclass(frozen=True)
class Decision:
    at: float
    plan: Plan
    inputs: tuple[WorkloadInput, ...]
    metrics_ok: bool  # every load was observed
    changes: tuple[Change, ...] = ()  # what to apply: the workloads not held whose count changes
    left_out: Mapping[str, str] = field(default_factory=dict)  # not planned (name -> why)

    def input(self, name: str) -> WorkloadInput:
        return self._inputs_by_name[name]

    @cached_property
    def _inputs_by_name(self) -> dict[str, WorkloadInput]:
        """The first input of each name (the table looks up all 1000: a scan each was 0.01 s)."""
        index: dict[str, WorkloadInput] = {}
        for i in self.inputs:
            index.setdefault(i.name, i)
        return index


def _valid_load(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value >= 0


def _demand(
    policy: Policy, wp: WorkloadPolicy, seen: WorkloadObservation, mem: WorkloadMemory, now: float
) -> tuple[float, int, str, str]:
    """(demand, floor from missing data, source, note); never a scale-down on missing data."""
    if _valid_load(seen.load):
        assert seen.load is not None
        mem.last_load, mem.last_load_at = seen.load, now
        return seen.load, 0, "observed", ""
    why = seen.error or "no value"
    rule = policy.on_metric_failure
    if rule.action == "HoldLastKnown":
        if mem.last_load is not None and mem.last_load_at is not None:
            age = now - mem.last_load_at
            if age <= rule.ttl:
                return (
                    mem.last_load,
                    seen.current,
                    "held",
                    f"load unavailable ({why}); holding the value from {age:.0f}s ago",
                )
        return 0.0, seen.current, "missing", f"load unavailable ({why}); keeping current replicas"
    if rule.action == "Static":
        floor = max(seen.current, min(rule.replicas or 0, wp.max_replicas))
        return 0.0, floor, "static", f"load unavailable ({why}); static {rule.replicas} replicas"
    return 0.0, seen.current, "current", f"load unavailable ({why}); keeping current replicas"


def lead_time(policy: Policy, wp: WorkloadPolicy) -> float:
    """How far ahead a decision must look: until its pods are ready and the next one can act."""
    return min(wp.startup + policy.interval, policy.forecast.horizon)


def _forecaster(policy: Policy, wp: WorkloadPolicy, mem: WorkloadMemory) -> Forecaster:
    """The workload's forecaster, scored at its lead time (rebuilt when the policy changes it)."""
    horizon = max(lead_time(policy, wp), 1.0)
    if mem.forecaster is None or mem.forecaster.config.horizon != horizon:
        mem.forecaster = Forecaster(ForecastConfig(horizon=horizon))
    return mem.forecaster


def _in_order(mem: WorkloadMemory, now: float) -> bool:
    """Is `now` at or after the models' last sample? A reconcile dated earlier (a clock step
    back, an old snapshot replayed) must not fail: it is planned without feeding the models."""
    short, forecaster = mem.short.time, mem.forecaster
    last = forecaster.state.last_time if forecaster is not None else None
    return (short is None or now >= short) and (last is None or now >= last)


def warm(
    policy: Policy,
    memory: Memory,
    name: str,
    history: Iterable[tuple[float, float | None]],
) -> None:
    """Feed a workload's forecaster and short-term model past loads (oldest first, causal),
    e.g. a Prometheus range query or a snapshot's history; None marks a missing sample."""
    wp = policy.workload(name)
    mem = memory.of(name)
    forecaster = _forecaster(policy, wp, mem)
    for t, value in history:
        good = value if _valid_load(value) else None
        forecaster.observe(t, good)
        if good is not None:
            surge.observe(mem.short, policy.surge, t, good)


def _sized(
    policy: Policy,
    wp: WorkloadPolicy,
    seen: WorkloadObservation,
    mem: WorkloadMemory,
    now: float,
    load: float,
) -> tuple[float, ForecastUse]:
    """Feed the observed load to the models; the demand to size for over the lead time."""
    forecaster = _forecaster(policy, wp, mem)
    if _in_order(mem, now):
        forecaster.observe(now, load)
        ready = seen.ready if seen.ready is not None else seen.current
        surge.step(mem.short, policy.surge, now, load, ready * wp.capacity)
    settings = policy.forecast
    horizon = forecaster.config.horizon
    forecast = forecaster.predict(now, horizon, settings.quantile, settings.method)
    if settings.method == "reactive":
        return load, ForecastUse(
            forecast.method, forecast.reason, horizon, load, 0.0, "load", forecast.scores
        )
    band = surge.band(mem.short, surge.z_score(settings.quantile))
    demand, basis = forecast.value, "forecast"
    # A daily rise recent days agree on, ahead of the lead time: the load at hand times it (the
    # envelope says how much, not at what level: days differ in level far more than in shape).
    rise = (
        forecaster.envelope_rise(now, horizon) if settings.method in ("auto", "seasonal") else None
    )
    envelope, envelope_name = (load * rise[0], rise[1]) if rise is not None else (0.0, "")
    candidates = ((band, "band"), (load, "load"), (envelope, envelope_name))
    for value, name in candidates:  # never below the load at hand
        if value > demand:
            demand, basis = value, name
    return demand, ForecastUse(
        forecast.method, forecast.reason, horizon, forecast.value, band, basis, forecast.scores
    )


def _needed(wp: WorkloadPolicy, demand: float) -> int:
    """The fewest replicas that meet the workload's SLO for `demand`, ignoring every bound."""
    if not (0 <= demand < math.inf and 0 < wp.capacity < math.inf):
        Workload(wp.name, demand, 0, 0, 0, wp.capacity, wp.slo)  # raises the error it explains
    return needed_replicas(Load(demand, wp.capacity, wp.slo))


def _idle(
    policy: Policy,
    w: Workload,
    needed: int,
    own_floor: int,
    mem: WorkloadMemory,
    now: float,
    surging: bool,
) -> str | None:
    """Why the idle replicas stay (None: they may go), once what they cost is counted.

    Idle: the replicas above what the load needs at the SLO and the floors need (not counting
    rate limits, windows or budget; `needed`: `needed_replicas(w)`). They stay while what they
    have cost since the excess appeared, plus one more interval, is below
    `behavior.change_cost`: a one-replica dip waits ten minutes (by default), a large drop goes
    at once, and a slow decline moves in steps. A linear churn term in the objective cannot do
    this: removing one replica always saves more than a per-replica churn below the price. The
    count starts over when the replicas change, the excess is gone, or a surge starts.
    """
    cost, current = policy.behavior.change_cost, w.current
    idle = 0
    if current > own_floor and not surging:
        idle = current - max(own_floor, needed)
        # The tolerance: a scale-down moves more than `tolerance` of the replicas or waits, as
        # the HPA's does. Counted against what the windows and rate limits let go (w.lo), or a
        # sliding window would step down a replica or two at every reconcile.
        movable = current - max(own_floor, needed, w.lo)
        if 0 < movable <= policy.behavior.tolerance * current:
            mem.idle_paid, mem.idle_at, mem.idle_current = 0.0, None, current
            return (
                f"current replicas ({movable} could go: within the "
                f"{policy.behavior.tolerance:.0%} tolerance)"
            )
    if cost <= 0 or idle <= 0:
        mem.idle_paid, mem.idle_at, mem.idle_current = 0.0, None, current
        return None
    # The operator reconciles at least a second apart; a zero interval must not hold for ever.
    step = max(policy.interval, MIN_INTERVAL)
    if mem.idle_at is None or mem.idle_current != current:
        mem.idle_paid, mem.idle_at, mem.idle_current = 0.0, now, current  # idle from now on
    elif now >= mem.idle_at:
        # At most one interval: a reconcile after a gap (an operator restart) has not seen the
        # replicas idle all that time; one dated before the last adds nothing.
        mem.idle_paid += idle * min(now - mem.idle_at, step)
        mem.idle_at = now
    if mem.idle_paid + idle * step >= cost:
        return None  # one more interval would cost more than the change: let them go
    return (
        f"current replicas ({idle} idle: {mem.idle_paid / 60:.1f} of the {cost / 60:g} "
        "replica-minutes a scale change is worth)"
    )


def _workload(
    policy: Policy, wp: WorkloadPolicy, seen: WorkloadObservation, mem: WorkloadMemory, now: float
) -> tuple[Workload, WorkloadInput, int, Hold | None, int]:
    """The workload to plan, what it was given, its own floor, its soft floor (None: none),
    and the replicas its demand needs (`needed_replicas`, computed once: the rules below and
    the stabilisation windows all read it)."""
    demand, missing_floor, source, note = _demand(policy, wp, seen, mem, now)
    events = active_events(policy.events, wp.startup, now)
    use: ForecastUse | None = None
    if source == "observed":
        # Remember the last load before each event starts: the baseline its multiplier applies to.
        for e in policy.events:
            if now < e.start:
                mem.baselines[e.name] = demand
        demand, use = _sized(policy, wp, seen, mem, now, demand)
    else:
        forecaster = _forecaster(policy, wp, mem)
        if _in_order(mem, now):
            forecaster.observe(now, None)
    # Each event implies its multiplier times its own baseline; the largest implied load wins
    # (a late event on top of a high load can imply more than an early one with a larger factor).
    for e in events:
        factor, by = event_multiplier((e,), wp.name)
        if by is not None and by in mem.baselines and mem.baselines[by] * factor > demand:
            demand = mem.baselines[by] * factor
            if use is not None:
                use = replace(use, basis=f"event {by}")
    current = seen.current
    # A scale-up sizes for where the band settles if the load holds: the band's level takes a
    # couple of minutes to catch up with a new load, and following it would add a replica or two
    # at every reconcile. Never lower than the demand, so never less safe.
    banded = use is not None and policy.forecast.method != "reactive"
    needed = _needed(wp, demand)
    if banded and seen.load is not None and needed > current:
        z = surge.z_score(policy.forecast.quantile)
        settled = surge.settled_band(mem.short, policy.surge, z, seen.load, policy.interval)
        if settled > demand and use is not None:
            demand, use = settled, replace(use, band=settled, basis="band")
            needed = _needed(wp, demand)
    floor, floor_event = event_floor(events, wp.name)

    rules = policy.behavior
    surging = mem.short.in_surge
    up_cap = scale_up_limit(current, rules.up, mem.changes, now)
    recs, ordered = mem.recommendations, mem.in_order
    if not surging:  # a surge is not stabilised upward: it scales up as fast as the limits allow
        up_cap = min(up_cap, stabilized_ceiling(current, rules.up, recs, now, ordered=ordered))
    down_floor = max(
        scale_down_limit(current, rules.down, mem.changes, now),
        stabilized_floor(current, rules.down, recs, now, ordered=ordered),
    )
    hi, ceiling_reason = wp.max_replicas, "maxReplicas"
    if up_cap < hi:
        hi, ceiling_reason = up_cap, "the scale-up rate limit (behavior.scaleUp)"
    if not surging and _headroom_within_tolerance(rules.tolerance, wp, seen, needed):
        hi, ceiling_reason = current, UP_TOLERANCE
    # The absolute minimum wins over rate limits, as in the HPA. So does an event's floor: it is a
    # declared minimum for a time (as when a schedule raises an HPA's minReplicas, which the HPA
    # then applies at once), and its pods must be ready by the lead time whatever the policy.
    hi = max(hi, wp.min_replicas, min(floor, wp.max_replicas))
    if missing_floor > hi:  # fail closed: missing data never scales down, not even to the max
        hi, ceiling_reason = missing_floor, MISSING_FLOOR
    lo, floor_reason = wp.min_replicas, "minReplicas"
    # On a tie the first named wins: the missing-data rule says more than the window it equals.
    for value, why in (
        (missing_floor, MISSING_FLOOR),
        (down_floor, "the scale-down limits (behavior.scaleDown)"),
        (floor, f"event {floor_event} minReplicas"),
    ):
        if value > lo:
            lo, floor_reason = value, why
    lo = min(lo, hi)
    if seen.hold is not None:
        # Not ours to change right now; still planned so its share of the budget is counted.
        lo = hi = current
        floor_reason = ceiling_reason = seen.hold

    churn = wp.churn if wp.churn is not None else 0.1 * wp.price
    # In field order, not by keyword: CPython 3.13 builds a dict for a keyword call to a class.
    workload = Workload(
        wp.name,
        demand,
        current,
        lo,
        hi,
        wp.capacity,
        wp.slo,
        wp.priority,
        wp.value,
        wp.price,
        wp.cpu,
        wp.memory,
        churn,
        floor_reason,
        ceiling_reason,
    )
    names = tuple([e.name for e in events])  # a list: faster than a generator, even empty
    # What this reconcile recommends before rate limits: the floor of later stabilisation windows.
    own_floor = min(max(wp.min_replicas, floor, missing_floor), wp.max_replicas)
    hold: Hold | None = None
    if seen.hold is None:  # a surge holds everything (and restarts the idle count)
        idle = _idle(policy, workload, needed, own_floor, mem, now, surging)
        kept = SURGE_FLOOR if surging else idle
        hold = Hold(current, kept) if kept is not None else None
        step = _up_step(policy.behavior.tolerance, workload, needed)
        if step is not None and (hold is None or step.keep > hold.keep):
            hold = step
    given = WorkloadInput(
        wp.name,
        seen.load,
        demand,
        source,
        names,
        note,
        use,
        mem.short.surge_reason if surging else None,
    )
    return workload, given, own_floor, hold, needed


SURGE_FLOOR = "current replicas (surge: no scale-down until calm)"


@quick_init
@dataclass(frozen=True)
class Hold:
    """A soft floor from the behaviour rules: keep at least `keep` replicas, because `why`."""

    keep: int
    why: str
    step: bool = False  # a scale-up's whole step: dropped when the shared limits can't hold it


UP_TOLERANCE = (
    "current replicas (the load fits them: the headroom it lacks is within half the tolerance)"
)


def _headroom_within_tolerance(
    tolerance: float, wp: WorkloadPolicy, seen: WorkloadObservation, needed: int
) -> bool:
    """Does a scale-up wait, as the HPA's tolerance makes one wait? Only when it would add
    headroom alone, and little: the load at hand fits the current replicas at the SLO, and the
    demand (the load and the headroom the forecast, the band or an envelope add) needs at most
    half the tolerance more (5 % by default). Chasing that was a scale change each time the band
    or an envelope moved a little; the replicas the load itself needs are never delayed.
    `needed`: `needed_replicas` for the demand."""
    current = seen.current
    if tolerance <= 0 or needed <= current or not _valid_load(seen.load):
        return False
    assert seen.load is not None
    return needed <= current * (1 + tolerance / 2) + 1e-9 and _needed(wp, seen.load) <= current


def _up_step(tolerance: float, w: Workload, needed: int) -> Hold | None:
    """A scale-up adds at least half the tolerance (5 % by default): on a ramp the replicas
    follow the load in a few steps instead of one replica per reconcile. Never above the
    ceiling (maxReplicas, the scale-up rate limit). `needed`: `needed_replicas(w)`."""
    if tolerance <= 0 or needed <= w.current:
        return None
    step = min(math.ceil(w.current * (1 + tolerance / 2) - 1e-9), w.hi)
    if step <= needed:
        return None
    return Hold(
        step, f"a scale-up adds at least {tolerance / 2:.0%} (behavior tolerance)", step=True
    )


def _holds_fit(
    budget: Budget, workloads: list[Workload], holds: list[Hold | None], needs: list[int]
) -> bool:
    """Do the shared limits hold every workload at its own best count with every hold kept
    (each at least what it needs and what its hold keeps, within its bounds)? Then no limit can
    bind the held plan, and a slack limit changes nothing."""
    counts = []
    for w, hold, needed in zip(workloads, holds, needs, strict=True):
        wanted = max(needed, hold.keep if hold is not None else 0)
        counts.append(min(max(wanted, w.lo), w.hi))
    return all(
        sum(usage(w, resource, n) for w, n in zip(workloads, counts, strict=True))
        <= limit * (1 + REL_TOL)
        for resource, limit in budget.limits().items()
    )


def _hold(
    workloads: list[Workload], holds: list[Hold | None], shares: list[int] | None
) -> list[Workload]:
    """The behaviour's soft floors: a workload in a surge, or with idle replicas not yet worth
    a change, keeps its replicas, and a scale-up takes a whole step (`holds`), unless a shared
    budget gives those replicas to a workload with a higher priority (`shares`: the joint plan
    without behaviour bounds): otherwise, when every workload holds at once, a full budget
    could never move at all."""
    out: list[Workload] = []
    for i, w in enumerate(workloads):  # not zip(strict=True): its keyword call is the slow path
        hold = holds[i]
        if hold is not None and w.lo != w.hi:
            keep = hold.keep if shares is None else min(hold.keep, shares[i])
            if keep > w.lo:
                w = _floored(w, min(keep, w.hi), hold.why)
        out.append(w)
    return out


def _floored(w: Workload, lo: int, why: str) -> Workload:
    """`replace(w, lo=lo, floor_reason=why)` without validating `w` again: `lo` is within
    [w.lo, w.hi], so the copy is as valid as `w` (a replay raises a floor every few steps)."""
    raised = object.__new__(Workload)
    raised.__dict__.update(w.__dict__, lo=lo, floor_reason=why)
    return raised


def _joint_plan(
    policy: Policy, workloads: list[Workload], floors: list[int], options: SolveOptions | None
) -> Plan:
    """The plan without behaviour bounds: each workload between its own floor and maxReplicas."""
    free = tuple(
        replace(w, lo=f, hi=max(f, policy.workload(w.name).max_replicas))
        for w, f in zip(workloads, floors, strict=True)
    )
    quick = replace(options or SolveOptions(), explain=False)
    return plan(Problem(free, policy.budget), quick)


def _joint_shares(
    policy: Policy, workloads: list[Workload], floors: list[int], options: SolveOptions | None
) -> list[int] | None:
    """Each workload's count in the joint plan without behaviour bounds; None when no shared
    limit binds that plan (every workload then gets its own best: nothing to share)."""
    joint = _joint_plan(policy, workloads, floors, options)
    return [d.desired for d in joint.workloads] if joint.binding else None


def decide(
    policy: Policy,
    observation: Observation,
    memory: Memory,
    options: SolveOptions | None = None,
) -> Decision:
    """Plan every workload of `policy` at `observation.at`.

    The changes it asks for (`Decision.changes`) count against the behaviour rate limits of later
    reconciles once the caller reports them applied (`Memory.applied`).
    """
    now = observation.at
    workloads: list[Workload] = []
    inputs: list[WorkloadInput] = []
    floors: list[int] = []
    holds: list[Hold | None] = []
    needs: list[int] = []
    held: set[str] = set()
    left_out: dict[str, str] = {}
    for wp in policy.workloads:
        seen = observation.workloads.get(wp.name)
        if seen is None:
            raise KeyError(f"no observation for workload {wp.name}")
        mem = memory.of(wp.name)
        if seen.unreadable is not None:
            if mem.last_current is None:
                left_out[wp.name] = f"target unreadable ({seen.unreadable})"
                continue
            # Its replicas still take their share of a shared budget: as last seen, unchanged.
            seen = replace(
                seen,
                current=mem.last_current,
                ready=None,
                hold=f"target unreadable ({seen.unreadable}); "
                f"held at its last known {mem.last_current} replicas",
            )
        if seen.hold is not None:
            held.add(wp.name)
        mem.forget_before(now - HISTORY_SECONDS)
        if mem.last_current is None:
            # On first sight the current count is the first recommendation, as the HPA records
            # it: a new or restarted controller honours the scale-down stabilisation window
            # instead of acting on one reading.
            mem.recommend(now, seen.current)
        mem.last_current = seen.current
        workload, given, own_floor, hold, needed = _workload(policy, wp, seen, mem, now)
        workloads.append(workload)
        inputs.append(given)
        floors.append(own_floor)
        holds.append(hold)
        needs.append(needed)

    # The stabilisation windows remember what this reconcile recommends before rate limits. With
    # a shared limit that binds, that is the joint plan without behaviour bounds, not each
    # workload's own need: otherwise a steady low-priority workload would recommend its full need
    # forever, its scale-down window would never let go, and the limit could never move its
    # replicas to a workload that needs them more. The same joint plan bounds what a hold may
    # keep. A limit that binds neither that plan nor the held one changes nothing: no joint
    # shares, so holds, windows and rate limits act exactly as without the limit.
    shares: list[int] | None = None
    if policy.budget.limits():
        if not _holds_fit(policy.budget, workloads, holds, needs):
            # A whole step is worth taking only while no shared limit binds: its replicas would
            # be a floor the limit cannot take back (other workloads' windows are floors too).
            holds = [None if h is not None and h.step else h for h in holds]
        shares = _joint_shares(policy, workloads, floors, options)
    bounded = _hold(workloads, holds, shares)
    result = plan(Problem(tuple(bounded), policy.budget), options)
    if shares is None and result.binding and any(h is not None for h in holds):
        # The held replicas are what makes the limit bind: they yield to the joint plan.
        shares = [d.desired for d in _joint_plan(policy, workloads, floors, options).workloads]
        bounded = _hold(workloads, holds, shares)
        result = plan(Problem(tuple(bounded), policy.budget), options)
    workloads = bounded

    for i, w in enumerate(workloads):
        mem = memory.of(w.name)
        wp = policy.workload(w.name)
        recommendation = min(max(needs[i], floors[i]), wp.max_replicas)
        if shares is not None:
            recommendation = min(recommendation, shares[i])
        mem.recommend(now, recommendation)
    changes = tuple(
        [
            Change(d.name, now, d.current, d.desired)
            for d in result.workloads
            if d.desired != d.current and d.name not in held
        ]
    )  # lists, not generators: this runs at every reconcile
    metrics_ok = all([i.source == "observed" for i in inputs])
    return Decision(now, result, tuple(inputs), metrics_ok, changes, left_out)
