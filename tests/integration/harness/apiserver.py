"""kmock's ``KubernetesEmulator`` plus the API-server behaviour an autoscaler leans on.

kmock 0.8 stores objects as plain JSON and merges patches into them, which is enough for
Kopf to list, watch and patch. :class:`ApiServerEmulator` adds the smallest honest layer on
top (README.md, "Kubernetes API", lists what is real and what is not):

* ``metadata.uid``, ``creationTimestamp``, ``resourceVersion`` (one global counter) and
  ``generation`` (bumped when anything outside ``metadata``/``status`` changes);
* optimistic concurrency: a stale ``metadata.resourceVersion`` in a PATCH/PUT body is a 409,
  a failing JSON-patch ``test`` op is a 422 (what Kopf expects);
* ``status`` subresource semantics: ``PATCH .../status`` only touches ``status`` and a PATCH
  of the main resource cannot touch it;
* a real ``/scale`` subresource: GET/PATCH/PUT speak ``autoscaling/v1`` ``Scale`` and write
  through to ``spec.replicas`` of the stored Deployment/StatefulSet/custom resource;
* PUT (replace), 201 on create, ``metadata.generateName`` (Kopf posts Events with it), no-op
  patches that store nothing and emit no watch event, the Namespace resource itself
  (which kmock's URL parser cannot address), discovery URLs with a trailing slash;
* fault injection: fail a matching request *before* it changes anything, accept it and
  never answer (a hung API server), delete its object first (a concurrent deletion);
  and dropping every open watch stream (a dropped connection).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import random
import re
import string
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast, override

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
from kmock._internal import dicts as kmock_dicts  # the emulator's own merge/JSON-patch code

JSON = dict[str, Any]
_MUTATIONS = {kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE}

# kmock 0.8 reads ".../namespaces/<x>" in every path as "the namespace <x>", so the Namespace
# resource itself (/api/v1/namespaces[/<name>[/status|finalize]]) crashes its URL parser with a
# 500. Those paths are rewritten to this alias plural before kmock parses them.
NAMESPACES_ALIAS = "x-namespaces"
_NAMESPACE_PATH = re.compile(r"/api/v1/namespaces(?P<rest>(/[^/]+(/(status|finalize))?)?)/?")


# -- resource metadata --


@dataclass(frozen=True)
class ScalePaths:
    """Where a resource keeps what its ``/scale`` subresource shows (as in a CRD's
    ``subresources.scale``). ``label_selector=None`` derives the selector string from
    ``spec.selector``, as the built-in workloads do."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None
    default_replicas: int | None = None  # what an unset spec.replicas means (built-ins: 1)


BUILTIN_SCALE_PATHS = ScalePaths(default_replicas=1)


def _split_path(path: str) -> list[str]:
    return [part for part in path.split(".") if part]


def _get_path(obj: Mapping[str, Any], path: str) -> Any:
    current: Any = obj
    for part in _split_path(path):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _set_path(obj: JSON, path: str, value: Any) -> None:
    parts = _split_path(path)
    current = obj
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """Render a LabelSelector as the string a Scale's ``status.selector`` carries."""
    if not selector:
        return ""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], sorted(expr.get("values") or [])
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- fault injection --


@dataclass
class Fault:
    """What to do to matching requests, before they touch any state.

    ``None`` match fields match anything. ``times`` counts down; ``None`` means forever. In
    order: ``delete`` removes the addressed object (as a user's DELETE between the client's read
    and this request), ``hang`` accepts the request and sends nothing until :meth:`release` (or
    the server stops), then ``status`` fails it (``None``: serve it as usual).
    """

    status: int | None = 500
    method: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    times: int | None = 1
    message: str = "fault injected by the test"
    reason: str = "InjectedFault"  # the Status reason clients branch on, e.g. AlreadyExists
    hang: bool = False
    delete: bool = False
    hits: int = 0
    released: bool = False  # a plain flag: set from any thread, polled by the hung requests

    def release(self) -> None:
        """Let hung requests go on (to ``status``, or to being served)."""
        self.released = True

    def matches(self, request: kmock.Request) -> bool:
        plural = None if request.resource is None else request.resource.plural
        plural = "namespaces" if plural == NAMESPACES_ALIAS else plural
        return (
            (self.times is None or self.times > 0)
            and (self.method is None or self.method.upper() == str(request.method.value).upper())
            and (self.plural is None or plural == self.plural)
            and (self.namespace is None or self.namespace == request.namespace)
            and (self.name is None or self.name == request.name)
            and (self.subresource is None or self.subresource == request.subresource)
        )


# -- the emulator --


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the API-server behaviour listed in the module docstring."""

    scale_paths: dict[kmock.resource, ScalePaths] = attrs.field(factory=dict)
    faults: list[Fault] = attrs.field(factory=list)
    # Every request received, oldest first: what EmulatedCluster.requests() reads. kmock matches
    # each new request against every reaction by walking its own list of *all* past requests, so
    # a long run got quadratically slower (+10 ms a request per 100 requests before it, 90 ms
    # after 1,000); that list is trimmed to the newest `request_window` once it holds twice as
    # many (kmock DSL slices like `[:1]` count within it). A request still waiting for its
    # reaction when `request_window` newer ones have arrived would find none (a 500).
    seen: list[kmock.Request] = attrs.field(factory=list)
    request_window: int = 100
    keep_seen: bool = True  # False: keep no history at all (long benchmarks)
    _versions: Iterator[int] = attrs.field(factory=lambda: itertools.count(1))
    # Serialises all writes: the checks below must see the state the write will apply to.
    _writes: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    # The tasks serving open watch streams: drop_watches() cancels them.
    _watches: set[asyncio.Task[Any]] = attrs.field(factory=set)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # Below users' own reactions (priority 0), above kmock's fallbacks (-inf): GET/PATCH/PUT
        # of /scale answer with a Scale view of the (already updated) parent object.
        (self**-1000)[kmock.subresource("scale")] << self._serve_scale
        # The generated clients' discovery calls (get_api_resources) add a trailing slash.
        (self**-1000)["get", re.compile(r"/apis/[^/]+/[^/]+/")] << self._serve_version
        (self**-1000)["get", re.compile(r"/api/[^/]+/")] << self._serve_version
        (self**-1000)["get", re.compile(r"/apis/[^/]+/")] << self._serve_group

    # -- request pipeline --

    @override
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        match = _NAMESPACE_PATH.fullmatch(raw_request.path)
        if match is not None:
            path = f"/api/v1/{NAMESPACES_ALIAS}{match['rest']}"
            rel_url = raw_request.rel_url.with_path(path).with_query(raw_request.rel_url.query)
            raw_request = raw_request.clone(rel_url=rel_url)
        window = self._requests
        if len(window) > 2 * self.request_window:
            del window[: len(window) - self.request_window]
        return await super().__call__(raw_request)

    @override
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if self.keep_seen:
            self.seen.append(request)
        for fault in self.faults:
            if fault.matches(request):
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                await self._inject(fault, request)
                break
        if request.resource is None:
            return await super()._handle(request)
        if request.action == kmock.action.WATCH:
            task = asyncio.current_task()
            assert task is not None
            self._watches.add(task)
            try:
                return await super()._handle(request)
            finally:
                self._watches.discard(task)

        replace = request.method == kmock.method.PUT and request.name is not None
        if replace:
            # kmock has no PUT; a full replacement is stored as an UPDATE below.
            object.__setattr__(request, "action", kmock.action.UPDATE)
        if request.action not in _MUTATIONS:
            self._check_subresource(request)
            return await super()._handle(request)

        async with self._writes:
            self._check_subresource(request)
            if request.action == kmock.action.CREATE:
                self._admit_create(request)
                response = await super()._handle(request)
                if response.status == 200 and not response.prepared:
                    # The real API answers 201; the generated clients only decode a 201 body
                    # for some calls (CustomObjectsApi.create_* returns None on a 200).
                    response.set_status(201)
                return response
            if request.action == kmock.action.UPDATE:
                unchanged = self._admit_update(request, replace=replace)
                if unchanged is not None:  # a no-op: no new version, no watch event
                    return aiohttp.web.json_response(unchanged)
            return await super()._handle(request)

    @override
    async def _serve_list(self, request: kmock.Request) -> Any:
        """kmock's list plus the ``kind`` and ``apiVersion`` of a real List, which client-go
        (kubectl, Helm) needs to decode it."""
        payload = await super()._serve_list(request)
        info = None if request.resource is None else self._info(request.resource)
        if isinstance(payload, dict) and info is not None and info.kind:
            group, version = request.resource.group, request.resource.version  # type: ignore[union-attr]
            api_version = f"{group}/{version}" if group else version
            payload = {"apiVersion": api_version, "kind": f"{info.kind}List", **payload}
        return payload

    async def _inject(self, fault: Fault, request: kmock.Request) -> None:
        if fault.delete:
            await self._delete_now(request)
        while fault.hang and not fault.released:
            await asyncio.sleep(0.05)
        if fault.status is not None:
            raise kmock.KubernetesError(
                status=fault.status, reason=fault.reason, message=fault.message
            )

    async def _delete_now(self, request: kmock.Request) -> None:
        """Delete the object a request addresses, as kmock serves a DELETE (no finalizers)."""
        if request.resource is None or request.name is None:
            return
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                return
            self.objects[key].delete()
            raw = self.objects[key].last.raw
            await self._buses[request.resource].put({"type": "DELETED", "object": raw})

    def drop_watches(self) -> int:
        """Cut every open watch stream (the connection closes mid-stream); returns how many."""
        dropped = [task for task in self._watches if not task.done()]
        for task in dropped:
            task.cancel()
        return len(dropped)

    def _info(self, resource: kmock.resource) -> kmock.ResourceInfo | None:
        # NB: ResourcesArray.__getitem__ (and so .get) auto-creates an entry; look first.
        return self.resources[resource] if resource in self.resources else None  # noqa: SIM401

    def _check_subresource(self, request: kmock.Request) -> None:
        assert request.resource is not None
        info = self._info(request.resource)
        sub = request.subresource
        if sub and info is not None and sub not in info.subresources:
            raise kmock.KubernetesNotFoundError(
                message=f"{request.resource.plural} has no /{sub} subresource"
            )

    def _has_status(self, resource: kmock.resource) -> bool:
        info = self._info(resource)
        return info is not None and "status" in info.subresources

    def _next_version(self) -> str:
        return str(next(self._versions))

    def _admit_create(self, request: kmock.Request) -> None:
        assert request.resource is not None
        data = request.data
        if not isinstance(data, dict):
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message="body must be an object"
            )
        meta = data.setdefault("metadata", {})
        info = self._info(request.resource)
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise kmock.KubernetesError(
                    status=422, reason="Invalid", message="metadata.name or generateName required"
                )
            alphabet = string.ascii_lowercase + string.digits
            meta["name"] = prefix + "".join(random.choices(alphabet, k=5))
        if info is not None and info.kind and "kind" not in data:
            data["kind"] = info.kind
        if "apiVersion" not in data:
            group, version = request.resource.group, request.resource.version
            data["apiVersion"] = f"{group}/{version}" if group else version
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["resourceVersion"] = self._next_version()
        meta.setdefault("generation", 1)

    def _admit_update(self, request: kmock.Request, *, replace: bool) -> JSON | None:
        """Compute the new state; rewrite the request so that kmock stores exactly it.

        Returns the unchanged object (or its Scale) for a no-op, else None.
        """
        resource = request.resource
        assert resource is not None and request.name is not None
        key = (resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        current: JSON = copy.deepcopy(self.objects[key].raw)
        body = request.data
        sub = request.subresource
        has_status = self._has_status(resource)

        if isinstance(body, Mapping):
            self._check_version(current, body)
        elif not isinstance(body, list):
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message="body must be JSON"
            )

        try:
            if sub == "scale":
                scale = self.scale_view(resource, current)
                new_scale = body if replace else kmock_dicts.patch_dict(scale, body)
                replicas = _get_path(new_scale, ".spec.replicas")
                if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                    raise kmock.KubernetesError(
                        status=422, reason="Invalid", message=f"bad spec.replicas: {replicas!r}"
                    )
                new = copy.deepcopy(current)
                _set_path(new, self._scale_paths(resource).spec_replicas, replicas)
            elif replace:
                new = copy.deepcopy(dict(body))
                if has_status and sub == "status":
                    new = dict(current, status=new.get("status"))
                elif has_status:
                    new["status"] = current.get("status")
                    if new["status"] is None:
                        del new["status"]
            else:
                patch = self._restrict_patch(body, sub=sub, has_status=has_status)
                new = dict(kmock_dicts.patch_dict(current, patch))
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise kmock.KubernetesError(
                status=422, reason="Invalid", message=f"the patch cannot be applied: {exc}"
            ) from exc
        except ValueError as exc:  # kmock's merge refuses to merge a dict and a scalar
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc

        # Server-owned metadata cannot be changed by clients.
        new_meta = new.setdefault("metadata", {})
        old_meta = current.get("metadata", {})
        for owned in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            if owned in old_meta:
                new_meta[owned] = old_meta[owned]
        new_meta["resourceVersion"] = old_meta.get("resourceVersion")
        if new == current:
            return self.scale_view(resource, current) if sub == "scale" else current

        def content(o: Mapping[str, Any]) -> JSON:
            return {k: v for k, v in o.items() if k not in ("metadata", "status")}

        if content(new) != content(current):
            new_meta["generation"] = int(old_meta.get("generation", 1)) + 1
        new_meta["resourceVersion"] = self._next_version()
        # kmock merges request.data into the stored object: replacing the root stores `new`.
        object.__setattr__(request, "data", [{"op": "replace", "path": "", "value": new}])
        return None

    @staticmethod
    def _check_version(current: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        actual = (current.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and str(wanted) != str(actual):
            raise kmock.KubernetesError(
                status=409,
                reason="Conflict",
                message=(
                    "Operation cannot be fulfilled: the object has been modified; please apply "
                    f"your changes to the latest version and try again ({wanted} != {actual})"
                ),
            )

    @staticmethod
    def _restrict_patch(body: Any, *, sub: str | None, has_status: bool) -> Any:
        """With a status subresource, /status only changes status and the main URL never does."""
        if not has_status:
            return body

        def on_status(path: str) -> bool:
            return path == "/status" or path.startswith("/status/")

        if isinstance(body, Mapping):
            if sub == "status":
                return {"status": body["status"]} if "status" in body else {}
            return {k: v for k, v in body.items() if k != "status"}
        ops = cast(Sequence[Mapping[str, Any]], body)
        if sub == "status":
            return [op for op in ops if op.get("op") == "test" or on_status(op.get("path", ""))]
        return [op for op in ops if op.get("op") == "test" or not on_status(op.get("path", ""))]

    # -- /scale --

    def _scale_paths(self, resource: kmock.resource) -> ScalePaths:
        return self.scale_paths.get(resource, BUILTIN_SCALE_PATHS)

    def scale_view(self, resource: kmock.resource, obj: Mapping[str, Any]) -> JSON:
        """The ``autoscaling/v1`` Scale that the real API server derives from ``obj``."""
        paths = self._scale_paths(resource)
        meta = obj.get("metadata", {})
        replicas = _get_path(obj, paths.spec_replicas)
        if replicas is None:
            replicas = paths.default_replicas or 0
        if paths.label_selector is not None:
            selector = _get_path(obj, paths.label_selector) or ""
        else:
            selector = selector_string(_get_path(obj, ".spec.selector"))
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": replicas},
            "status": {
                "replicas": _get_path(obj, paths.status_replicas) or 0,
                "selector": selector,
            },
        }

    async def _serve_scale(self, request: kmock.Request) -> JSON:
        assert request.resource is not None and request.name is not None
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                raise kmock.KubernetesObjectNotFoundError()
            obj = copy.deepcopy(self.objects[key].raw)
        return self.scale_view(request.resource, obj)
