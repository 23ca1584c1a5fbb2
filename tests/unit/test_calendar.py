"""The promotion calendar: when an event's floor and multiplier apply, and to which workloads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from peakpilot.inputs import parse_policy
from peakpilot.translate import to_policy
from peakplan.calendar import active_events, event_floor, event_multiplier, ready_by
from peakplan.policy import CalendarEvent

S = 1_800_000_000.0  # event start (epoch seconds)
SALE = CalendarEvent(
    name="sale",
    start=S,
    end=S + 7200,
    lead=600,
    multiplier=4,
    min_replicas={"checkout": 40, "payments": 12},
)


def test_ready_by_is_start_minus_lead_minus_startup() -> None:
    # Scaling must begin at S - L - U so that pods started then are ready L before S.
    assert ready_by(SALE, startup=90) == S - 600 - 90


# (workload startup, seconds relative to S, active?) with L = 600 s and end = S + 7200.
LEAD_WINDOW = {
    "before-preparation": (90, -600 - 90 - 1, False),  # 1 s before S - L - U
    "preparation-starts": (90, -600 - 90, True),  # exactly S - L - U
    "during-lead": (90, -300, True),
    "at-start": (90, 0, True),
    "last-second": (90, 7199, True),
    "at-end": (90, 7200, False),  # end is exclusive
    "slow-starter-already-preparing": (300, -800, True),  # S - 600 - 300 = S - 900 <= S - 800
    "fast-starter-not-yet": (0, -800, False),  # S - 600 - 0 = S - 600 > S - 800
}


@pytest.mark.parametrize(
    ("startup", "offset", "active"), LEAD_WINDOW.values(), ids=LEAD_WINDOW.keys()
)
def test_event_is_active_from_lead_and_startup_until_end(
    startup: float, offset: float, active: bool
) -> None:
    got = active_events([SALE], startup, S + offset)
    assert got == ([SALE] if active else [])


FLASH = CalendarEvent(
    name="flash", start=S, end=S + 600, lead=0, multiplier=6, min_replicas={"checkout": 25}
)
BANNER = CalendarEvent(
    name="banner", start=S, end=S + 600, lead=0, multiplier=2, workloads=frozenset({"frontend"})
)
DOWNTURN = CalendarEvent(name="downturn", start=S, end=S + 600, lead=0, multiplier=0.5)

FLOORS = {
    # Per-workload floors: the highest among the active events, and which event sets it.
    "one-event": ([SALE], "checkout", (40, "sale")),
    "other-workload-of-event": ([SALE], "payments", (12, "sale")),
    "workload-without-floor": ([SALE], "frontend", (0, None)),
    "highest-wins": ([FLASH, SALE], "checkout", (40, "sale")),
    "no-events": ([], "checkout", (0, None)),
}


@pytest.mark.parametrize(("events", "workload", "expected"), FLOORS.values(), ids=FLOORS.keys())
def test_event_floor(
    events: list[CalendarEvent], workload: str, expected: tuple[int, str | None]
) -> None:
    assert event_floor(events, workload) == expected


MULTIPLIERS = {
    "one-event": ([SALE], "checkout", (4.0, "sale")),
    "largest-wins": ([SALE, FLASH], "checkout", (6.0, "flash")),
    "restricted-to-listed-workloads": ([BANNER], "frontend", (2.0, "banner")),
    "not-listed-workload": ([BANNER], "checkout", (1.0, None)),
    "listed-and-global": ([BANNER, SALE], "frontend", (4.0, "sale")),
    # Events only raise demand: below 1 it never wins against the default of 1.
    "below-one-ignored": ([DOWNTURN], "checkout", (1.0, None)),
    "floor-only-event": (
        [CalendarEvent("f", S, S + 1, min_replicas={"checkout": 3})],
        "checkout",
        (1.0, None),
    ),
    "no-events": ([], "checkout", (1.0, None)),
}


@pytest.mark.parametrize(
    ("events", "workload", "expected"), MULTIPLIERS.values(), ids=MULTIPLIERS.keys()
)
def test_event_multiplier(
    events: list[CalendarEvent], workload: str, expected: tuple[float, str | None]
) -> None:
    assert event_multiplier(events, workload) == expected


# ----------------------------------------------------------------------------------------------
# Time zones, through the API translation.


def _policy_with_event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "peakpilot.io/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "tz"},
        "spec": {
            "workloads": [
                {
                    "name": "checkout",
                    "targetRef": {"kind": "Deployment", "name": "checkout"},
                    "maxReplicas": 100,
                    "load": {"query": "q"},
                    "capacityPerReplica": 40,
                }
            ],
            "events": [{"name": "e", "minReplicas": {"checkout": 10}, **event}],
        },
    }


def _epochs(event: dict[str, Any]) -> tuple[float, float]:
    translated = to_policy(parse_policy(_policy_with_event(event)).spec).events[0]
    return translated.start, translated.end


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


ZONES = {
    # 00:00 in Shanghai (UTC+8, no DST) is 16:00 UTC the day before.
    "shanghai-local": (
        {"start": "2026-11-11T00:00:00", "end": "2026-11-11T02:00:00", "timeZone": "Asia/Shanghai"},
        ("2026-11-10T16:00:00", "2026-11-10T18:00:00"),
    ),
    "shanghai-offset": (
        {"start": "2026-11-11T00:00:00+08:00", "end": "2026-11-11T02:00:00+08:00"},
        ("2026-11-10T16:00:00", "2026-11-10T18:00:00"),
    ),
    "utc-z": (
        {"start": "2026-11-10T16:00:00Z", "end": "2026-11-10T18:00:00Z"},
        ("2026-11-10T16:00:00", "2026-11-10T18:00:00"),
    ),
    # Paris is UTC+2 in summer and UTC+1 in winter: the zone, not a fixed offset, decides.
    "paris-summer": (
        {"start": "2026-07-14T20:00:00", "end": "2026-07-14T23:00:00", "timeZone": "Europe/Paris"},
        ("2026-07-14T18:00:00", "2026-07-14T21:00:00"),
    ),
    "paris-winter": (
        {"start": "2026-12-24T20:00:00", "end": "2026-12-24T23:00:00", "timeZone": "Europe/Paris"},
        ("2026-12-24T19:00:00", "2026-12-24T22:00:00"),
    ),
    # Across the autumn change (03:00 CEST becomes 02:00 CET on 2026-10-25), 00:00-04:00 local
    # is 22:00Z-03:00Z: four wall-clock hours last five.
    "paris-across-dst-end": (
        {"start": "2026-10-25T00:00:00", "end": "2026-10-25T04:00:00", "timeZone": "Europe/Paris"},
        ("2026-10-24T22:00:00", "2026-10-25T03:00:00"),
    ),
}


@pytest.mark.parametrize(("event", "expected"), ZONES.values(), ids=ZONES.keys())
def test_event_times_become_the_same_epoch_whatever_the_form(
    event: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert _epochs(event) == (_utc(expected[0]), _utc(expected[1]))


def test_translated_event_keeps_lead_floors_and_targets() -> None:
    doc = _policy_with_event(
        {
            "start": "2026-11-11T00:00:00+08:00",
            "end": "2026-11-11T02:00:00+08:00",
            "leadTime": "15m",
            "loadMultiplier": 4,
            "workloads": ["checkout"],
        }
    )
    event = to_policy(parse_policy(doc).spec).events[0]
    assert (event.lead, event.multiplier) == (900.0, 4)
    assert dict(event.min_replicas) == {"checkout": 10}
    assert event.workloads == frozenset({"checkout"})
    # Default lead time: 5 minutes; no workloads list: the multiplier applies to all.
    default = to_policy(
        parse_policy(
            _policy_with_event(
                {"start": "2026-11-11T00:00:00+08:00", "end": "2026-11-11T02:00:00+08:00"}
            )
        ).spec
    ).events[0]
    assert (default.lead, default.workloads, default.applies_to("anything")) == (300.0, None, True)
