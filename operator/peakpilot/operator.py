"""The Kopf operator: one reconcile loop per ScalingPolicy, at the policy's own interval.

A daemon per policy (rather than a fixed-interval timer) so that `spec.interval` applies per
policy and changes take effect on the next loop. The blocking reconcile (HTTP to Prometheus and the
API server, the solver) runs in a worker thread, so one slow policy never stalls the others.

The handlers' dependencies (settings, the Kubernetes client, the Prometheus allow-list, the
watchdog) are one `Dependencies` value in Kopf's memo (`memo["deps"]`), never module globals:
`peakpilot operator` (`run`) makes it and hands it to Kopf; under `kopf run -m peakpilot.operator`
the startup handler makes it from the PEAKPILOT_* variables.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import kopf
from kubernetes import client
from kubernetes.config import ConfigException

from peakpilot import api, telemetry
from peakpilot.kube import PAUSED_ANNOTATION, Kube, KubeError, load_configuration
from peakpilot.peering import Guard, PeeringError, check, objects, own_identity, priority_of
from peakpilot.prometheus import AllowList
from peakpilot.reconcile import Event, Outcome, PolicyState, reconcile, write_status
from peakpilot.report import iso
from peakpilot.runtime import TICK, Job, Pool, Watchdog, deadline
from peakpilot.settings import OperatorSettings, from_environment
from peakpilot.units import parse_duration
from peakplan import SolveOptions

log = logging.getLogger("peakpilot.operator")
MIN_INTERVAL = 1.0
EXIT_WAIT = 3.0  # seconds running reconciles get to end after Kopf stops


@dataclass(frozen=True)
class Dependencies:
    """What the handlers use, made once per process and kept in Kopf's memo as `memo["deps"]`
    (each policy's memo is a shallow copy of the operator's, so the daemons see it too)."""

    settings: OperatorSettings
    kube: Kube
    allowed: AllowList
    watchdog: Watchdog = field(default_factory=Watchdog)
    workers: Pool = field(default_factory=Pool)  # the threads every reconcile runs in

    @property
    def options(self) -> SolveOptions:
        return SolveOptions(solver=self.settings.solver, time_limit=self.settings.time_limit)  # type: ignore[arg-type]


def dependencies(settings: OperatorSettings) -> Dependencies:
    """The handlers' dependencies for `settings`; ValueError says what to fix (a Prometheus URL
    of the allow-list, the Kubernetes configuration)."""
    try:
        allowed = AllowList(settings.prometheus_urls)
    except ValueError as exc:
        raise ValueError(f"--prometheus-url / PEAKPILOT_PROMETHEUS_URLS: {exc}") from None
    if allowed:
        log.info(f"policies may query Prometheus at: {allowed.describe()}")
    else:
        log.warning(
            "no --prometheus-url given: policies may point the operator (and the Secrets they "
            "name) at any URL; set the allowed Prometheus URLs (chart value prometheus.url)"
        )
    try:
        configuration = load_configuration(settings.kubeconfig)
    except (ConfigException, OSError) as exc:
        where = settings.kubeconfig or "in-cluster or the default kubeconfig"
        raise ValueError(f"cannot load the Kubernetes configuration ({where}): {exc}") from None
    return Dependencies(settings, Kube(client.ApiClient(configuration)), allowed)


def _deps(memo: Any) -> Dependencies:
    deps = memo.get("deps")
    assert isinstance(deps, Dependencies), "the startup handler puts the dependencies in memo"
    return deps


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    deps = memo.get("deps")
    if deps is None:  # `kopf run -m peakpilot.operator`: no `run()`, the settings are variables
        try:
            deps = dependencies(from_environment(os.environ))
        except ValueError as exc:
            raise kopf.PermanentError(str(exc)) from None
        memo["deps"] = deps
    settings.posting.level = logging.INFO  # Normal events for every scale change
    settings.posting.reporting_component = "peakpilot"
    settings.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
    settings.posting.event_name_prefix = "peakpilot-"
    settings.peering.lifetime = deps.settings.peering_lifetime
    settings.peering.stealth = True  # no log line per keep-alive
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
    if deps.settings.metrics_port:
        telemetry.serve(deps.settings.metrics_port)


def _interval(spec: Any) -> float:
    try:
        seconds = parse_duration(str(spec.get("interval", "15s")))
        # Above the maximum the spec is invalid (reported by the reconcile), not left unvisited.
        return min(max(MIN_INTERVAL, seconds), api.MAX_INTERVAL_SECONDS)
    except ValueError:
        return 15.0  # an invalid interval is reported by the reconcile itself


def _fingerprint(body: kopf.Body) -> tuple[Any, Any]:
    """What makes a reconcile due at once: a spec edit (generation) or the pause annotation."""
    meta = body.get("metadata") or {}
    return meta.get("generation"), (meta.get("annotations") or {}).get(PAUSED_ANNOTATION)


@kopf.daemon(api.GROUP, api.VERSION, api.PLURAL, cancellation_timeout=5.0)
async def reconcile_loop(
    body: kopf.Body,
    spec: kopf.Spec,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    logger: Any,
    **_: Any,
) -> None:
    """Reconcile this policy every spec.interval, and at once after an edit or a pause, until it
    is deleted or the operator stops. Looks every TICK: nothing waits out a long interval."""
    state = memo.get("peakpilot") if isinstance(memo, dict) else getattr(memo, "peakpilot", None)
    if state is None:
        state = PolicyState()
        memo["peakpilot"] = state
    deps = _deps(memo)
    meta = body.get("metadata", {})
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    loop = _Loop(deps, body, state, namespace, name, logger)
    last_start: float | None = None
    seen: tuple[Any, Any] | None = None
    try:
        while not stopped:
            interval = _interval(spec)
            now = time.monotonic()
            due = last_start is None or now - last_start >= interval or _fingerprint(body) != seen
            if due and not loop.busy:  # an abandoned reconcile still runs: it has the state
                last_start, seen = now, _fingerprint(body)
                await loop.once(interval, stopped.wait)
                # A fixed rate: the next reconcile starts one interval after this one started.
                wait = last_start + interval - time.monotonic()
            else:
                wait = TICK
            await stopped.wait(min(TICK, max(0.0, wait)))
    finally:
        deps.watchdog.forget(f"{namespace}/{name}")
        telemetry.forget(namespace, name)  # deleted, or the operator stops


class _Loop:
    """One policy's reconciles: each in a worker thread with a deadline, then its record."""

    def __init__(
        self,
        deps: Dependencies,
        body: kopf.Body,
        state: PolicyState,
        ns: str,
        name: str,
        logger: Any,
    ) -> None:
        self.deps, self.kube, self.body, self.state = deps, deps.kube, body, state
        self.namespace, self.name, self.logger = ns, name, logger
        self.key = f"{ns}/{name}"
        self.job: Job[Outcome] | None = None
        self.written: list[dict[str, Any]] | None = None  # conditions as last written
        self.last_error: str | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.busy

    async def once(self, interval: float, stop: Callable[[], Awaitable[object]]) -> None:
        if self.written is not None:  # what an abandoned reconcile left there is stale
            self.state.conditions = self.written
        deps = self.deps
        budget = deadline(interval, deps.settings.time_limit)
        began = time.monotonic()
        closed = threading.Event()
        kube = self.kube.gated(closed)
        snapshot = dict(self.body)
        self.job = deps.workers.submit(
            lambda: reconcile(kube, snapshot, self.state, deps.options, allowed=deps.allowed),
            name=f"reconcile {self.key}",
            on_done=lambda: deps.watchdog.finished(self.key, time.monotonic()),
        )
        deps.watchdog.started(self.key, interval, budget, self.job.submitted)
        events: list[Event] = []
        try:
            outcome = await self.job.wait(budget, stop)
        except TimeoutError:
            closed.set()  # from now on it can write nothing: the workloads stay where they are
            telemetry.series(telemetry.RECONCILES, self.namespace, self.name, "deadline").inc()
            message = (
                f"the reconcile did not finish within its deadline ({budget:g} s for an interval "
                f"of {interval:g} s): the workloads are held (no /scale change from a late "
                "decision) until one finishes in time; other policies are not affected. Check "
                "spec.prometheus (a slow server, its timeout) and the solver time"
            )
            self.logger.warning(message)
            entered = self._entered("DeadlineExceeded")
            status = self._held_status("DeadlineExceeded", message)
            if entered:
                events.append(Event("Warning", "DeadlineExceeded", message))
        except Exception as exc:  # a bug must not kill the loop: report it and try again
            self.logger.error("reconcile failed", exc_info=exc)
            telemetry.series(telemetry.RECONCILES, self.namespace, self.name, "error").inc()
            error = f"{type(exc).__name__}: {exc}"
            if error != self.last_error:  # once per distinct error, not every interval
                events.append(Event("Warning", "ReconcileError", error))
            self.last_error = error
            status = self._held_status(
                "ReconcileError", f"the reconcile failed ({error[:900]}); see the operator log"
            )
        else:
            if outcome is None:
                closed.set()  # the operator stops: nothing more from this reconcile
                return
            self.last_error = None
            status, events = outcome.status, outcome.events
        self.written = status.get("conditions")
        try:
            await deps.workers.call(
                lambda: write_status(self.kube, self.namespace, self.name, self.state, status),
                name=f"status {self.key}",
            )
        except Exception as exc:
            self.logger.warning(f"status not written: {exc}")
        seconds = time.monotonic() - began
        telemetry.series(telemetry.RECONCILE_SECONDS, self.namespace, self.name).observe(seconds)
        for event in events:
            if event.type == "Warning":
                kopf.warn(self.body, reason=event.reason, message=event.message)
            else:
                kopf.info(self.body, reason=event.reason, message=event.message)

    def _previous(self) -> list[dict[str, Any]]:
        if self.written is not None:
            return self.written
        return [c for c in (self.body.get("status") or {}).get("conditions") or [] if c]

    def _entered(self, reason: str) -> bool:
        """Ready was not already False for ``reason`` (one Event per episode, not per tick)."""
        was = next((c for c in self._previous() if c.get("type") == "Ready"), {})
        return (was.get("status"), was.get("reason")) != ("False", reason)

    def _held_status(self, reason: str, message: str) -> dict[str, Any]:
        """Ready=False with ``reason``, the other conditions as they were."""
        now = iso(time.time())
        before = self._previous()
        kept = [c for c in before if c.get("type") != "Ready"]
        was: dict[str, Any] = next((c for c in before if c.get("type") == "Ready"), {})
        if was.get("status") == "False":
            now = was.get("lastTransitionTime") or now
        ready = {
            "type": "Ready",
            "status": "False",
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": now,
            "observedGeneration": (self.body.get("metadata") or {}).get("generation"),
        }
        return {"conditions": [ready, *kept]}


@kopf.on.probe(id="reconciles")
def reconciles_alive(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
    """/healthz fails (HTTP 500) when reconciles are stuck and none finish (runtime.Watchdog)."""
    watchdog = _deps(memo).watchdog
    now = time.monotonic()
    verdict = watchdog.verdict(now)
    if verdict is not None:
        log.error(f"liveness: {verdict}")
        raise kopf.PermanentError(verdict)
    return {"stuck": watchdog.stuck(now)}


def _configure_logging(settings: OperatorSettings) -> None:
    """Kopf's own log formats: JSON (message, timestamp, severity, and the policy as `object`)
    or its text line; PeakPilot adds only which logger spoke (`logger`) to the JSON."""
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    json_logs = settings.log_format == "json"
    kopf.configure(
        debug=level <= logging.DEBUG,
        log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL,
    )
    root = logging.getLogger()
    root.setLevel(level)
    if json_logs:
        for handler in root.handlers:
            handler.addFilter(_logger_name)


def _logger_name(record: logging.LogRecord) -> bool:
    """Keep the logger's name in JSON logs (Kopf's JSON leaves it out): peakpilot.* or kopf.*."""
    record.logger = record.name  # a record attribute is a JSON field to python-json-logger
    return True


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
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Kopf's watches and patches use --kubeconfig too (re-read on every login: rotated tokens)."""
    return _connection_info(load_configuration(_deps(memo).settings.kubeconfig))


def _exit_invalid(exc: Exception) -> NoReturn:
    """One line on stderr, exit 2: the configuration must change, a restart will not help."""
    logging.shutdown()
    print(f"error: {exc}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)  # also from under Kopf's and the metrics server's threads


def _peering_guard(settings: OperatorSettings, kube: Kube, identity: str) -> Guard:
    """Check the peering object(s) before Kopf starts (exit 2 on a duplicate priority or a
    missing object), then keep checking while it runs."""
    assert settings.peering is not None
    priority = priority_of(identity)
    where = objects(settings.peering, () if settings.all_namespaces else settings.namespaces)

    def read(obj: Any) -> Any:
        return kube.peering_status(obj.name, obj.namespace)

    try:
        check(read, where, identity, priority)
    except PeeringError as exc:
        _exit_invalid(exc)
    except KubeError as exc:  # the API server is not there yet: Kopf waits for it, and so do we
        log.warning(f"peering check at start failed: {exc}")
    log.info(f"peering {settings.peering}: identity {identity}, priority {priority}")
    period = max(1.0, min(15.0, settings.peering_lifetime / 4))

    def stop() -> None:  # Kopf's own SIGTERM handling: a clean stop, its record removed
        os.kill(os.getpid(), signal.SIGTERM)

    return Guard(read, where, identity, priority, period, stop).start()


def run(settings: OperatorSettings) -> None:
    """Run the operator until it is stopped (SIGINT/SIGTERM)."""
    _configure_logging(settings)
    try:
        deps = dependencies(settings)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    namespaces: Sequence[str] = settings.namespaces
    standalone = settings.peering is None
    identity = own_identity()
    guard = None if standalone else _peering_guard(settings, deps.kube, identity)
    log.info(
        "starting PeakPilot operator",
        extra={"k8s_skip": True},
    )
    kopf.run(
        clusterwide=settings.all_namespaces,
        namespaces=namespaces,
        standalone=standalone,
        peering_name=settings.peering,
        identity=None if standalone else identity,  # type: ignore[arg-type]
        priority=None if standalone else priority_of(identity),
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz"
        if settings.liveness_port
        else None,
        memo=kopf.Memo(deps=deps),
    )
    if guard is not None:
        guard.close()
        if guard.error is not None:
            _exit_invalid(guard.error)
    # Kopf has stopped. Reconciles still running get a moment to end; past it the process ends
    # at once (os._exit): finalising the interpreter under a thread that is inside the solver's
    # native code can abort, and SIGTERM must stop the operator within the grace period.
    left = deps.workers.finish(EXIT_WAIT)
    if left:
        log.warning(f"exiting with {left} reconcile(s) still running; they are abandoned")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
