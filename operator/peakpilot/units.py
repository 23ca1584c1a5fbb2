"""Durations ("15s", "1h30m", "7d") and Kubernetes quantities ("500m", "4Gi") as numbers."""

from __future__ import annotations

import re

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_DURATION_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DURATION = 1e9  # seconds: no lead time, window or history is longer; inf never gets through
# Requests/s a decision can size for (snapshots, traces, Prometheus answers): far above any real
# service, far below what overflows the objective (price x replicas + priority x load).
MAX_LOAD = 1e9

# The API server's own quantity grammar (k8s.io/apimachinery resource.Quantity).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "1m30s", "7d"; ValueError names the accepted form."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(
            f"{text!r} is not a duration: use a number with a unit, ms, s, m, h or d "
            "(e.g. 15s, 1h30m)"
        )
    seconds = sum(float(n) * _DURATION_UNIT[u] for n, u in _DURATION_PART.findall(text))
    if seconds > MAX_DURATION:
        raise ValueError(f"{text!r} is too long: use at most {MAX_DURATION:g}s (about 31 years)")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest duration string for whole seconds (e.g. 5400 -> "1h30m")."""
    if seconds < 0:
        raise ValueError(f"{seconds} is negative: a duration is at least 0s")
    rest = round(seconds)
    if rest == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


def parse_quantity(value: int | str) -> float:
    """A Kubernetes quantity as a float: cores for CPU ("500m" -> 0.5), bytes for memory.

    The arithmetic is the Kubernetes client's (`kubernetes.utils.parse_quantity`); the grammar
    check before it is the API server's, which the client does not make ("1_000", "nan" and
    "Infinity" are Decimals to it). Surrounding whitespace is tolerated here; the API models
    check the exact form and the range.
    """
    # Imported on use: the client package costs about 0.6 s to import, which a plan without
    # quantities need not pay.
    from kubernetes.utils import parse_quantity as client_parse_quantity

    if isinstance(value, bool):  # bool is an int subclass, but `true` is no quantity
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    if isinstance(value, int):
        return float(value)
    text = value.strip()
    if not _QUANTITY.fullmatch(text):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    try:
        # inf past a float's range (1e400): the API models bound quantities and name the limit.
        # The client is untyped; it returns a Decimal.
        return float(client_parse_quantity(text))  # type: ignore[no-untyped-call]
    except (ValueError, ArithmeticError) as exc:  # the client's decimal.Overflow, e.g. 9...9E
        raise ValueError(f"{value!r} is not a Kubernetes quantity: out of range") from exc
