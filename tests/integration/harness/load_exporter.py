"""An in-process Prometheus exporter whose per-app load a test sets directly.

It exposes, per app label:

* ``http_requests_total{app}``: a counter that grows at the configured rate, computed from
  the clock at scrape time, so ``rate(http_requests_total[..])`` converges to exactly the
  configured requests/s without a busy background thread;
* ``app_load_requests_per_second{app}``: a gauge with the configured rate, for instant queries.

A load step is ``exporter.set_rate("checkout", 50)``. ``exporter.available = False`` makes the
endpoint answer 503 so a test can make the scrape target fail while Prometheus stays up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .net import free_port

COUNTER = "http_requests_total"
GAUGE = "app_load_requests_per_second"


class _LoadCollector(Collector):
    """Computes each counter lazily: total = base + rate * (now - since)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # app -> (total at `since`, requests/s, monotonic `since`)
        self._apps: dict[str, tuple[float, float, float]] = {}

    def set_rate(self, app: str, rps: float) -> None:
        if rps < 0:
            raise ValueError("a request rate cannot be negative")
        now = time.monotonic()
        with self._lock:
            base, old_rps, since = self._apps.get(app, (0.0, 0.0, now))
            # Fold the requests served so far into the base, so the counter never goes back.
            self._apps[app] = (base + old_rps * (now - since), float(rps), now)

    def rates(self) -> dict[str, float]:
        with self._lock:
            return {app: rps for app, (_, rps, _) in self._apps.items()}

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        counter = CounterMetricFamily(
            COUNTER.removesuffix("_total"), "Requests served (synthetic)", labels=["app"]
        )
        gauge = GaugeMetricFamily(GAUGE, "Configured request rate (synthetic)", labels=["app"])
        with self._lock:
            for app, (base, rps, since) in sorted(self._apps.items()):
                counter.add_metric([app], base + rps * (now - since))
                gauge.add_metric([app], rps)
        yield counter
        yield gauge


class LoadExporter:
    """HTTP server on a free loopback port that serves ``/metrics`` in Prometheus text format."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.available = True  # False -> answer 503, as a broken target would
        self.scrapes = 0  # how many times /metrics was served (to wait for a scrape)
        self._collector = _LoadCollector()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._collector)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def target(self) -> str:
        """``host:port`` as written in a Prometheus static config."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}/metrics"

    def set_rate(self, app: str, rps: float) -> None:
        """Set the load of ``app`` in requests/s from now on (a step change)."""
        self._collector.set_rate(app, rps)

    def rates(self) -> dict[str, float]:
        return self._collector.rates()

    def start(self) -> Self:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                if not exporter.available:
                    self.send_error(503, "load exporter made unavailable by the test")
                    return
                body = generate_latest(exporter._registry)
                exporter.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # one line per scrape per second would drown the test output

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="load-exporter", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
