"""Bounded reconciles: each one's deadline, the threads they run in, and the liveness rule.

No Kopf and no Kubernetes here (operator.py wires it in). A reconcile is blocking work (HTTP and
the solver), so it runs in a thread: one of a small pool of long-lived threads (`Pool`), at most
WORKERS at once. Python cannot kill a thread, so past its deadline the reconcile is *abandoned*:
its writes are refused (`Kube.gated`), its result is dropped, its thread goes on with it outside
the pool's count (another thread takes its place), and the policy gets no new reconcile until it
has ended, so two never share a policy's state. A reconcile waiting long on the network lends its
place too, so one slow tenant cannot hold up the others; the threads are daemons, so a stuck one
never delays the operator's exit on SIGTERM.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from peakpilot import blocking

log = logging.getLogger("peakpilot.runtime")

TICK = 1.0  # seconds between looks at a policy: edits, pause and mode changes apply this fast
MARGIN = 0.1  # a reconcile may take its interval less this share of it...
MAX_MARGIN = 5.0  # ...less at most this many seconds
SOLVE_ALLOWANCE = 2.0  # ...but never less than the solver's time limit plus this
STUCK_INTERVALS = 3  # liveness: a reconcile running this many intervals (or deadlines) is stuck
WORKERS = 4  # reconciles (and status writes) running at once
LEND_AFTER = 1.0  # seconds a job waits on the network before its place goes to a queued one
IDLE_EXIT = 60.0  # seconds a thread above WORKERS stays idle before it ends
POLL = 0.25  # seconds between a queued job's looks at places to borrow


def deadline(interval: float, time_limit: float) -> float:
    """Seconds one reconcile may take: its interval less 10 % (at most 5 s), and never less than
    the solver's time limit + 2 s (the solver alone may use its limit; below that every plan that
    needs it would be abandoned)."""
    return max(interval - min(interval * MARGIN, MAX_MARGIN), time_limit + SOLVE_ALLOWANCE)


class Job[T]:
    """One call of ``fn()`` in the pool, its result delivered to the event loop that submitted
    it. Queued until a place is free, then running in one of the pool's threads."""

    def __init__(
        self,
        pool: Pool,
        fn: Callable[[], T],
        name: str,
        on_done: Callable[[], None] | None,
    ) -> None:
        self.name = name
        self.submitted = time.monotonic()
        self.began: float | None = None  # when a thread took it up (the deadline counts from it)
        self._pool = pool
        self._fn = fn
        self._on_done = on_done
        self._loop = asyncio.get_running_loop()
        self.result: asyncio.Future[T] = self._loop.create_future()
        # A result nobody waits for any more (it came too late) must not warn when collected.
        self.result.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._state = _QUEUED  # the pool's lock guards it, and the two below
        self._thread: _Thread | None = None
        self.abandoned = False

    @property
    def busy(self) -> bool:
        """Queued or running: the policy's state is still its own."""
        return self._state in (_QUEUED, _RUNNING)

    def _run(self) -> None:
        """In a pool thread."""
        self.began = time.monotonic()
        value: T | None = None
        error: BaseException | None = None
        try:
            value = self._fn()
        except BaseException as exc:  # delivered to the awaiting side, which decides
            error = exc
        finally:
            if self._on_done is not None:
                try:
                    self._on_done()
                except Exception:  # bookkeeping must not take the pool's thread down
                    log.exception(f"{self.name}: on_done failed")
        with contextlib.suppress(RuntimeError):  # the loop is closed: the operator stopped
            self._loop.call_soon_threadsafe(self._deliver, value, error)

    def _deliver(self, value: T | None, error: BaseException | None) -> None:
        if self.result.done():
            return
        if error is not None:
            self.result.set_exception(error)
        else:
            self.result.set_result(value)  # type: ignore[arg-type]

    async def wait(
        self, budget: float = math.inf, stop: Callable[[], Awaitable[object]] | None = None
    ) -> T | None:
        """The result, if it comes within ``budget`` seconds of the moment a thread took the job
        up (time in the queue does not count); None if ``stop()`` completes first. Past the
        budget, or when stopped, the job is abandoned (withdrawn if still queued; a running one
        goes on, and another takes its place) and TimeoutError is raised."""
        stopping = asyncio.ensure_future(stop()) if stop is not None else None
        either: set[asyncio.Future[Any]] = {self.result}
        if stopping is not None:
            either.add(stopping)
        try:
            while not self.result.done() and not (stopping is not None and stopping.done()):
                timeout: float | None = POLL
                if self.began is not None:
                    timeout = self.began + budget - time.monotonic()
                    if timeout <= 0:
                        break
                    if math.isinf(timeout):
                        timeout = None
                await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if self.began is None:  # still queued: maybe a place can be lent to it
                    self._pool.relieve()
        except BaseException:  # cancelled (the daemon stops): nobody waits for it any more
            self._pool.abandon(self)
            raise
        finally:
            if stopping is not None:
                stopping.cancel()
        if self.result.done():
            return self.result.result()
        self._pool.abandon(self)
        if stopping is not None and stopping.done() and not stopping.cancelled():
            return None
        raise TimeoutError(f"not finished within {budget:g} s")


_QUEUED, _RUNNING, _DONE, _WITHDRAWN = "queued", "running", "done", "withdrawn"


@dataclass(eq=False)
class _Thread:
    """One of the pool's threads, as the pool's lock sees it."""

    thread: threading.Thread | None = None
    job: Job[Any] | None = None
    counted: bool = False  # its job holds one of the pool's places
    lent: bool = False  # its place was lent while it waited on the network
    network_since: float | None = None  # inside blocking.network() since


class Pool:
    """Long-lived daemon threads that run at most ``size`` jobs at once, in the order submitted.

    A reconcile is mostly Python (parsing answers, the forecasters, building the model), which
    runs one thread at a time whatever the number of threads; running every policy's reconcile at
    once only keeps all their working memory alive together (after a restart with a week of
    history each, that left the heap tens of MB larger for good). Bounded without starving
    anyone: a job past its deadline is abandoned and gives up its place at once (the thread goes
    on with it, outside the count), and a job waiting on the network (`blocking.network()`)
    longer than ``lend_after`` seconds lends its place to a queued one, taking a place again
    when its answer comes: a tenant whose Prometheus answers late holds a place for about a
    second at a time. Threads above ``size`` end after ``idle_exit`` idle seconds.
    """

    def __init__(
        self,
        size: int = WORKERS,
        *,
        lend_after: float = LEND_AFTER,
        idle_exit: float = IDLE_EXIT,
        name: str = "peakpilot worker",
    ) -> None:
        if size < 1:
            raise ValueError(f"a pool of {size} threads")
        self.size = size
        self.lend_after = lend_after
        self.idle_exit = idle_exit
        self._name = name
        self._lock = threading.Condition()
        self._queue: collections.deque[Job[Any]] = collections.deque()
        self._threads: set[_Thread] = set()  # alive
        self._idle: list[_Thread] = []  # alive and without a job
        self._active = 0  # jobs holding a place (<= size)
        self._returning = 0  # threads back from the network, waiting for a place
        self._closed = False
        self._started = 0

    def submit[T](
        self, fn: Callable[[], T], *, name: str, on_done: Callable[[], None] | None = None
    ) -> Job[T]:
        """Queue ``fn()`` (from the event loop that awaits its result); ``on_done()`` runs in the
        thread when it has returned or raised."""
        job = Job(self, fn, name, on_done)
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed: the operator stops")
            self._queue.append(job)
            self._dispatch()
        return job

    async def call[T](self, fn: Callable[[], T], *, name: str) -> T:
        """``fn()`` in the pool, awaited without a deadline."""
        result = await self.submit(fn, name=name).wait()
        return result  # type: ignore[return-value]

    def _dispatch(self) -> None:
        """Hand queued jobs to idle threads (or new ones) while places are free. Lock held."""
        while self._queue and self._active < self.size and not self._returning:
            job = self._queue.popleft()
            self._active += 1
            job._state = _RUNNING
            worker = self._idle.pop() if self._idle else self._spawn()
            worker.job, worker.counted = job, True
            job._thread = worker
        self._lock.notify_all()

    def _spawn(self) -> _Thread:
        self._started += 1
        worker = _Thread()
        worker.thread = threading.Thread(
            target=self._serve, args=(worker,), name=f"{self._name} {self._started}", daemon=True
        )
        self._threads.add(worker)
        worker.thread.start()
        return worker

    def _serve(self, me: _Thread) -> None:
        blocking.install(lambda: self._network(me))
        thread = threading.current_thread()
        while True:
            with self._lock:
                idle_since = time.monotonic()
                while me.job is None:
                    left = idle_since + self.idle_exit - time.monotonic()
                    if self._closed or (left <= 0 and len(self._threads) > self.size):
                        self._idle.remove(me)
                        self._threads.discard(me)
                        return
                    self._lock.wait(max(left, 0.1) if len(self._threads) > self.size else None)
                job = me.job
            own, thread.name = thread.name, job.name  # who it runs, in a dump of the threads
            try:
                job._run()
            finally:
                thread.name = own
                with self._lock:
                    if me.counted:
                        self._active -= 1
                    me.job, me.counted, me.lent = None, False, False
                    job._state = _DONE
                    self._idle.append(me)
                    self._dispatch()

    @contextlib.contextmanager
    def _network(self, me: _Thread) -> Iterator[None]:
        """`blocking.network()` in a pool thread: its place may be lent meanwhile (`relieve`)."""
        with self._lock:
            me.network_since = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                me.network_since = None
                if me.lent:  # take a place again before going on (ahead of the queue)
                    me.lent = False
                    job = me.job
                    self._returning += 1
                    while (
                        self._active >= self.size
                        and not self._closed
                        and not (job is not None and job.abandoned)
                    ):
                        self._lock.wait()
                    self._returning -= 1
                    if not (job is not None and job.abandoned):
                        self._active += 1
                        me.counted = True
                    self._dispatch()

    def relieve(self, now: float | None = None) -> None:
        """Lend the places of the jobs waiting on the network for over ``lend_after`` seconds to
        queued jobs (each queued job's wait calls this every POLL seconds)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wanted = len(self._queue) - (self.size - self._active)
            for worker in self._threads:
                if wanted <= 0:
                    break
                since = worker.network_since
                if worker.counted and since is not None and now - since >= self.lend_after:
                    worker.counted, worker.lent = False, True
                    self._active -= 1
                    wanted -= 1
            self._dispatch()

    def abandon(self, job: Job[Any]) -> None:
        """Give up on ``job``: withdrawn if still queued; if running, its thread goes on with it
        without a place (the next queued job gets it) and comes back idle when it is done."""
        with self._lock:
            if job._state == _QUEUED:
                self._queue.remove(job)
                job._state = _WITHDRAWN
                return
            if job._state != _RUNNING or job.abandoned:
                return
            job.abandoned = True
            worker = job._thread
            if worker is not None and worker.counted:
                worker.counted = False
                self._active -= 1
            self._dispatch()

    @property
    def threads(self) -> int:
        """Threads alive (idle ones included)."""
        with self._lock:
            return len(self._threads)

    def finish(self, timeout: float) -> int:
        """Close the pool (queued jobs are dropped) and wait up to ``timeout`` seconds in all for
        the running ones; return how many still run.

        At exit: a thread still inside the solver's native code when the interpreter finalises
        can abort the process, so the caller ends it with os._exit if any remain."""
        end = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            for job in self._queue:
                job._state = _WITHDRAWN
            self._queue.clear()
            busy = [w.thread for w in self._threads if w.job is not None and w.thread is not None]
            self._lock.notify_all()
        for thread in busy:
            thread.join(max(0.0, end - time.monotonic()))
        return sum(t.is_alive() for t in busy)


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
