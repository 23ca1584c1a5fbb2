"""Run :class:`ApiServerEmulator` for sync tests: a background event loop, a kubeconfig, and
thread-safe helpers to act as a user and to assert what the code under test did."""

from __future__ import annotations

import asyncio
import copy
import functools
import gzip
import importlib.resources
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import aiohttp.test_utils
import aiohttp.web
import kmock
import yaml

from .apiserver import NAMESPACES_ALIAS, ApiServerEmulator, Fault, ScalePaths
from .net import wait_until

JSON = dict[str, Any]


@dataclass(frozen=True)
class SeenRequest:
    """A thread-safe copy of one request the emulator received."""

    method: str
    path: str
    query: Mapping[str, str]
    action: str | None
    group: str | None
    version: str | None
    plural: str | None
    namespace: str | None
    name: str | None
    subresource: str | None
    content_type: str | None
    data: Any  # the decoded body as the client sent it
    user_agent: str | None = None


class _PromptlyStoppingServer(aiohttp.test_utils.RawTestServer):
    """aiohttp waits up to 60 s at shutdown for open responses, and the emulator's watch
    streams never end on their own: give them half a second, then cancel them."""

    async def _make_runner(self, debug: bool = True, **kwargs: Any) -> aiohttp.web.ServerRunner:
        server = aiohttp.web.Server(self._handler, loop=self._loop, debug=debug, **kwargs)
        return aiohttp.web.ServerRunner(server, debug=debug, shutdown_timeout=0.5, **kwargs)


@functools.cache
def _bundled_resources() -> str:
    # kmock's load_bundled() does the same through a deprecated importlib call (a warning).
    packed = importlib.resources.files("kmock._internal").joinpath("resources.json.gz")
    return gzip.decompress(packed.read_bytes()).decode()


def _api_prefix(api_version: str) -> str:
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"


class EmulatedCluster:
    """The emulator on ``127.0.0.1:<port>`` in a background thread, plus a kubeconfig for it.

    Use :meth:`request` (or the ``kubernetes`` client via :meth:`api_client`) to act as a user;
    use :meth:`stored`, :meth:`history` and :meth:`requests` to assert what the code under
    test did. Everything here is safe to call from the test thread.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        builtins: bool = True,
        keep_requests: bool = True,
        request_window: int = 100,
    ) -> None:
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig"
        self._port = port
        self._builtins = builtins
        self._keep_requests = keep_requests  # False: requests() stays empty (long benchmarks)
        self._request_window = request_window  # see ApiServerEmulator.request_window
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._emulator: ApiServerEmulator | None = None
        self._server: kmock.Server | None = None
        self._failure: BaseException | None = None
        # The operator processes run against this cluster (conftest's peakpilot_factory adds
        # each): PolicyProbe counts reconciles on their /metrics.
        self.operators: list[Any] = []

    # -- lifecycle --

    def start(self, *, timeout: float = 10.0) -> Self:
        ready = threading.Event()

        async def serve() -> None:
            self._stop = asyncio.Event()
            # Created inside the loop: the emulator owns asyncio locks and queues.
            emulator = ApiServerEmulator(
                keep_seen=self._keep_requests, request_window=self._request_window
            )
            if self._builtins:
                # The bundled discovery of a recent K3s: apps/v1 (with /scale and /status),
                # v1 events, autoscaling/v2, coordination, ...
                emulator.resources.load_data(_bundled_resources())
            emulator.resources[kmock.resource("", "v1", NAMESPACES_ALIAS)] = kmock.ResourceInfo(
                kind="Namespace",
                singular="namespace",
                namespaced=False,
                verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
                subresources={"status", "finalize"},
            )
            server_cls = _PromptlyStoppingServer
            async with emulator, kmock.Server(emulator, port=self._port, server_cls=server_cls):
                self._emulator, self._server = emulator, emulator.servers[-1]
                ready.set()
                await self._stop.wait()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(serve())
            except BaseException as exc:  # reported by start()/stop()
                self._failure = exc
            finally:
                ready.set()
                self._loop.close()

        self._thread = threading.Thread(target=run, name="kube-api-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self._server is None:
            raise RuntimeError("the API emulator did not start") from self._failure
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.write_text(yaml.safe_dump(self.kubeconfig_dict(), sort_keys=False))
        return self

    def stop(self, *, timeout: float = 15.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the API emulator did not stop in time")
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

    @property
    def emulator(self) -> ApiServerEmulator:
        """The kmock object itself, for kmock's DSL. Touch it only via :meth:`call`."""
        if self._emulator is None:
            raise RuntimeError("the API emulator is not running")
        return self._emulator

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the API emulator is not running")
        return int(self._server.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call[T](self, fn: Callable[[], T], *, timeout: float = 10.0) -> T:
        """Run ``fn`` on the emulator's event loop (where its state lives) and return the result."""
        if self._loop is None:
            raise RuntimeError("the API emulator is not running")

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    # -- client configuration --

    def kubeconfig_dict(self, namespace: str = "default") -> JSON:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            # A token keeps both the kubernetes client and Kopf on the plain token path.
            "users": [{"name": "tester", "user": {"token": "emulator-token"}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "tester", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
        }

    def env(self) -> dict[str, str]:
        """Environment for a child process (Kopf, kubectl-like tools) to find this API."""
        return {"KUBECONFIG": str(self.kubeconfig)}

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this API (does not touch global config)."""
        from kubernetes import config  # imported lazily: only tests that need it pay for it

        return config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]

    # -- resources --

    def register_resource(
        self,
        api_version: str,
        plural: str,
        kind: str,
        *,
        namespaced: bool = True,
        subresources: Iterable[str] = (),
        scale: ScalePaths | None = None,
        singular: str | None = None,
        shortnames: Iterable[str] = (),
        categories: Iterable[str] = (),
    ) -> None:
        """Make a resource discoverable (``/apis/<group>/<version>``) and servable."""
        resource = _resource(api_version, plural)
        info = kmock.ResourceInfo(
            kind=kind,
            singular=singular or kind.lower(),
            namespaced=namespaced,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            shortnames=set(shortnames),
            categories=set(categories),
            subresources=set(subresources) | ({"scale"} if scale else set()),
        )

        def register() -> None:
            self.emulator.resources[resource] = info
            if scale is not None:
                self.emulator.scale_paths[resource] = scale

        self.call(register)

    def register_crd(self, crd: Mapping[str, Any]) -> None:
        """Register every served version of a CustomResourceDefinition manifest and store the
        CRD object itself (cluster-scoped), as ``kubectl apply -f crds/`` would."""
        spec = crd["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            subresources = version.get("subresources") or {}
            scale_spec = subresources.get("scale")
            scale = None
            if scale_spec is not None:
                scale = ScalePaths(
                    spec_replicas=scale_spec["specReplicasPath"],
                    status_replicas=scale_spec["statusReplicasPath"],
                    label_selector=scale_spec.get("labelSelectorPath"),
                )
            self.register_resource(
                f"{spec['group']}/{version['name']}",
                names["plural"],
                names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                subresources=[s for s in subresources if s != "scale"],
                scale=scale,
                singular=names.get("singular"),
                shortnames=names.get("shortNames", ()),
                categories=names.get("categories", ()),
            )
        status, body = self.request(
            "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", dict(crd)
        )
        if status not in (200, 201, 409):
            raise RuntimeError(f"storing the CRD failed: {status} {body}")

    def register_scalingpolicy(self) -> None:
        """``scalingpolicies.peakpilot.io/v1alpha1``, namespaced, with a status subresource.

        A stand-in until the generated CRD in crds/ exists; prefer :meth:`register_crd` with it.
        """
        self.register_resource(
            "peakpilot.io/v1alpha1",
            "scalingpolicies",
            "ScalingPolicy",
            namespaced=True,
            subresources=["status"],
            singular="scalingpolicy",
            shortnames=["sp"],
        )

    def register_kopf_peering(self) -> None:
        """Kopf's peering resources (only needed when the operator runs without --standalone)."""
        self.register_resource(
            "kopf.dev/v1", "kopfpeerings", "KopfPeering", namespaced=True, singular="kopfpeering"
        )
        self.register_resource(
            "kopf.dev/v1",
            "clusterkopfpeerings",
            "ClusterKopfPeering",
            namespaced=False,
            singular="clusterkopfpeering",
        )

    # -- acting as a user, over real HTTP --

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """One HTTP request to the emulator; returns (status, decoded JSON or raw text)."""
        data = json.dumps(body).encode() if body is not None else None
        if content_type is None and method.upper() == "PATCH":
            content_type = (
                "application/json-patch+json"
                if isinstance(body, list)
                else "application/merge-patch+json"
            )
        headers = {"Content-Type": content_type or "application/json"}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = int(exc.code), exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def path(
        self,
        api_version: str,
        plural: str,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        parts = [_api_prefix(api_version)]
        if namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    def plural_of(self, api_version: str, kind: str) -> str:
        group, _, version = api_version.rpartition("/")

        def find() -> str | None:
            for res in self.emulator.resources:
                if res.plural == NAMESPACES_ALIAS:
                    continue  # an internal alias, see NAMESPACES_ALIAS
                info = self.emulator.resources[res]
                if (res.group, res.version, info.kind) == (group, version, kind):
                    return str(res.plural)
            return None

        plural = self.call(find)
        if plural is None:
            raise LookupError(f"{kind} in {api_version} is not registered")
        return plural

    def create_namespace(self, name: str) -> JSON | None:
        """Create an Active Namespace unless it exists; returns it if it was created."""
        if self.get("v1", "namespaces", None, name) is not None:
            return None
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
            "status": {"phase": "Active"},
        }
        status, body = self.request("POST", "/api/v1/namespaces", namespace)
        if status not in (200, 201):
            raise RuntimeError(f"creating namespace {name} failed: {status} {body}")
        return cast(JSON, body)

    def create(self, obj: Mapping[str, Any]) -> JSON:
        """POST an object (any registered kind); returns the stored object.

        Creates the object's Namespace first if needed (the emulator does not check that
        namespaces exist, but an operator limited to ``-n <ns>`` only watches existing ones).
        """
        plural = self.plural_of(obj["apiVersion"], obj["kind"])
        namespace = obj.get("metadata", {}).get("namespace")
        if namespace:
            self.create_namespace(namespace)
        status, body = self.request("POST", self.path(obj["apiVersion"], plural, namespace), obj)
        if status not in (200, 201):
            raise RuntimeError(f"create failed: {status} {body}")
        return cast(JSON, body)

    def get(
        self,
        api_version: str,
        plural: str,
        namespace: str | None,
        name: str,
        subresource: str | None = None,
    ) -> JSON | None:
        status, body = self.request(
            "GET", self.path(api_version, plural, namespace, name, subresource)
        )
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"get failed: {status} {body}")
        return cast(JSON, body)

    def patch(
        self,
        api_version: str,
        plural: str,
        namespace: str | None,
        name: str,
        patch: Any,
        subresource: str | None = None,
    ) -> JSON:
        status, body = self.request(
            "PATCH", self.path(api_version, plural, namespace, name, subresource), patch
        )
        if status != 200:
            raise RuntimeError(f"patch failed: {status} {body}")
        return cast(JSON, body)

    def delete(
        self, api_version: str, plural: str, namespace: str | None, name: str
    ) -> JSON | None:
        """DELETE an object; returns its last state (with deletionTimestamp if finalizers hold
        it back), or None if it did not exist."""
        status, body = self.request("DELETE", self.path(api_version, plural, namespace, name))
        if status == 404:
            return None
        if status not in (200, 202):
            raise RuntimeError(f"delete failed: {status} {body}")
        return cast(JSON, body)

    def exists(self, api_version: str, plural: str, namespace: str | None, name: str) -> bool:
        return self.get(api_version, plural, namespace, name) is not None

    # -- observing, via the loop thread --

    def stored(self, api_version: str, plural: str, namespace: str | None, name: str) -> JSON:
        """A deep copy of the object as stored now (KeyError if absent or deleted)."""
        resource = _resource(api_version, plural)

        def read() -> JSON:
            obj = self.emulator.objects[resource, namespace, name]
            if obj.deleted:
                raise KeyError((api_version, plural, namespace, name))
            return copy.deepcopy(obj.raw)

        return self.call(read)

    def history(
        self, api_version: str, plural: str, namespace: str | None, name: str
    ) -> list[JSON | None]:
        """Every stored version of the object, oldest first (None marks a deletion)."""
        resource = _resource(api_version, plural)

        def read() -> list[JSON | None]:
            obj = self.emulator.objects[resource, namespace, name]
            return [None if v is None else copy.deepcopy(v.raw) for v in obj.history]

        return self.call(read)

    def requests(self, predicate: Callable[[SeenRequest], bool] | None = None) -> list[SeenRequest]:
        """Copies of the requests received so far, oldest first, optionally filtered."""

        def read() -> list[SeenRequest]:
            return [_seen(r) for r in self.emulator.seen]

        seen = self.call(read)
        return [r for r in seen if predicate is None or predicate(r)]

    def wait_for_request(
        self, predicate: Callable[[SeenRequest], bool], *, timeout: float = 20.0
    ) -> SeenRequest:
        """Block until a matching request has arrived; return the first one."""
        found = wait_until(
            lambda: self.requests(predicate), timeout=timeout, what="a matching API request"
        )
        return found[0]

    def fail(self, fault: Fault) -> Fault:
        """Inject a fault (see :class:`Fault`); returns it so a test can read ``hits``."""
        self.call(lambda: self.emulator.faults.append(fault))
        return fault

    def heal(self, fault: Fault) -> None:
        """Remove a fault; requests it holds hung go on (to its ``status``, or are served)."""

        def remove() -> None:
            faults = self.emulator.faults
            faults[:] = [f for f in faults if f is not fault]  # by identity: equal ones may differ
            fault.release()

        self.call(remove)

    def drop_watches(self) -> int:
        """Cut every open watch connection, as a restarting API server or a proxy would; the
        clients must notice and watch again. Returns how many streams were cut."""
        return self.call(self.emulator.drop_watches)

    def errors(self) -> list[str]:
        """Server-side exceptions so far (404/409 answers count too: they are exceptions)."""
        return self.call(lambda: [repr(e) for e in self.emulator.errors])


def _resource(api_version: str, plural: str) -> kmock.resource:
    """The kmock resource for an apiVersion ("apps/v1", "v1") and a plural."""
    if (api_version, plural) == ("v1", "namespaces"):
        plural = NAMESPACES_ALIAS  # see NAMESPACES_ALIAS
    group, _, version = api_version.rpartition("/")
    return kmock.resource(group, version, plural)


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


def _seen(request: kmock.Request) -> SeenRequest:
    resource = request.resource
    headers = {k.lower(): v for k, v in request.headers.items()}
    path, plural = request.url.path, None if resource is None else resource.plural
    if plural == NAMESPACES_ALIAS:  # show what the client asked for, not the internal alias
        path, plural = path.replace(NAMESPACES_ALIAS, "namespaces", 1), "namespaces"
    return SeenRequest(
        method=str(request.method.value),
        path=path,
        query=dict(request.params),
        action=None if request.action is None else str(request.action.value),
        group=None if resource is None else resource.group,
        version=None if resource is None else resource.version,
        plural=plural,
        namespace=request.namespace,
        name=request.name,
        subresource=request.subresource,
        content_type=headers.get("content-type"),
        # The raw body, not request.data: the emulator rewrites data into what it stores.
        data=_decode(request.body),
        user_agent=headers.get("user-agent"),
    )
