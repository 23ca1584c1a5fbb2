"""The real Helm engine (helm-sdkpy) against the emulated API server, as a child process.

Helm's Go runtime reads HELM_DRIVER from the environment the process started with, and the
release must be stored in memory (the emulator cannot decode the protobuf Secrets Helm stores
releases in by default). A release in memory lives as long as its process, so one child process
serves a whole session: :class:`HelmSession` sends it one JSON command a line on stdin
(``install``, ``uninstall``) and reads one JSON answer a line from stdout.

:meth:`HelmSession.prepare` makes an :class:`EmulatedCluster` look like the cluster Helm
expects: the Kubernetes version the chart requires, core discovery that client-go can map, and
CRDs that are already there (the emulator never marks a new CRD Established, and Helm would wait
60 s for that: the fixture registers the chart's CRD itself, as ``kubectl apply -f crds/`` would).

Run as a script, this file is the child: ``python helm.py KUBECONFIG NAMESPACE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from .cluster import EmulatedCluster

JSON = dict[str, Any]


class HelmError(RuntimeError):
    """A Helm action failed; the message is Helm's."""


class HelmSession:
    """``helm install`` / ``helm uninstall`` with the real engine, in one child process."""

    def __init__(self, kubeconfig: Path, namespace: str, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "helm.log"
        env = {
            **os.environ,
            "HELM_DRIVER": "memory",
            "HELM_CACHE_HOME": str(workdir / "cache"),
            "HELM_CONFIG_HOME": str(workdir / "config"),
            "HELM_DATA_HOME": str(workdir / "data"),
        }
        self._log = self.log_path.open("w")
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(kubeconfig), namespace],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )

    @staticmethod
    def prepare(cluster: EmulatedCluster, kube_version: str) -> None:
        """Serve what Helm needs from ``cluster`` (see the module docstring)."""
        from .apiserver import Fault

        major, minor, _ = kube_version.split(".")
        status, core = cluster.request("GET", "/api/v1")
        assert status == 200, core
        # kmock 0.8 names the core group "/v1"; client-go's REST mapper then finds no core kinds.
        core = {**core, "groupVersion": "v1"}

        def serve() -> None:
            api = cluster.emulator
            api["get /version"] << {
                "major": major,
                "minor": minor,
                "gitVersion": f"v{kube_version}",
            }
            api["get /api/v1"] << core

        cluster.call(serve)
        cluster.fail(
            Fault(
                status=409,
                reason="AlreadyExists",
                message="customresourcedefinition already exists",
                method="POST",
                plural="customresourcedefinitions",
                times=None,
            )
        )

    def _ask(self, command: JSON, timeout: float = 120.0) -> JSON:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise HelmError(f"the Helm process ended: {self.log_tail()}")
        answer: JSON = json.loads(line)
        if not answer.get("ok"):
            raise HelmError(str(answer.get("error")))
        return answer

    def install(self, release: str, chart: Path, values: Mapping[str, Any] | None = None) -> JSON:
        """``helm install RELEASE CHART -n NAMESPACE``: the release (manifest, info, ...)."""
        answer = self._ask(
            {"op": "install", "release": release, "chart": str(chart), "values": values or {}}
        )
        release_doc: JSON = answer["release"]
        return release_doc

    def uninstall(self, release: str) -> JSON:
        """``helm uninstall RELEASE -n NAMESPACE``: Helm deletes the release's objects and its
        record, and (as the CLI without ``--wait``) does not watch them go: the emulator's lists
        carry no ``kind``, which Helm's status watcher needs."""
        result: JSON = self._ask({"op": "uninstall", "release": release})["result"]
        return result

    def releases(self) -> list[str]:
        """``helm list -n NAMESPACE``: the names of the deployed releases."""
        names: list[str] = self._ask({"op": "list"})["releases"]
        return names

    def log_tail(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _serve(kubeconfig: str, namespace: str) -> None:
    """The child: one Helm configuration, one command a line until stdin closes."""
    import asyncio

    import helm_sdkpy

    if os.environ.get("HELM_DRIVER") != "memory":
        raise SystemExit("run with HELM_DRIVER=memory in the environment")
    config = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=Path(kubeconfig).read_text())
    for line in sys.stdin:
        command = json.loads(line)
        answer: JSON
        try:
            if command["op"] == "install":
                release = asyncio.run(
                    helm_sdkpy.Install(config).run(
                        command["release"],
                        command["chart"],
                        values=command["values"],
                        wait=False,
                        timeout=60,
                    )
                )
                answer = {"ok": True, "release": release}
            elif command["op"] == "uninstall":
                result = asyncio.run(
                    helm_sdkpy.Uninstall(config).run(command["release"], wait=False, timeout=60)
                )
                answer = {"ok": True, "result": result}
            elif command["op"] == "list":
                listed = asyncio.run(helm_sdkpy.List(config).run())
                answer = {"ok": True, "releases": [r["name"] for r in listed or []]}
            else:
                answer = {"ok": False, "error": f"unknown op {command['op']!r}"}
        except helm_sdkpy.HelmError as exc:
            answer = {"ok": False, "error": str(exc)}
        print(json.dumps(answer, default=str), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
