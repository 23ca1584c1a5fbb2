"""Per-slot values of a cycle (a day or a week of 5-minute buckets) as flat arrays of doubles.

A forecaster keeps a few thousand of them (the daily and weekly profiles, the envelopes' recent
days and weeks), and the operator keeps a forecaster per workload. In a list each value is a
pointer to a float object (8 + 24 bytes); in an `array('d')` it is 8 bytes. A slot that has no
value yet holds `UNSEEN`: loads are never negative, and -1.0, unlike NaN, compares equal to
itself, so two states with the same values are equal.

In saved states (JSON) a slot is a number or None, as before the arrays.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

UNSEEN = -1.0  # no value yet (every value kept is a load or a mean of loads: >= 0)

type Slots = array[float]  # array("d"): one double a slot


def unseen(n: int) -> Slots:
    """`n` slots without a value."""
    return array("d", [UNSEEN]) * n


def from_optional(values: Iterable[float | None]) -> Slots:
    """Slots from numbers, None for a slot without a value (a saved state)."""
    return array("d", [UNSEEN if v is None else float(v) for v in values])


def to_optional(slots: Slots) -> list[float | None]:
    """Numbers, None for a slot without a value (JSON)."""
    return [None if v < 0 else v for v in slots]


def as_slots(values: Slots | Iterable[float | None]) -> Slots:
    """`values` as slots (a saved state's numbers and None are converted)."""
    return values if isinstance(values, array) else from_optional(values)
