"""The lock pins every dependency pyproject.toml declares, within pyproject's own ranges.

`make`, CI and the image install with `--constraint constraints.txt`; a dependency missing from
the lock would float to whatever the index holds that day (as highspy 1.16 once did).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]


def locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not an exact pin (name==version)"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        requirements += [Requirement(r) for r in extra]
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    requirements += [Requirement(r) for r in build]
    return [r for r in requirements if canonicalize_name(r.name) != "peakpilot"]


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_every_declared_dependency_is_pinned_within_its_range(requirement: Requirement) -> None:
    pins = locked()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement.name} is not in constraints.txt: run 'make lock'"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"constraints.txt pins {requirement.name}=={pins[name]}, outside pyproject's "
        f"{requirement.specifier}: run 'make lock'"
    )


def test_the_lock_pins_the_installer_and_the_build_backend() -> None:
    assert {"pip", "setuptools", "wheel"} <= set(locked())


def test_make_installs_from_the_lock() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "LOCK  := constraints.txt" in makefile
    assert "--constraint $(LOCK)" in makefile
    assert "--no-build-isolation" in makefile


def test_the_version_is_written_once_and_the_chart_ships_it() -> None:
    import peakpilot

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert peakpilot.__version__ == project["version"]
    chart = (REPO / "charts" / "peakpilot" / "Chart.yaml").read_text()
    assert f'appVersion: "{project["version"]}"' in chart
