"""The operator's start-up settings and its log format (peakpilot.operator)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from peakpilot.operator import OperatorSettings, _configure_logging


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger as it was: configuring the operator's logs replaces its handlers."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_are_kopfs_format_with_the_logger_name(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _configure_logging(OperatorSettings(log_format="json", log_level="INFO"))
    ref = {"namespace": "shop", "name": "peak"}
    logging.getLogger("peakpilot.operator").warning("held: %s", "why", extra={"k8s_ref": ref})
    logging.getLogger("peakpilot.operator").debug("not at INFO")
    (line,) = capsys.readouterr().err.splitlines()  # one JSON object per line
    entry = json.loads(line)
    assert entry["message"] == "held: why"
    assert (entry["severity"], entry["logger"], entry["object"]) == (
        "warn",
        "peakpilot.operator",
        ref,
    )
    assert entry["timestamp"].endswith("+00:00")  # UTC, with the offset


def test_plain_logs_are_one_text_line(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _configure_logging(OperatorSettings(log_format="plain", log_level="DEBUG"))
    logging.getLogger("peakpilot.observe").debug("read %d loads", 3)
    (line,) = capsys.readouterr().err.splitlines()
    assert "peakpilot.observe" in line and "[DEBUG" in line and line.endswith("read 3 loads")
