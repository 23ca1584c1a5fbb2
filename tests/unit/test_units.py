"""Durations and Kubernetes quantities: the parsers behind every Duration and Quantity field."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peakpilot.units import (
    DURATION_PATTERN,
    QUANTITY_PATTERN,
    format_duration,
    parse_duration,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("0s", 0.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("7d", 604800.0),
        ("250ms", 0.25),
        ("1s500ms", 1.5),
        ("1.5h", 5400.0),
        ("0.5m", 30.0),
        ("1d2h3m4s", 93784.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    # The CRD enforces the same pattern, so what parses here is what the API server admits.
    assert re.fullmatch(DURATION_PATTERN, text)


@pytest.mark.parametrize(
    "text",
    ["15 s", "abc", "", "15", "s", "-5s", "1.s", ".5s", "15S", "1w", "15s ", " 15s", "1h 30m"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration: use a number with a unit"):
        parse_duration(text)
    assert not re.fullmatch(DURATION_PATTERN, text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.4, "0s"),
        (15, "15s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "1d"),
        (90061, "1d1h1m1s"),
        (59.6, "1m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, 1, 59, 61, 3599, 3661, 86399, 93784, 10**7])
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-5)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        (2, 2.0),
        (0, 0.0),
        ("1Gi", 2.0**30),
        ("512Mi", 512 * 2.0**20),
        ("1Ki", 1024.0),
        ("1e3", 1000.0),
        ("1E3", 1000.0),
        ("1.5k", 1500.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("100n", 1e-7),
        ("3u", 3e-6),
        ("2M", 2e6),
        ("4G", 4e9),
        ("1T", 1e12),
        ("1P", 1e15),
        # A bare E is the exa suffix and Ei exbi, not the start of an exponent.
        ("1E", 1e18),
        ("1Ei", 2.0**60),
        ("2.5e-3", 0.0025),
        ("+1", 1.0),
        ("-1", -1.0),
    ],
)
def test_parse_quantity(value: int | str, number: float) -> None:
    assert parse_quantity(value) == pytest.approx(number)
    if isinstance(value, str):
        assert re.fullmatch(QUANTITY_PATTERN, value)


@pytest.mark.parametrize(
    "value",
    ["5x", "", "abc", "1.5.5", "Gi", "1e", "1 Gi", "1gi", "1KI", "0x10", "1,5", "1e3Gi"],
)
def test_parse_quantity_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(value)
    assert not re.fullmatch(QUANTITY_PATTERN, value)


def test_parse_quantity_rejects_bool() -> None:
    # bool is an int in Python, but `true` in a manifest is no quantity.
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(True)


def test_parse_quantity_out_of_range_is_a_value_error() -> None:
    # decimal.Overflow is an ArithmeticError, not a ValueError: it must not escape as a crash.
    with pytest.raises(ValueError, match="out of range"):
        parse_quantity("9" * 1_000_000 + "E")  # 1e1000017: past the decimal exponent limit
    # Past a float but not a Decimal: inf, which the API models refuse naming the limit.
    assert parse_quantity("1e999999999") == float("inf")


def test_parse_quantity_tolerates_surrounding_space() -> None:
    # The helper is lenient; the API model checks the exact form (see test_api).
    assert parse_quantity(" 2 ") == 2.0


@settings(max_examples=300, deadline=None)
@given(st.from_regex(QUANTITY_PATTERN, fullmatch=True))
def test_every_string_the_pattern_admits_parses(text: str) -> None:
    # The API server admits what the pattern admits; the operator must be able to read it.
    try:
        value = parse_quantity(text)
    except ValueError as exc:
        assert "out of range" in str(exc)  # e.g. 1e999999999: admitted, but no float holds it
    else:
        assert value == value  # not NaN


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.+-eEkKMGTPinum ", max_size=8))
def test_quantity_parser_and_pattern_agree(text: str) -> None:
    matches = re.fullmatch(QUANTITY_PATTERN, text.strip()) is not None
    try:
        parse_quantity(text)
    except ValueError as exc:
        assert not matches or "out of range" in str(exc)
    else:
        assert matches


@settings(max_examples=300, deadline=None)
@given(st.from_regex(DURATION_PATTERN, fullmatch=True))
def test_every_duration_the_pattern_admits_parses(text: str) -> None:
    try:
        assert parse_duration(text) >= 0
    except ValueError as exc:  # only past the bound, which keeps every duration finite
        assert "too long" in str(exc)
        assert len(text) >= 6  # the shortest past 1e9 s is 11575d


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "1",
        "500m",
        "1.5",
        "2k",
        "512Mi",
        "4Gi",
        "1Ei",
        "7E",
        "3n",
        "250u",
        "1e3",
        "1.5E-3",
        "+2",
        "-1m",
        "0.1Ki",
        "9P",
        ".5",
        "12T",
    ],
)
def test_parse_quantity_is_the_kubernetes_client_arithmetic(text: str) -> None:
    from kubernetes.utils import parse_quantity as client

    assert parse_quantity(text) == float(client(text))  # type: ignore[no-untyped-call]
