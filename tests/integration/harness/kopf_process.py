"""Run a Kopf operator as a real child process against the emulated API."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from .net import free_port, http_get, wait_until


class OperatorExited(RuntimeError):
    """The operator process ended while we waited for it to become ready."""


class OperatorProcess:
    """``python -m kopf run <args>`` with its output in a log file and a liveness endpoint.

    ``args`` are what follows ``kopf run``: e.g. ``["--standalone", "-n", "shop", "op.py"]`` or
    ``["--standalone", "-A", "-m", "peakpilot.operator"]``. ``env`` is added to this process'
    environment (put the cluster's ``KUBECONFIG`` there).

    Any other operator command (e.g. the product's own ``peakpilot operator``) runs with
    :meth:`command_line`: the full argv, and the liveness port that command serves
    ``/healthz`` on.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        name: str = "operator",
        command: Sequence[str] | None = None,
        liveness_port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.liveness_port = liveness_port or free_port()
        if command is not None:
            if liveness_port is None:
                raise ValueError("a custom command needs the liveness_port it serves /healthz on")
            self.command = [*command, *args]
        else:
            self.command = [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "--liveness",
                f"http://127.0.0.1:{self.liveness_port}/healthz",
                *args,
            ]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.started_at: float | None = None
        self.ready_after: float | None = None  # seconds from spawn to a healthy liveness probe
        self._process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def command_line(
        cls,
        command: Sequence[str],
        *,
        liveness_port: int,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        name: str = "operator",
    ) -> OperatorProcess:
        """Run ``command`` (a full argv) that serves ``/healthz`` on ``liveness_port``."""
        return cls(
            (), workdir=workdir, env=env, name=name, command=command, liveness_port=liveness_port
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def start(self) -> Self:
        if self.running:
            raise RuntimeError("the operator is already running")
        with self.log_path.open("ab") as log:
            # Own session: stop() can signal the whole group (the operator and anything it
            # spawned) without touching pytest.
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.workdir,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        return self

    def wait_ready(self, *, timeout: float = 30.0) -> float:
        """Block until Kopf's liveness endpoint answers 200; return seconds since spawn.

        Kopf serves it once its startup handlers are done, in parallel with starting watches;
        to know that a resource is being watched, wait for the WATCH request in the emulator.
        """

        def healthy() -> bool:
            if not self.running:
                raise OperatorExited(
                    f"the operator exited with {self.returncode}:\n{self.log_tail()}"
                )
            return http_get(f"http://127.0.0.1:{self.liveness_port}/healthz")[0] == 200

        try:
            wait_until(
                healthy,
                timeout=timeout,
                interval=0.05,
                what="the operator's liveness",
                abort_on=(OperatorExited,),
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; log tail:\n{self.log_tail()}") from exc
        assert self.started_at is not None
        self.ready_after = time.monotonic() - self.started_at
        return self.ready_after

    def stop(self, *, timeout: float = 10.0) -> int | None:
        """SIGTERM (Kopf exits gracefully), SIGKILL the group if it hangs. Idempotent."""
        return self._end((signal.SIGTERM, signal.SIGKILL), timeout)

    def kill(self) -> int | None:
        """SIGKILL the process group at once (a crash, an OOM kill, a node loss)."""
        return self._end((signal.SIGKILL,), 10.0)

    def _end(self, signals: Sequence[int], timeout: float) -> int | None:
        """Signal the whole group with each of ``signals`` in turn, waiting up to ``timeout``
        after each, until the process has exited; its return code (None if never started)."""
        process = self._process
        if process is None:
            return None
        for sig in signals:
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout)
        return process.poll()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
