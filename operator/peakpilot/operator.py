"""The Kopf operator: one reconcile loop per ScalingPolicy, at the policy's own interval.

A daemon per policy (rather than a fixed-interval timer) so that `spec.interval` applies per
policy and changes take effect on the next loop. The blocking reconcile (HTTP to Prometheus and the
API server, the solver) runs in a worker thread, so one slow policy never stalls the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes import client
from kubernetes.config import ConfigException

from peakpilot import api, telemetry
from peakpilot.kube import Kube, load_configuration
from peakpilot.prometheus import AllowList
from peakpilot.reconcile import Event, PolicyState, reconcile
from peakpilot.report import iso
from peakpilot.units import parse_duration
from peakplan.planner import SolveOptions

log = logging.getLogger("peakpilot.operator")
MIN_INTERVAL = 1.0


@dataclass(frozen=True)
class OperatorSettings:
    """Settings from flags and PEAKPILOT_* environment variables (see docs/operations.md)."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    standalone: bool = True
    peering: str | None = None
    priority: int | None = None
    liveness_port: int = 8080
    metrics_port: int = 9100
    solver: str = "highs"
    time_limit: float = 3.0
    log_format: str = "json"
    log_level: str = "INFO"
    kubeconfig: str | None = None
    # The Prometheus URLs policies may name (empty: any; see docs/operations.md, trust model).
    prometheus_urls: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, **overrides: Any) -> OperatorSettings:
        env = os.environ
        values: dict[str, Any] = {
            "liveness_port": int(env.get("PEAKPILOT_LIVENESS_PORT", "8080")),
            "metrics_port": int(env.get("PEAKPILOT_METRICS_PORT", "9100")),
            "solver": env.get("PEAKPILOT_SOLVER", "highs"),
            "time_limit": float(env.get("PEAKPILOT_SOLVER_TIME_LIMIT", "3")),
            "log_format": env.get("PEAKPILOT_LOG_FORMAT", "json"),
            "log_level": env.get("PEAKPILOT_LOG_LEVEL", "INFO"),
            "prometheus_urls": tuple(
                env.get("PEAKPILOT_PROMETHEUS_URLS", "").replace(",", " ").split()
            ),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_settings = OperatorSettings()
_kube: Kube | None = None
_allowed = AllowList()


def _options() -> SolveOptions:
    return SolveOptions(solver=_settings.solver, time_limit=_settings.time_limit)  # type: ignore[arg-type]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.INFO  # Normal events for every scale change
    settings.posting.reporting_component = "peakpilot"
    settings.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
    settings.posting.event_name_prefix = "peakpilot-"
    settings.persistence.finalizer = f"{api.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.GROUP, key="last-handled-configuration"
    )
    # Every API call of Kopf's is bounded too: a silent API server fails a request (Kopf retries
    # with backoff), a watch that stops streaming is reopened.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10


def _interval(spec: Any) -> float:
    try:
        seconds = parse_duration(str(spec.get("interval", "15s")))
        # Above the maximum the spec is invalid (reported by the reconcile), not left unvisited.
        return min(max(MIN_INTERVAL, seconds), api.MAX_INTERVAL_SECONDS)
    except ValueError:
        return 15.0  # an invalid interval is reported by the reconcile itself


@kopf.daemon(api.GROUP, api.VERSION, api.PLURAL, cancellation_timeout=10.0)
async def reconcile_loop(
    body: kopf.Body,
    spec: kopf.Spec,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    logger: Any,
    **_: Any,
) -> None:
    """Reconcile this policy every spec.interval until it is deleted or the operator stops."""
    state = memo.get("peakpilot") if isinstance(memo, dict) else getattr(memo, "peakpilot", None)
    if state is None:
        state = PolicyState()
        memo["peakpilot"] = state
    assert _kube is not None
    kube = _kube
    meta = body.get("metadata", {})
    namespace, name = meta.get("namespace"), meta.get("name")
    last_error: str | None = None
    try:
        while not stopped:
            started = time.monotonic()
            try:
                outcome = await asyncio.to_thread(
                    reconcile, kube, dict(body), state, _options(), allowed=_allowed
                )
            except Exception as exc:  # a bug must not kill the loop: report it and try again
                logger.exception("reconcile failed")
                telemetry.series(telemetry.RECONCILES, str(namespace), str(name), "error").inc()
                error = f"{type(exc).__name__}: {exc}"
                if error != last_error:  # once per distinct error, not every interval
                    kopf.warn(body, reason="ReconcileError", message=error)
                last_error = error
                status = _error_status(body, error)
                events: list[Event] = []
            else:
                last_error = None
                status, events = outcome.status, outcome.events
            try:
                await asyncio.to_thread(kube.patch_status, namespace, name, status)
            except Exception as exc:
                logger.warning(f"status not written: {exc}")
            for event in events:
                if event.type == "Warning":
                    kopf.warn(body, reason=event.reason, message=event.message)
                else:
                    kopf.info(body, reason=event.reason, message=event.message)
            # A fixed rate: the next reconcile starts one interval after this one started.
            elapsed = time.monotonic() - started
            await stopped.wait(max(0.0, _interval(spec) - elapsed))
    finally:
        telemetry.forget(str(namespace), str(name))  # deleted, or the operator stops


def _error_status(body: kopf.Body, error: str) -> dict[str, Any]:
    """Ready=False ReconcileError, the other conditions as they were."""
    now = iso(time.time())
    before = [c for c in (body.get("status") or {}).get("conditions") or [] if c]
    kept = [c for c in before if c.get("type") != "Ready"]
    was: dict[str, Any] = next((c for c in before if c.get("type") == "Ready"), {})
    if was.get("status") == "False":
        now = was.get("lastTransitionTime") or now
    ready = {
        "type": "Ready",
        "status": "False",
        "reason": "ReconcileError",
        "message": f"the reconcile failed ({error[:900]}); see the operator log",
        "lastTransitionTime": now,
        "observedGeneration": (body.get("metadata") or {}).get("generation"),
    }
    return {"conditions": [ready, *kept]}


def _configure_logging(settings: OperatorSettings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        import json

        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("k8s_ref", "k8s_skip"):
            if hasattr(record, key):
                entry[key] = str(getattr(record, key))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _connection_info(configuration: Any) -> kopf.ConnectionInfo:
    """Kopf's credentials from the client configuration PeakPilot's own client uses (as Kopf's
    login_via_client does with the process-wide default, which may point elsewhere)."""
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    scheme: str | None = None
    token: str | None = header or None
    if header and " " in header:  # "Bearer <token>" (RFC 7235)
        scheme, token = header.split(" ", 1)
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        proxy_url=configuration.proxy,
    )


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """Kopf's watches and patches use --kubeconfig too (re-read on every login: rotated tokens)."""
    return _connection_info(load_configuration(_settings.kubeconfig))


def run(settings: OperatorSettings) -> None:
    """Run the operator until it is stopped (SIGINT/SIGTERM)."""
    global _settings, _kube, _allowed
    _settings = settings
    _configure_logging(settings)
    try:
        _allowed = AllowList(settings.prometheus_urls)
    except ValueError as exc:
        raise SystemExit(f"error: --prometheus-url / PEAKPILOT_PROMETHEUS_URLS: {exc}") from None
    if _allowed:
        log.info(f"policies may query Prometheus at: {_allowed.describe()}")
    else:
        log.warning(
            "no --prometheus-url given: policies may point the operator (and the Secrets they "
            "name) at any URL; set the allowed Prometheus URLs (chart value prometheus.url)"
        )
    try:
        configuration = load_configuration(settings.kubeconfig)
    except (ConfigException, OSError) as exc:
        where = settings.kubeconfig or "in-cluster or the default kubeconfig"
        message = f"error: cannot load the Kubernetes configuration ({where}): {exc}"
        raise SystemExit(message) from None
    _kube = Kube(client.ApiClient(configuration))
    if settings.metrics_port:
        telemetry.serve(settings.metrics_port)
    namespaces: Sequence[str] = settings.namespaces
    standalone = settings.peering is None
    priority = settings.priority
    if not standalone and priority is None:
        # Peers with equal priority all pause; a random one makes exactly one active.
        priority = random.randint(1, 10_000)
    log.info(
        "starting PeakPilot operator",
        extra={"k8s_skip": True},
    )
    kopf.run(
        clusterwide=settings.all_namespaces,
        namespaces=namespaces,
        standalone=standalone,
        peering_name=settings.peering,
        priority=priority,
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz"
        if settings.liveness_port
        else None,
    )
