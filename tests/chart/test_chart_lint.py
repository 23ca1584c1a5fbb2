"""`helm lint` by the real Helm engine (helm_sdkpy.Lint) for the supported value sets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chartkit import SCENARIOS

pytestmark = pytest.mark.chart

# helm's lint severities (pkg/lint/support): 1 info, 2 warning, 3 error.
WARNING = 2


def problems(result: dict[str, Any]) -> list[tuple[int, str]]:
    # helm-sdkpy serialises each message's Go error as {}, so severity and path are what we get.
    return [
        (m["Severity"], m["Path"]) for m in result["Messages"] or [] if m["Severity"] >= WARNING
    ]


@pytest.mark.parametrize("scenario", ["default", "namespaced", "ha", "ha-namespaced"])
def test_chart_lints_clean(helm_lint: Callable[[dict], dict], scenario: str) -> None:
    result = helm_lint(SCENARIOS[scenario])
    assert result["TotalChartsLinted"] == 1
    assert problems(result) == []
    assert not result["Errors"]


def test_lint_checks_values_against_the_schema(helm_lint: Callable[[dict], dict]) -> None:
    # Proves the lint above really validates values: a wrong type in values.yaml is an error.
    result = helm_lint(SCENARIOS["bad-replica-type"])
    assert (3, "values.yaml") in problems(result)
    assert result["Errors"]
