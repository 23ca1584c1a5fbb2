"""The operator's bookkeeping of bounded reconciles (peakpilot.runtime): deadlines, the worker
thread's hand-over, and the liveness rule. No Kubernetes, no Kopf."""

from __future__ import annotations

import asyncio
import threading

import pytest

from peakpilot.runtime import STUCK_INTERVALS, Watchdog, Worker, deadline, in_thread


@pytest.mark.parametrize(
    ("interval", "time_limit", "expected"),
    [
        (15, 3, 13.5),  # 10 % margin
        (3600, 3, 3595),  # the margin is at most 5 s
        (1, 3, 5),  # never below the solver's limit + 2 s
        (4, 1, 3.6),
    ],
)
def test_deadline_is_the_interval_less_a_margin_but_leaves_the_solver_its_time(
    interval: float, time_limit: float, expected: float
) -> None:
    assert deadline(interval, time_limit) == pytest.approx(expected)


def test_one_stuck_policy_among_healthy_ones_keeps_liveness() -> None:
    dog = Watchdog()
    dog.started("shop/slow", interval=10, budget=9, now=0)
    dog.started("shop/fast", interval=10, budget=9, now=0)
    dog.finished("shop/fast", now=1)
    dog.started("shop/fast", interval=10, budget=9, now=25)
    dog.finished("shop/fast", now=26)
    now = STUCK_INTERVALS * 10 + 1
    assert dog.stuck(now) == ["shop/slow"]
    assert dog.verdict(now) is None  # fast finished within 3 of its periods


def test_stuck_and_nothing_finishing_fails_liveness() -> None:
    dog = Watchdog()
    dog.started("shop/a", interval=1, budget=5, now=0)  # period: the longer, 5 s
    assert dog.verdict(STUCK_INTERVALS * 5) is None  # not yet past 3 periods
    verdict = dog.verdict(STUCK_INTERVALS * 5 + 0.1)
    assert verdict is not None and "shop/a" in verdict
    dog.finished("shop/a", now=16)
    assert dog.verdict(17) is None
    dog.forget("shop/a")
    assert dog.stuck(100) == []


def test_worker_delivers_a_result_in_time_and_abandons_a_late_one() -> None:
    release = threading.Event()
    done: list[str] = []

    async def scenario() -> Worker[bool]:
        never = asyncio.Event()
        quick = Worker(lambda: 42, name="quick", on_done=lambda: done.append("quick"))
        assert await quick.wait(5, never.wait) == 42
        slow = Worker(release.wait, name="slow", on_done=lambda: done.append("slow"))
        with pytest.raises(TimeoutError):
            await slow.wait(0.05, never.wait)
        assert slow.running and slow.thread.daemon  # abandoned, not killed; never joined at exit
        stop = asyncio.Event()
        stop.set()
        assert await Worker(release.wait, name="stopped").wait(5, stop.wait) is None
        release.set()
        assert await in_thread(lambda: "status written", name="status") == "status written"
        failing = Worker(lambda: 1 / 0, name="bug")
        with pytest.raises(ZeroDivisionError):
            await failing.wait(5, never.wait)
        return slow

    slow = asyncio.run(scenario())
    slow.thread.join(5)
    assert done == ["quick", "slow"]
