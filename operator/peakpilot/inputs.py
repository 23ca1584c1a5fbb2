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
    STDIN,
    InputError,
    as_kubectl_would,
    check_values,
    load_document,
    parse_documents,
    read_stdin,
    read_text,
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


def load_policy(path: Path, name: str | None = None) -> api.ScalingPolicy:
    """A manifest file (`-`: standard input), read as `kubectl apply` would send it (nulls
    pruned, 30.0 an integer). In a manifest of several documents (or a `kind: List`), the one
    ScalingPolicy, or the one whose metadata.name is `name`."""
    if str(path) == "-":
        source, text, is_json = STDIN, read_stdin(POLICY_LIMIT, "a policy"), False
    else:
        source = str(path)
        text, is_json = read_text(path, POLICY_LIMIT, "a policy"), path.suffix == ".json"
    document = pick_policy(parse_documents(text, source, is_json), source, name)
    if isinstance(document, dict):
        # `kubectl get sp NAME -o yaml` carries the operator's status (Kopf's bookkeeping too):
        # output, not input; the plan comes from the spec.
        document = {k: v for k, v in document.items() if k != "status"}
    return parse_policy(as_kubectl_would(check_values(document, source)), source)


MAX_NAMES_SHOWN = 5


def _name_of(document: Any) -> str | None:
    meta = document.get("metadata") if isinstance(document, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


def _shown(names: list[str | None]) -> str:
    """A few names for a message, each cut short (they come from the file)."""
    parts = [repr(n[:64]) if n is not None else "(no name)" for n in names[:MAX_NAMES_SHOWN]]
    more = len(names) - MAX_NAMES_SHOWN
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def pick_policy(documents: list[Any], source: str, name: str | None = None) -> Any:
    """The document to read as the policy: the only one, or among several (as `kubectl apply -f`
    takes them, `kind: List` items included) the one ScalingPolicy, or the one named `name`."""
    flat: list[Any] = []
    for doc in documents:
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else None
        flat.extend(items if isinstance(items, list) else [doc])
    if not flat:
        raise InputError(source, ["expected a ScalingPolicy, found no document: give a manifest"])
    # A lone document is the policy whatever its kind: validation then names what is wrong.
    policies = flat if len(flat) == 1 else [d for d in flat if _kind(d) == api.KIND]
    count = f"{len(flat)} document{'s' if len(flat) > 1 else ''}"
    if name is not None:
        named = [d for d in policies if _name_of(d) == name]
        if len(named) == 1:
            return named[0]
        if not named:
            found = _shown([_name_of(d) for d in policies]) if policies else "none"
            raise InputError(
                source,
                [
                    f"no ScalingPolicy named {name[:64]!r} among the {count} (ScalingPolicies: "
                    f"{found}): check --name"
                ],
            )
        raise InputError(
            source, [f"{len(named)} ScalingPolicies named {name[:64]!r}: keep one of them"]
        )
    if len(policies) == 1:
        return policies[0]
    if not policies:
        kinds = sorted({str(_kind(d))[:64] if _kind(d) is not None else "(none)" for d in flat})
        raise InputError(
            source,
            [f"no ScalingPolicy among the {count} (kinds: {', '.join(kinds)}): give one"],
        )
    raise InputError(
        source,
        [
            f"{len(policies)} ScalingPolicies among the {count} "
            f"({_shown([_name_of(d) for d in policies])}): pick one with --name NAME"
        ],
    )


def _kind(document: Any) -> Any:
    return document.get("kind") if isinstance(document, dict) else None


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
    known = set(names)  # a list's scan per name was 0.01 s at 1000 workloads
    problems += [
        f"workloads.{name}: the policy has no workload {name!r}: remove it, or use one of "
        + ", ".join(names)
        for name in snap.workloads
        if name not in known
    ]
    if problems:
        raise InputError(str(path), problems)
    return snap
