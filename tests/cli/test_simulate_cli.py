"""`peakpilot simulate` end to end, through the real entry point, on the World Cup example.

The trace is the five-hour semi-final slice in examples/traces (1998-07-07 17:00-22:00 UTC,
300 one-minute counts), so a replay is 1,200 steps of 15 s: quick. Errors exit 2 with a message
that names the option and the fix, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "worldcup-knockout.yaml"
TRACE = ROOT / "examples" / "traces" / "worldcup98-semifinal-1998-07-07.csv"
SUMMARY_KEYS = {
    "billed_replica_seconds",
    "oracle_replica_seconds",
    "cost_ratio",
    "unserved_pct",
    "overload_minutes",
    "scale_changes",
}


def simulate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # a wide terminal (the table is the same in any)
    return subprocess.run(
        [sys.executable, "-m", "peakpilot.cli", "simulate", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net against a hang, not a performance assertion
        check=False,
        env=env,
    )


def simulate_json(*args: str | Path) -> dict[str, Any]:
    done = simulate(POLICY, "--trace", f"web={TRACE}", "-o", "json", *args)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_json_is_the_design_section_5_object() -> None:
    data = simulate_json()
    assert data["step_seconds"] == 15
    assert set(data["controllers"]) == {"peakpilot", "hpa"}
    for controller in data["controllers"].values():
        assert set(controller) == {"workloads", "summary"}
        assert set(controller["summary"]) == SUMMARY_KEYS
        (name,) = controller["workloads"]
        assert name == "web"
        web = controller["workloads"]["web"]
        assert {"t", "demand_rps", "desired", "ready", "summary"} <= set(web)
        assert set(web["summary"]) == SUMMARY_KEYS
        assert web["t"][:3] == [0, 15, 30] and len(web["t"]) == 1200
        assert len(web["demand_rps"]) == len(web["desired"]) == len(web["ready"]) == 1200
    assert data["start_time"] == "1998-07-07T17:00:00Z"
    assert data["policy"] == "worldcup-knockout"
    assert [e["name"] for e in data["events"]] == ["sf-bra-ned"]  # the semi-final in the slice
    # The first minute is 19,668 requests: 327.8 rps.
    assert data["controllers"]["hpa"]["workloads"]["web"]["demand_rps"][0] == pytest.approx(327.8)


def test_yaml_from_stdin_is_the_same_object() -> None:
    window = ("--from", "1998-07-07T18:00:00Z", "--to", "1998-07-07T19:00:00Z")
    as_json = simulate_json(*window)
    args = ["simulate", "-", "--trace", f"web={TRACE}", "-o", "yaml", *window]
    done = subprocess.run(
        [sys.executable, "-m", "peakpilot.cli", *args],
        cwd=ROOT,
        input=POLICY.read_text(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout) == as_json


def test_table_compares_peakpilot_with_the_hpa() -> None:
    done = simulate(POLICY, "--trace", f"web={TRACE}")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "PeakPilot vs HPA (target 0.7) on worldcup-knockout" in out
    lines = out.splitlines()
    assert lines[1] == "1998-07-07T17:00:00Z to 1998-07-07T22:00:00Z, 1,200 steps of 15s"
    assert lines[2].split() == ["PeakPilot", "HPA"] and lines[3] == "web"
    # Metrics as rows, PeakPilot's figure then the HPA's (the JSON's, rounded).
    data = simulate_json()
    ours, hpa = (data["controllers"][c]["summary"] for c in ("peakpilot", "hpa"))
    rows = {line[:24].strip(): line[24:].split() for line in lines[4:10]}
    assert rows == {
        "replica-hours": [f"{s['billed_replica_seconds'] / 3600:,.1f}" for s in (ours, hpa)],
        "oracle replica-hours": [f"{s['oracle_replica_seconds'] / 3600:,.1f}" for s in (ours, hpa)],
        "cost ratio": [f"{s['cost_ratio']:.3f}" for s in (ours, hpa)],
        "unserved %": [f"{s['unserved_pct']:.4f}" for s in (ours, hpa)],
        "overload minutes": [f"{s['overload_minutes']:,}" for s in (ours, hpa)],
        "scale changes": [f"{s['scale_changes']:,}" for s in (ours, hpa)],
    }
    assert all(len(line) <= 80 for line in lines)  # fits an 80-column terminal, whatever it is
    assert "web: forecast method reactive" in out
    assert "calendar events in the window: sf-bra-ned" in out


def test_options_change_the_replay() -> None:
    data = simulate_json(
        "--step",
        "60s",
        "--from",
        "1998-07-07T18:00:00Z",
        "--to",
        "1998-07-07T20:00:00Z",
        "--baseline-target",
        "0.5",
        "--startup",
        "2m",
        "--metrics-lag",
        "0s",
    )
    assert data["step_seconds"] == 60
    assert data["start_time"] == "1998-07-07T18:00:00Z"
    assert (data["baseline_target"], data["metrics_lag_seconds"]) == (0.5, 0)
    assert len(data["controllers"]["peakpilot"]["workloads"]["web"]["t"]) == 120


def test_plot_writes_a_png(tmp_path: Path) -> None:
    plot = tmp_path / "plots" / "semi.png"
    done = simulate(POLICY, "--trace", f"web={TRACE}", "--plot", plot, "--title", "semi-final")
    assert done.returncode == 0, done.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {plot}" in done.stdout


def _fails(*args: str | Path) -> str:
    done = simulate(POLICY, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return " ".join(done.stderr.split())  # unwrap the console's line breaks


def test_unknown_workload_in_trace_names_the_workloads() -> None:
    err = _fails("--trace", f"api={TRACE}")
    assert "'api=" in err and "the policy has no workload 'api': use one of web" in err
    assert "no trace for workload web: add --trace web=FILE.csv" in err


def test_unreadable_trace_names_the_file() -> None:
    err = _fails("--trace", "web=no/such/trace.csv")
    assert "--trace web=no/such/trace.csv" in err
    assert "cannot read the file: No such file or directory: check the path" in err


def test_a_broken_trace_names_the_row(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("timestamp,requests\n1998-07-07T17:00Z,10\n1998-07-07T17:01Z,lots\n")
    err = _fails("--trace", f"web={broken}")
    assert "row 3, column 2 (count): 'lots' is not a number" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--from", "1998-07-01T00:00:00Z"],
            "--from 1998-07-01T00:00:00Z is outside the trace of web "
            "[1998-07-07T17:00:00Z, 1998-07-07T22:00:00Z): pick a time in it",
        ),
        (
            ["--from", "1998-07-07T20:00:00Z", "--to", "1998-07-07T19:00:00Z"],
            "--to must be after --from",
        ),
        (["--from", "yesterday"], "'yesterday' is not an RFC 3339 time"),
        (["--step", "fast"], "'fast' is not a duration"),
        (["--plot", "out.svg"], "the plot is a PNG: name it FILE.png"),
        (["--title", "semi-final"], "--title: - it titles the plot: add --plot FILE.png"),
        (
            ["--plot", "out/x.png", "--title", "x" * 81],
            "--title: - one line of 1 to 80 printable characters",
        ),
        (["--plot", "out/x.png", "--title", "two\nlines"], "one line of 1 to 80 printable"),
    ],
    ids=[
        "from-outside",
        "to-before-from",
        "bad-time",
        "bad-step",
        "plot-not-png",
        "title-without-plot",
        "title-too-long",
        "title-two-lines",
    ],
)
def test_bad_options_exit_2_with_the_fix(args: list[str], message: str) -> None:
    assert message in _fails("--trace", f"web={TRACE}", *args)
