"""Bounded reconciles: each one's deadline, the thread it runs in, and the liveness rule.

No Kopf and no Kubernetes here (operator.py wires it in). A reconcile is blocking work (HTTP and
the solver), so it runs in a thread of its own; Python cannot kill a thread, so past its deadline
the reconcile is *abandoned*: its writes are refused (`Kube.gated`), its result is dropped, and
the policy gets no new reconcile until that thread has ended, so two never share a policy's state.
Each policy has at most one such thread, so one slow tenant cannot starve the others, and the
threads are daemons, so a stuck one never delays the operator's exit on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

TICK = 1.0  # seconds between looks at a policy: edits, pause and mode changes apply this fast
MARGIN = 0.1  # a reconcile may take its interval less this share of it...
MAX_MARGIN = 5.0  # ...less at most this many seconds
SOLVE_ALLOWANCE = 2.0  # ...but never less than the solver's time limit plus this
STUCK_INTERVALS = 3  # liveness: a reconcile running this many intervals (or deadlines) is stuck


def deadline(interval: float, time_limit: float) -> float:
    """Seconds one reconcile may take: its interval less 10 % (at most 5 s), and never less than
    the solver's time limit + 2 s (the solver alone may use its limit; below that every plan that
    needs it would be abandoned)."""
    return max(interval - min(interval * MARGIN, MAX_MARGIN), time_limit + SOLVE_ALLOWANCE)


_live: set[threading.Thread] = set()  # every worker thread still running
_live_lock = threading.Lock()


def finish_workers(timeout: float) -> int:
    """Wait up to ``timeout`` seconds in all for the worker threads; return how many still run.

    At exit: a thread still inside the solver's native code when the interpreter finalises can
    abort the process, so the caller ends it with os._exit if any remain."""
    end = time.monotonic() + timeout
    with _live_lock:
        threads = list(_live)
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return sum(t.is_alive() for t in threads)


class Worker[T]:
    """``fn()`` in a daemon thread, its result delivered to the event loop that started it."""

    def __init__(
        self, fn: Callable[[], T], *, name: str, on_done: Callable[[], None] | None = None
    ) -> None:
        self.started = time.monotonic()
        self._fn = fn
        self._on_done = on_done
        self._loop = asyncio.get_running_loop()
        self.result: asyncio.Future[T] = self._loop.create_future()
        # A result nobody waits for any more (it came too late) must not warn when collected.
        self.result.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        with _live_lock:
            _live.add(self.thread)
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        value: T | None = None
        error: BaseException | None = None
        try:
            value = self._fn()
        except BaseException as exc:  # delivered to the awaiting side, which decides
            error = exc
        finally:
            with _live_lock:
                _live.discard(self.thread)
            if self._on_done is not None:
                self._on_done()
        with contextlib.suppress(RuntimeError):  # the loop is closed: the operator stopped
            self._loop.call_soon_threadsafe(self._deliver, value, error)

    def _deliver(self, value: T | None, error: BaseException | None) -> None:
        if self.result.done():
            return
        if error is not None:
            self.result.set_exception(error)
        else:
            self.result.set_result(value)  # type: ignore[arg-type]

    async def wait(self, budget: float, stop: Callable[[], Awaitable[object]]) -> T | None:
        """The result, if it comes within ``budget`` seconds of the start; None if ``stop()``
        completes first. Raises TimeoutError past the budget (the thread goes on, abandoned)."""
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop())
        either: set[asyncio.Future[Any]] = {self.result, stopping}
        try:
            left = max(0.0, self.started + budget - time.monotonic())
            await asyncio.wait(either, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if self.result.done():
            return self.result.result()
        if stopping.done() and not stopping.cancelled():
            return None
        raise TimeoutError(f"not finished within {budget:g} s")


async def in_thread[T](fn: Callable[[], T], *, name: str) -> T:
    """``fn()`` in a daemon thread (asyncio.to_thread's pool threads are joined at exit: a call
    stuck there would hold up SIGTERM)."""
    worker = Worker(fn, name=name)
    return await worker.result


@dataclass
class _Progress:
    period: float  # the longer of the policy's interval and its deadline
    running_since: float | None = None
    finished_at: float | None = None


class Watchdog:
    """Which policies' reconciles are stuck, for the liveness probe.

    The operator is unhealthy when some reconcile has run for STUCK_INTERVALS of its periods and
    no policy has finished one within STUCK_INTERVALS of its own: nothing makes progress, so a
    restart may help. One stuck tenant among healthy ones is reported in its status
    (DeadlineExceeded) instead: restarting would stop everyone for no gain.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, _Progress] = {}

    def started(self, key: str, interval: float, budget: float, now: float) -> None:
        with self._lock:
            progress = self._policies.setdefault(key, _Progress(max(interval, budget)))
            progress.period = max(interval, budget)
            progress.running_since = now

    def finished(self, key: str, now: float) -> None:
        with self._lock:
            progress = self._policies.get(key)
            if progress is not None:
                progress.running_since = None
                progress.finished_at = now

    def forget(self, key: str) -> None:
        with self._lock:
            self._policies.pop(key, None)

    def stuck(self, now: float) -> list[str]:
        with self._lock:
            return sorted(
                key
                for key, p in self._policies.items()
                if p.running_since is not None
                and now - p.running_since > STUCK_INTERVALS * p.period
            )

    def verdict(self, now: float) -> str | None:
        """None when healthy, else why not (one line)."""
        stuck = self.stuck(now)
        if not stuck:
            return None
        with self._lock:
            moving = [
                key
                for key, p in self._policies.items()
                if p.finished_at is not None
                and now - p.finished_at <= STUCK_INTERVALS * p.period + TICK
            ]
        if moving:
            return None
        return (
            f"reconciles stuck for over {STUCK_INTERVALS} intervals and none finishing: "
            + ", ".join(stuck[:10])
        )
