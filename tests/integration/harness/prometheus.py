"""A real Prometheus server (the Debian ``prometheus`` binary) run as a child process.

The server gets a private work dir (config, TSDB data, log) and a free loopback port. It can
be stopped and started again on the same port and data, which is how tests create "Prometheus
is down, then recovers". History is loaded with :func:`backfill` (``promtool tsdb
create-blocks-from openmetrics``) into the data dir before the server starts.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import yaml

from .net import free_port, http_get, wait_until

PROMETHEUS_BIN = os.environ.get("PEAKPILOT_TEST_PROMETHEUS", "prometheus")
PROMTOOL_BIN = os.environ.get("PEAKPILOT_TEST_PROMTOOL", "promtool")


def binaries_available() -> bool:
    """True when both the server and promtool are on PATH (CI installs the Debian package)."""
    return shutil.which(PROMETHEUS_BIN) is not None and shutil.which(PROMTOOL_BIN) is not None


class PrometheusError(RuntimeError):
    """The HTTP API answered with an error, or the server could not start."""


class PrometheusExited(PrometheusError):
    """The process ended while we waited for it to become ready."""


def render_config(
    targets: Sequence[str],
    *,
    scrape_interval: str = "1s",
    job: str = "load",
) -> dict[str, Any]:
    """A minimal config: one static job scraping ``targets`` (``host:port``) at a fast interval."""
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,  # must not exceed the interval
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": [],
    }
    if targets:
        config["scrape_configs"].append(
            {"job_name": job, "static_configs": [{"targets": list(targets)}]}
        )
    return config


class PrometheusServer:
    """One Prometheus process bound to ``127.0.0.1:<port>`` with its data in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        targets: Sequence[str] = (),
        scrape_interval: str = "1s",
        retention: str = "30d",
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.port = port or free_port()  # kept across restarts: clients keep their URL
        self.retention = retention
        self.extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._started = False  # once started, the port is fixed
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.write_config(render_config(targets, scrape_interval=scrape_interval))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Replace the config; it takes effect on the next (re)start."""
        self.config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self, *, timeout: float = 30.0) -> Self:
        """Start the process and block until ``/-/ready`` answers 200."""
        if self.running:
            raise PrometheusError("Prometheus is already running")
        try:
            self._start(timeout)
        except PrometheusExited as exc:
            # free_port() cannot reserve the port; if another process took it before the first
            # start, take another one. Restarts keep theirs: clients already know the URL.
            if self._started or "address already in use" not in str(exc):
                raise
            self.port = free_port()
            self._start(timeout)
        self._started = True
        return self

    def _start(self, timeout: float) -> None:
        args = [
            PROMETHEUS_BIN,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            # A new session so that an interrupted test run never leaves it in our process group
            # receiving our terminal's signals; we always stop it ourselves.
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )

        def ready() -> bool:
            if not self.running:
                raise PrometheusExited(f"Prometheus exited early:\n{self.log_tail()}")
            # 401: up, behind basic auth (--web.config.file): it guards /-/ready too.
            return http_get(f"{self.url}/-/ready", timeout=1.0)[0] in (200, 401)

        try:
            wait_until(
                ready,
                timeout=timeout,
                interval=0.05,
                what="Prometheus /-/ready",
                abort_on=(PrometheusExited,),
            )
        except BaseException:
            self.stop()
            raise

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM (a clean TSDB shutdown), then SIGKILL if it hangs. Idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would; the TSDB recovers from its WAL on the next start."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def restart(self, *, timeout: float = 30.0) -> Self:
        self.stop()
        return self.start(timeout=timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the HTTP API, with the standard library only (tests should not depend on the code
    #    under test to check what Prometheus holds) --

    def api(self, path: str, params: Mapping[str, str | float]) -> Any:
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        status, body = http_get(f"{self.url}/api/v1/{path}?{query}", timeout=5.0)
        payload = json.loads(body) if body else {}
        if status != 200 or payload.get("status") != "success":
            raise PrometheusError(f"{path} answered {status}: {body[:300]!r}")
        return payload["data"]

    def query(self, promql: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns ``data.result`` (a list of ``{metric, value}``)."""
        params: dict[str, str | float] = {"query": promql}
        if at is not None:
            params["time"] = at
        return list(self.api("query", params)["result"])

    def query_value(self, promql: str, *, at: float | None = None) -> float | None:
        """The single value of an instant query, or None when the result is empty."""
        result = self.query(promql, at=at)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"{promql!r} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def query_range(
        self, promql: str, *, start: float, end: float, step: float
    ) -> list[dict[str, Any]]:
        """Range query; returns ``data.result`` (a list of ``{metric, values}``)."""
        data = self.api("query_range", {"query": promql, "start": start, "end": end, "step": step})
        return list(data["result"])

    def wait_for_value(
        self,
        promql: str,
        predicate: Callable[[float], bool],
        *,
        timeout: float = 20.0,
    ) -> float:
        """Poll an instant query until its single value satisfies ``predicate``; return it."""

        def probe() -> float | None:
            value = self.query_value(promql)
            return value if value is not None and predicate(value) else None

        # wait_until treats a falsy value as "not yet": wrap to allow a legitimate 0.0.
        boxed = wait_until(
            lambda: (v,) if (v := probe()) is not None else None,
            timeout=timeout,
            interval=0.2,
            what=f"{promql!r} to satisfy the predicate",
        )
        return boxed[0]

    def wait_for_targets_up(self, *, timeout: float = 20.0) -> None:
        """Block until every configured target has been scraped successfully once."""

        def all_up() -> bool:
            active = self.api("targets", {"state": "active"})["activeTargets"]
            return bool(active) and all(t["health"] == "up" for t in active)

        wait_until(all_up, timeout=timeout, interval=0.2, what="all scrape targets up")


# -- backfilling history with promtool --


@dataclass(frozen=True)
class Series:
    """One time series to backfill: ``name{labels}`` with ``(unix_seconds, value)`` samples.

    For ``kind="counter"`` the name must end in ``_total`` (OpenMetrics puts the family name
    without the suffix in the ``# TYPE`` line) and values must not decrease.
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    samples: Sequence[tuple[float, float]] = ()
    kind: Literal["gauge", "counter"] = "gauge"

    @classmethod
    def from_function(
        cls,
        name: str,
        labels: Mapping[str, str],
        fn: Callable[[float], float],
        *,
        start: float,
        end: float,
        step: float = 60.0,
        kind: Literal["gauge", "counter"] = "gauge",
    ) -> Series:
        """Sample ``fn(t)`` every ``step`` seconds over ``[start, end]``."""
        count = math.floor((end - start) / step) + 1
        times = [start + i * step for i in range(count)]
        return cls(name, dict(labels), [(t, fn(t)) for t in times], kind)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_openmetrics(series: Iterable[Series]) -> str:
    """OpenMetrics text as promtool wants it: families contiguous, timestamps ascending."""
    by_family: dict[str, list[Series]] = {}
    kinds: dict[str, str] = {}
    for s in series:
        family = s.name.removesuffix("_total") if s.kind == "counter" else s.name
        if s.kind == "counter" and not s.name.endswith("_total"):
            raise ValueError(f"counter {s.name!r} must end with _total")
        if kinds.setdefault(family, s.kind) != s.kind:
            raise ValueError(f"{family!r} given as both {kinds[family]} and {s.kind}")
        by_family.setdefault(family, []).append(s)
    lines: list[str] = []
    for family, members in by_family.items():
        lines.append(f"# TYPE {family} {kinds[family]}")
        for s in members:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(s.labels.items()))
            selector = f"{s.name}{{{labels}}}" if labels else s.name
            previous = -math.inf
            for ts, value in s.samples:
                if ts <= previous:
                    raise ValueError(f"{selector}: timestamps must be strictly ascending")
                previous = ts
                lines.append(f"{selector} {value!r} {ts:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def backfill(data_dir: Path, series: Iterable[Series], *, workdir: Path | None = None) -> str:
    """Write ``series`` as OpenMetrics and turn them into TSDB blocks inside ``data_dir``.

    Run it while the server is stopped (before the first start, or between stop and start):
    Prometheus only loads new blocks when it opens the TSDB. Queries only see the backfilled
    samples if they are younger than the server's retention. Returns promtool's output.
    """
    workdir = workdir or data_dir.parent
    data_dir.mkdir(parents=True, exist_ok=True)
    source = workdir / "backfill.om"
    source.write_text(render_openmetrics(series))
    done = subprocess.run(
        [PROMTOOL_BIN, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise PrometheusError(f"promtool failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr
