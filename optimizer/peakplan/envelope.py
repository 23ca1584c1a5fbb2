"""The daily and weekly envelopes: what the last few days (or the same weekday of the last few
weeks) say the next quarter of an hour brings, and whether to believe it.

The forecaster's daily model is a point forecast at the same minute, smoothed over days: one
day's burst stays in it for days, and at the lead time of a scale-up (about a minute ahead) no
model beats the last value anyway, so a daily ramp is followed, not met. The envelope looks
further ahead instead:

- each slot of the day (the season bucket, 5 minutes) keeps its mean on each of the last
  `DAYS` days; the slot's level is their median over at least `QUORUM` of them, so one odd
  day is outvoted;
- the rise at t is the highest level over [t, t + lead + AHEAD] divided by the level at t: how
  much the load is expected to grow, a peak allowed to come up to AHEAD earlier than usual;
- it is used only while it has earned it: each scoring bucket the forecaster has it forecast
  the load at the far end of that window as the last value times (level there / level now)
  (`forecast_ratio`), scored out of sample like its models against the last value on the same
  buckets; engaged while it cuts the last value's error by the forecaster's own margin (20 %),
  the bar every model clears before it is used. Bursts at random times do not
  engage it; neither, on some days, does a peak whose time moves by ten minutes or more from
  day to day (the point forecast then misses its edges as often as the last value does).

The weekly envelope is the same state with a week's slots and `WEEKS` rows: where weekends (or
any weekday) differ, the daily one's last five days mix them, and the forecaster takes the
envelope that beats the last value by more.

State is a plain dataclass (deep-copyable); the slots are flat arrays (`peakplan.slots`), and
`ForecasterState.to_dict` saves them as lists with None for a slot without a value.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from peakplan.slots import UNSEEN, Slots, as_slots, unseen

DAYS = 5  # recent days kept per slot: a median of 3 to 5 outvotes one odd day
QUORUM = 3  # days a slot needs before it has a level
WEEKS = 4  # the weekly envelope: the same slot of the week on the last 4 weeks ...
WEEK_QUORUM = 3  # ... a median of at least 3 (one holiday week is outvoted)
AHEAD = 900.0  # how much earlier than on recent days a peak may come (s)
EPS = 1e-12


@dataclass(slots=True)
class EnvelopeState:
    period: int  # slots a cycle (a day, or a week)
    # `rows` rows of `period` slots (row = cycle % rows), UNSEEN where a cycle has no mean; a
    # sequence of numbers and None (a saved state) is taken too
    means: Slots
    row_day: list[int | None] = field(default_factory=list)  # the cycle each row holds
    last_day: int | None = None  # the newest cycle recorded
    levels: Slots = field(default_factory=lambda: unseen(0))  # each slot's median, kept current
    rows: int = DAYS  # recent cycles kept per slot
    quorum: int = QUORUM  # cycles a slot needs before it has a level

    def __post_init__(self) -> None:
        self.means, self.levels = as_slots(self.means), as_slots(self.levels)
        if not self.row_day:
            self.row_day = [None] * self.rows
        if len(self.levels) != self.period:  # built from means alone: derive them
            self.levels = _levels(self)

    @classmethod
    def empty(cls, period: int, rows: int = DAYS, quorum: int = QUORUM) -> EnvelopeState:
        return cls(period, unseen(rows * period), rows=rows, quorum=quorum)

    @classmethod
    def weekly(cls, per_day: int) -> EnvelopeState:
        """The weekly envelope for `per_day` season buckets a day."""
        return cls.empty(7 * per_day, WEEKS, WEEK_QUORUM)


def record(state: EnvelopeState, index: int, mean: float) -> None:
    """Keep the mean of finished season bucket `index` (buckets since the epoch)."""
    day, slot = divmod(index, state.period)
    row = day % state.rows
    if state.row_day[row] != day:  # a new day takes the row of the oldest one
        start = row * state.period
        state.means[start : start + state.period] = unseen(state.period)
        state.row_day[row] = day
    state.means[row * state.period + slot] = mean
    if state.last_day is None or day > state.last_day:
        # A new day: a row was replaced and the oldest day may have aged out, for every slot.
        state.last_day = day
        state.levels = _levels(state)
    else:
        state.levels[slot] = _median(state, slot)


def level(state: EnvelopeState, index: int) -> float | None:
    """The median over the recent days of the slot of season bucket `index` (None: too few)."""
    value: float = state.levels[index % state.period]
    return None if value == UNSEEN else value


def _levels(state: EnvelopeState) -> Slots:
    return array("d", [_median(state, slot) for slot in range(state.period)])


def _median(state: EnvelopeState, slot: int) -> float:
    """The slot's median over the recent cycles (UNSEEN: fewer than the quorum)."""
    if state.last_day is None:
        return UNSEEN
    oldest = state.last_day - state.rows
    values = sorted(
        value
        for row, day in enumerate(state.row_day)
        if day is not None
        and day > oldest
        and (value := state.means[row * state.period + slot]) != UNSEEN
    )
    n = len(values)
    if n < state.quorum:
        return UNSEEN
    median: float = values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])
    return median


def rise(state: EnvelopeState, first: int, last: int, limit: float) -> float | None:
    """The highest level over season buckets [first, last] / the level at `first` (>= 1, at
    most `limit`); None when the slot at `first` has no level."""
    base = level(state, first)
    if base is None or base <= EPS:
        return None
    top = base
    for index in range(first + 1, last + 1):
        value = level(state, index)
        if value is not None and value > top:
            top = value
    return min(top / base, limit)


def forecast_ratio(state: EnvelopeState, now: int, ahead: int, limit: float) -> float | None:
    """What the levels say the load at season bucket `ahead` is, as a share of the load at
    season bucket `now` (within [1 / limit, limit]); None without both levels."""
    base, there = level(state, now), level(state, ahead)
    if base is None or there is None or base <= EPS:
        return None
    return min(limit, max(1.0 / limit, there / base))


def ahead_buckets(lead: float, score_bucket: float) -> int:
    """Scoring buckets between a forecast and the bucket it is scored on: the far end of the
    rise's window (the lead time, then AHEAD)."""
    return max(1, round((lead + AHEAD) / score_bucket))
