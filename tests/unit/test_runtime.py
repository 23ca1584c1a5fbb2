"""The operator's bookkeeping of bounded reconciles (peakpilot.runtime): deadlines, the worker
pool's hand-over (places, abandoned and lent ones), and the liveness rule. No Kubernetes, no
Kopf."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from peakpilot import blocking
from peakpilot.runtime import STUCK_INTERVALS, Pool, Watchdog, deadline


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


def test_a_job_delivers_its_result_in_time_and_is_abandoned_when_late() -> None:
    release = threading.Event()
    done: list[str] = []
    pool = Pool(2)

    async def scenario() -> None:
        never = asyncio.Event()
        quick = pool.submit(lambda: 42, name="quick", on_done=lambda: done.append("quick"))
        assert await quick.wait(5, never.wait) == 42
        slow = pool.submit(release.wait, name="slow", on_done=lambda: done.append("slow"))
        with pytest.raises(TimeoutError):
            await slow.wait(0.05, never.wait)
        assert slow.busy and slow.abandoned  # abandoned, not killed
        stop = asyncio.Event()
        stop.set()
        assert await pool.submit(release.wait, name="stopped").wait(5, stop.wait) is None
        release.set()
        assert await pool.call(lambda: "status written", name="status") == "status written"
        failing = pool.submit(lambda: 1 / 0, name="bug")
        with pytest.raises(ZeroDivisionError):
            await failing.wait(5, never.wait)

    asyncio.run(scenario())
    assert pool.finish(5) == 0
    assert done == ["quick", "slow"]


def _tracked(running: list[int], peak: list[int], lock: threading.Lock) -> Callable[[], str]:
    def job() -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return threading.current_thread().name

    return job


def test_the_pool_runs_at_most_its_size_at_once_in_threads_it_keeps() -> None:
    pool = Pool(2)
    running, peak, lock = [0], [0], threading.Lock()

    async def scenario() -> list[str]:
        jobs = [pool.submit(_tracked(running, peak, lock), name=f"job {i}") for i in range(12)]
        return [name for name in await asyncio.gather(*(job.wait(5) for job in jobs)) if name]

    names = asyncio.run(scenario())
    assert names == [f"job {i}" for i in range(12)]  # each thread bears its job's name meanwhile
    assert peak[0] == 2
    assert pool.threads == 2  # twelve jobs, two threads: reused, not one per job
    assert pool.finish(5) == 0


def test_the_deadline_counts_from_the_start_not_from_the_queue() -> None:
    pool = Pool(1)

    async def scenario() -> str | None:
        first = pool.submit(lambda: time.sleep(0.3), name="first")
        second = pool.submit(lambda: "in time", name="second")  # queued ~0.3 s
        await first.wait(5)
        return await second.wait(0.2)

    assert asyncio.run(scenario()) == "in time"
    pool.finish(5)


def test_an_abandoned_job_gives_its_place_to_the_next_and_its_thread_ends_later() -> None:
    pool = Pool(1, idle_exit=0.1)
    release = threading.Event()

    async def scenario() -> str | None:
        stuck = pool.submit(release.wait, name="stuck")
        with pytest.raises(TimeoutError):
            await stuck.wait(0.05)
        return await pool.submit(lambda: "others go on", name="next").wait(2)

    assert asyncio.run(scenario()) == "others go on"
    assert pool.threads == 2  # the abandoned job's thread, outside the count, and its successor
    release.set()
    end = time.monotonic() + 5
    while pool.threads > 1 and time.monotonic() < end:
        time.sleep(0.02)
    assert pool.threads == 1  # back to the pool's size once idle
    assert pool.finish(5) == 0


def test_a_job_waiting_long_on_the_network_lends_its_place_and_takes_one_back() -> None:
    pool = Pool(1, lend_after=0.05)
    answer = threading.Event()
    order: list[str] = []

    def slow_tenant() -> str:
        with blocking.network():
            answer.wait()
        order.append("slow tenant goes on")
        return "slow"

    def other_tenant() -> str:
        order.append("other ran")
        return "other"

    async def scenario() -> tuple[str | None, str | None]:
        slow = pool.submit(slow_tenant, name="slow")
        other = pool.submit(other_tenant, name="other")
        got = await other.wait(0.5)  # it would wait for ever without the lent place
        answer.set()
        return got, await slow.wait(5)

    assert asyncio.run(scenario()) == ("other", "slow")
    assert order == ["other ran", "slow tenant goes on"]
    assert pool.finish(5) == 0


def test_a_queued_job_is_withdrawn_when_stopped_and_never_runs() -> None:
    pool = Pool(1)
    release = threading.Event()
    ran: list[str] = []

    def run() -> str:
        ran.append("queued")
        return "ran"

    async def scenario() -> str | None:
        busy = pool.submit(release.wait, name="busy")
        stop = asyncio.Event()
        queued = pool.submit(run, name="queued")
        asyncio.get_running_loop().call_later(0.05, stop.set)
        result = await queued.wait(5, stop.wait)
        assert not queued.busy
        release.set()
        await busy.wait(5)
        return result

    assert asyncio.run(scenario()) is None  # stopped
    assert ran == []
    assert pool.finish(5) == 0


def test_a_cancelled_wait_gives_the_job_up() -> None:
    pool = Pool(1)
    release = threading.Event()

    async def scenario() -> tuple[bool, bool]:
        busy = pool.submit(release.wait, name="busy")
        queued = pool.submit(lambda: None, name="queued")
        waits = [asyncio.ensure_future(job.wait(5)) for job in (queued, busy)]
        await asyncio.sleep(0.05)
        for task in waits:  # Kopf cancels the daemons
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return queued.busy, busy.abandoned

    assert asyncio.run(scenario()) == (False, True)  # the queued one gone, the running abandoned
    release.set()
    assert pool.finish(5) == 0


def test_finish_drops_the_queue_and_counts_what_still_runs() -> None:
    pool = Pool(1)
    release = threading.Event()

    async def scenario() -> None:
        pool.submit(release.wait, name="stuck")
        pool.submit(lambda: None, name="never")
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert pool.finish(0.1) == 1  # the stuck one: the operator exits with os._exit
    release.set()
    with pytest.raises(RuntimeError):
        asyncio.run(_submit(pool))


async def _submit(pool: Pool) -> None:
    pool.submit(lambda: None, name="late")


def test_network_outside_the_pool_does_nothing() -> None:
    with blocking.network():
        assert threading.current_thread() is threading.main_thread()
