"""Credentials and tenants, with the real operator process: no token, Secret value or foreign
answer body reaches a policy's status, its Events or the operator's log; a Secret value with a
line break is refused naming the Secret and key; a policy cannot aim the operator (and the
Secrets it names) at a Prometheus URL the operator does not allow.

The hostile Prometheus is a tiny HTTP server that echoes every request header it gets into its
answer, with a marker, as a 500: what a policy author could point the operator at.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from harness import EmulatedCluster, PeakPilotFactory, PolicyProbe, free_port
from harness.peakpilot import deployment, policy, replica_history, secret, workload

pytestmark = pytest.mark.integration

NS = "shop"
TOKEN = "tok-7f3a9c-secret-value"
MARKER = "MARKER-9d1e-foreign-body"

Answer = Callable[[dict[str, str]], tuple[str, bytes]]  # headers -> (content type, body)


def echo_text(headers: dict[str, str]) -> tuple[str, bytes]:
    lines = [f"{k}: {v}" for k, v in headers.items()]
    return "text/html", f"<html>{MARKER}<pre>{chr(10).join(lines)}</pre></html>".encode()


def echo_prometheus_error(headers: dict[str, str]) -> tuple[str, bytes]:
    # Prometheus-shaped, so a bounded excerpt is shown: the token is echoed at the start (it
    # must be redacted), the marker after 1,000 characters (it must be cut off).
    error = f"upstream rejected {headers.get('authorization')} " + "x" * 1000 + MARKER
    body = {"status": "error", "errorType": "internal", "error": error}
    return "application/json", json.dumps(body).encode()


class EchoServer:
    def __init__(self, answer: Answer) -> None:
        self.port = free_port()
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                kind, body = answer({k.lower(): v for k, v in self.headers.items()})
                self.send_response(500)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def echo_text_server() -> Iterator[EchoServer]:
    with EchoServer(echo_text) as server:
        yield server


def everything_visible(kube_api: EmulatedCluster, probe: PolicyProbe, log: str) -> str:
    """Status, Events and the operator's log: what a tenant or an operator could read."""
    return "\n".join([json.dumps(probe.status()), json.dumps(probe.events()), log])


def bearer(name: str = "prom-token") -> dict[str, Any]:
    return {"bearerTokenSecret": {"name": name, "key": "token"}}


@pytest.mark.parametrize("answer", [echo_text, echo_prometheus_error], ids=["html", "prom-error"])
def test_an_echoing_500_leaks_neither_the_token_nor_the_body(
    kube_api: EmulatedCluster, peakpilot_factory: PeakPilotFactory, answer: Answer
) -> None:
    with EchoServer(answer) as server:
        kube_api.create(secret(NS, "prom-token", {"token": TOKEN}))
        kube_api.create(deployment(NS, "checkout", 5))
        spec = {"url": server.url, "timeout": "2s", "auth": bearer()}
        kube_api.create(policy(NS, "peak", server.url, [workload("checkout")], prometheus=spec))
        process = peakpilot_factory(["--prometheus-url", server.url, "--log-format", "json"])
        probe = PolicyProbe(kube_api, NS, "peak")
        down = probe.wait_condition("MetricsAvailable", "False", "MetricsUnavailable", timeout=40)
        probe.wait_reconciles(3)
        assert server.hits > 0  # the operator did query it, with the token
        assert f"{server.url} answered HTTP 500" in down["message"]
        if answer is echo_prometheus_error:
            assert "internal: upstream rejected [redacted]" in down["message"]
        else:
            assert "not a Prometheus error" in down["message"]
        assert replica_history(kube_api, NS, "checkout") == [5]
        visible = everything_visible(kube_api, probe, process.log())
        assert "MetricsUnavailable" in visible  # the Event is there, and was read
        assert TOKEN not in visible
        assert MARKER not in visible


def test_a_secret_value_with_a_line_break_is_refused_by_name(
    kube_api: EmulatedCluster,
    peakpilot_factory: PeakPilotFactory,
    echo_text_server: EchoServer,
) -> None:
    # Without the check, requests quotes the whole header in its error, token and all.
    kube_api.create(secret(NS, "prom-token", {"token": f"{TOKEN}\r\nX-Injected: {MARKER}"}))
    kube_api.create(deployment(NS, "checkout", 5))
    url = echo_text_server.url
    spec = {"url": url, "timeout": "2s", "auth": bearer()}
    kube_api.create(policy(NS, "peak", url, [workload("checkout")], prometheus=spec))
    process = peakpilot_factory(["--prometheus-url", url])
    probe = PolicyProbe(kube_api, NS, "peak")
    ready = probe.wait_condition("Ready", "False", "WorkloadProblems", timeout=40)
    assert "Secret shop/prom-token key 'token': the value contains a line break" in ready["message"]
    metrics = probe.condition("MetricsAvailable") or {}
    assert "Secret shop/prom-token key 'token'" in metrics.get("message", "")
    assert echo_text_server.hits == 0  # no request was sent with it
    assert replica_history(kube_api, NS, "checkout") == [5]
    visible = everything_visible(kube_api, probe, process.log())
    assert TOKEN not in visible and MARKER not in visible


def test_a_url_outside_the_allow_list_is_refused_before_any_secret_is_read(
    kube_api: EmulatedCluster,
    peakpilot_factory: PeakPilotFactory,
    echo_text_server: EchoServer,
) -> None:
    allowed = f"http://127.0.0.1:{free_port()}/prometheus"  # the one the operator trusts
    kube_api.create(secret(NS, "prom-token", {"token": TOKEN}))
    kube_api.create(deployment(NS, "checkout", 30))
    spec = {"url": echo_text_server.url, "timeout": "2s", "auth": bearer()}
    quiet = workload("checkout", query="vector(0)")  # would scale 30 -> 1 if it were read
    kube_api.create(policy(NS, "peak", echo_text_server.url, [quiet], prometheus=spec))
    process = peakpilot_factory(["--prometheus-url", allowed])
    probe = PolicyProbe(kube_api, NS, "peak")
    ready = probe.wait_condition("Ready", "False", "PrometheusNotAllowed", timeout=40)
    assert f"spec.prometheus.url {echo_text_server.url} is not allowed" in ready["message"]
    assert f"allowed: {allowed}" in ready["message"]
    probe.wait_reconciles(3)
    assert echo_text_server.hits == 0
    secret_reads = kube_api.requests(lambda r: r.plural == "secrets" and r.method == "GET")
    assert secret_reads == []
    assert replica_history(kube_api, NS, "checkout") == [30]
    reasons = [e.get("reason") for e in probe.events()]
    assert reasons.count("PrometheusNotAllowed") == 1  # once, not every interval
    assert TOKEN not in everything_visible(kube_api, probe, process.log())
