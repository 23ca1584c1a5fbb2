"""Hypothesis mutates valid policies, snapshots and traces and feeds them to the real CLI:
whatever it makes, `peakpilot` answers with exit 0, 2 or 3, never a traceback, within a time and
memory bound (hostile_worker.py runs the CLI under an address-space limit).

One long-lived worker process runs every example (a Python start per example would cost more
than the examples); it is restarted after a hang. CI derandomises hypothesis (tests/conftest.py).
"""

from __future__ import annotations

import copy
import json
import os
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile_cases import POLICY, ROOT, SNAPSHOT, trace_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

WORKER = Path(__file__).resolve().parent / "hostile_worker.py"
TIME_LIMIT = 20.0  # seconds one example may take (a hang otherwise); they take ~0.1 s
# More locally when hunting: PEAKPILOT_HOSTILE_EXAMPLES=500 pytest tests/cli/test_hostile_inputs.py
EXAMPLES = int(os.environ.get("PEAKPILOT_HOSTILE_EXAMPLES", "40"))


class Worker:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert json.loads(self._read(proc, 120.0) or "{}").get("ready"), "worker did not start"
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen[str], timeout: float) -> str | None:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        return proc.stdout.readline() if ready else None

    def run(self, args: list[str]) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"args": args}) + "\n")
        self.proc.stdin.flush()
        line = self._read(self.proc, TIME_LIMIT)
        if not line:  # a hang, or the worker died (a crash of native code)
            self.close()
            return {"code": None, "stdout": "", "stderr": "", "seconds": TIME_LIMIT}
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.close()


# Values that have broken parsers and cores before: huge and tiny numbers, numbers as text,
# times at and past the ends of the calendar, durations below a second and past any bound.
HOSTILE_SCALARS = st.one_of(
    st.integers(),
    st.integers(min_value=10**18, max_value=10**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 1e-300, 0.0, -0.0, 30.0, 1e9, 2.0**63]),
    st.booleans(),
    st.none(),
    st.text(max_size=40),
    st.sampled_from(
        [
            "1e400",
            "99999999999Ei",
            "-1",
            "700",
            "1ms",
            "0s",
            "9" * 31 + "d",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "0000-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "²",
            "not a url",
            "Asia/Nowhere",
        ]
    ),
)
HOSTILE = st.recursive(
    HOSTILE_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """`base` with one to three places replaced, deleted or given an unknown key."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(HOSTILE)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(HOSTILE)
        else:
            parent.append(draw(HOSTILE))
    return doc


@st.composite
def serialised(draw: st.DrawFn, doc: Any) -> tuple[str, bytes]:
    """(suffix, bytes): YAML or JSON, sometimes with the text itself damaged."""
    if draw(st.booleans()):
        suffix, text = ".json", json.dumps(doc, default=str)
    else:
        suffix = ".yaml"
        try:
            text = yaml.safe_dump(doc, sort_keys=False)
        except (yaml.YAMLError, OverflowError, ValueError):
            text = json.dumps(doc, default=str)
    data = text.encode()
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        junk = draw(
            st.binary(max_size=8)
            | st.sampled_from([b"\xff", b"[" * 200, b"&a [*a]", b"\x00", b"\n  : :\n", b"!!x "])
        )
        data = data[:at] + junk + data[at:]
    return suffix, data


LATENCY_POLICY = copy.deepcopy(POLICY)
LATENCY_POLICY["spec"]["workloads"][0]["slo"] = {"latencyMs": 250, "serviceTimeMs": 100}
LATENCY_POLICY["spec"]["events"] = [
    {
        "name": "peak",
        "start": "2026-11-10T16:00:00Z",
        "end": "2026-11-10T18:00:00Z",
        "loadMultiplier": 2,
    }
]
SHORT_TRACE = trace_rows(20)


def _ok(answer: dict[str, Any]) -> None:
    assert answer["code"] is not None, f"no answer within {TIME_LIMIT:g}s"
    assert "Traceback" not in answer["stderr"], answer["stderr"][-3000:]
    assert answer["code"] in (0, 2, 3), answer
    if answer["code"] == 2:
        assert "error: invalid input in" in answer["stderr"], answer["stderr"]


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    policy=st.sampled_from([POLICY, LATENCY_POLICY]).flatmap(
        lambda base: mutated(base).flatmap(serialised)
    )
)
def test_mutated_policies(worker: Worker, policy: tuple[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / f"policy{policy[0]}"
        p.write_bytes(policy[1])
        s = Path(folder) / "snapshot.yaml"
        s.write_text(yaml.safe_dump(SNAPSHOT))
        _ok(worker.run(["plan", str(p), "--metrics", str(s), "-o", "json"]))


@SETTINGS
@given(snapshot=mutated(SNAPSHOT).flatmap(serialised))
def test_mutated_snapshots(worker: Worker, snapshot: tuple[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / "policy.yaml"
        p.write_text(yaml.safe_dump(LATENCY_POLICY))
        s = Path(folder) / f"snapshot{snapshot[0]}"
        s.write_bytes(snapshot[1])
        _ok(worker.run(["plan", str(p), "--metrics", str(s), "-o", "json"]))


CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["1e308", "nan", "-5", "1794268800000", "9e10", "1e300", "0001-01-01T00:00:00+01:00"]
    ),
    st.integers().map(str),
    st.floats().map(str),
)


@st.composite
def mutated_trace(draw: st.DrawFn) -> bytes:
    rows = [row.split(",") for row in SHORT_TRACE]
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["cell", "insert", "delete", "swap"]))
        i = draw(st.integers(0, len(rows) - 1))
        if action == "cell":
            rows[i][draw(st.integers(0, 1))] = draw(CELLS)
        elif action == "insert":
            rows.insert(i, [draw(CELLS), draw(CELLS)])
        elif action == "delete" and len(rows) > 1:
            del rows[i]
        else:
            j = draw(st.integers(0, len(rows) - 1))
            rows[i], rows[j] = rows[j], rows[i]
    text = "time,requests\n" + "\n".join(",".join(r) for r in rows) + "\n"
    return text.encode(errors="surrogatepass")


@SETTINGS
@given(trace=mutated_trace(), step=st.sampled_from([None, "1ms", "30s", "1h", "0.5s"]))
def test_mutated_traces(worker: Worker, trace: bytes, step: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / "policy.yaml"
        p.write_text(yaml.safe_dump(POLICY))
        t = Path(folder) / "trace.csv"
        t.write_bytes(trace)
        args = ["simulate", str(p), "--trace", f"web={t}", "-o", "json"]
        _ok(worker.run(args + (["--step", step] if step else [])))
