"""The operator image's build files agree with the project layout and the chart.

No Docker engine runs here, so these read operator/Dockerfile and .dockerignore: the build
context must hold what pyproject.toml builds from, and the image's user, ports and command must
be the ones the chart relies on. They need no Helm, hence no chart marker.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
import yaml
from chartkit import CHART, REPO

DOCKERFILE = REPO / "operator" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for op, args in instructions():
        if op == "FROM":
            result.append([])
        if result:
            result[-1].append((op, args))
    return result


def ignore_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regex (Go filepath.Match, plus ** for any directories)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def in_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for pattern in patterns:
        regex = ignore_regex(pattern.removeprefix("!").rstrip("/"))
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            included = pattern.startswith("!")
    return included


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def test_two_stages_on_python_312_slim_pinned_by_digest() -> None:
    args = dict(instructions())
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.12-slim@sha256:[0-9a-f]{64}", args["ARG"])
    builder, final = stages()
    assert builder[0][1].endswith("AS builder")
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")


def test_final_stage_copies_only_the_venv_and_installs_nothing() -> None:
    _, final = stages()
    copies = [args for op, args in final if op in {"COPY", "ADD"}]
    assert copies == ["--from=builder /opt/peakpilot /opt/peakpilot"]
    for op, args in final:
        if op == "RUN":
            assert not re.search(r"apt-get install|apk add|pip install|gcc|make\b", args), args


def test_runs_as_the_chart_user_with_the_operator_command() -> None:
    _, final = stages()
    args = dict(final)
    assert args["USER"] == "10001:10001"
    assert values()["podSecurityContext"]["runAsUser"] == 10001
    assert json.loads(args["ENTRYPOINT"]) == ["peakpilot"]
    assert json.loads(args["CMD"]) == ["operator", "--all-namespaces"]
    ports = {int(p) for p in args["EXPOSE"].split()}
    assert ports == {values()["metrics"]["port"], values()["liveness"]["port"]}


def test_builder_installs_from_the_lock_without_build_isolation() -> None:
    builder, _ = stages()
    installs = [a for op, a in builder if op == "RUN" for a in a.split("&&") if "pip install" in a]
    assert installs, "the builder installs nothing"
    for command in installs:
        assert "--constraint constraints.txt" in command, command
    assert any("--no-build-isolation" in c and c.rstrip().endswith(" .") for c in installs)
    assert in_context("constraints.txt")


def test_entrypoint_is_the_projects_console_script() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "peakpilot" in project["scripts"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("pyproject.toml", True),
        ("README.md", True),
        ("constraints.txt", True),
        ("operator/peakpilot/cli.py", True),
        ("optimizer/peakplan/__init__.py", True),
        ("operator/peakpilot/__pycache__/cli.cpython-312.pyc", False),
        ("tests/chart/conftest.py", False),
        ("charts/peakpilot/values.yaml", False),
        (".git/HEAD", False),
        (".venv/bin/python", False),
        ("peakpilot.egg-info/PKG-INFO", False),
    ],
)
def test_build_context(path: str, expected: bool) -> None:
    assert in_context(path) is expected


def test_build_context_holds_what_the_wheel_is_built_from() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = [pyproject["project"]["readme"], "pyproject.toml"]
    needed += pyproject["tool"]["setuptools"]["packages"]["find"]["where"]
    copied = " ".join(args for op, args in stages()[0] if op == "COPY")
    for path in needed:
        assert in_context(path), path
        assert path in copied, path
