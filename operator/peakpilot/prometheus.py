"""Load from Prometheus, checked strictly: an empty, NaN, infinite, negative or stale result is a
failure (MetricError), never a zero, so a broken query can never scale a workload down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
import urllib3.exceptions
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry


class MetricError(Exception):
    """A load query gave no usable value; the message says why and what to check."""


@dataclass(frozen=True)
class PrometheusSettings:
    url: str
    timeout: float = 5.0
    headers: dict[str, str] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None
    verify: bool | str = True  # False, True, or a CA bundle path
    max_age: float = 120.0  # an answer timestamped this much before the query time is stale


class PrometheusSource:
    """Instant and range queries through prometheus-api-client, one timeout per request."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        session = requests.Session()
        session.verify = settings.verify
        self._client = PrometheusConnect(
            url=settings.url.rstrip("/"),
            headers=dict(settings.headers) or None,
            auth=settings.basic_auth,
            session=session,
            retry=Retry(total=0),  # one try per reconcile; the next reconcile is the retry
            timeout=settings.timeout,
        )

    def close(self) -> None:
        self._client.close()

    def _query(self, call: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, call)(*args, **kwargs)
        except requests.RequestException as exc:
            if _timed_out(exc):
                raise MetricError(
                    f"Prometheus did not answer within {self.settings.timeout:g}s "
                    f"({self.settings.url})"
                ) from exc
            raise MetricError(f"cannot reach Prometheus at {self.settings.url}: {exc}") from exc
        except PrometheusApiClientException as exc:
            raise MetricError(f"Prometheus rejected the query: {exc}") from exc
        except (ValueError, KeyError) as exc:
            raise MetricError(
                f"Prometheus answered something that is not a query result: {exc}"
            ) from exc

    def instant(self, query: str, at: float | None = None) -> float:
        """The single value of an instant query at `at` (default now)."""
        when = time.time() if at is None else at
        result = self._query("custom_query", query, params={"time": f"{when:.3f}"})
        return check_instant(query, result, when, self.settings.max_age)

    def history(
        self, query: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        """(time, value) samples of a range query; unusable points are dropped, not zeroed."""
        result = self._query(
            "custom_query_range",
            query,
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(end, UTC),
            # Seconds as a plain number: Prometheus reads "1.5" but refuses "1.5s" as a step.
            step=f"{max(1.0, step):.3f}".rstrip("0").rstrip("."),
        )
        if not isinstance(result, list) or len(result) != 1:
            count = len(result) if isinstance(result, list) else "no"
            raise MetricError(f"range query returned {count} series, expected 1: {query}")
        points = []
        for t, v in result[0].get("values", []):
            value = float(v)
            if math.isfinite(value) and value >= 0:
                points.append((float(t), value))
        return points


def _timed_out(exc: requests.RequestException) -> bool:
    """A timeout, also when it comes wrapped: with retries off, urllib3 turns a read timeout into
    MaxRetryError, which requests raises as a ConnectionError, not as a Timeout."""
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # urllib3 2 derives NewConnectionError (connection refused) from ConnectTimeoutError.
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def check_instant(query: str, result: Any, at: float, max_age: float) -> float:
    """KEDA-style strict checks of an instant vector result."""
    if not isinstance(result, Sequence) or isinstance(result, str):
        raise MetricError(f"unexpected answer type {type(result).__name__} for {query}")
    if len(result) == 0:
        raise MetricError(
            f"the query returned no series (no data yet, or labels that match nothing): {query}"
        )
    if len(result) > 1:
        raise MetricError(
            f"the query returned {len(result)} series; wrap it in sum(...) to get one: {query}"
        )
    sample = result[0].get("value")
    if not isinstance(sample, Sequence) or len(sample) != 2:
        raise MetricError(f"the query did not return an instant vector: {query}")
    stamp, raw = float(sample[0]), sample[1]
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"the value {raw!r} is not a number: {query}") from exc
    if math.isnan(value) or math.isinf(value):
        raise MetricError(f"the value is {raw} (e.g. a division by zero): {query}")
    if value < 0:
        raise MetricError(f"the value {value:g} is negative; load must be >= 0: {query}")
    if at - stamp > max_age:
        raise MetricError(f"the value is {at - stamp:.0f}s old (stale): {query}")
    return value
