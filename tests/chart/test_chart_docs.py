"""The values table and the schema's descriptions are what charts/values_docs.py writes."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from chartkit import CHART, REPO

pytestmark = pytest.mark.chart


def values_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("values_docs", REPO / "charts" / "values_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["values_docs"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_readme_table_and_schema_descriptions_are_generated_from_values_yaml() -> None:
    for path, text in values_docs().generated(CHART).items():
        assert path.read_text() == text, f"{path} is stale: run python charts/values_docs.py"


def test_every_schema_property_has_a_description() -> None:
    docs = values_docs()
    schema = json.loads((CHART / "values.schema.json").read_text())
    undescribed = [p for p, node in docs.schema_properties(schema) if not node.get("description")]
    assert undescribed == []


def test_a_value_without_a_comment_is_refused_by_name(tmp_path: Path) -> None:
    chart = tmp_path / "peakpilot"
    shutil.copytree(CHART, chart)
    schema = json.loads((chart / "values.schema.json").read_text())
    schema["properties"]["newValue"] = {"type": "string"}
    (chart / "values.schema.json").write_text(json.dumps(schema))
    with (chart / "values.yaml").open("a") as values:
        values.write('newValue: ""\n')
    docs = values_docs()
    with pytest.raises(docs.DocsError, match=r"values.yaml: newValue has no '# --' comment"):
        docs.generated(chart)


def test_a_comment_for_no_schema_property_is_refused_with_its_line(tmp_path: Path) -> None:
    chart = tmp_path / "peakpilot"
    shutil.copytree(CHART, chart)
    values = (chart / "values.yaml").read_text() + "# image.tagg -- a typo\n"
    (chart / "values.yaml").write_text(values)
    line = values.count("\n")
    docs = values_docs()
    with pytest.raises(docs.DocsError, match=rf"values.yaml:{line}: image.tagg is documented but"):
        docs.generated(chart)


def test_comments_attach_to_the_key_below_with_their_continuation_lines() -> None:
    docs = values_docs().parse_docs(
        "# a file comment, not a value's\n"
        "\n"
        "# -- The top.\n"
        "top:\n"
        "  # -- First line,\n"
        "  # second line.\n"
        "  child: 1\n"
        "  # top.absent -- Not set here.\n"
        "  # -- Sibling.\n"
        "  sibling: {}\n"
        "  # a plain comment is not a description\n"
        "  plain: 2\n"
        "after: 3\n"
    )
    assert {path: doc.text for path, doc in docs.items()} == {
        "top": "The top.",
        "top.child": "First line, second line.",
        "top.absent": "Not set here.",
        "top.sibling": "Sibling.",
    }


def test_docs_build_and_load_the_charts_default_image(chart_meta: dict[str, Any]) -> None:
    """The chart's default image is the local `peakpilot:<appVersion>` the guides build and load."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())["image"]
    assert (values["repository"], values["tag"], values["pullPolicy"]) == (
        "peakpilot",
        "",
        "IfNotPresent",
    )
    image = f"peakpilot:{chart_meta['appVersion']}"
    guides = [REPO / "README.md", CHART / "README.md", REPO / "docs" / "kind-walkthrough.md"]
    for path in [*guides, REPO / "operator" / "Dockerfile"]:
        text = path.read_text()
        assert f"docker build -f operator/Dockerfile -t {image} ." in text, path
        assert f"kind load docker-image {image}" in text, path
        assert set(re.findall(r"\bpeakpilot:\d[\w.-]*", text)) == {image}, path
    for path in guides:  # nothing to override: the default names the loaded image
        assert "image.repository=peakpilot" not in path.read_text(), path
