"""Kopf peering among operator replicas: who each one is, its priority, and the guard that
refuses to run where Kopf would pause every replica silently.

Kopf keeps one record per replica in the peering object's status ({identity: {priority, lifetime,
lastseen}}); a replica pauses while a live peer has a higher priority, and *every* replica pauses
while two share the highest one. So each replica's priority is derived from its identity, the pod
name (unique among live pods, and the same after a container restart, so the active replica stays
active): a 62-bit hash, with a collision chance of about n^2 / 2^63. A duplicate (a collision, or
a record someone wrote) and a missing peering object (every replica waits for ever) stop the
operator with one line instead.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("peakpilot.peering")
DEFAULT_LIFETIME = 60  # seconds a replica's record counts as live (Kopf's default)
MIN_LIFETIME = 5  # Kopf refreshes a record 5-10 s before it expires
MAX_LIFETIME = 3600  # a standby never waits more than an hour for a dead replica's record


class PeeringError(Exception):
    """Peering cannot work as configured; the message is one line naming the fix."""


def own_identity(env: Mapping[str, str] = os.environ) -> str:
    """The pod's name (the chart sets POD_NAME from the downward API); outside a pod, host and
    process id, so that two local processes never share one."""
    pod = env.get("POD_NAME", "").strip()
    return pod or f"{socket.gethostname()}/{os.getpid()}"


def priority_of(identity: str) -> int:
    """A stable priority in [1, 2^62] from the identity: the same pod always gets the same one,
    two pods almost never do (Kopf's own default, 0, is below every replica's)."""
    digest = hashlib.sha256(identity.encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 2) + 1


@dataclass(frozen=True)
class Peer:
    identity: str
    priority: int
    live: bool


def peers(status: Mapping[str, Any], now: datetime.datetime) -> list[Peer]:
    """The records in a peering object's status, as Kopf reads them (a record without lifetime
    counts 60 s; one without lastseen counts as just seen)."""
    found = []
    for identity, record in status.items():
        if not isinstance(record, Mapping):
            continue  # not a peer record (Kopf writes nothing else there)
        try:
            lifetime = datetime.timedelta(seconds=int(record.get("lifetime", DEFAULT_LIFETIME)))
            seen = record.get("lastseen")
            lastseen = datetime.datetime.fromisoformat(seen) if seen else now
            priority = int(record.get("priority", 0))
            if lastseen.tzinfo is None:
                lastseen = lastseen.replace(tzinfo=datetime.UTC)
            live = lastseen + lifetime > now
        except (TypeError, ValueError, OverflowError):  # a record Kopf did not write: not a peer
            continue
        found.append(Peer(str(identity), priority, live))
    return found


def duplicates(status: Mapping[str, Any], identity: str, priority: int) -> list[str]:
    """The live peers other than ``identity`` that have ``priority``."""
    now = datetime.datetime.now(datetime.UTC)
    return [
        p.identity
        for p in peers(status, now)
        if p.live and p.identity != identity and p.priority == priority
    ]


@dataclass(frozen=True)
class PeeringObject:
    name: str
    namespace: str | None  # None: the ClusterKopfPeering of a cluster-wide operator

    def __str__(self) -> str:
        if self.namespace is None:
            return f"ClusterKopfPeering {self.name}"
        return f"KopfPeering {self.namespace}/{self.name}"


def objects(name: str, namespaces: Sequence[str]) -> list[PeeringObject]:
    """Where the replicas meet: one ClusterKopfPeering cluster-wide, else one KopfPeering in each
    watched namespace (as Kopf chooses)."""
    if not namespaces:
        return [PeeringObject(name, None)]
    return [PeeringObject(name, ns) for ns in namespaces]


# Reads a peering object's status; None when the object does not exist.
ReadStatus = Callable[[PeeringObject], "Mapping[str, Any] | None"]


def check(read: ReadStatus, where: Sequence[PeeringObject], identity: str, priority: int) -> None:
    """Raise PeeringError when a peering object is missing or a live peer shares our priority."""
    for obj in where:
        status = read(obj)
        if status is None:
            raise PeeringError(
                f"--peering: {obj} does not exist, so every replica would wait for ever; create "
                "it (the chart does, with peering.createObject) or run with --standalone"
            )
        same = duplicates(status, identity, priority)
        if same:
            raise PeeringError(
                f"--peering: {', '.join(same)} in {obj} has this replica's priority {priority} "
                f"(this one is {identity}), and Kopf pauses every replica of equal priority; give "
                "each replica its own POD_NAME (the chart sets it from the pod's name)"
            )


class Guard:
    """Re-checks every ``period`` seconds while the operator runs (two replicas that start at
    once see each other only later); on a problem, logs it and calls ``stop`` (the operator sends
    itself SIGTERM: Kopf stops as on any SIGTERM and leaves the peering object)."""

    def __init__(
        self,
        read: ReadStatus,
        where: Sequence[PeeringObject],
        identity: str,
        priority: int,
        period: float,
        stop: Callable[[], None],
    ) -> None:
        self.read, self.where, self.identity, self.priority = read, where, identity, priority
        self.period, self.stop = period, stop
        self.error: PeeringError | None = None
        self._done = threading.Event()

    def start(self) -> Guard:
        threading.Thread(target=self._run, name="peering guard", daemon=True).start()
        return self

    def close(self) -> None:
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(self.period):
            try:
                check(self.read, self.where, self.identity, self.priority)
            except PeeringError as exc:
                self.error = exc
                log.error(str(exc))
                self.stop()
                return
            except Exception as exc:  # an unreadable object is Kopf's to report; try again
                log.warning(f"peering check failed: {exc}")
