"""The pure parts of the Prometheus boundary: which selectors a load query reads (for the
staleness check), the operator's URL allow-list, and the scrubbing of texts for status."""

from __future__ import annotations

from typing import Any

import pytest

from peakpilot.prometheus import (
    AllowList,
    MetricError,
    PrometheusSettings,
    check_instant,
    safe_url,
    scrub,
)
from peakpilot.promql import newest_sample_query, selectors

SELECTORS = {
    'sum(rate(http_requests_total{app="frontend"}[1m]))': ['http_requests_total{app="frontend"}'],
    # Label names after by/on/group_left are not metrics; braces inside strings are text.
    'sum by (app) (rate(x{a="}{"}[5m])) / on(app) group_left(zone) y': ['x{a="}{"}', "y"],
    "sum(x) by (app) * 2 + z offset 5m": ["x"],  # an offset selector is old on purpose
    'histogram_quantile(0.9, sum by (le) (rate(h_bucket{job="a"}[1m])))': ['h_bucket{job="a"}'],
    '{__name__="up", job="a"}': ['{__name__="up", job="a"}'],
    "max_over_time(g[10m:1m]) > bool 1e3": ["g"],
    "a + a": ["a"],
    "vector(1) * 2": [],
    "sum(x @ 1700000000)": [],
}


@pytest.mark.parametrize(("query", "expected"), SELECTORS.items(), ids=range(len(SELECTORS)))
def test_selectors_are_the_metrics_a_query_reads(query: str, expected: list[str]) -> None:
    assert selectors(query) == expected


def test_newest_sample_query_takes_the_stalest_selector() -> None:
    assert newest_sample_query("sum(rate(x[1m]))") == "max(timestamp(x))"
    assert newest_sample_query("a / b") == (
        'min(label_replace(max(timestamp(a)), "peakpilot_selector", "0", "", "") or '
        'label_replace(max(timestamp(b)), "peakpilot_selector", "1", "", ""))'
    )
    assert newest_sample_query("vector(5)") is None
    assert newest_sample_query(" + ".join(f"m{i}" for i in range(9))) is None  # too many


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://prometheus.monitoring:9090", True),
        ("http://PROMETHEUS.monitoring:9090/", True),
        ("http://prometheus.monitoring:9090/api/v1", True),  # below the allowed path
        ("https://thanos.example/tenant-a/query", True),
        ("https://thanos.example:443/tenant-a", True),  # the default port, spelt out
        ("https://thanos.example/tenant-ab", False),  # not a path segment of tenant-a
        ("https://thanos.example/tenant-a/../tenant-b", False),
        ("https://thanos.example/tenant-b", False),
        ("http://thanos.example/tenant-a", False),  # another scheme
        ("http://prometheus.monitoring:9091", False),  # another port
        ("http://prometheus.monitoring:9090@evil.example", False),  # user info, evil host
        ("http://evil.example/?u=http://prometheus.monitoring:9090", False),
        ("file:///etc/passwd", False),
        ("not a url", False),
    ],
)
def test_the_allow_list_matches_origin_and_path(url: str, allowed: bool) -> None:
    allow = AllowList(["http://prometheus.monitoring:9090", "https://thanos.example/tenant-a/"])
    assert allow.allows(url) is allowed


def test_an_empty_allow_list_allows_any_url_and_a_bad_entry_is_refused() -> None:
    assert not AllowList() and AllowList().allows("http://anything:1")
    with pytest.raises(ValueError, match="'ftp://x' is not an http"):
        AllowList(["ftp://x"])


def test_scrub_redacts_credentials_and_control_characters_and_bounds_the_length() -> None:
    settings = PrometheusSettings(
        "http://p", headers={"Authorization": "Bearer t0ken"}, basic_auth=("pilot", "pa55")
    )
    secrets = settings.secrets()
    assert "cGlsb3Q6cGE1NQ==" in secrets  # the Basic header a server could echo
    text = "got Bearer t0ken,\r\nX: t0ken Basic cGlsb3Q6cGE1NQ== user pilot:pa55"
    assert scrub(text, secrets) == (
        "got [redacted], X: [redacted] Basic [redacted] user [redacted]:[redacted]"
    )
    assert scrub("x" * 500, (), 200) == "x" * 197 + "..."


def test_safe_url_drops_user_info_query_and_fragment() -> None:
    assert safe_url("https://user:pw@prom.example:8443/base/?token=abc#f") == (
        "https://prom.example:8443/base"
    )
    assert safe_url("http://[::1]:9090") == "http://[::1]:9090"


def _vector(value: str, at: float = 1000.0) -> list[dict[str, Any]]:
    return [{"metric": {}, "value": [at, value]}]


@pytest.mark.parametrize("value", ["1e9", "0", "123.5"])
def test_a_load_up_to_the_limit_is_read(value: str) -> None:
    assert check_instant("q", _vector(value), 1000.0, 120) == float(value)


@pytest.mark.parametrize("value", ["1.000001e9", "1e15", "1e300", "1.7e308"])
def test_a_load_above_the_limit_is_a_metric_error_naming_the_limit(value: str) -> None:
    # 1.7e308 crashed the core's planner; 1e15 planned absurd replica counts.
    limit = r"is above 1e\+09, the largest load .* check the query's units"
    with pytest.raises(MetricError, match=limit):
        check_instant("sum(x) * 1e300", _vector(value), 1000.0, 120)


@pytest.mark.parametrize(
    ("value", "why"), [("NaN", "NaN"), ("+Inf", "Inf"), ("-1", "negative"), ("x", "not a number")]
)
def test_a_load_that_is_no_load_is_a_metric_error(value: str, why: str) -> None:
    with pytest.raises(MetricError, match=why):
        check_instant("q", _vector(value), 1000.0, 120)
