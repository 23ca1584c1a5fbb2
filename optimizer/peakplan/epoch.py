"""The range of times the core takes: years 0001-9999 in UTC, as epoch seconds.

It is the API server's timestamp range (RFC 3339), and what Python's datetime can convert: a
time outside it is a mistake (often epoch milliseconds given as seconds), never a real event.
"""

from __future__ import annotations

MIN_EPOCH = -62_135_596_800.0  # 0001-01-01T00:00:00Z
MAX_EPOCH = 253_402_300_799.0  # 9999-12-31T23:59:59Z
RANGE_HINT = "use a time within years 0001-9999 in UTC (the API server's timestamp range)"


def check_epoch(seconds: float, what: str = "the time") -> float:
    """`seconds`, or ValueError when it is outside the range (with a hint for epoch ms)."""
    if MIN_EPOCH <= seconds <= MAX_EPOCH:
        return seconds
    if MIN_EPOCH <= seconds / 1000 <= MAX_EPOCH:
        raise ValueError(
            f"{what} {seconds:.15g} looks like epoch milliseconds: give epoch seconds "
            "(divide by 1000) or an RFC 3339 time"
        )
    raise ValueError(f"{what} {seconds:.15g} is out of range: {RANGE_HINT}")
