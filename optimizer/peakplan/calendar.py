"""The promotion calendar: which known peaks shape a workload's bounds and demand at a time."""

from __future__ import annotations

from collections.abc import Iterable

from peakplan.policy import CalendarEvent


def ready_by(event: CalendarEvent, startup: float) -> float:
    """When scaling must begin so that pods are ready `lead` seconds before the event starts."""
    return event.start - event.lead - startup


def active_events(
    events: Iterable[CalendarEvent], startup: float, now: float
) -> list[CalendarEvent]:
    """Events whose preparation or run covers `now` for a workload with this startup time."""
    return [e for e in events if ready_by(e, startup) <= now < e.end]


def event_floor(events: Iterable[CalendarEvent], workload: str) -> tuple[int, str | None]:
    """The highest per-workload minReplicas among `events`, and the event that sets it."""
    best, name = 0, None
    for e in events:
        floor = e.min_replicas.get(workload, 0)
        if floor > best:
            best, name = floor, e.name
    return best, name


def event_multiplier(events: Iterable[CalendarEvent], workload: str) -> tuple[float, str | None]:
    """The largest load multiplier among `events` for this workload (1 when none)."""
    best, name = 1.0, None
    for e in events:
        if e.multiplier is not None and e.applies_to(workload) and e.multiplier > best:
            best, name = e.multiplier, e.name
    return best, name
