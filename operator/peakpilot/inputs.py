"""Reading a policy manifest and a recorded metrics snapshot, with errors that name the field."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from peakpilot import api


class InputError(Exception):
    """Invalid user input; `lines` each name a field and the fix."""

    def __init__(self, source: str, lines: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(lines))
        self.source = source
        self.lines = lines


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    try:
        if path.suffix == ".json":
            document: Any = json.loads(text)
        else:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
            if len(docs) != 1:
                raise InputError(str(path), [f"expected one document, found {len(docs)}"])
            document = docs[0]
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise InputError(str(path), [f"not valid JSON at {where}: {exc.msg}"]) from exc
    except yaml.YAMLError as exc:
        raise InputError(str(path), [f"not valid YAML: {_yaml_problem(exc)}"]) from exc
    bad = list(_non_finite(document, ""))
    if bad:
        raise InputError(
            str(path), [f"{where}: {value} is not a finite number" for where, value in bad]
        )
    return document


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: what is wrong and where (PyYAML's own text spans several lines)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


def _non_finite(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(path, value) of each .inf or .nan: YAML (and Python's JSON) accept them, the API does not,
    and the decision core would reject them later with a traceback instead of a field name."""
    if isinstance(value, float) and not math.isfinite(value):
        yield where or "(top level)", repr(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _non_finite(item, f"{where}[{i}]")


def parse_policy(document: Any, source: str = "policy") -> api.ScalingPolicy:
    if not isinstance(document, dict):
        raise InputError(source, ["expected a ScalingPolicy object (apiVersion, kind, spec)"])
    try:
        return api.ScalingPolicy.model_validate(document)
    except ValidationError as exc:
        raise InputError(source, api.describe_errors(exc)) from exc


def load_policy(path: Path) -> api.ScalingPolicy:
    return parse_policy(_read_document(path), str(path))


class _SnapshotModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class WorkloadSample(_SnapshotModel):
    load: float | None = Field(default=None, ge=0, description="Requests/s; null = unavailable.")
    current_replicas: int = Field(ge=0, description="Replicas running now.")
    history: list[tuple[float | datetime, float]] | None = Field(
        default=None, description="Earlier (time, load) samples, oldest first."
    )


class Snapshot(_SnapshotModel):
    at: datetime = Field(description="When the snapshot was taken (RFC 3339).")
    workloads: dict[str, WorkloadSample] = Field(description="Per workload name.")

    def epoch(self) -> float:
        at = self.at if self.at.tzinfo else self.at.replace(tzinfo=UTC)
        return at.timestamp()


def load_snapshot(path: Path, policy: api.ScalingPolicy) -> Snapshot:
    document = _read_document(path)
    try:
        snap = Snapshot.model_validate(document)
    except ValidationError as exc:
        raise InputError(str(path), api.describe_errors(exc)) from exc
    missing = [w.name for w in policy.spec.workloads if w.name not in snap.workloads]
    if missing:
        raise InputError(
            str(path),
            [
                f"workloads.{name}: not in the snapshot: add its load and currentReplicas"
                for name in missing
            ],
        )
    return snap
