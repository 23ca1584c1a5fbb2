"""Peering identities and priorities, and the duplicate check (peakpilot.peering)."""

from __future__ import annotations

import datetime
import os

import pytest

from peakpilot.peering import (
    PeeringError,
    PeeringObject,
    check,
    duplicates,
    objects,
    own_identity,
    priority_of,
)
from peakpilot.settings import OperatorSettings


def seen(seconds_ago: float) -> str:
    now = datetime.datetime.now(datetime.UTC)
    return (now - datetime.timedelta(seconds=seconds_ago)).isoformat()


def test_priorities_are_stable_distinct_and_fit_an_int64() -> None:
    names = [f"peakpilot-7c9d5-{i:05d}" for i in range(2000)]
    priorities = [priority_of(n) for n in names]
    assert priorities == [priority_of(n) for n in names]  # the same pod, the same priority
    assert len(set(priorities)) == len(names)
    assert all(1 <= p <= 2**62 for p in priorities)


def test_identity_is_the_pod_name_else_host_and_pid() -> None:
    assert own_identity({"POD_NAME": " peakpilot-0 "}) == "peakpilot-0"
    assert own_identity({}).endswith(f"/{os.getpid()}")


def test_only_live_other_peers_of_equal_priority_are_duplicates() -> None:
    p = priority_of("me")
    status = {
        "me": {"priority": p, "lifetime": 60, "lastseen": seen(1)},  # ourselves
        "twin": {"priority": p, "lifetime": 60, "lastseen": seen(5)},
        "dead": {"priority": p, "lifetime": 60, "lastseen": seen(61)},
        "other": {"priority": p + 1, "lifetime": 60, "lastseen": seen(1)},
        "junk": "not a record",
        "bad": {"priority": "x"},
        "forever": {"priority": p, "lifetime": 10**30, "lastseen": seen(1)},  # OverflowError
        "far": {"priority": p, "lifetime": 10**12, "lastseen": seen(1)},  # past year 9999
    }
    assert duplicates(status, "me", p) == ["twin"]


def test_check_refuses_a_missing_object_and_a_duplicate() -> None:
    where = objects("peakpilot", ())
    assert where == [PeeringObject("peakpilot", None)]
    with pytest.raises(PeeringError, match="ClusterKopfPeering peakpilot does not exist"):
        check(lambda _: None, where, "me", 1)
    twin = {"twin": {"priority": 1, "lastseen": seen(0)}}
    with pytest.raises(PeeringError, match="twin in ClusterKopfPeering peakpilot has this"):
        check(lambda _: twin, where, "me", 1)
    check(lambda _: twin, where, "me", 2)  # a different priority: fine
    assert [str(o) for o in objects("pp", ["a", "b"])] == ["KopfPeering a/pp", "KopfPeering b/pp"]


@pytest.mark.parametrize("value", [3, 4, 3601, 99999999999999999999])  # the last overflowed Kopf
def test_the_peering_lifetime_is_checked_at_start_with_or_without_peering(value: int) -> None:
    # The value's source (--peering-lifetime or PEAKPILOT_PEERING_LIFETIME) is the CLI's to name.
    ((setting, problem),) = OperatorSettings(peering_lifetime=value).problems()
    assert setting == "peering_lifetime"
    assert problem.startswith(f"{value} seconds: use 5 to 3600")


@pytest.mark.parametrize("value", [5, 60, 3600])
def test_a_peering_lifetime_in_range_is_taken(value: int) -> None:
    assert OperatorSettings(peering_lifetime=value).problems() == []
