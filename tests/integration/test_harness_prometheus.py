"""The Prometheus harness: a real server scraping the in-process load exporter, restartable,
and loadable with history through promtool."""

from __future__ import annotations

import math
import time
import urllib.error
from collections.abc import Callable

import pytest
from harness import LoadExporter, PrometheusFactory, PrometheusServer, Series

pytestmark = pytest.mark.integration

RATE = 'rate(http_requests_total{app="checkout"}[4s])'


def near(expected: float, tolerance: float = 0.05) -> Callable[[float], bool]:
    return lambda value: math.isclose(value, expected, rel_tol=tolerance)


def test_a_load_step_shows_up_in_prometheus(
    prometheus: PrometheusServer, load_exporter: LoadExporter
) -> None:
    load_exporter.set_rate("checkout", 10)
    load_exporter.set_rate("search", 3)
    prometheus.wait_for_targets_up()

    assert prometheus.wait_for_value(RATE, near(10)) == pytest.approx(10, rel=0.05)
    load_exporter.set_rate("checkout", 40)  # the step
    assert prometheus.wait_for_value(RATE, near(40)) == pytest.approx(40, rel=0.05)

    gauge = prometheus.query_value('app_load_requests_per_second{app="checkout"}')
    assert gauge == 40
    by_app = {
        r["metric"]["app"]: float(r["value"][1])
        for r in prometheus.query("app_load_requests_per_second")
    }
    assert by_app == {"checkout": 40, "search": 3}

    # A failing scrape target (Prometheus itself stays up).
    load_exporter.available = False
    assert prometheus.wait_for_value('up{job="load"}', lambda up: up == 0, timeout=10) == 0


def test_prometheus_can_stop_and_recover_with_its_data(
    prometheus: PrometheusServer, load_exporter: LoadExporter
) -> None:
    load_exporter.set_rate("checkout", 5)
    prometheus.wait_for_targets_up()
    prometheus.wait_for_value(RATE, near(5))
    before_stop = time.time()

    prometheus.stop()
    assert not prometheus.running
    with pytest.raises(urllib.error.URLError):  # what a client sees: connection refused
        prometheus.query("up")

    prometheus.start()
    assert prometheus.running
    # The samples scraped before the outage survived (TSDB head replayed from the WAL) ...
    assert (prometheus.query_value(RATE, at=before_stop) or 0) == pytest.approx(5, rel=0.05)
    # ... and scraping resumes on the same port and target.
    restarted = time.time()
    prometheus.wait_for_value(
        'timestamp(http_requests_total{app="checkout"})', lambda ts: ts > restarted
    )


def test_backfilled_history_is_returned_by_range_queries(
    prometheus_factory: PrometheusFactory,
) -> None:
    # Three hours of per-minute samples, aligned to whole minutes so that range-query steps
    # land exactly on samples.
    end = math.floor(time.time() / 60) * 60 - 120
    start = end - 3 * 3600
    load = Series.from_function(
        "app_load",
        {"app": "checkout"},
        lambda t: 100 + (t - start) / 60,
        start=start,
        end=end,
    )
    requests = Series.from_function(
        "checkout_requests_total",
        {"app": "checkout"},
        lambda t: 5 * (t - start),  # a counter at 5 requests/s
        start=start,
        end=end,
        kind="counter",
    )
    server = prometheus_factory(history=[load, requests])

    result = server.query_range('app_load{app="checkout"}', start=start, end=end, step=60)
    assert len(result) == 1
    points = [(float(t), float(v)) for t, v in result[0]["values"]]
    assert points == [(float(t), v) for t, v in load.samples]
    assert len(points) == 181

    rates = server.query_range(
        "rate(checkout_requests_total[5m])", start=start + 600, end=end, step=600
    )
    assert [float(v) for _, v in rates[0]["values"]] == pytest.approx([5.0] * 18)
