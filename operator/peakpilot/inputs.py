"""Reading a policy manifest and a recorded metrics snapshot, with errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from peakpilot import api
from peakpilot.documents import (
    POLICY_LIMIT,
    SNAPSHOT_LIMIT,
    InputError,
    as_kubectl_would,
    load_document,
)
from peakpilot.times import check_time
from peakpilot.units import MAX_LOAD

__all__ = ["InputError", "Snapshot", "WorkloadSample", "load_policy", "load_snapshot"]


def parse_policy(document: Any, source: str = "policy") -> api.ScalingPolicy:
    if not isinstance(document, dict):
        raise InputError(source, ["expected a ScalingPolicy object (apiVersion, kind, spec)"])
    try:
        return api.ScalingPolicy.model_validate(document)
    except ValidationError as exc:
        raise InputError(source, api.describe_errors(exc)) from exc


def load_policy(path: Path) -> api.ScalingPolicy:
    """A manifest file, read as `kubectl apply` would send it (nulls pruned, 30.0 an integer)."""
    document = load_document(path, POLICY_LIMIT, "a policy")
    return parse_policy(as_kubectl_would(document), str(path))


class _SnapshotModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


MAX_REPLICAS = 2**31 - 1  # /scale replicas is an int32


class WorkloadSample(_SnapshotModel):
    # strict: "700" is a string, not a load (JSON and YAML numbers are never quoted).
    load: float | None = Field(
        default=None, ge=0, le=MAX_LOAD, strict=True, description="Requests/s; null = unavailable."
    )
    current_replicas: int = Field(
        ge=0, le=MAX_REPLICAS, strict=True, description="Replicas running now."
    )
    history: list[tuple[float | datetime, Annotated[float, Field(ge=0, le=MAX_LOAD)]]] | None = (
        Field(default=None, description="Earlier (time, load) samples, oldest first.")
    )

    @field_validator("history")
    @classmethod
    def _history_times(
        cls, value: list[tuple[float | datetime, float]] | None
    ) -> list[tuple[float | datetime, float]] | None:
        for i, (moment, _) in enumerate(value or []):
            check_time(moment, f"[{i}][0]")
        return value


class Snapshot(_SnapshotModel):
    at: datetime = Field(description="When the snapshot was taken (RFC 3339).")
    workloads: dict[str, WorkloadSample] = Field(description="Per workload name.")

    @field_validator("at")
    @classmethod
    def _in_range(cls, value: datetime) -> datetime:
        check_time(value)
        return value

    def epoch(self) -> float:
        at = self.at if self.at.tzinfo else self.at.replace(tzinfo=UTC)
        return at.timestamp()


def load_snapshot(path: Path, policy: api.ScalingPolicy) -> Snapshot:
    document = as_kubectl_would(load_document(path, SNAPSHOT_LIMIT, "a snapshot"), False)
    try:
        snap = Snapshot.model_validate(document)
    except ValidationError as exc:
        raise InputError(str(path), api.describe_errors(exc)) from exc
    names = [w.name for w in policy.spec.workloads]
    problems = [
        f"workloads.{name}: not in the snapshot: add its load and currentReplicas"
        for name in names
        if name not in snap.workloads
    ]
    problems += [
        f"workloads.{name}: the policy has no workload {name!r}: remove it, or use one of "
        + ", ".join(names)
        for name in snap.workloads
        if name not in names
    ]
    if problems:
        raise InputError(str(path), problems)
    return snap
