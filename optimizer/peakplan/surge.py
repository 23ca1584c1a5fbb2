"""The short-term model and the surge path: the recent level and volatility of one load.

Updated on every observed load, with EWMAs in continuous time (irregular samples are fine):

- level: where the load has been over the last couple of minutes;
- deviation: the mean absolute distance of an observation from the level before it (the recent
  volatility; a normal error's sigma is about 1.25 times it). The EWMA starts from nothing, so
  for its first `deviation_tau` it is read divided by the weight it has gathered (`weight`, the
  bias correction of an EWMA started at zero): a model that has seen one jump from 32 to 52
  says "20 off", not "0.3 off", and a cold start sizes with the volatility it has seen.

(The slope lives in the forecaster's trend model, which is used only when it scores well.
Carrying the last load up a recent slope during a surge was tried and dropped: after a step,
which is what most surges are, the slope overshoots; on a ramp the band already follows.)

It serves two purposes:

- `band`: an upper quantile of the near-term load from the recent volatility alone,
  level + z(q) x sigma. The forecaster's models are scored over a day; the band sees that the last
  hour is noisier (or calmer) than the day, so the planner never sizes below it;
- the surge path (`step`): a surge starts when the observed load is beyond what the ready pods
  serve (capacity at 100 % x threshold) or jumps `sigmas` sigmas above the recent level; while it
  lasts the controller scales up without upward stabilisation and never scales down; it ends
  after a calm window without either sign.

State is a plain dataclass (deep-copyable); no clock: times come with the observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

from peakplan.policy import SurgeSettings

SIGMA_PER_MAE = math.sqrt(math.pi / 2)  # sigma of a normal error from its mean absolute error


@dataclass(slots=True)
class ShortTerm:
    level: float = 0.0
    deviation: float = 0.0  # EWMA of |observation - level|
    weight: float = 0.0  # the weight the deviation's EWMA has gathered: 1 - exp(-time seen / tau)
    last: float | None = None  # the last observed load
    time: float | None = None  # when it was observed
    surge_since: float | None = None  # None: not in a surge
    calm_since: float | None = None  # in a surge: since when neither sign was seen
    surge_reason: str = ""

    @property
    def in_surge(self) -> bool:
        return self.surge_since is not None

    @property
    def sigma(self) -> float:
        if self.weight <= 0:
            return 0.0
        return SIGMA_PER_MAE * self.deviation / self.weight


def observe(state: ShortTerm, settings: SurgeSettings, t: float, value: float) -> None:
    """Fold one observed load (requests/s, >= 0) at time t into the level and deviation."""
    if state.time is None or state.last is None:
        state.level, state.deviation, state.weight = value, 0.0, 0.0
        state.last, state.time = value, t
        return
    dt = t - state.time
    if dt < 0:
        raise ValueError(f"observation at {t} is before the previous one at {state.time}")
    deviation_weight = -math.expm1(-max(dt, 1e-9) / settings.deviation_tau)
    state.deviation += deviation_weight * (abs(value - state.level) - state.deviation)
    state.weight += deviation_weight * (1.0 - state.weight)
    state.level += -math.expm1(-max(dt, 1e-9) / settings.level_tau) * (value - state.level)
    state.last, state.time = value, t


def jump(state: ShortTerm, settings: SurgeSettings, value: float) -> bool:
    """Is `value` a jump above the recent level (call before `observe` folds it in)?"""
    if state.time is None:
        return False
    rise = value - state.level
    return rise > max(settings.sigmas * state.sigma, settings.min_jump * state.level, 0.0)


def step(
    state: ShortTerm, settings: SurgeSettings, t: float, value: float, ready_capacity: float
) -> None:
    """One observed load: update the model and enter, keep or leave surge mode."""
    over = value > ready_capacity * settings.threshold
    jumped = jump(state, settings, value)
    before = state.level
    observe(state, settings, t, value)
    if over or jumped:
        if state.surge_since is None:
            state.surge_since = t
        state.calm_since = None
        state.surge_reason = (
            f"load {value:,.1f} rps > ready capacity {ready_capacity:,.1f} rps"
            if over
            else f"load jumped to {value:,.1f} rps from a recent level of {before:,.1f} rps"
        )
        return
    if state.surge_since is None:
        return
    if state.calm_since is None:
        state.calm_since = t
    if t - state.calm_since >= settings.calm:
        state.surge_since = state.calm_since = None
        state.surge_reason = ""


@lru_cache(maxsize=64)
def z_score(quantile: float) -> float:
    """The standard normal quantile, e.g. 1.28 for 0.9."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return NormalDist().inv_cdf(quantile)


def band(state: ShortTerm, z: float) -> float:
    """The recent level plus z sigmas of the recent volatility (0 before any observation)."""
    if state.time is None:
        return 0.0
    return max(0.0, state.level + z * state.sigma)


# How long `settled_band` follows the band: the level settles within about one level_tau, but
# the deviation a step adds peaks later (its memory is longer), so three level_taus.
SETTLE_TAUS = 3.0


def settled_band(
    state: ShortTerm, settings: SurgeSettings, z: float, load: float, interval: float
) -> float:
    """The highest band over the next `SETTLE_TAUS` x `level_tau` seconds if every
    observation, one per `interval`, is `load`: where the band is heading while its level
    catches up with the load and its deviation takes in the step. Sizing a scale-up for it takes
    one step instead of a string of one-replica steps."""
    if state.time is None or state.last is None or interval <= 0:
        return band(state, z)
    # `observe` and `band` on a copy, inlined: this runs at every scale-up of a replay.
    level, deviation, weight = state.level, state.deviation, state.weight
    level_tau, deviation_tau = settings.level_tau, settings.deviation_tau
    highest = band(state, z)
    t = before = state.time
    end = t + SETTLE_TAUS * level_tau
    while t < end:
        t += interval
        dt = max(t - before, 1e-9)
        gain = -math.expm1(-dt / deviation_tau)
        deviation += gain * (abs(load - level) - deviation)
        weight += gain * (1.0 - weight)
        level += -math.expm1(-dt / level_tau) * (load - level)
        before = t
        highest = max(highest, level + z * (SIGMA_PER_MAE * deviation / weight), 0.0)
    return highest
