"""Durations ("15s", "1h30m", "7d") and Kubernetes quantities ("500m", "4Gi") as numbers."""

from __future__ import annotations

import re
from decimal import Decimal

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


# The suffixes' powers of 1000 (or of 1024 before an "i"), as the Kubernetes client has them.
_EXPONENTS = {"n": -3, "u": -2, "m": -1, "K": 1, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_BINARY_PREFIXES = "KMGTPE"


def parse_quantity(value: int | str) -> float:
    """A Kubernetes quantity as a float: cores for CPU ("500m" -> 0.5), bytes for memory.

    The arithmetic is the Kubernetes client's (`kubernetes.utils.parse_quantity`, in Decimal;
    tests/unit/test_units.py compares the two), without importing the client (about 0.6 s, too
    much for `peakpilot plan`); the grammar check before it is the API server's, which the
    client does not make ("1_000", "nan" and "Infinity" are Decimals to it). Surrounding
    whitespace is tolerated here; the API models check the exact form and the range.
    """
    if isinstance(value, bool):  # bool is an int subclass, but `true` is no quantity
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    if isinstance(value, int):
        return float(value)
    text = value.strip()
    if not _QUANTITY.fullmatch(text):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    number, base, exponent = text, 1, 0
    if len(text) >= 2 and text[-1] == "i" and text[-2] in _EXPONENTS:
        if text[-2] not in _BINARY_PREFIXES:
            raise ValueError(f"{value!r} is not a Kubernetes quantity: unknown suffix")
        number, base, exponent = text[:-2], 1024, _EXPONENTS[text[-2]]
    elif text[-1:] in _EXPONENTS:
        number, base, exponent = text[:-1], 1000, _EXPONENTS[text[-1]]
    try:
        # inf past a float's range (1e400): the API models bound quantities and name the limit.
        amount = Decimal(number)
        if exponent:
            amount *= Decimal(base) ** exponent
        return float(amount)
    except (ValueError, ArithmeticError) as exc:  # decimal.Overflow, e.g. 9...9E
        raise ValueError(f"{value!r} is not a Kubernetes quantity: out of range") from exc
