"""Fixtures for integration tests with real components (README.md in this folder explains them).

Every fixture owns a private temporary directory and removes it, and stops every process and
thread it started, also when the test fails. Set ``PEAKPILOT_KEEP_TMP=1`` to keep the
directories (logs, TSDB, kubeconfig) for debugging; their paths are printed on failure.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    EmulatedCluster,
    LoadExporter,
    OperatorFactory,
    OperatorProcess,
    PeakPilotFactory,
    PeakPilotProcess,
    PrometheusFactory,
    PrometheusServer,
    Series,
    backfill,
)
from harness.prometheus import binaries_available

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"

# Under CI the Prometheus tests must not silently skip (see README.md).
REQUIRE_PROMETHEUS = os.environ.get("PEAKPILOT_REQUIRE_PROMETHEUS") == "1"
KEEP_TMP = os.environ.get("PEAKPILOT_KEEP_TMP") == "1"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Remember each phase's outcome on the item so fixtures can dump logs only on failure.
    report = yield
    setattr(item, f"_report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = [getattr(request.node, f"_report_{when}", None) for when in ("setup", "call")]
    return any(r is not None and r.failed for r in reports)


def _dump_on_failure(request: pytest.FixtureRequest, title: str, text: str) -> None:
    # Printed during teardown: pytest shows it under "Captured stdout teardown".
    if _failed(request) and text:
        print(f"\n----- {title} -----\n{text}", file=sys.stdout)


@pytest.fixture
def workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A private temp dir for this test's servers, removed afterwards (unless KEEP_TMP)."""
    path = Path(tempfile.mkdtemp(prefix=f"peakpilot-it-{request.node.name[:40]}-"))
    try:
        yield path
    finally:
        if KEEP_TMP:
            print(f"\nkept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# -- Prometheus --


def _need_prometheus() -> None:
    if binaries_available():
        return
    message = "the prometheus and promtool binaries are not on PATH (apt-get install prometheus)"
    if REQUIRE_PROMETHEUS:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def load_exporter() -> Iterator[LoadExporter]:
    """An in-process /metrics endpoint with a settable per-app load (``set_rate(app, rps)``)."""
    with LoadExporter() as exporter:
        yield exporter


@pytest.fixture
def prometheus_factory(
    workdir: Path, request: pytest.FixtureRequest
) -> Iterator[PrometheusFactory]:
    """Make Prometheus servers: ``make(targets=[...], history=[Series...], start=True)``.

    ``history`` is backfilled with promtool before the first start. All servers are stopped
    at teardown; their logs are printed if the test failed.
    """
    _need_prometheus()
    servers: list[PrometheusServer] = []

    def make(
        *,
        targets: Sequence[str] = (),
        history: Iterable[Series] = (),
        start: bool = True,
        scrape_interval: str = "1s",
        retention: str = "30d",
        extra_args: Sequence[str] = (),
    ) -> PrometheusServer:
        server = PrometheusServer(
            workdir / f"prometheus-{len(servers)}",
            targets=targets,
            scrape_interval=scrape_interval,
            retention=retention,
            extra_args=extra_args,
        )
        servers.append(server)
        history = list(history)
        if history:
            backfill(server.data_dir, history, workdir=server.workdir)
        if start:
            server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()
            _dump_on_failure(request, f"prometheus log ({server.url})", server.log_tail())


@pytest.fixture
def prometheus(
    prometheus_factory: PrometheusFactory, load_exporter: LoadExporter
) -> PrometheusServer:
    """A running Prometheus scraping ``load_exporter`` every second.

    Its first scrape comes about 5 s after start (Prometheus applies target updates on a 5 s
    tick); call ``prometheus.wait_for_targets_up()`` when a test needs data right away.
    ``stop()``/``start()`` restart it on the same port and data ("Prometheus down, recovers").
    """
    return prometheus_factory(targets=[load_exporter.target])


# -- Kubernetes API --


def scalingpolicy_crd() -> dict[str, Any] | None:
    """The generated ScalingPolicy CRD from crds/, if it exists yet."""
    for path in sorted(CRDS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if (
                isinstance(doc, Mapping)
                and doc.get("kind") == "CustomResourceDefinition"
                and doc.get("spec", {}).get("names", {}).get("plural") == "scalingpolicies"
            ):
                return dict(doc)
    return None


@pytest.fixture
def kube_api(workdir: Path, request: pytest.FixtureRequest) -> Iterator[EmulatedCluster]:
    """The emulated Kubernetes API on a loopback port, with a kubeconfig for it.

    Built-in resources (apps/v1 with /scale, v1 events, autoscaling/v2, ...) are served; the
    ScalingPolicy CRD is registered from crds/ (or a stand-in until it exists).
    """
    cluster = EmulatedCluster(workdir / "kube").start()
    try:
        crd = scalingpolicy_crd()
        if crd is not None:
            cluster.register_crd(crd)
        else:
            cluster.register_scalingpolicy()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def kubeconfig(kube_api: EmulatedCluster) -> Path:
    """Path of a kubeconfig pointing at ``kube_api`` (for KUBECONFIG=...)."""
    return kube_api.kubeconfig


@pytest.fixture
def kube_client(kube_api: EmulatedCluster) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` bound to ``kube_api`` (the global config is untouched)."""
    client = kube_api.api_client()
    try:
        yield client
    finally:
        client.close()


# -- the operator as a real process --


@pytest.fixture
def operator_factory(
    workdir: Path, kube_api: EmulatedCluster, request: pytest.FixtureRequest
) -> Iterator[OperatorFactory]:
    """Start ``python -m kopf run`` processes against ``kube_api``.

    ``start(args, env={...}, wait=True)``: ``args`` follow ``kopf run`` (e.g. ``["--standalone",
    "-A", "-m", "peakpilot.operator"]``); with ``wait`` it blocks until Kopf's liveness probe
    answers. Every process is stopped (SIGTERM, then SIGKILL) at teardown; logs are printed
    if the test failed.
    """
    processes: list[OperatorProcess] = []

    def start(
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> OperatorProcess:
        process = OperatorProcess(
            args,
            workdir=workdir / f"operator-{len(processes)}",
            env={**kube_api.env(), **(env or {})},
            name="kopf",
        )
        processes.append(process)
        process.start()
        if wait:
            process.wait_ready(timeout=timeout)
        return process

    try:
        yield start
    finally:
        for process in processes:
            process.stop()
            _dump_on_failure(request, f"operator log ({process.command})", process.log_tail(80))


@pytest.fixture
def peakpilot_factory(
    workdir: Path, kube_api: EmulatedCluster, request: pytest.FixtureRequest
) -> Iterator[PeakPilotFactory]:
    """Start the product operator, ``python -m peakpilot.cli operator --standalone -A
    --kubeconfig <kube_api's> --metrics-port <free> --liveness-port <free>``, against ``kube_api``.

    ``start(args=(), *, env=None, wait=True, timeout=60, peering=None, namespaces=())``: ``args``
    are appended to the command line; ``peering=NAME`` runs ``--peering NAME`` instead of
    ``--standalone``, ``namespaces`` ``-n NS`` for each instead of ``-A``; with ``wait`` it blocks
    until the liveness endpoint answers. ``process.stop()`` and ``process.start()`` restart it on
    the same ports. Every process is stopped at teardown; logs are printed if the test failed.
    """
    processes: list[PeakPilotProcess] = []

    def start(
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
        timeout: float = 60.0,
        peering: str | None = None,
        namespaces: Sequence[str] = (),
    ) -> PeakPilotProcess:
        process = PeakPilotProcess(
            workdir=workdir / f"peakpilot-{len(processes)}",
            kubeconfig=kube_api.kubeconfig,
            args=args,
            env={**kube_api.env(), **(env or {})},
            peering=peering,
            namespaces=namespaces,
        )
        processes.append(process)
        kube_api.operators.append(process)  # PolicyProbe counts reconciles on its /metrics
        process.start()
        if wait:
            process.wait_ready(timeout=timeout)
        return process

    try:
        yield start
    finally:
        for process in processes:
            process.stop()
            _dump_on_failure(request, f"peakpilot log ({process.command})", process.log_tail(120))
