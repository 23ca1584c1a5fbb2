"""A load trace: request counts per fixed interval, parsed from CSV text or rows already read.

The first column is the time at which the interval starts (ISO-8601 with or without an offset,
naive = UTC; or numeric seconds), the second the number of requests in the interval. A header
row is optional. The interval is the median of the time differences; a gap of k intervals
between two rows leaves k - 1 *missing* intervals, which are kept as such:

- `rate(t)` (what the scorer serves) holds the previous interval's rate over a missing one, so
  demand never drops to zero because a sample was lost;
- `observed(t)` (what a controller sees) is None there, so controllers meet real missing data.

No file I/O here: the CLI opens files and passes their text or rows.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from peakplan.epoch import MAX_EPOCH, MIN_EPOCH, RANGE_HINT, check_epoch

GRID_TOLERANCE = 0.1  # a row may sit this fraction of an interval off the grid
# Intervals one trace may span, gaps included: 9.5 years of minutes. One wrong time (epoch
# milliseconds among seconds) would otherwise fill memory with held intervals.
MAX_INTERVALS = 5_000_000


@dataclass(frozen=True)
class Trace:
    """Counts per interval from `start` (epoch seconds); `missing[i]` marks a held interval.

    `counts[i]` of a missing interval already holds the previous interval's count.
    """

    start: float
    interval: float
    counts: tuple[float, ...]
    missing: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not self.counts:
            raise ValueError("a trace needs at least one interval")
        if not (math.isfinite(self.interval) and self.interval > 0):
            raise ValueError(f"interval must be > 0 seconds, got {self.interval}")
        if len(self.missing) != len(self.counts):
            raise ValueError("counts and missing must have the same length")
        if any(not math.isfinite(c) or c < 0 for c in self.counts):
            raise ValueError("counts must be finite and >= 0")
        if self.missing[0]:
            raise ValueError("the first interval cannot be missing: there is nothing to hold")

    @classmethod
    def from_counts(
        cls,
        counts: Sequence[float | None],
        interval: float,
        start: float = 0.0,
    ) -> Trace:
        """A trace from counts per interval; None marks a missing interval (held)."""
        held: list[float] = []
        missing: list[bool] = []
        for i, count in enumerate(counts):
            if count is None:
                if not held:
                    raise ValueError(f"interval {i}: the first interval cannot be missing")
                held.append(held[-1])
                missing.append(True)
            else:
                held.append(float(count))
                missing.append(False)
        return cls(float(start), float(interval), tuple(held), tuple(missing))

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def end(self) -> float:
        """Epoch seconds at which the last interval ends."""
        return self.start + len(self.counts) * self.interval

    @property
    def duration(self) -> float:
        return len(self.counts) * self.interval

    @property
    def peak_rate(self) -> float:
        """The highest rate (requests/s) of any interval."""
        return max(self.counts) / self.interval

    @property
    def missing_count(self) -> int:
        return sum(self.missing)

    def _position(self, t: float) -> int:
        # The tiny nudge keeps a time computed as start + k x step on the right side of a
        # boundary despite float rounding.
        return math.floor((t - self.start) / self.interval + 1e-6)

    def index(self, t: float) -> int:
        """The interval that contains epoch second `t`; ValueError outside the trace."""
        i = self._position(t)
        if not 0 <= i < len(self.counts):
            raise ValueError(f"time {t} is outside the trace [{self.start}, {self.end})")
        return i

    def rate(self, t: float) -> float:
        """Requests/s at `t`: the interval's count / interval, held over missing intervals."""
        return self.counts[self.index(t)] / self.interval

    def observed(self, t: float) -> float | None:
        """What a controller sees at `t`: the rate, or None when missing or outside the trace."""
        i = self._position(t)
        if not 0 <= i < len(self.counts) or self.missing[i]:
            return None
        return self.counts[i] / self.interval

    def step_times(self, step: float) -> list[float]:
        """Epoch seconds of every replay step of `step` seconds that starts inside the trace."""
        if step <= 0:
            raise ValueError("step must be > 0 seconds")
        n = math.ceil(self.duration / step - 1e-9)
        return [self.start + k * step for k in range(n)]

    def rates(self, step: float) -> list[float]:
        """`rate(t)` at every replay step (the demand the scorer uses)."""
        return [self.rate(t) for t in self.step_times(step)]

    def observations(self, step: float) -> list[float | None]:
        """`observed(t)` at every replay step (what a controller sees)."""
        return [self.observed(t) for t in self.step_times(step)]

    def slice(self, start: float, end: float) -> Trace:
        """The intervals that overlap [start, end), with their original times."""
        if end <= start:
            raise ValueError(f"empty slice [{start}, {end})")
        first = max(0, math.floor((start - self.start) / self.interval))
        last = min(len(self.counts), math.ceil((end - self.start) / self.interval))
        if first >= last:
            raise ValueError(f"slice [{start}, {end}) does not overlap the trace")
        # A held count at the cut is still the best estimate; it stops being "missing" only if
        # it becomes the first interval, which has nothing to hold.
        missing = (False, *self.missing[first + 1 : last])
        return Trace(
            self.start + first * self.interval,
            self.interval,
            self.counts[first:last],
            missing,
        )

    def scaled(self, factor: float) -> Trace:
        """Every count multiplied by `factor` (>= 0), e.g. to turn a small trace into real load."""
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError(f"scale factor must be finite and >= 0, got {factor}")
        return Trace(
            self.start, self.interval, tuple(c * factor for c in self.counts), self.missing
        )


def parse_trace(text: str, interval: float | None = None) -> Trace:
    """A trace from CSV text (see the module docstring); `interval` overrides the inference."""
    return trace_from_rows(_csv_rows(csv.reader(io.StringIO(text))), interval)


def _csv_rows(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    """The reader's rows; its errors (a cell over the csv module's 128 KiB limit, a NUL) as a
    ValueError that names the row."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number = getattr(reader, "line_num", 0)
            if "field limit" in str(exc):
                raise ValueError(
                    f"row {number}: a cell longer than 128 KiB: each row is a time and a count"
                ) from None
            raise ValueError(f"row {number}: {exc}") from None
        yield row


def trace_from_rows(rows: Iterable[Sequence[str]], interval: float | None = None) -> Trace:
    """A trace from CSV rows already split into cells. Row numbers in errors count from 1."""
    times: list[float] = []
    counts: list[float] = []
    numbers: list[int] = []  # the row number of each data row, for error messages
    for number, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if not times and _is_header(row):
            continue
        t, count = _parse_row(number, row)
        times.append(t)
        counts.append(count)
        numbers.append(number)
    if not times:
        raise ValueError("the trace has no data rows")
    step = interval if interval is not None else _infer_interval(times, numbers)
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"interval must be > 0 seconds, got {step}")
    return _on_grid(times, counts, numbers, step)


def _is_header(row: Sequence[str]) -> bool:
    """A first row whose time and count both fail to parse is a header."""
    if len(row) < 2:
        return False
    try:
        _parse_time(row[0])
    except ValueError:
        pass
    else:
        return False
    try:
        float(row[1])
    except ValueError:
        return True
    return False


def _parse_row(number: int, row: Sequence[str]) -> tuple[float, float]:
    if len(row) < 2:
        raise ValueError(f"row {number}: expected 2 columns (time, count), got {len(row)}")
    try:
        t = _parse_time(row[0])
    except ValueError as exc:
        raise ValueError(f"row {number}, column 1 (time): {exc}") from None
    return t, _parse_count(number, row[1])


def _parse_time(cell: str) -> float:
    """Epoch seconds from numeric seconds or ISO-8601 (naive = UTC)."""
    text = cell.strip()
    if not text:
        raise ValueError("empty value")
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number of seconds")
        return check_epoch(value, "epoch second")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither seconds nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset()
    naive = (moment.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds()
    seconds = naive - (offset.total_seconds() if offset else 0.0)
    if not MIN_EPOCH <= seconds <= MAX_EPOCH:
        raise ValueError(f"{text!r} is out of range: {RANGE_HINT}")
    return seconds


def _parse_count(number: int, cell: str) -> float:
    where = f"row {number}, column 2 (count)"
    text = cell.strip()
    try:
        count = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(count):
        raise ValueError(f"{where}: {text!r} is not finite")
    if count < 0:
        raise ValueError(f"{where}: negative count {text}")
    return count


def _infer_interval(times: Sequence[float], numbers: Sequence[int]) -> float:
    """The median time difference; monotonicity is checked here, where differences are known."""
    if len(times) < 2:
        raise ValueError("one data row: pass the interval explicitly")
    diffs: list[float] = []
    for i in range(1, len(times)):
        diff = times[i] - times[i - 1]
        if diff <= 0:
            raise ValueError(
                f"row {numbers[i]}, column 1 (time): not after the previous row "
                f"(row {numbers[i - 1]}); times must increase"
            )
        diffs.append(diff)
    return float(statistics.median(diffs))


def _on_grid(
    times: Sequence[float], counts: Sequence[float], numbers: Sequence[int], step: float
) -> Trace:
    """Place every row on the interval grid from the first row; gaps become missing intervals."""
    start = times[0]
    held: list[float] = []
    missing: list[bool] = []
    for t, count, number in zip(times, counts, numbers, strict=True):
        position = (t - start) / step
        index = round(position)
        where = f"row {number}, column 1 (time)"
        if abs(position - index) > GRID_TOLERANCE:
            raise ValueError(f"{where}: {t - start:g} s from the start is off the {step:g} s grid")
        if index < len(held):
            raise ValueError(f"{where}: not after the previous row; times must increase")
        if index >= MAX_INTERVALS:
            raise ValueError(
                f"{where}: {t - start:g} s from the start makes the trace longer than "
                f"{MAX_INTERVALS:,} intervals of {step:g} s: check the time (epoch "
                "milliseconds?), or split the trace"
            )
        while len(held) < index:  # the gap: hold the previous count, mark it missing
            held.append(held[-1])
            missing.append(True)
        held.append(count)
        missing.append(False)
    return Trace(start, step, tuple(held), tuple(missing))
