"""The product operator (``peakpilot operator``) as a process, and builders/probes for its tests.

:class:`PeakPilotProcess` runs the real entry point, ``python -m peakpilot.cli operator
--standalone -A --kubeconfig ... --metrics-port P --liveness-port L``, and reads its ``/metrics``.
:class:`PolicyProbe` reads one ScalingPolicy back from the emulator: its conditions, its last
plan, and how many reconciles (``/status`` patches) the operator has made of it.
The builders (:func:`deployment`, :func:`policy`, :func:`workload`, ...) write the same YAML a
user would apply.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from prometheus_client.parser import text_string_to_metric_families

from .cluster import EmulatedCluster, SeenRequest
from .kopf_process import OperatorProcess
from .net import free_port, http_get, wait_until

JSON = dict[str, Any]
GROUP_VERSION = "peakpilot.io/v1alpha1"
PLURAL = "scalingpolicies"


class PeakPilotProcess(OperatorProcess):
    """``python -m peakpilot.cli operator`` against a kubeconfig, with free liveness and metrics
    ports; ``args`` are appended (e.g. ``["--time-limit", "1"]``)."""

    def __init__(
        self,
        *,
        workdir: Path,
        kubeconfig: Path,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        name: str = "peakpilot",
        peering: str | None = None,
        namespaces: Sequence[str] = (),
    ) -> None:
        self.metrics_port = free_port()
        liveness_port = free_port()
        # --peering NAME (one active replica) instead of --standalone; -n NS... instead of -A.
        coordination = ["--peering", peering] if peering else ["--standalone"]
        scope = [arg for ns in namespaces for arg in ("-n", ns)] or ["-A"]
        command = [
            sys.executable,
            "-m",
            "peakpilot.cli",
            "operator",
            *coordination,
            *scope,
            "--kubeconfig",
            str(kubeconfig),
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(liveness_port),
            "--log-format",
            "plain",
        ]
        super().__init__(
            args,
            workdir=workdir,
            env=env,
            name=name,
            command=command,
            liveness_port=liveness_port,
        )
        self._last_count: dict[tuple[str, str], float] = {}  # reconciles_of, as last read
        self._carried: dict[tuple[str, str], float] = {}  # ... counted before restarts

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def metrics_text(self) -> str:
        status, body = http_get(self.metrics_url)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return body.decode()

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample on /metrics: (name, labels) -> value."""
        out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                out[sample.name, frozenset(sample.labels.items())] = float(sample.value)
        return out

    def metric_names(self) -> set[str]:
        """Family and sample names on /metrics (a histogram's family has no sample of its own)."""
        names: set[str] = set()
        for family in text_string_to_metric_families(self.metrics_text()):
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
        return names

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of one sample whose labels include ``labels`` (None if there is none)."""
        return sample_of(self.samples(), name, **labels)

    def reconciles_of(self, namespace: str, policy: str) -> float:
        """Reconciles of one policy this process made (peakpilot_reconciles_total, every
        outcome), over its restarts too: what it counted before a restart is carried on. While
        it is down, the count last read."""
        key = (namespace, policy)
        try:
            samples = self.samples() if self.running else None
        except (OSError, RuntimeError):
            samples = None
        if samples is not None:
            now = sum(
                value
                for (name, labels), value in samples.items()
                if name == "peakpilot_reconciles_total"
                and {("namespace", namespace), ("policy", policy)} <= labels
            )
            last = self._last_count.get(key, 0.0)
            if now < last:  # restarted: its counter began again at 0
                self._carried[key] = self._carried.get(key, 0.0) + last
            self._last_count[key] = now
        return self._carried.get(key, 0.0) + self._last_count.get(key, 0.0)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def sample_of(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the one sample in ``samples`` (one scrape: values that belong together)
    named ``name`` whose labels include ``labels``; None if there is none."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    if len(found) > 1:
        raise LookupError(f"{name}{labels} matches {len(found)} samples")
    return found[0] if found else None


class RecordingProxy:
    """A tiny HTTP proxy in front of ``upstream`` (e.g. a real Prometheus) that records the path
    and headers of every GET it forwards: what credentials a client sent. With ``tls=(cert,
    key)`` (PEM files) it serves HTTPS, so a client must trust ``cert``.

    Faults, settable at any time: ``delay`` seconds before answering (a slow Prometheus);
    ``status`` answers that HTTP status with a Prometheus-style error body instead of forwarding
    (what an authenticating proxy in front of Prometheus sends: 401, 403)."""

    def __init__(self, upstream: str, *, tls: tuple[Path, Path] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.tls = tls
        self.port = free_port()
        self.delay = 0.0
        self.status: int | None = None
        self.seen: list[tuple[str, dict[str, str]]] = []  # (path with query, headers)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def requests(self, path_prefix: str = "") -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return [(p, h) for p, h in self.seen if p.startswith(path_prefix)]

    def start(self) -> Self:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with proxy._lock:
                    proxy.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if proxy.delay:
                    time.sleep(proxy.delay)
                kind = "application/json"
                if proxy.status is not None:
                    status = proxy.status
                    body = json.dumps({"status": "error", "error": f"HTTP {status}"}).encode()
                else:
                    try:
                        with urllib.request.urlopen(proxy.upstream + self.path, timeout=10) as resp:
                            status, body = int(resp.status), resp.read()
                            kind = resp.headers.get("Content-Type", kind)
                    except urllib.error.HTTPError as exc:
                        status, body = int(exc.code), exc.read()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting (a delay past its timeout)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="recording-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def self_signed_certificate(workdir: Path) -> tuple[Path, Path] | None:
    """A certificate for 127.0.0.1 (its own CA) and its key, made with the openssl CLI; None
    when there is no openssl."""
    if shutil.which("openssl") is None:
        return None
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# -- probes --


class PolicyProbe:
    """One ScalingPolicy as stored in the emulator, and what the operator did with it."""

    def __init__(self, cluster: EmulatedCluster, namespace: str, name: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.name = name

    @property
    def ref(self) -> tuple[str, str, str, str]:
        return GROUP_VERSION, PLURAL, self.namespace, self.name

    def obj(self) -> JSON:
        return self.cluster.stored(*self.ref)

    def status(self) -> JSON:
        return dict(self.obj().get("status") or {})

    def condition(self, kind: str) -> JSON | None:
        for c in self.status().get("conditions") or []:
            if c.get("type") == kind:
                return dict(c)
        return None

    def last_plan(self) -> JSON | None:
        plan = self.status().get("lastPlan")
        return dict(plan) if plan else None

    def planned(self, workload: str) -> JSON | None:
        """The last plan's entry for one workload."""
        for w in (self.last_plan() or {}).get("workloads") or []:
            if w.get("name") == workload:
                return dict(w)
        return None

    def status_patches(self) -> list[SeenRequest]:
        return self.cluster.requests(
            lambda r: (
                r.method == "PATCH"
                and r.plural == PLURAL
                and r.subresource == "status"
                and (r.namespace, r.name) == (self.namespace, self.name)
            )
        )

    def reconciles(self) -> int:
        """Reconciles so far: counted on the /metrics of the operators started on the cluster
        (`cluster.operators`); without one, the /status patches, which a reconcile makes only
        when the status changed."""
        if not self.cluster.operators:
            return len(self.status_patches())
        operators = self.cluster.operators
        return int(sum(op.reconciles_of(self.namespace, self.name) for op in operators))

    def wait_reconciles(self, count: int, *, after: int | None = None, timeout: float = 30) -> int:
        """Block until ``count`` more reconciles than ``after`` (default: now) were recorded."""
        base = self.reconciles() if after is None else after
        return wait_until(
            lambda: (n := self.reconciles()) >= base + count and n,
            timeout=timeout,
            what=f"{count} reconciles of {self.namespace}/{self.name}",
        )

    def wait_condition(
        self,
        kind: str,
        status: str,
        reason: str | None = None,
        *,
        timeout: float = 30,
    ) -> JSON:
        """Block until condition ``kind`` has ``status`` (and ``reason``); return it."""

        def probe() -> JSON | None:
            c = self.condition(kind)
            if c and c.get("status") == status and (reason is None or c.get("reason") == reason):
                return c
            return None

        try:
            return wait_until(probe, timeout=timeout, what=f"{kind}={status} {reason or ''}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; conditions now: {self.status().get('conditions')}") from exc

    def events(self) -> list[JSON]:
        """Events posted about this policy (the POST bodies, oldest first)."""
        posted = self.cluster.requests(lambda r: r.method == "POST" and r.plural == "events")
        return [
            dict(r.data)
            for r in posted
            if isinstance(r.data, dict)
            and (r.data.get("involvedObject") or {}).get("name") == self.name
            and (r.data.get("involvedObject") or {}).get("namespace") == self.namespace
        ]


def replicas(
    cluster: EmulatedCluster, namespace: str, name: str, plural: str = "deployments"
) -> int:
    return int(cluster.stored("apps/v1", plural, namespace, name)["spec"]["replicas"])


def replica_history(
    cluster: EmulatedCluster, namespace: str, name: str, plural: str = "deployments"
) -> list[int]:
    """spec.replicas of every stored version of a workload, oldest first."""
    versions = cluster.history("apps/v1", plural, namespace, name)
    return [int(v["spec"]["replicas"]) for v in versions if v is not None]


def scale_patches(
    cluster: EmulatedCluster, namespace: str, name: str | None = None
) -> list[SeenRequest]:
    """PATCH requests to a /scale subresource in ``namespace`` (of ``name``, if given)."""
    return cluster.requests(
        lambda r: (
            r.method == "PATCH"
            and r.subresource == "scale"
            and r.namespace == namespace
            and (name is None or r.name == name)
        )
    )


# -- builders --


def deployment(
    namespace: str,
    name: str,
    replicas: int,
    *,
    annotations: Mapping[str, str] | None = None,
    ready: int | None = None,
) -> JSON:
    """A Deployment with /scale; ``ready`` seeds status.readyReplicas (default: replicas)."""
    labels = {"app": name}
    metadata: JSON = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = dict(annotations)
    ready = replicas if ready is None else ready
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
            },
        },
        "status": {"replicas": replicas, "readyReplicas": ready},
    }


def load_query(app: str) -> str:
    """The exporter's gauge for ``app``: exact values, no rate() window to settle."""
    return f'sum(app_load_requests_per_second{{app="{app}"}})'


def workload(
    name: str,
    *,
    capacity: float = 40,
    min_replicas: int = 1,
    max_replicas: int = 100,
    query: str | None = None,
    kind: str = "Deployment",
    target: str | None = None,
    **extra: Any,
) -> JSON:
    """One spec.workloads entry (utilisation SLO 0.8, startup 5s) for the Deployment ``name``."""
    spec: JSON = {
        "name": name,
        "targetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target or name},
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "load": {"query": query or load_query(name)},
        "capacityPerReplica": capacity,
        "slo": {"targetUtilization": 0.8},
        "startup": "5s",
    }
    spec.update(extra)
    return spec


FAST_BEHAVIOR: JSON = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 1000, "periodSeconds": 1}],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
    },
    # Remove replicas the load no longer needs at once: the scenarios watch a scale-down happen.
    "changeCost": "0s",
}


def policy(
    namespace: str,
    name: str,
    prometheus_url: str,
    workloads: Sequence[JSON],
    *,
    mode: str = "Enforce",
    interval: str = "1s",
    annotations: Mapping[str, str] | None = None,
    **spec: Any,
) -> JSON:
    """A ScalingPolicy reading ``prometheus_url``; fast behaviour and reactive forecasts unless
    ``spec`` overrides them (``behavior=``, ``forecast=``, ``budget=``, ``onMetricFailure=``...)."""
    metadata: JSON = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = dict(annotations)
    body: JSON = {
        "mode": mode,
        "interval": interval,
        "prometheus": {"url": prometheus_url, "timeout": "2s"},
        "workloads": list(workloads),
        "behavior": FAST_BEHAVIOR,
        "forecast": {"method": "reactive", "history": "10m"},
    }
    body.update(spec)
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ScalingPolicy",
        "metadata": metadata,
        "spec": body,
    }


def secret(namespace: str, name: str, data: Mapping[str, str]) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def hpa(namespace: str, name: str, target: str) -> JSON:
    """An autoscaling/v2 HorizontalPodAutoscaler scaling the Deployment ``target``."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
