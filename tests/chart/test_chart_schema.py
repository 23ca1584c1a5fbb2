"""values.schema.json is strict and accepts the defaults; Helm rejects bad values clearly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.chart

# Objects whose keys are free-form (Kubernetes objects or label/annotation maps).
FREE_FORM = {
    "resources.requests",
    "resources.limits",
    "affinity",
    "global",
    "kopf-peering",
    "tolerations[]",
    "topologySpreadConstraints[]",
    "operator.extraEnv[]",
    # Kubernetes LabelSelectors (kubernetes-validate checks the rendered NetworkPolicy).
    "networkPolicy.metricsFrom[].podSelector",
    "networkPolicy.metricsFrom[].namespaceSelector",
    "networkPolicy.healthFrom[].podSelector",
    "networkPolicy.healthFrom[].namespaceSelector",
}


def load_schema(chart_dir: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((chart_dir / "values.schema.json").read_text())
    return schema


@pytest.mark.parametrize(
    ("scenario", "fragments"),
    [
        ("bad-replica-type", ["at '/replicaCount'", "got string, want integer"]),
        ("bad-unknown-key", ["additional properties 'replicas' not allowed"]),
        ("bad-namespaced-without-namespaces", ["at '/watch/namespaces'", "minItems"]),
        ("bad-log-format", ["at '/operator/logFormat'"]),
        ("bad-prometheus-url", ["at '/prometheus/url'"]),
        ("bad-security-context-field", ["additional properties 'runAsRoot' not allowed"]),
        ("bad-localhost-seccomp", ["at '/podSecurityContext/seccompProfile'", "localhostProfile"]),
    ],
)
def test_helm_rejects_bad_values_with_a_clear_message(
    installs: dict[str, dict[str, Any]], scenario: str, fragments: list[str]
) -> None:
    result = installs[scenario]
    assert not result["ok"], f"{scenario} was accepted"
    assert "values don't meet the specifications of the schema" in result["error"]
    for fragment in fragments:
        assert fragment in result["error"]


def test_schema_accepts_the_defaults(chart_dir: Path) -> None:
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    jsonschema.Draft7Validator(load_schema(chart_dir)).validate(values)


def test_schema_error_names_the_field_and_type(chart_dir: Path) -> None:
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    values["replicaCount"] = "two"
    errors = list(jsonschema.Draft7Validator(load_schema(chart_dir)).iter_errors(values))
    assert [(list(e.absolute_path), e.message) for e in errors] == [
        (["replicaCount"], "'two' is not of type 'integer'")
    ]


def test_schema_is_strict_everywhere_but_free_form_objects(chart_dir: Path) -> None:
    loose: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        strict = node.get("additionalProperties") in (False, {"type": "string"})
        if node.get("type") == "object" and path not in FREE_FORM and not strict:
            loose.append(path or "<root>")
        for key, child in node.get("properties", {}).items():
            walk(child, f"{path}.{key}" if path else key)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(load_schema(chart_dir), "")
    assert loose == []
