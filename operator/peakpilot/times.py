"""Times users give (snapshots, --at, --from, --to): within years 0001-9999 in UTC, the API
server's timestamp range (RFC 3339), so that no conversion to epoch seconds can overflow."""

from __future__ import annotations

from datetime import datetime

from peakplan import MAX_EPOCH, MIN_EPOCH, RANGE_HINT, check_epoch

__all__ = ["MAX_EPOCH", "MIN_EPOCH", "check_epoch", "check_time", "epoch_seconds"]

_EPOCH = datetime(1970, 1, 1)


def epoch_seconds(moment: datetime) -> float:
    """Epoch seconds of a datetime (naive = UTC) that never overflows, whatever its offset."""
    offset = moment.utcoffset()
    naive = (moment.replace(tzinfo=None) - _EPOCH).total_seconds()
    return naive - (offset.total_seconds() if offset is not None else 0.0)


def check_time(moment: float | datetime, where: str = "") -> float | datetime:
    """The moment unchanged, or ValueError naming `where` when it is out of range."""
    what = f"{where}: the time" if where else "the time"
    if isinstance(moment, datetime):
        if not MIN_EPOCH <= epoch_seconds(moment) <= MAX_EPOCH:
            raise ValueError(f"{what} {moment.isoformat()} is out of range: {RANGE_HINT}")
        return moment
    check_epoch(moment, what)
    return moment
