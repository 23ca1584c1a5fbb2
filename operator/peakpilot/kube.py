"""The Kubernetes adapter: /scale of any target, ownership checks, Secrets, policy status.

Synchronous (the official client); the operator calls it off the event loop. Every method maps
API errors to `KubeError` with a message a person can act on.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from peakpilot import api
from peakpilot.blocking import network

TAKE_OVER_ANNOTATION = "peakpilot.io/take-over"
PAUSED_ANNOTATION = "peakpilot.io/paused"
MERGE_PATCH = "application/merge-patch+json"
# Every call is bounded: (connect, read) seconds. A silent API server fails a call, it never blocks
# a reconcile (whose own deadline, in operator.py, is the outer bound).
REQUEST_TIMEOUT = (5.0, 15.0)
BUILTIN_PLURALS = {
    ("apps", "Deployment"): "deployments",
    ("apps", "StatefulSet"): "statefulsets",
    ("apps", "ReplicaSet"): "replicasets",
}


def load_configuration(kubeconfig: str | None) -> client.Configuration:
    """The client configuration from ``kubeconfig``, else in-cluster, else the default kubeconfig.

    Loaded into a fresh object, never the client's process-wide default: PeakPilot's client and
    Kopf's login (operator.py) both use what this returns, so they talk to the same server."""
    from kubernetes import config

    configuration = client.Configuration()
    configuration.retries = 0  # no silent urllib3 retries: a timeout is one timeout, not four
    if kubeconfig:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration, persist_config=False
        )
        return configuration
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration, persist_config=False
        )
    return configuration


class KubeError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Conflict(KubeError):
    """The object changed since it was read (HTTP 409)."""


class Late(KubeError):
    """Not sent: the reconcile making the call ran past its deadline (operator.py)."""


@dataclass(frozen=True)
class Target:
    api_version: str
    kind: str
    name: str
    namespace: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Scale:
    replicas: int  # spec.replicas: what is asked for
    ready: int | None  # ready replicas, when the target reports them
    resource_version: str


def _error(exc: ApiException, what: str) -> KubeError:
    if exc.status == 409:
        return Conflict(f"{what}: changed concurrently", 409)
    if exc.status == 404:
        return KubeError(f"{what}: not found", 404)
    if exc.status == 403:
        return KubeError(f"{what}: forbidden (check the operator's RBAC)", 403)
    return KubeError(f"{what}: HTTP {exc.status} {exc.reason}", exc.status)


def _transport_error(
    exc: urllib3.exceptions.HTTPError, what: str, timeout: tuple[float, float]
) -> KubeError:
    # urllib3 2 derives NewConnectionError from ConnectTimeoutError: test it first.
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return KubeError(f"{what}: cannot reach the API server ({type(reason).__name__})")
    if isinstance(reason, urllib3.exceptions.TimeoutError):
        connect, read = timeout
        return KubeError(
            f"{what}: the API server did not answer in time (connect {connect:g} s, "
            f"read {read:g} s)"
        )
    return KubeError(f"{what}: API request failed ({type(reason).__name__})")


class Kube:
    """What the operator needs from the API server, nothing more."""

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        self.timeout = timeout
        self._closed: threading.Event | None = None
        self.api = api_client or client.ApiClient()
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self._plurals: dict[tuple[str, str, str], str] = {}

    def gated(self, closed: threading.Event) -> Kube:
        """This client for one reconcile: once ``closed`` is set (its deadline passed), every
        call fails with Late, so an abandoned reconcile writes nothing (no /scale patch from a
        late decision) and ends at its next call."""
        view = copy.copy(self)  # the same connection pool and discovery cache
        view._closed = closed
        return view

    def _call[T](self, what: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One API call with the request timeout; every failure is a KubeError."""
        if self._closed is not None and self._closed.is_set():
            raise Late(f"{what}: not sent: the reconcile ran past its deadline")
        try:
            with network():
                return method(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            raise _error(exc, what) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise _transport_error(exc, what, self.timeout) from exc

    # -- discovery

    def plural(self, target: Target) -> str:
        """The resource name of a kind, from a table or API discovery."""
        known = BUILTIN_PLURALS.get((target.group, target.kind))
        if known:
            return known
        if not target.group:
            raise KubeError(
                f"{target.api_version} {target.kind}: core-group kinds are not supported as "
                "targets; use a Deployment, StatefulSet or a custom resource with /scale"
            )
        key = (target.group, target.version, target.kind)
        if key not in self._plurals:
            listing = self._call(
                f"discovery of {target.api_version}",
                self.custom.get_api_resources,
                target.group,
                target.version,
            )
            for res in listing.resources or []:
                if res.kind == target.kind and "/" not in res.name:
                    self._plurals[key] = res.name
                    break
            else:
                raise KubeError(f"{target.api_version} has no kind {target.kind}: check targetRef")
        return self._plurals[key]

    def _ref(self, target: Target) -> tuple[str, str, str, str, str]:
        return target.group, target.version, target.namespace, self.plural(target), target.name

    # -- targets

    def read_target(self, target: Target) -> dict[str, Any]:
        ref = self._ref(target)
        return cast(
            dict[str, Any], self._call(str(target), self.custom.get_namespaced_custom_object, *ref)
        )

    def read_scale(self, target: Target, obj: dict[str, Any] | None = None) -> Scale:
        ref, read = self._ref(target), self.custom.get_namespaced_custom_object_scale
        try:
            scale = cast(dict[str, Any], self._call(f"{target} /scale", read, *ref))
        except KubeError as exc:
            if exc.status == 404 and obj is not None:  # the target was just read: no /scale
                raise KubeError(
                    f"{target} has no /scale subresource: PeakPilot scales Deployments, "
                    "StatefulSets and custom resources whose CRD declares subresources.scale",
                    404,
                ) from exc
            raise
        status = (obj or {}).get("status") or {}
        ready = status.get("readyReplicas")
        return Scale(
            replicas=int((scale.get("spec") or {}).get("replicas") or 0),
            ready=int(ready) if ready is not None else None,
            resource_version=str((scale.get("metadata") or {}).get("resourceVersion", "")),
        )

    def list_targets(
        self, namespace: str, api_version: str, kind: str
    ) -> dict[str, tuple[dict[str, Any], Scale]]:
        """Every object of a built-in kind (Deployment, StatefulSet, ReplicaSet) in
        `namespace` with its replicas, by name, from one LIST: their /scale is their own
        spec.replicas. A policy of many workloads reads its targets this way, not with two GETs
        each."""
        probe = Target(api_version, kind, "", namespace)
        if (probe.group, kind) not in BUILTIN_PLURALS:
            raise KubeError(f"{kind}: not a built-in kind with /scale; read each target")
        listing = self._call(
            f"listing {BUILTIN_PLURALS[(probe.group, kind)]}",
            self.custom.list_namespaced_custom_object,
            probe.group,
            probe.version,
            namespace,
            BUILTIN_PLURALS[(probe.group, kind)],
        )
        out: dict[str, tuple[dict[str, Any], Scale]] = {}
        for item in cast(dict[str, Any], listing).get("items", []):
            meta = item.get("metadata") or {}
            name = str(meta.get("name", ""))
            status = item.get("status") or {}
            ready = status.get("readyReplicas")
            scale = Scale(
                replicas=int((item.get("spec") or {}).get("replicas") or 0),
                ready=int(ready) if ready is not None else None,
                resource_version=str(meta.get("resourceVersion", "")),
            )
            out[name] = (item, scale)
        return out

    def write_scale(self, target: Target, replicas: int, resource_version: str) -> None:
        """Set spec.replicas, failing with Conflict if the target changed since it was read."""
        body = {"metadata": {"resourceVersion": resource_version}, "spec": {"replicas": replicas}}
        self._call(
            f"{target} /scale",
            self.custom.patch_namespaced_custom_object_scale,
            *self._ref(target),
            body,
            _content_type=MERGE_PATCH,
        )

    def set_replicas(self, target: Target, replicas: int, expected: int, attempts: int = 3) -> int:
        """Optimistic write: re-read on conflict; gives up if someone else changed the count.

        Returns the replicas before the write.
        """
        for _ in range(attempts):
            scale = self.read_scale(target)
            if scale.replicas != expected:
                raise Conflict(
                    f"{target} was resized to {scale.replicas} by someone else since it was read "
                    f"(expected {expected}); will re-plan next interval",
                    409,
                )
            try:
                self.write_scale(target, replicas, scale.resource_version)
                return scale.replicas
            except Conflict:
                continue
        raise Conflict(f"{target} /scale: still conflicting after {attempts} attempts", 409)

    # -- ownership

    def autoscalers(self, namespace: str) -> list[tuple[str, str, dict[str, Any]]]:
        """Other autoscalers in a namespace (HPAs, KEDA ScaledObjects): (kind, name, the
        scaleTargetRef). Listed once per reconcile, whatever the number of workloads."""
        found: list[tuple[str, str, dict[str, Any]]] = []
        sources = (
            ("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers"),
            ("ScaledObject", "keda.sh", "v1alpha1", "scaledobjects"),
        )
        for kind, group, version, plural in sources:
            try:
                listing = self._call(
                    f"listing {kind}s",
                    self.custom.list_namespaced_custom_object,
                    group,
                    version,
                    namespace,
                    plural,
                )
            except KubeError as exc:
                if exc.status == 404:
                    continue  # that API is not installed (KEDA is optional)
                raise
            items = cast(dict[str, Any], listing).get("items", [])
            for item in items:
                ref = (item.get("spec") or {}).get("scaleTargetRef") or {}
                found.append((kind, str(item["metadata"]["name"]), dict(ref)))
        return found

    def owners(
        self,
        target: Target,
        autoscalers: Sequence[tuple[str, str, Mapping[str, Any]]] | None = None,
    ) -> list[str]:
        """The autoscalers (from `autoscalers`, or listed now) that scale the same object."""
        if autoscalers is None:
            autoscalers = self.autoscalers(target.namespace)
        return [
            f"{kind}/{name}"
            for kind, name, ref in autoscalers
            if ref.get("kind", "Deployment") == target.kind and ref.get("name") == target.name
        ]

    # -- secrets and status

    def secret_value(self, namespace: str, ref: api.SecretKeyRef, *, one_line: bool = False) -> str:
        """The value of a Secret's key, stripped. `one_line`: it goes into an HTTP header, so a
        line break or other control character inside it is refused (naming the Secret and the
        key, never the value: a header with CR/LF would otherwise be quoted in errors)."""
        import base64
        import binascii

        where = f"Secret {namespace}/{ref.name} key {ref.key!r}"
        secret = self._call(
            f"Secret {ref.name}", self.core.read_namespaced_secret, ref.name, namespace
        )
        data = secret.data or {}
        if ref.key not in data:
            raise KubeError(f"Secret {ref.name} has no key {ref.key!r}: check the policy's auth")
        try:
            value = base64.b64decode(data[ref.key], validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise KubeError(f"{where}: the value is not UTF-8 text") from None
        if one_line and any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
            raise KubeError(
                f"{where}: the value contains a line break or another control character; "
                "store it on one line (e.g. kubectl create secret generic NAME "
                "--from-literal=KEY=VALUE)"
            )
        return value

    def peering_status(self, name: str, namespace: str | None) -> dict[str, Any] | None:
        """The status of Kopf's peering object (the replicas' records); None if it is missing."""
        group, version = "kopf.dev", "v1"
        try:
            if namespace is None:
                obj = self._call(
                    f"ClusterKopfPeering {name}",
                    self.custom.get_cluster_custom_object,
                    group,
                    version,
                    "clusterkopfpeerings",
                    name,
                )
            else:
                obj = self._call(
                    f"KopfPeering {namespace}/{name}",
                    self.custom.get_namespaced_custom_object,
                    group,
                    version,
                    namespace,
                    "kopfpeerings",
                    name,
                )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(cast(dict[str, Any], obj).get("status") or {})

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._call(
            f"{api.KIND} {name} status",
            self.custom.patch_namespaced_custom_object_status,
            api.GROUP,
            api.VERSION,
            namespace,
            api.PLURAL,
            name,
            {"status": status},
            _content_type=MERGE_PATCH,
        )
