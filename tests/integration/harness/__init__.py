"""Integration-test harness: a real Prometheus, an emulated Kubernetes API, Kopf as a process.

See ``tests/integration/README.md`` for how to use it and what it does and does not emulate.
"""

from collections.abc import Callable
from pathlib import Path

from .apiserver import ApiServerEmulator, Fault, ScalePaths
from .cluster import EmulatedCluster, SeenRequest
from .kopf_process import OperatorProcess
from .load_exporter import LoadExporter
from .net import free_port, wait_until
from .peakpilot import PeakPilotProcess, PolicyProbe
from .prometheus import PrometheusServer, Series, backfill, render_openmetrics

# Throwaway operators used by the harness' own smoke tests.
OPERATORS_DIR = Path(__file__).resolve().parent.parent / "operators"

# The callables that the factory fixtures in conftest.py yield (for annotating tests).
PrometheusFactory = Callable[..., PrometheusServer]
OperatorFactory = Callable[..., OperatorProcess]
PeakPilotFactory = Callable[..., PeakPilotProcess]

__all__ = [
    "OPERATORS_DIR",
    "ApiServerEmulator",
    "EmulatedCluster",
    "Fault",
    "LoadExporter",
    "OperatorFactory",
    "OperatorProcess",
    "PeakPilotFactory",
    "PeakPilotProcess",
    "PolicyProbe",
    "PrometheusFactory",
    "PrometheusServer",
    "ScalePaths",
    "SeenRequest",
    "Series",
    "backfill",
    "free_port",
    "render_openmetrics",
    "wait_until",
]
