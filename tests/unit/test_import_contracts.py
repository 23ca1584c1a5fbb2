"""The import contracts in pyproject.toml cover the modules that exist, not the ones that did."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
FACADES = {"peakplan", "peakplan.replay"}


def _contract(name_starts: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["name"].startswith(name_starts)]
    return contract


def _modules(package: str) -> set[str]:
    base = ROOT / "optimizer"
    found = set()
    for path in (base / package).rglob("*.py"):
        parts = path.relative_to(base).with_suffix("").parts
        found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_the_shell_is_forbidden_every_core_module_behind_a_facade() -> None:
    contract = _contract("The shell uses the core through its facades")
    assert set(contract["forbidden_modules"]) == _modules("peakplan") - FACADES
