"""Reading the load traces `peakpilot simulate` replays: `--trace NAME=FILE` pairs and CSV files.

Parsing is the core's (`peakplan.trace`); this module only opens files and turns every problem
into an `InputError` that names the option and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from peakpilot.documents import TRACE_LIMIT, InputError, read_text
from peakpilot.units import MAX_LOAD
from peakplan.replay import Trace, parse_trace


def trace_files(pairs: Sequence[str], names: Sequence[str]) -> dict[str, Path]:
    """NAME=FILE pairs, one per workload of the policy."""
    known = ", ".join(names)
    problems: list[str] = []
    files: dict[str, Path] = {}
    for pair in pairs:
        name, sep, file = pair.partition("=")
        if not sep or not name or not file:
            problems.append(
                f"{pair!r}: use NAME=FILE, with NAME a workload of the policy ({known})"
            )
        elif name not in names:
            problems.append(f"{pair!r}: the policy has no workload {name!r}: use one of {known}")
        elif name in files:
            problems.append(f"{pair!r}: a second trace for {name}: give one per workload")
        else:
            files[name] = Path(file)
    for name in names:
        if name not in files and not any(p.partition("=")[0] == name for p in pairs):
            problems.append(f"no trace for workload {name}: add --trace {name}=FILE.csv")
    if problems:
        raise InputError("--trace", problems)
    return files


def load_trace(name: str, path: Path) -> Trace:
    """The trace in a CSV file (time, count per interval); errors name the row and column."""
    where = f"--trace {name}={path}"
    text = read_text(path, TRACE_LIMIT, "a trace", where)
    try:
        trace = parse_trace(text)
    except ValueError as exc:
        raise InputError(where, [f"{exc}: fix the CSV (time, count per interval)"]) from exc
    if trace.peak_rate > MAX_LOAD:
        peak = max(trace.counts)
        raise InputError(
            where,
            [
                f"a count of {peak:g} in {trace.interval:g} s is {trace.peak_rate:g} requests/s: "
                f"at most {MAX_LOAD:g}; the second column is requests per interval"
            ],
        )
    return trace
