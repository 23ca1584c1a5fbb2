"""Load from Prometheus, checked strictly: an empty, NaN, infinite, negative, too large (above
units.MAX_LOAD) or stale result is a failure (MetricError), never a zero, so a broken query can
never scale a workload down.

The adapter is also a trust boundary. A policy author picks the URL (within the operator's
allow-list) and the operator adds credentials from Secrets, so what comes back is foreign: a
MetricError's message is short and built here, never the request's headers, never a credential
(scrubbed even if a server echoes it), never more than a bounded excerpt of a Prometheus-style
error, and answers are read up to a size limit.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import re
import socket
import ssl
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from peakpilot.blocking import network
from peakpilot.promql import newest_sample_query
from peakpilot.units import MAX_LOAD

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a 10,000-point range answer is about 1 MiB
MAX_EXCERPT = 200  # characters of a Prometheus error message shown in status
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class MetricError(Exception):
    """A load query gave no usable value; the message says why and what to check (safe to show
    in status, Events and logs)."""


@dataclass(frozen=True)
class PrometheusSettings:
    url: str
    timeout: float = 5.0
    headers: dict[str, str] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None
    verify: bool | str = True  # False, True, or a CA bundle path
    max_age: float = 120.0  # a sample this much older than the query time is stale

    def secrets(self) -> list[str]:
        """Every credential string a server could echo back (header values, basic auth, and the
        Basic header they make), longest first so a scrub replaces whole values."""
        found = [v for v in self.headers.values() if v]
        found += [v.partition(" ")[2] for v in self.headers.values() if " " in v]
        if self.basic_auth is not None:
            user, password = self.basic_auth
            found += [user, password]
            found.append(base64.b64encode(f"{user}:{password}".encode()).decode())
        return sorted({s for s in found if s}, key=len, reverse=True)


def safe_url(url: str) -> str:
    """`url` as shown in messages: scheme, host, port and path; no user info, query or
    fragment (a URL may carry credentials)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "(an invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    return scrub(f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/"), (), 200)


def scrub(text: str, secrets: Iterable[str], limit: int = MAX_EXCERPT) -> str:
    """`text` without any of `secrets` or control characters, cut to `limit` characters."""
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


class AllowList:
    """The Prometheus URLs the operator may query for policies (an operator setting): a policy
    URL is allowed when it has an allowed URL's scheme, host and port, and a path at or below
    its path. Empty: every URL is allowed (the operator warns at start-up)."""

    def __init__(self, urls: Iterable[str] = ()) -> None:
        self.urls = tuple(u.strip() for u in urls if u.strip())
        self._allowed = []
        for url in self.urls:
            key = _key(url)
            if key is None:
                raise ValueError(
                    f"allowed Prometheus URL {safe_url(url)!r} is not an http(s) URL with a host"
                )
            self._allowed.append(key)

    def __bool__(self) -> bool:
        return bool(self.urls)

    def allows(self, url: str) -> bool:
        if not self.urls:
            return True
        key = _key(url)
        if key is None:
            return False
        origin, path = key
        return any(
            origin == o and (path == p or path.startswith(p.rstrip("/") + "/") or p == "")
            for o, p in self._allowed
        )

    def describe(self) -> str:
        return ", ".join(safe_url(u) for u in self.urls)


def _key(url: str) -> tuple[tuple[str, str, int], str] | None:
    """(scheme, host, port) and the normalised path of an http(s) URL; None if it is not one."""
    try:
        parts = urlsplit(url.strip())
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    except ValueError:
        return None
    if scheme not in ("http", "https") or not host:
        return None
    path = parts.path.rstrip("/")
    if "/.." in path or "/./" in path + "/":
        return None  # no dot segments to climb out of an allowed path
    return (scheme, host, port), path


class PrometheusSource:
    """Instant and range queries over HTTP (requests), one timeout per request, no retries:
    the next reconcile is the retry."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        self._url = settings.url.rstrip("/")
        self._where = safe_url(settings.url)
        self._secrets = settings.secrets()
        self._session = requests.Session()
        self._session.verify = settings.verify
        self._session.trust_env = False  # no proxy or .netrc from the environment
        if settings.basic_auth is not None:
            self._session.auth = settings.basic_auth

    def close(self) -> None:
        self._session.close()

    def _error(self, text: str) -> MetricError:
        return MetricError(scrub(text, self._secrets, 1024))

    def _get(self, path: str, params: dict[str, str]) -> Any:
        """The `data.result` of a successful API answer; MetricError otherwise."""
        try:
            with (
                network(),
                self._session.get(
                    self._url + path,
                    params=params,
                    headers=self.settings.headers,
                    timeout=self.settings.timeout,
                    stream=True,
                    allow_redirects=False,  # a redirect could lead the credentials elsewhere
                ) as response,
            ):
                status = response.status_code
                body = _read(response)
        except requests.RequestException as exc:
            raise self._error(self._failure(exc)) from None
        if body is None:
            raise self._error(
                f"Prometheus at {self._where} answered more than "
                f"{MAX_ANSWER_BYTES // (1024 * 1024)} MiB (HTTP {status}); not read"
            )
        if not 200 <= status < 300:
            raise self._error(self._http_error(status, body))
        try:
            answer = json.loads(body)
            if answer.get("status") != "success":
                raise ValueError("status is not success")
            return answer["data"]["result"]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise self._error(
                f"Prometheus at {self._where} answered something that is not a query result "
                f"(HTTP {status}, {len(body)} bytes)"
            ) from None

    def _failure(self, exc: requests.RequestException) -> str:
        """What went wrong with a request, in words of ours (requests' own texts quote URLs,
        and in some versions headers)."""
        if _timed_out(exc):
            return f"Prometheus did not answer within {self.settings.timeout:g}s ({self._where})"
        if isinstance(exc, requests.exceptions.SSLError):
            return (
                f"cannot reach Prometheus at {self._where}: TLS handshake failed{_tls_reason(exc)} "
                "(check spec.prometheus.auth.caSecret and the server's certificate)"
            )
        if isinstance(exc, requests.exceptions.InvalidHeader):
            return f"cannot query Prometheus at {self._where}: a credential is not a valid header"
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
            return f"cannot query Prometheus: {self._where} is not a valid URL"
        return f"cannot reach Prometheus at {self._where}: {_cause(exc)}"

    def _http_error(self, status: int, body: bytes) -> str:
        hint = ""
        if status in (401, 403):
            hint = "; check spec.prometheus.auth and the Secret it names"
        detail = ""
        try:
            answer = json.loads(body)
            error = answer.get("error") if isinstance(answer, dict) else None
            if isinstance(error, str):  # a Prometheus API error: its type and message
                kind = answer.get("errorType")
                detail = f": {kind}: {error}" if isinstance(kind, str) else f": {error}"
        except ValueError:
            pass
        if not detail:  # not a Prometheus error: nothing of the body is shown
            detail = f" (an answer of {len(body)} bytes that is not a Prometheus error)"
        lead = f"Prometheus at {self._where} answered HTTP {status}"
        if status in (400, 422):  # bad_data, execution: the query's own fault
            lead = f"Prometheus rejected the query (HTTP {status})"
        return f"{lead}{scrub(detail, self._secrets, MAX_EXCERPT)}{hint}"

    def instant(self, query: str, at: float | None = None) -> float:
        """The single value of an instant query at `at` (default now), checked for staleness
        by the time of its newest sample (see `promql.newest_sample_query`)."""
        when = time.time() if at is None else at
        params = {"query": query, "time": f"{when:.3f}"}
        try:
            value = check_instant(
                query, self._get("/api/v1/query", params), when, self.settings.max_age
            )
        except MetricError as exc:
            raise self._error(str(exc)) from None  # the query may hold line breaks
        self._check_fresh(query, when)
        return value

    def _check_fresh(self, query: str, when: float) -> None:
        """Refuse an answer whose newest sample is older than max_age (Prometheus' lookback
        stamps an instant answer with the evaluation time, not the sample's)."""
        freshness = newest_sample_query(query)
        if freshness is not None:
            stamps = self._get("/api/v1/query", {"query": freshness, "time": f"{when:.3f}"})
            newest = _single_number(stamps)
            if newest is not None and when - newest > self.settings.max_age:
                raise MetricError(
                    f"the newest sample is {when - newest:.0f}s old (stale, limit "
                    f"{self.settings.max_age:g}s): {query}"
                )

    def _range(self, query: str, start: float, end: float, step: float) -> Any:
        return self._get(
            "/api/v1/query_range",
            {
                "query": query,
                "start": f"{start:.3f}",
                "end": f"{end:.3f}",
                # Seconds as a plain number: Prometheus reads "1.5" but refuses "1.5s" as a step.
                "step": f"{max(1.0, step):.3f}".rstrip("0").rstrip("."),
            },
        )

    def history(
        self, query: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        """(time, value) samples of a range query; unusable points are dropped, not zeroed."""
        result = self._range(query, start, end, step)
        if not isinstance(result, list) or len(result) != 1:
            count = len(result) if isinstance(result, list) else "no"
            raise MetricError(f"range query returned {count} series, expected 1: {query}")
        return _points(result[0])

    def instant_by(self, query: str, label: str, at: float | None = None) -> ByLabel:
        """One instant query answering for many workloads: each series' value by its `label`
        (`check_instant_by`), the answer refused whole when its newest sample is stale."""
        when = time.time() if at is None else at
        params = {"query": query, "time": f"{when:.3f}"}
        try:
            answer = check_instant_by(
                query, label, self._get("/api/v1/query", params), when, self.settings.max_age
            )
        except MetricError as exc:
            raise self._error(str(exc)) from None
        self._check_fresh(query, when)
        return answer

    def history_by(
        self, query: str, label: str, start: float, end: float, step: float
    ) -> dict[str, list[tuple[float, float]]]:
        """A range query's samples by `label`: a value carried by more than one series (or
        none) is left out, as are unusable points."""
        result = self._range(query, start, end, step)
        if not isinstance(result, list):
            raise MetricError(f"the range query did not return a matrix: {query}")
        return split_by(label, result)


def _points(series: Any) -> list[tuple[float, float]]:
    """The usable (time, value) points of one range series."""
    points = []
    for item in series.get("values", []) if isinstance(series, dict) else []:
        try:
            t, value = float(item[0]), float(item[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(value) and 0 <= value <= MAX_LOAD:
            points.append((t, value))
    return points


def _group(label: str, result: Sequence[Any]) -> tuple[dict[str, list[Any]], int]:
    """Series by the value of `label`, and how many series do not carry it."""
    groups: dict[str, list[Any]] = {}
    unlabelled = 0
    for item in result:
        metric = item.get("metric") if isinstance(item, dict) else None
        key = metric.get(label) if isinstance(metric, dict) else None
        if not isinstance(key, str) or not key:
            unlabelled += 1
            continue
        groups.setdefault(key, []).append(item)
    return groups, unlabelled


def split_by(label: str, result: Sequence[Any]) -> dict[str, list[tuple[float, float]]]:
    """Range series by `label`; values carried by more than one series are left out."""
    groups, _ = _group(label, result)
    return {key: _points(items[0]) for key, items in groups.items() if len(items) == 1}


@dataclass(frozen=True)
class ByLabel:
    """One query's answer for many workloads: each label value's load, and why others have
    none (a value carried by several series, or a number that fails the checks)."""

    values: dict[str, float]
    refused: dict[str, str]
    unlabelled: int = 0  # series without the label: ignored


def check_instant_by(query: str, label: str, result: Any, at: float, max_age: float) -> ByLabel:
    """The strict checks of `check_instant`, per series of a `by (label)` answer. A series
    without the label is ignored; a label value on more than one series is refused (which one
    is the load?), never summed or picked. An answer that is no vector, or has no series at
    all, is a MetricError: nothing in it names a workload."""
    if not isinstance(result, Sequence) or isinstance(result, str):
        raise MetricError(f"unexpected answer type {type(result).__name__} for {query}")
    if len(result) == 0:
        raise MetricError(
            f"the query returned no series (no data yet, or labels that match nothing): {query}"
        )
    groups, unlabelled = _group(label, result)
    values: dict[str, float] = {}
    refused: dict[str, str] = {}
    for key, items in groups.items():
        if len(items) > 1:
            refused[key] = (
                f"{len(items)} series carry {label}={key!r} in the workloads query (aggregate "
                f"it by ({label}) to get one each)"
            )
            continue
        try:
            values[key] = check_instant(query, items, at, max_age)
        except MetricError as exc:
            refused[key] = f"{label}={key!r} in the workloads query: {exc}"
    if not groups:
        raise MetricError(
            f"no series of the query carries the label {label!r} (aggregate it by ({label})): "
            f"{query}"
        )
    return ByLabel(values, refused, unlabelled)


def _read(response: requests.Response) -> bytes | None:
    """The body, or None if it is longer than MAX_ANSWER_BYTES (not read further)."""
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _timed_out(exc: requests.RequestException) -> bool:
    """A timeout, also when it comes wrapped: with retries off, urllib3 may turn a timeout into
    MaxRetryError, which requests raises as a ConnectionError, not as a Timeout."""
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # urllib3 2 derives NewConnectionError (connection refused) from ConnectTimeoutError.
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it was caused by or wraps, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__, *[a for a in e.args if isinstance(a, BaseException)]]
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)


def _tls_reason(exc: BaseException) -> str:
    """OpenSSL's own reason, e.g. ": CERTIFICATE_VERIFY_FAILED (self-signed certificate)"."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLError) and isinstance(e.reason, str):
            if not re.fullmatch(r"[A-Z0-9_]{1,64}", e.reason):
                return ""
            verify = getattr(e, "verify_message", None)
            detail = f" ({scrub(verify, (), 80)})" if isinstance(verify, str) and verify else ""
            return f": {e.reason}{detail}"
    return ""


def _cause(exc: BaseException) -> str:
    """A short, fixed description of why a connection failed, from the exception chain."""
    for e in _chain(exc):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "host name not resolved"
        if isinstance(e, ConnectionResetError):
            return "connection reset"
        if isinstance(e, ssl.SSLError):
            return "TLS error"
        if isinstance(e, urllib3.exceptions.ProtocolError | http.client.HTTPException):
            return "the server closed the connection or broke the protocol"
    return "connection failed"


def _single_number(result: Any) -> float | None:
    """The value of a one-series instant vector, None when there is none or it is not a number."""
    if not isinstance(result, list) or len(result) != 1 or not isinstance(result[0], dict):
        return None
    sample = result[0].get("value")
    try:
        value = float(sample[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    return value if math.isfinite(value) else None


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
    sample = result[0].get("value") if isinstance(result[0], dict) else None
    if not isinstance(sample, Sequence) or isinstance(sample, str) or len(sample) != 2:
        raise MetricError(f"the query did not return an instant vector: {query}")
    raw = sample[1]
    try:
        stamp, value = float(sample[0]), float(raw)
    except (TypeError, ValueError):
        raise MetricError(f"the value is not a number: {query}") from None
    if math.isnan(value) or math.isinf(value):
        shown = raw if isinstance(raw, str) else str(value)
        raise MetricError(f"the value is {shown[:8]} (e.g. a division by zero): {query}")
    if value < 0:
        raise MetricError(f"the value {value:g} is negative; load must be >= 0: {query}")
    if value > MAX_LOAD:  # the core would plan absurd counts, or overflow (1.7e308 did)
        raise MetricError(
            f"the value {value:g} is above {MAX_LOAD:g}, the largest load (requests/s) PeakPilot "
            f"plans for; check the query's units: {query}"
        )
    if at - stamp > max_age:
        raise MetricError(f"the value is {at - stamp:.0f}s old (stale): {query}")
    return value
