"""Causal, online forecasting of one workload's load (requests/s), with an accuracy gate.

Three models run side by side on every observation:

- seasonal: daily and weekly profiles of 5-minute bucket means (seasonal naive, smoothed over
  cycles with an EWMA), times a level ratio (recent actual / what the profile expected for the
  same buckets, over about 10 minutes) that follows growth and day-to-day differences;
- trend: Holt's linear model in continuous time (EWMA level and EWMA slope with time
  constants, so irregular or missing samples are fine), damped when extrapolated;
- reactive: the last value.

Each model keeps scoring itself out of sample: at the end of every scoring bucket (1 min) each
issues a forecast of the bucket `horizon` ahead; when that bucket ends, its mean is the truth.
Errors are EWMAs of |forecast - truth| over about a day, and each model also scores two simple
baselines on the *same* buckets (paired comparison): the last value and the recent level (the
trend model's level without its slope). The gate: a model is used only when it has enough
history (seasonal: a full cycle), enough scored buckets, and cuts the better baseline's error
by `margin` (20 %). Beating the recent level too means a model wins by structure (a cycle, a
slope), not merely by averaging noise. Otherwise the forecast is reactive. The daily and weekly
cycles are scored separately and reported as "seasonal" with the cycle named in the reason.

The forecast the planner sizes for is the peak expected rate over [now, now + horizon] (the
current observation included: that load is already here), raised by a normal quantile of the
model's relative error: value = peak x (1 + z(q) x 1.25 x WAPE x sqrt(horizon / scored
horizon)). Cost per observation is O(1); per prediction O(horizon / 5 min).

State is plain dataclasses (deep-copyable, `to_dict`/`from_dict`) so the operator can keep it
in memory, persist it, or rebuild it from a Prometheus range query with `warm`.
"""

from __future__ import annotations

import copy
import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Literal

from peakplan import envelope
from peakplan.envelope import EnvelopeState
from peakplan.slots import UNSEEN, Slots, as_slots, to_optional, unseen
from peakplan.values import quick_init

Method = Literal["seasonal", "trend", "reactive"]
Requested = Literal["auto", "seasonal", "trend", "reactive"]
Model = Literal["daily", "weekly", "trend", "reactive", "level"]

DAY = 86400.0
WEEK = 7 * DAY
MODELS: tuple[Model, ...] = ("daily", "weekly", "trend", "reactive", "level")
CANDIDATES: tuple[Model, ...] = ("daily", "weekly", "trend")  # the models the gate may pick
METHOD_OF: dict[Model, Method] = {
    "daily": "seasonal",
    "weekly": "seasonal",
    "trend": "trend",
    "reactive": "reactive",
    "level": "reactive",  # a baseline only: never chosen, never reported as a method
}
SIGMA_PER_MAE = math.sqrt(math.pi / 2)  # sigma of a normal error from its mean absolute error
EPS = 1e-12


@dataclass(frozen=True)
class ForecastConfig:
    horizon: float = 300.0  # seconds ahead the models are scored at (the planner's lead time)
    score_bucket: float = 60.0  # truth = mean of the observations in each bucket
    season_bucket: float = 300.0  # resolution of the daily and weekly profiles
    level_tau: float = 120.0  # trend: memory of the level (s)
    slope_tau: float = 900.0  # trend: memory of the slope (s)
    damping: float = 1800.0  # trend: time constant with which extrapolation flattens (s)
    ratio_tau: float = 600.0  # seasonal: memory of the level ratio (s)
    daily_alpha: float = 0.3  # seasonal: weight of the newest day in the daily profile
    weekly_alpha: float = 0.5  # seasonal: weight of the newest week in the weekly profile
    ratio_limit: float = 5.0  # seasonal: level ratio clamped to [1/limit, limit]
    score_tau: float = DAY  # memory of the error scores (s): a full daily cycle
    margin: float = 0.2  # the gate: a model must cut the last value's error by this share
    min_scored: int = 60  # scored buckets a model needs before it may be used
    coverage: float = 0.9  # share of a cycle's profile slots seen before it may be used

    def __post_init__(self) -> None:
        if min(self.horizon, self.score_bucket, self.season_bucket) <= 0:
            raise ValueError("horizon and buckets must be > 0 seconds")
        if (DAY / self.season_bucket) % 1:
            raise ValueError("season_bucket must divide a day")
        if not 0 <= self.margin < 1:
            raise ValueError("margin must be in [0, 1)")

    @property
    def lead_buckets(self) -> int:
        """How many scoring buckets ahead each scored forecast looks."""
        return max(1, round(self.horizon / self.score_bucket))


@quick_init
@dataclass(frozen=True)
class Forecast:
    value: float  # the upper quantile of the peak rate over the horizon: what to size for
    mean: float  # the expected peak rate over the horizon (no uncertainty margin)
    method: Method
    reason: str
    scores: dict[str, float]  # method -> relative error (WAPE) at the scored horizon


@dataclass(slots=True)
class Bucket:
    """The running mean of the observations of one time bucket."""

    index: int | None = None
    total: float = 0.0
    count: int = 0

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass(slots=True)
class TrendState:
    level: float = 0.0
    slope: float = 0.0  # requests/s per second
    time: float | None = None  # time of the last update


@dataclass(slots=True)
class SeasonalState:
    period: int  # profile slots per cycle
    profile: Slots  # UNSEEN: a slot not seen yet (numbers and None, a saved state, are taken)
    seen: int = 0  # slots filled at least once
    actual: float = 0.0  # EWMA of recent bucket means ...
    expected: float = 0.0  # ... and of what the profile expected for the same buckets
    samples: int = 0

    def __post_init__(self) -> None:
        self.profile = as_slots(self.profile)

    @classmethod
    def empty(cls, period: int) -> SeasonalState:
        return cls(period, unseen(period))


@dataclass(slots=True)
class ErrorScore:
    """EWMAs over the buckets this model forecast, paired with both baselines on them."""

    n: int = 0
    error: float = 0.0  # |forecast - truth|
    reactive_error: float = 0.0  # |last value - truth|
    level_error: float = 0.0  # |recent level - truth|
    truth: float = 0.0  # |truth|

    @property
    def wape(self) -> float:
        return self.error / self.truth if self.truth > EPS else 0.0

    @property
    def baseline_error(self) -> float:
        """The better simple baseline on the same buckets: the last value or the recent level."""
        return min(self.reactive_error, self.level_error)

    @property
    def ratio(self) -> float:
        """This model's error as a share of the better baseline's; 1 when both are nil."""
        baseline = self.baseline_error
        if baseline > EPS:
            return self.error / baseline
        return 1.0 if self.error <= EPS else math.inf


@dataclass(slots=True)
class Pending:
    target: int  # the scoring bucket forecast
    predictions: dict[str, float]  # model -> forecast of its mean


@dataclass(slots=True)
class ForecasterState:
    first_time: float | None = None
    last_time: float | None = None
    last_value: float | None = None
    score_bucket: Bucket = field(default_factory=Bucket)
    season_bucket: Bucket = field(default_factory=Bucket)
    trend: TrendState = field(default_factory=TrendState)
    daily: SeasonalState = field(default_factory=lambda: SeasonalState.empty(288))
    weekly: SeasonalState = field(default_factory=lambda: SeasonalState.empty(2016))
    scores: dict[str, ErrorScore] = field(default_factory=lambda: {m: ErrorScore() for m in MODELS})
    pending: list[Pending] = field(default_factory=list)
    envelope: EnvelopeState = field(default_factory=lambda: EnvelopeState.empty(288))
    # The envelope's forecasts of the load at the far end of its window, and their score
    # ("envelope" against "reactive", the last value).
    envelope_pending: list[Pending] = field(default_factory=list)
    envelope_score: ErrorScore = field(default_factory=ErrorScore)
    # The weekly envelope: the same, slot by slot of the week over the last weeks.
    weekly_envelope: EnvelopeState = field(default_factory=lambda: EnvelopeState.weekly(288))
    weekly_envelope_pending: list[Pending] = field(default_factory=list)
    weekly_envelope_score: ErrorScore = field(default_factory=ErrorScore)

    @classmethod
    def for_config(cls, config: ForecastConfig) -> ForecasterState:
        per_day = round(DAY / config.season_bucket)
        return cls(
            daily=SeasonalState.empty(per_day),
            weekly=SeasonalState.empty(7 * per_day),
            envelope=EnvelopeState.empty(per_day),
            weekly_envelope=EnvelopeState.weekly(per_day),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (floats, ints, None, lists, dicts; a slot without a value is
        None)."""
        return asdict(self, dict_factory=_plain)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ForecasterState:
        return cls(
            first_time=data["first_time"],
            last_time=data["last_time"],
            last_value=data["last_value"],
            score_bucket=Bucket(**data["score_bucket"]),
            season_bucket=Bucket(**data["season_bucket"]),
            trend=TrendState(**data["trend"]),
            daily=_seasonal_from_dict(data["daily"]),
            weekly=_seasonal_from_dict(data["weekly"]),
            scores={m: ErrorScore(**s) for m, s in data["scores"].items()},
            pending=_pending_from_list(data["pending"]),
            envelope=_envelope_from_dict(
                data.get("envelope"), EnvelopeState.empty(len(data["daily"]["profile"]))
            ),
            envelope_pending=_pending_from_list(data.get("envelope_pending", [])),
            envelope_score=ErrorScore(**data.get("envelope_score", {})),
            weekly_envelope=_envelope_from_dict(
                data.get("weekly_envelope"), EnvelopeState.weekly(len(data["daily"]["profile"]))
            ),
            weekly_envelope_pending=_pending_from_list(data.get("weekly_envelope_pending", [])),
            weekly_envelope_score=ErrorScore(**data.get("weekly_envelope_score", {})),
        )


def _plain(fields: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: to_optional(v) if isinstance(v, array) else v for k, v in fields}


def _pending_from_list(data: list[Mapping[str, Any]]) -> list[Pending]:
    return [Pending(p["target"], dict(p["predictions"])) for p in data]


def _envelope_from_dict(data: Mapping[str, Any] | None, empty: EnvelopeState) -> EnvelopeState:
    """The envelope of a saved state (a state saved before it existed: `empty`)."""
    if data is None:
        return empty
    if data.get("width", 1) != 1 or data["period"] != empty.period:
        return empty  # saved with wider slots (15 minutes, before 5): learnt again
    values = {k: v for k, v in data.items() if k != "width"}
    return EnvelopeState(**{**values, "row_day": list(data["row_day"])})


def _seasonal_from_dict(data: Mapping[str, Any]) -> SeasonalState:
    return SeasonalState(**data)


class Forecaster:
    """Online forecaster for one workload. Feed `observe` in time order; `predict` is pure."""

    def __init__(
        self, config: ForecastConfig | None = None, state: ForecasterState | None = None
    ) -> None:
        self.config = config or ForecastConfig()
        self.state = state or ForecasterState.for_config(self.config)
        # The gate's last answer and what it was computed from (`_choose`): the scores change
        # once a scoring bucket, the reasons' text would otherwise be rebuilt at every predict.
        # Both caches know the scores by `_scores_version`.
        self._gate: tuple[tuple[object, ...], tuple[Model, str]] | None = None
        self._scored: tuple[tuple[object, ...], dict[str, float]] | None = None
        if self.state.daily.period * self.config.season_bucket != DAY:
            raise ValueError("the state was built for another season_bucket than the config's")

    def copy(self) -> Forecaster:
        return Forecaster(self.config, copy.deepcopy(self.state))

    def warm(self, history: Iterable[tuple[float, float | None]]) -> None:
        """Replay history (e.g. a Prometheus range query), oldest first."""
        for t, value in history:
            self.observe(t, value)

    def observe(self, t: float, value: float | None) -> None:
        """One observation of the rate at time t; None (or NaN, as Prometheus) is missing."""
        s = self.state
        if s.last_time is not None and t < s.last_time:
            raise ValueError(f"observation at {t} is before the previous one at {s.last_time}")
        if value is not None and not math.isfinite(value):
            value = None
        if value is not None and value < 0:
            raise ValueError(f"a rate cannot be negative: {value} at {t}")
        self._roll_season_bucket(t)
        self._roll_score_bucket(t)
        s.last_time = t
        if value is None:
            return
        if s.first_time is None:
            s.first_time = t
        _add(s.score_bucket, value)
        _add(s.season_bucket, value)
        _update_trend(s.trend, self.config, t, value)
        s.last_value = value

    def predict(
        self, t: float, horizon: float, quantile: float = 0.9, method: Requested = "auto"
    ) -> Forecast:
        """The rate to size for over [t, t + horizon]; does not change the state.

        `method` "auto" lets the gate choose; a named method is used whenever it can forecast
        at all (enough history), gate or not, as a policy's `forecast.method` asks.
        """
        s = self.state
        scores = self.method_scores()
        if s.last_value is None:
            return Forecast(0.0, 0.0, "reactive", "reactive: no observations yet", scores)
        model, reason = self._choose() if method == "auto" else self._forced(method)
        peak = max(s.last_value, self._path_peak(model, t, max(horizon, 0.0)))
        spread = SIGMA_PER_MAE * s.scores[model].wape * self._horizon_factor(horizon)
        value = max(0.0, peak * (1.0 + _z(quantile) * spread))
        return Forecast(value, peak, METHOD_OF[model], reason, scores)

    def method_scores(self) -> dict[str, float]:
        """WAPE per method at the scored horizon (seasonal: the better cycle), once scored."""
        # The scores change once a scoring bucket: the last answer is reused (as a new dict)
        # while the values it was computed from are the same.
        key = self._scores_version()
        if self._scored is None or self._scored[0] != key:
            self._scored = (key, self._method_scores())
        return dict(self._scored[1])

    def _scores_version(self) -> tuple[ForecasterState, int | None]:
        """What identifies the scores without reading them: they change only when a scoring
        bucket ends (`_roll_score_bucket` resolves its forecasts, then moves the bucket's
        index on), so the state and its bucket index do. The state is compared as itself,
        kept referenced in the caches: another state is another version."""
        return self.state, self.state.score_bucket.index

    def _method_scores(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for model in MODELS:
            score = self.state.scores[model]
            if score.n == 0 or model == "level":
                continue
            method = METHOD_OF[model]
            out[method] = min(out.get(method, math.inf), score.wape)
        return out

    # -- the gate --------------------------------------------------------------------------

    def _choose(self) -> tuple[Model, str]:
        """The model with the lowest paired error that passes the gate, and why."""
        cfg = self.config
        waiting: list[str] = []
        ready: list[Model] = []
        for model in CANDIDATES:
            # A week of history is rare; do not clutter reasons (nor spell out why not).
            not_ready = self._not_ready(model, explain=model != "weekly")
            if not_ready:
                if model != "weekly":
                    waiting.append(not_ready)
                continue
            ready.append(model)
        # Everything the answer below reads: the same inputs give the same answer and text.
        key = (cfg, tuple(ready), tuple(waiting), *self._scores_version())
        if self._gate is not None and self._gate[0] == key:
            return self._gate[1]
        answer = self._gated(ready, waiting)
        self._gate = (key, answer)
        return answer

    def _gated(self, ready: list[Model], waiting: list[str]) -> tuple[Model, str]:
        """`_choose`'s answer from the models that may be used and why the others wait."""
        cfg = self.config
        best: Model = "reactive"
        best_ratio = 1.0 - cfg.margin
        for model in ready:
            score = self.state.scores[model]
            if score.ratio <= best_ratio:
                best, best_ratio = model, score.ratio
        if best != "reactive":
            score = self.state.scores[best]
            truth = max(score.truth, EPS)
            return best, (
                f"{_label(best)}: {_pct(score.wape)} error {_minutes(cfg.horizon)} ahead vs "
                f"{_pct(score.reactive_error / truth)} for the last value and "
                f"{_pct(score.level_error / truth)} for the recent level"
            )
        return "reactive", self._reactive_reason(waiting, ready)

    def _forced(self, method: Method) -> tuple[Model, str]:
        """The model a policy asked for, when it has the history to forecast; else reactive."""
        asked = f"forecast.method {method}"
        if method == "reactive":
            return "reactive", f"reactive: {asked}"
        if method == "trend":
            score = self.state.scores["trend"]
            scored = f": {_pct(score.wape)} error" if score.n else ", not scored yet"
            return "trend", f"trend ({asked}){scored}"
        cycles: tuple[Model, ...] = ("daily", "weekly")
        ready = [
            (self.state.scores[m].ratio, m)
            for m in cycles
            if not self._not_ready(m).startswith(_label(m) + " needs")
        ]
        if not ready:
            return "reactive", f"reactive: {asked}, but {self._not_ready('daily')}"
        _, model = min(ready)
        score = self.state.scores[model]
        scored = f": {_pct(score.wape)} error" if score.n else ", not scored yet"
        return model, f"{_label(model)} ({asked}){scored}"

    def _not_ready(self, model: Model, explain: bool = True) -> str:
        """Why `model` may not be used yet ("" when it may; `explain` False: "not ready", the
        reason's text left unformatted)."""
        s, cfg = self.state, self.config
        if model in ("daily", "weekly"):
            cycle = DAY if model == "daily" else WEEK
            seasonal = s.daily if model == "daily" else s.weekly
            have = (s.last_time or 0.0) - (s.first_time if s.first_time is not None else 0.0)
            if have < cycle or seasonal.seen < cfg.coverage * seasonal.period:
                if not explain:
                    return "not ready"
                return f"{_label(model)} needs a full cycle of history (have {have / 3600:.1f} h)"
        score = s.scores[model]
        if score.n < cfg.min_scored:
            if not explain:
                return "not ready"
            return f"{_label(model)} has {score.n}/{cfg.min_scored} scored forecasts"
        return ""

    def _reactive_reason(self, waiting: list[str], ready: list[Model]) -> str:
        ranked = [(self.state.scores[m].ratio, m) for m in ready]  # in CANDIDATES order
        parts = ["reactive"]
        if ranked:
            ratio, model = min(ranked)
            parts.append(
                f"no model cuts the error of the last value or recent level by "
                f"{self.config.margin:.0%} (best: {_label(model)} at {ratio:.2f}x)"
            )
        parts.extend(waiting)
        return parts[0] + ": " + "; ".join(parts[1:]) if len(parts) > 1 else "reactive"

    # -- model forecasts -------------------------------------------------------------------

    def _path_peak(self, model: Model, t: float, horizon: float) -> float:
        """The model's highest mean forecast over [t, t + horizon]."""
        s = self.state
        if model == "trend":
            return max(self._trend_at(t), self._trend_at(t + horizon))  # monotone path
        if model in ("daily", "weekly"):
            seasonal = s.daily if model == "daily" else s.weekly
            first = math.floor(t / self.config.season_bucket)
            last = math.floor((t + horizon) / self.config.season_bucket)
            values = (_seasonal_at(seasonal, self.config, b) for b in range(first, last + 1))
            return max((v for v in values if v is not None), default=0.0)
        return s.last_value or 0.0

    def _trend_at(self, when: float) -> float:
        trend, damping = self.state.trend, self.config.damping
        ahead = max(0.0, when - (trend.time if trend.time is not None else when))
        return max(0.0, trend.level + trend.slope * damping * -math.expm1(-ahead / damping))

    def _envelopes(self) -> tuple[tuple[str, EnvelopeState, list[Pending], ErrorScore], ...]:
        """The daily and the weekly envelope, each with its queue of forecasts and its score."""
        s = self.state
        return (
            ("daily envelope", s.envelope, s.envelope_pending, s.envelope_score),
            (
                "weekly envelope",
                s.weekly_envelope,
                s.weekly_envelope_pending,
                s.weekly_envelope_score,
            ),
        )

    def _earned(self, score: ErrorScore) -> bool:
        cfg = self.config
        return score.n >= cfg.min_scored and score.error < (1.0 - cfg.margin) * score.reactive_error

    def envelope_engaged(self) -> bool:
        """Has the daily envelope forecast the load at the far end of its window better than the
        last value, by the gate's margin, out of sample over enough buckets?"""
        return self._earned(self.state.envelope_score)

    def envelope_rise(self, t: float, horizon: float) -> tuple[float, str] | None:
        """How much an envelope expects the load to grow over [t, t + horizon] and its
        look-ahead (the highest recent median ahead over the one at t, >= 1), and which one
        says so: of the daily and the weekly envelope whose out-of-sample forecasts beat the
        last value's, the one that beats it most (as the gate picks among the models: where
        weekends differ, the weekly one, and the daily one's weekday rise is not taken on a
        Saturday); None when neither does."""
        cfg = self.config
        chosen: tuple[float, str, EnvelopeState] | None = None
        for name, state, _, score in self._envelopes():
            if self._earned(score) and (chosen is None or score.ratio < chosen[0]):
                chosen = (score.ratio, name, state)
        if chosen is None:
            return None
        first = math.floor(t / cfg.season_bucket)
        last = math.floor((t + max(horizon, 0.0) + envelope.AHEAD) / cfg.season_bucket)
        value = envelope.rise(chosen[2], first, last, cfg.ratio_limit)
        return (value, chosen[1]) if value is not None else None

    def _horizon_factor(self, horizon: float) -> float:
        """Errors grow roughly like the square root of the horizon (a random walk)."""
        return math.sqrt(max(horizon, self.config.score_bucket) / self.config.horizon)

    # -- buckets and self-scoring ----------------------------------------------------------

    def _roll_season_bucket(self, t: float) -> None:
        bucket, cfg = self.state.season_bucket, self.config
        index = math.floor(t / cfg.season_bucket)
        if bucket.index is not None and index > bucket.index:
            mean = bucket.mean()
            if mean is not None:
                for seasonal, alpha in (
                    (self.state.daily, cfg.daily_alpha),
                    (self.state.weekly, cfg.weekly_alpha),
                ):
                    _update_seasonal(seasonal, cfg, bucket.index, mean, alpha)
                envelope.record(self.state.envelope, bucket.index, mean)
                envelope.record(self.state.weekly_envelope, bucket.index, mean)
        if bucket.index is None or index > bucket.index:
            _reset(bucket, index)

    def _roll_score_bucket(self, t: float) -> None:
        bucket = self.state.score_bucket
        index = math.floor(t / self.config.score_bucket)
        if bucket.index is not None and index > bucket.index:
            self._resolve(bucket.index, bucket.mean())
            self._issue(bucket.index)
        if bucket.index is None or index > bucket.index:
            _reset(bucket, index)

    def _resolve(self, index: int, truth: float | None) -> None:
        """Score the forecasts of bucket `index`; drop any for buckets that passed unseen."""
        s = self.state
        alpha = -math.expm1(-self.config.score_bucket / self.config.score_tau)
        due = _due(s.pending, index)
        envelopes_due = [
            (score, _due(pending, index)) for _, _, pending, score in self._envelopes()
        ]
        if truth is None:
            return
        for entry in due:
            reactive = abs(entry.predictions["reactive"] - truth)
            level = abs(entry.predictions["level"] - truth)
            for model, forecast in entry.predictions.items():
                score = s.scores[model]
                _update_score(score, abs(forecast - truth), reactive, level, truth, alpha)
        for score, entries in envelopes_due:
            for entry in entries:
                last = abs(entry.predictions["reactive"] - truth)  # the only baseline it needs
                error = abs(entry.predictions["envelope"] - truth)
                _update_score(score, error, last, last, truth, alpha)

    def _issue(self, index: int) -> None:
        """Each model forecasts the mean of the bucket `lead_buckets` after bucket `index`."""
        s, cfg = self.state, self.config
        if s.last_value is None:
            return
        target = index + cfg.lead_buckets
        centre = (target + 0.5) * cfg.score_bucket
        predictions = {
            "reactive": s.last_value,
            "level": s.trend.level,
            "trend": self._trend_at(centre),
        }
        season_index = math.floor(centre / cfg.season_bucket)
        for model, seasonal in (("daily", s.daily), ("weekly", s.weekly)):
            value = _seasonal_at(seasonal, cfg, season_index)
            if value is not None and seasonal.seen >= cfg.coverage * seasonal.period:
                predictions[model] = value
        s.pending.append(Pending(target, predictions))
        far = index + envelope.ahead_buckets(cfg.horizon, cfg.score_bucket)
        now_slot = math.floor((index + 1) * cfg.score_bucket / cfg.season_bucket)
        far_slot = math.floor((far + 0.5) * cfg.score_bucket / cfg.season_bucket)
        for _, state, pending, _ in self._envelopes():
            ratio = envelope.forecast_ratio(state, now_slot, far_slot, cfg.ratio_limit)
            if ratio is not None:
                forecast = {"envelope": s.last_value * ratio, "reactive": s.last_value}
                pending.append(Pending(far, forecast))


def _due(pending: list[Pending], index: int) -> list[Pending]:
    """The forecasts of bucket `index`, taken off the queue with any for buckets that passed
    unseen."""
    due = []
    while pending and pending[0].target <= index:
        entry = pending.pop(0)
        if entry.target == index:
            due.append(entry)
    return due


def _add(bucket: Bucket, value: float) -> None:
    bucket.total += value
    bucket.count += 1


def _reset(bucket: Bucket, index: int) -> None:
    bucket.index, bucket.total, bucket.count = index, 0.0, 0


def _update_trend(trend: TrendState, cfg: ForecastConfig, t: float, value: float) -> None:
    """Holt's linear method with time-constant smoothing (irregular samples are fine)."""
    if trend.time is None:
        trend.level, trend.slope, trend.time = value, 0.0, t
        return
    dt = t - trend.time
    if dt <= 0:  # a second sample at the same time: fold it into the level only
        trend.level += 0.5 * (value - trend.level)
        return
    predicted = trend.level + trend.slope * dt
    level = predicted + -math.expm1(-dt / cfg.level_tau) * (value - predicted)
    trend.slope += -math.expm1(-dt / cfg.slope_tau) * ((level - trend.level) / dt - trend.slope)
    trend.level, trend.time = level, t


def _update_seasonal(
    seasonal: SeasonalState, cfg: ForecastConfig, index: int, mean: float, alpha: float
) -> None:
    """Fold one finished bucket into the profile, and the level ratio into its EWMAs."""
    slot = index % seasonal.period
    expected = seasonal.profile[slot]
    if expected == UNSEEN:
        seasonal.profile[slot] = mean
        seasonal.seen += 1
        return
    seasonal.samples += 1
    weight = max(1.0 / seasonal.samples, -math.expm1(-cfg.season_bucket / cfg.ratio_tau))
    seasonal.actual += weight * (mean - seasonal.actual)
    seasonal.expected += weight * (expected - seasonal.expected)
    seasonal.profile[slot] = expected + alpha * (mean - expected)


def _seasonal_at(seasonal: SeasonalState, cfg: ForecastConfig, index: int) -> float | None:
    """The profile for season bucket `index`, scaled by the recent level ratio."""
    base: float = seasonal.profile[index % seasonal.period]
    if base == UNSEEN:
        return None
    ratio = 1.0
    if seasonal.samples and seasonal.expected > EPS:
        limit = cfg.ratio_limit
        ratio = min(limit, max(1.0 / limit, seasonal.actual / seasonal.expected))
    return base * ratio


def _update_score(
    score: ErrorScore,
    error: float,
    reactive_error: float,
    level_error: float,
    truth: float,
    alpha: float,
) -> None:
    score.n += 1
    weight = max(alpha, 1.0 / score.n)  # a plain mean until the EWMA has enough samples
    score.error += weight * (error - score.error)
    score.reactive_error += weight * (reactive_error - score.reactive_error)
    score.level_error += weight * (level_error - score.level_error)
    score.truth += weight * (truth - score.truth)


@lru_cache(maxsize=64)
def _z(quantile: float) -> float:
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return NormalDist().inv_cdf(quantile)


def _label(model: Model) -> str:
    return {
        "daily": "seasonal (daily cycle)",
        "weekly": "seasonal (weekly cycle)",
        "trend": "trend",
        "reactive": "reactive",
    }[model]


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"
