"""Every command sample in README.md and docs/ is what the command prints today.

The samples are written by docs/generate.py (`make docs`); this test runs the same commands and
fails on any difference. The JSON examples in docs/cli.md are excerpts, so
for them every key they show must exist, at the same place, in the real output.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while they are built
    spec.loader.exec_module(module)
    return module


GEN = _generator()
SAMPLES = [s for doc in GEN.DOCS for s in GEN.samples(doc)]


def test_the_documents_hold_the_samples_the_readme_promises() -> None:
    commands = {(s.doc.name, s.argv[1]) for s in SAMPLES}
    assert ("README.md", "plan") in commands and ("README.md", "simulate") in commands


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{s.doc.name}:{s.argv[1]}")
def test_sample_is_what_the_command_prints(sample: Any) -> None:
    missing = sample.inputs_missing()
    if missing:
        pytest.skip(f"inputs outside the repository are missing: {missing}")
    assert GEN.run(sample) == sample.output, "run `make docs`"


def _json_examples(doc: Path) -> list[dict[str, Any]]:
    blocks = re.findall(r"^```json\n(.*?)^```$", doc.read_text(encoding="utf-8"), re.M | re.S)
    return [json.loads(b) for b in blocks]


def _missing_keys(shown: Any, real: Any, path: str = "") -> list[str]:
    """Keys of `shown` (an excerpt) that `real` does not have at the same place."""
    if isinstance(shown, dict) and isinstance(real, dict):
        out = []
        for key, value in shown.items():
            if key == "...":  # the excerpt's "and so on"
                continue
            if key not in real:
                out.append(f"{path}.{key}")
            else:
                out += _missing_keys(value, real[key], f"{path}.{key}")
        return out
    if isinstance(shown, list) and isinstance(real, list) and shown and real:
        return _missing_keys(shown[0], real[0], f"{path}[0]")
    return []


def _peakpilot(*args: str) -> Any:
    exe = Path(sys.executable).with_name("peakpilot")
    done = subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_json_examples_in_the_cli_reference_show_real_keys() -> None:
    plan_doc, simulate_doc = _json_examples(ROOT / "docs" / "cli.md")[:2]
    plan = _peakpilot(
        "plan",
        "examples/shop-promotion.yaml",
        "--metrics",
        "examples/metrics/shop-singles-day.yaml",
        "-o",
        "json",
    )
    simulate = _peakpilot(
        "simulate",
        "examples/worldcup-knockout.yaml",
        "--trace",
        "web=examples/traces/worldcup98-semifinal-1998-07-07.csv",
        "-o",
        "json",
    )
    assert _missing_keys(plan_doc, plan) == []
    assert _missing_keys(simulate_doc, simulate) == []
    # The plan document is documented whole (docs/cli.md, "The plan document"): no real key is
    # left out of its example.
    assert _missing_keys(plan, plan_doc) == []


def test_the_key_check_can_fail() -> None:
    assert _missing_keys({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == [".a.c"]
    assert _missing_keys({"w": [{"x": 1}]}, {"w": [{"y": 1}]}) == [".w[0].x"]


def _demo_commands() -> list[list[str]]:
    """The peakpilot commands of the Makefile's demo target, as words, variables filled in."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo:.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    text = recipe.group(1).replace("\\\n", " ")
    text = text.replace("$(DEMO_VENV)/bin/peakpilot", "peakpilot")
    text = text.replace("$(WORLDCUP)", "../shared/traces/worldcup98_1min.csv")
    commands = []
    for part in re.split(r"[;\n]", text):
        words = shlex.split(part.strip().lstrip("@"))
        if words[:1] == ["peakpilot"]:
            commands.append(words)
    return commands


def test_the_readme_shows_the_commands_make_demo_runs() -> None:
    shown = [s.argv[1:] for s in SAMPLES if s.doc.name == "README.md"]
    demo = [words[1:] for words in _demo_commands()]
    assert len(demo) == 3  # the plan, the full replay and the semi-final slice
    assert [c for c in demo if c[0] == "simulate"] == [c for c in shown if c[0] == "simulate"]
    assert demo[0] in shown
