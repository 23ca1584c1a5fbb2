"""The operator's start-up settings and its log format (peakpilot.operator)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from peakpilot.operator import _configure_logging
from peakpilot.settings import OperatorSettings, from_environment


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


def test_kopf_run_reads_the_settings_from_the_variables() -> None:
    environ = {
        "PEAKPILOT_METRICS_PORT": "0",
        "PEAKPILOT_SOLVER_TIME_LIMIT": "1.5",
        "PEAKPILOT_PROMETHEUS_URLS": "http://a:9090, http://b:9090",
        "PEAKPILOT_LOG_LEVEL": "DEBUG",
    }
    settings = from_environment(environ)
    assert (settings.metrics_port, settings.time_limit, settings.log_level) == (0, 1.5, "DEBUG")
    assert settings.prometheus_urls == ("http://a:9090", "http://b:9090")
    assert settings.liveness_port == OperatorSettings().liveness_port  # unset: the default
    for variable, value, says in [
        ("PEAKPILOT_METRICS_PORT", "x", "'x' is no int"),
        ("PEAKPILOT_SOLVER", "glpk", "'glpk' is no solver"),
    ]:
        with pytest.raises(ValueError, match=f"^{variable}: {says}"):
            from_environment({variable: value})
