"""Peering refusals: where Kopf would pause every replica silently (a peer of equal priority, a
missing peering object, one --priority for all), the operator exits 2 with one line instead.
Two replicas of which exactly one acts: test_fault_matrix.py::test_two_replicas_one_acts_...
"""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest
from harness import EmulatedCluster, PeakPilotFactory, PeakPilotProcess, wait_until
from harness.peakpilot import deployment, policy, scale_patches, workload

from peakpilot.peering import priority_of

pytestmark = pytest.mark.integration

NS = "shop"
PEERING = "peakpilot"
PEERINGS = ("kopf.dev/v1", "clusterkopfpeerings", None, PEERING)
FAST = {"PEAKPILOT_PEERING_LIFETIME": "6"}  # the guard looks every 1.5 s


def record(priority: int) -> dict[str, object]:
    """A live peer's record, as Kopf writes it."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    return {"priority": priority, "lifetime": 60, "lastseen": now}


def peering_object(status: dict[str, object] | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "apiVersion": "kopf.dev/v1",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": PEERING},
    }
    if status:
        body["status"] = status
    return body


def refused(process: PeakPilotProcess) -> str:
    """The process exited 2 with one error line (and no traceback); returns that line."""
    wait_until(lambda: not process.running, timeout=30, what="the operator to exit")
    assert process.returncode == 2, process.log_tail()
    log = process.log()
    assert "Traceback" not in log, log
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, log
    return errors[0]


@pytest.fixture
def cluster(kube_api: EmulatedCluster) -> EmulatedCluster:
    kube_api.register_kopf_peering()
    kube_api.create(deployment(NS, "checkout", 2))
    kube_api.create(policy(NS, "peak", "http://127.0.0.1:9", [workload("checkout")]))
    return kube_api


def test_a_live_peer_with_this_replicas_priority_is_refused_at_start(
    cluster: EmulatedCluster, peakpilot_factory: PeakPilotFactory
) -> None:
    cluster.create(peering_object({"impostor": record(priority_of("peakpilot-0"))}))
    process = peakpilot_factory(peering=PEERING, env={"POD_NAME": "peakpilot-0"}, wait=False)
    line = refused(process)
    assert "impostor in ClusterKopfPeering peakpilot has this replica's priority" in line
    assert "give each replica its own POD_NAME" in line
    assert scale_patches(cluster, NS) == []


def test_a_duplicate_that_appears_while_running_stops_the_operator(
    cluster: EmulatedCluster, peakpilot_factory: PeakPilotFactory
) -> None:
    # A dead record with the same priority (lastseen long ago) is no duplicate.
    old = {**record(priority_of("peakpilot-0")), "lastseen": "2020-01-01T00:00:00+00:00"}
    cluster.create(peering_object({"dead": old}))
    process = peakpilot_factory(peering=PEERING, env={"POD_NAME": "peakpilot-0", **FAST})
    wait_until(
        lambda: "peakpilot-0" in (cluster.stored(*PEERINGS).get("status") or {}),
        timeout=20,
        what="the replica's own peering record",
    )
    assert process.running
    cluster.patch(*PEERINGS, {"status": {"late": record(priority_of("peakpilot-0"))}})
    assert "late in ClusterKopfPeering peakpilot" in refused(process)
    # It left the peering object on its way out (a clean Kopf stop).
    assert "peakpilot-0" not in (cluster.stored(*PEERINGS).get("status") or {})


def test_a_missing_peering_object_is_refused(
    cluster: EmulatedCluster, peakpilot_factory: PeakPilotFactory
) -> None:
    process = peakpilot_factory(peering=PEERING, wait=False)
    line = refused(process)
    assert "ClusterKopfPeering peakpilot does not exist, so every replica would wait" in line


def test_a_given_priority_is_refused() -> None:
    # As operator.extraArgs would pass it to every replica alike.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "peakpilot.cli",
            "operator",
            "-A",
            "--peering",
            "p",
            "--priority",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "--priority: not settable" in proc.stderr and "extraArgs" in proc.stderr
    assert "Traceback" not in proc.stderr
