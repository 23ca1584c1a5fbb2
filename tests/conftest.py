"""Shared test settings."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Locally, hypothesis explores new examples each run; in CI the examples are derived from each
# test's name, so a landing never depends on the luck of a draw (failures found locally are kept
# in .hypothesis/ and turned into regular tests).
settings.register_profile(
    "ci", derandomize=True, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
if os.environ.get("CI"):
    settings.load_profile("ci")
