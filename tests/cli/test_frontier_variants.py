"""`bench/frontier.py --variant`: a policy variant replayed beside the defaults, on a corpus of
one small synthetic trace (the real corpus is not needed), and a wrong variant refused before
any replay, with the policy's own message."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

FRONTIER = Path(__file__).resolve().parents[2] / "bench" / "frontier.py"


def corpus(tmp_path: Path) -> Path:
    """Three hours of a load with a surge, one sample a minute."""
    lines = ["timestamp,requests"]
    for minute in range(180):
        rate = 600 + 300 * math.sin(minute / 20) + (900 if 90 <= minute < 100 else 0)
        lines.append(f"2024-01-01T{minute // 60:02d}:{minute % 60:02d}Z,{rate:.0f}")
    (tmp_path / "small.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    index = [{"name": "small", "file": "small.csv", "interval_seconds": 60}]
    (tmp_path / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return tmp_path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FRONTIER), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_variant_is_replayed_beside_the_defaults(tmp_path: Path) -> None:
    variant = 'eager={"behavior": {"tolerance": 0, "changeCost": "0s"}}'
    done = run("--corpus", str(corpus(tmp_path)), "--no-shared", "--json", "--variant", variant)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["traces"]["small"]
    defaults, eager = row["peakpilot"], row["ablation"]["eager"]
    # Every change made and no idle hold: more scale changes on the same trace, scored the same way.
    assert eager["scale_changes"] > defaults["scale_changes"]
    assert set(eager) == set(defaults)
    # The interpolated ratio is R without the grid's step: never below it.
    assert defaults["Rc"] >= defaults["R"] * (1 - 1e-12)
    table = run("--corpus", str(tmp_path), "--no-shared", "--variant", variant)
    assert table.returncode == 0, table.stderr
    assert "| defaults |" in table.stdout and "| eager |" in table.stdout


def test_a_wrong_variant_is_refused_before_any_replay(tmp_path: Path) -> None:
    done = run("--corpus", str(corpus(tmp_path)), "--variant", 'q={"forecast": {"quantil": 0.9}}')
    assert done.returncode != 0
    assert "--variant q: spec.forecast.quantil: unknown field: did you mean quantile?" in (
        done.stderr
    )
    assert done.stdout == ""
    for text in ("nojson", "x={", "x=[1]"):
        refused = run("--corpus", str(tmp_path), "--variant", text)
        assert refused.returncode != 0 and refused.stderr.startswith("--variant")
