"""The operator image's build files agree with the project layout and the chart.

No Docker engine runs here, so these read operator/Dockerfile and .dockerignore: the build
context must hold what pyproject.toml builds from, and the image's user, ports and command must
be the ones the chart relies on; the builder's pip install is resolved with pip's dry run (the
package index, nothing installed) to check what the image holds. They need no Helm, hence no
chart marker.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
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


def builder_pip(command: str) -> list[str]:
    """A builder `pip ...` command's arguments (after `pip`), as the shell splits them."""
    words = shlex.split(command)
    return words[words.index("/opt/peakpilot/bin/pip") + 1 :]


def image_python() -> str:
    """The image's Python version, from the base image's tag (python:3.12-slim@...)."""
    match = re.search(r"python:(\d+\.\d+)-slim", dict(instructions())["ARG"])
    assert match
    return match.group(1)


def resolve(args: list[str], tmp_path: Path) -> dict[str, str]:
    """What `pip install ARGS` would install from the repository root into a fresh environment
    of the image's Python (pip --dry-run: resolved against the index, nothing installed):
    name -> version."""
    report = tmp_path / "report.json"
    dry_run = ["--dry-run", "--ignore-installed", "--report", str(report), "--quiet"]
    python = ["--python-version", image_python(), "--only-binary=:all:"]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", *args, *dry_run, *python],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    installs = json.loads(report.read_text())["install"]
    return {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonical(name)] = version.strip()
    return pins


def test_the_image_holds_the_runtime_set_from_the_lock_without_cbc(tmp_path: Path) -> None:
    """The builder's install, resolved without Docker: PuLP with HiGHS, no CBC (cbcbox is the
    `peakpilot[cbc]` extra), every version the lock's; then the build tools are uninstalled, so
    the venv the final stage copies is exactly this set."""
    builder, _ = stages()
    commands = [c.strip() for op, a in builder if op == "RUN" for c in a.split("&&")]
    tools, project, uninstall = (c for c in commands if c.startswith("/opt/peakpilot/bin/pip"))
    project_args = builder_pip(project)
    assert project_args[0] == "install" and project_args[-1] == "."
    runtime = resolve(project_args[1:], tmp_path)
    assert "cbcbox" not in runtime
    assert {"peakpilot", "pulp", "highspy", "kopf", "kubernetes"} <= runtime.keys()
    pins = lock()
    assert {n: v for n, v in runtime.items() if n != "peakpilot" and pins.get(n) != v} == {}
    # The build tools installed first (and what they pull in) are removed after the install,
    # all but what the runtime needs itself.
    tools_args = builder_pip(tools)
    build = resolve(tools_args[1:], tmp_path)
    removed = builder_pip(uninstall)
    assert removed[:2] == ["uninstall", "--yes"]
    assert set(removed[2:]) == build.keys() - runtime.keys()
    # The check is live: with the extra, CBC comes in.
    with_cbc = resolve([*project_args[1:-1], ".[cbc]"], tmp_path)
    assert "cbcbox" in with_cbc
