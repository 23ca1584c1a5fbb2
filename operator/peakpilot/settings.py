"""The operator's settings: flags of `peakpilot operator` or PEAKPILOT_* variables.

Light on purpose (no Kopf, no Kubernetes client): the CLI reads `ENV` when it starts, for any
command. `peakpilot operator` passes the settings it parsed to `operator.run`; under
`kopf run -m peakpilot.operator` the operator's startup handler reads them from the environment
with `from_environment` (docs/operations.md lists the variables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from peakpilot.peering import DEFAULT_LIFETIME, MAX_LIFETIME, MIN_LIFETIME

# The settings that have a variable, and its name.
ENV = {
    "liveness_port": "PEAKPILOT_LIVENESS_PORT",
    "metrics_port": "PEAKPILOT_METRICS_PORT",
    "solver": "PEAKPILOT_SOLVER",
    "time_limit": "PEAKPILOT_SOLVER_TIME_LIMIT",
    "log_format": "PEAKPILOT_LOG_FORMAT",
    "log_level": "PEAKPILOT_LOG_LEVEL",
    "peering_lifetime": "PEAKPILOT_PEERING_LIFETIME",
    "prometheus_urls": "PEAKPILOT_PROMETHEUS_URLS",
}


@dataclass(frozen=True)
class OperatorSettings:
    """The operator's settings, checked by `problems`."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    peering: str | None = None
    # Seconds a replica's peering record counts as live: how soon a standby takes over from a
    # replica that died without saying goodbye (SIGKILL, a lost node).
    peering_lifetime: int = DEFAULT_LIFETIME
    liveness_port: int = 8080
    metrics_port: int = 9100
    solver: str = "highs"
    time_limit: float = 3.0
    log_format: str = "json"
    log_level: str = "INFO"
    kubeconfig: str | None = None
    # The Prometheus URLs policies may name (empty: any; see docs/operations.md, trust model).
    prometheus_urls: tuple[str, ...] = ()

    def problems(self) -> list[tuple[str, str]]:
        """(setting, what is wrong and the fix) for each setting the operator cannot run with."""
        out: list[tuple[str, str]] = []
        for name in ("liveness_port", "metrics_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                out.append((name, f"{port} is no port: use 1-65535, or 0 to disable"))
        if self.solver not in ("highs", "cbc"):
            out.append(("solver", f"{self.solver!r} is no solver: use highs or cbc"))
        if not (math.isfinite(self.time_limit) and 0 < self.time_limit <= 3600):
            out.append(("time_limit", f"{self.time_limit} seconds: use a number in (0, 3600]"))
        if not MIN_LIFETIME <= self.peering_lifetime <= MAX_LIFETIME:
            out.append(
                (
                    "peering_lifetime",
                    f"{self.peering_lifetime} seconds: use {MIN_LIFETIME} to {MAX_LIFETIME} "
                    "(Kopf refreshes each record 5-10 s before it expires)",
                )
            )
        if self.log_format not in ("json", "plain"):
            out.append(("log_format", f"{self.log_format!r}: use json or plain"))
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            out.append(
                ("log_level", f"{self.log_level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
            )
        return out


def split_urls(items: Iterable[str]) -> tuple[str, ...]:
    """URLs given as repeated flags or one comma-separated variable (as the chart writes it)."""
    return tuple(url for item in items for url in item.replace(",", " ").split())


def from_environment(environ: Mapping[str, str]) -> OperatorSettings:
    """The settings the PEAKPILOT_* variables give (defaults for the unset ones); the cluster,
    namespaces and peering are `kopf run`'s own (KUBECONFIG, -n/-A, --peering/--standalone).
    ValueError names the variable of a value that is no number, or a setting `problems` refuses."""
    values: dict[str, object] = {}
    for setting, variable in ENV.items():
        text = environ.get(variable)
        if text is None or (text == "" and setting == "prometheus_urls"):
            continue
        kind = type(getattr(OperatorSettings(), setting))
        try:
            if setting == "prometheus_urls":
                values[setting] = split_urls([text])
            elif kind is int:
                values[setting] = int(text)
            elif kind is float:
                values[setting] = float(text)
            else:
                values[setting] = text
        except ValueError:
            raise ValueError(f"{variable}: {text!r} is no {kind.__name__}") from None
    settings = OperatorSettings(**values)  # type: ignore[arg-type]
    for setting, problem in settings.problems()[:1]:
        raise ValueError(f"{ENV[setting]}: {problem}")
    return settings
