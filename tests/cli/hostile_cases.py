"""Hostile inputs to the `peakpilot` CLI, one named case each, and a runner for them.

Each case writes its files into a scratch folder and returns the command line. Every one of them
must end with exit 2 and one problem line on stderr that names the field (or option, or setting)
and the fix: no traceback, no hang, no memory blow-up. test_hostile_cases.py runs them; the
runner is also usable by hand (`python tests/cli/hostile_cases.py`) to count outcomes.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 2 << 30  # address space of one CLI run: well above a normal plan's
TIMEOUT = 60.0

POLICY: dict[str, Any] = {
    "apiVersion": "peakpilot.io/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "hostile"},
    "spec": {
        "interval": "15s",
        "workloads": [
            {
                "name": "web",
                "targetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 30,
                "load": {"query": "sum(rate(http_requests_total[1m]))"},
                "capacityPerReplica": 50,
                "cost": {"perReplicaHour": 0.1},
            }
        ],
    },
}
SNAPSHOT: dict[str, Any] = {
    "at": "2026-11-10T15:50:00Z",
    "workloads": {"web": {"load": 300, "currentReplicas": 4}},
}


def trace_rows(n: int = 60, start: int = 1_794_268_800, step: int = 60) -> list[str]:
    """n rows of a minute trace (epoch seconds), 1200 requests each."""
    return [f"{start + i * step},{1200 + (i % 7) * 40}" for i in range(n)]


TRACE = "time,requests\n" + "\n".join(trace_rows()) + "\n"


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], list[str]]  # writes files under the folder, returns the arguments
    field: str  # what the error line must name
    env: dict[str, str] = field(default_factory=dict)  # extra environment variables
    stdin: bytes | None = None  # what the CLI reads for `-`


def _policy(change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(POLICY)
    if change is not None:
        change(doc)
    return doc


def _workload(doc: dict[str, Any]) -> dict[str, Any]:
    workload: dict[str, Any] = doc["spec"]["workloads"][0]
    return workload


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _plan_files(folder: Path, policy: str | bytes, snapshot: str | bytes, suffix: str) -> list[str]:
    p = _write(folder, f"policy{suffix}", policy)
    s = _write(folder, "snapshot.yaml", snapshot)
    return ["plan", str(p), "--metrics", str(s)]


def plan_policy_text(text: str | bytes, suffix: str = ".yaml") -> Callable[[Path], list[str]]:
    return lambda d: _plan_files(d, text, yaml.safe_dump(SNAPSHOT), suffix)


def plan_policy(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], list[str]]:
    return plan_policy_text(yaml.safe_dump(_policy(change), sort_keys=False))


def plan_snapshot_text(text: str | bytes, suffix: str = ".yaml") -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        p = _write(d, "policy.yaml", yaml.safe_dump(POLICY, sort_keys=False))
        s = _write(d, f"snapshot{suffix}", text)
        return ["plan", str(p), "--metrics", str(s)]

    return build


def plan_snapshot(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], list[str]]:
    doc = copy.deepcopy(SNAPSHOT)
    change(doc)
    return plan_snapshot_text(yaml.safe_dump(doc, sort_keys=False))


def plan_args(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: [
        *_plan_files(d, yaml.safe_dump(POLICY), yaml.safe_dump(SNAPSHOT), ".yaml")[:2],
        *extra,
    ]


def stdin_policy() -> Callable[[Path], list[str]]:
    """`plan -` with the snapshot: the policy comes from the case's stdin."""
    return lambda d: ["plan", "-", "--metrics", str(_write(d, "s.yaml", yaml.safe_dump(SNAPSHOT)))]


def plan_with(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: [
        *_plan_files(d, yaml.safe_dump(POLICY), yaml.safe_dump(SNAPSHOT), ".yaml"),
        *extra,
    ]


def simulate(
    trace: str | bytes = TRACE,
    *extra: str,
    policy: dict[str, Any] | None = None,
) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        p = _write(d, "policy.yaml", yaml.safe_dump(policy or POLICY, sort_keys=False))
        t = _write(d, "trace.csv", trace)
        return ["simulate", str(p), "--trace", f"web={t}", *extra]

    return build


def simulate_path(trace: str, *extra: str) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        p = _write(d, "policy.yaml", yaml.safe_dump(POLICY, sort_keys=False))
        return ["simulate", str(p), "--trace", f"web={trace}", *extra]

    return build


def plot_under_file(d: Path) -> list[str]:
    args = simulate()(d)
    _write(d, "afile", "not a folder")
    return [*args, "--plot", str(d / "afile" / "out.png")]


def operator(*extra: str) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        config = _write(d, "kubeconfig", KUBECONFIG)
        return ["operator", "-n", "default", "--kubeconfig", str(config), *extra]

    return build


def operator_bare(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: ["operator", "-n", "default", *extra]


# A syntactically valid kubeconfig aimed at a closed port: a run that got past the settings
# checks fails to connect, which no case wants.
KUBECONFIG = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
)

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
        for i in range(8)
    ]
    + ["apiVersion: peakpilot.io/v1alpha1", "kind: ScalingPolicy", "spec: *i"]
)
POLICY_YAML = yaml.safe_dump(POLICY, sort_keys=False)
DIGITS = "1" * 5000


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets spec.workloads[0].<path> (dots for nesting)."""

    def change(doc: dict[str, Any]) -> None:
        node = _workload(doc)
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return change


def _spec(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["spec"][key] = value

    return change


def _event(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["spec"]["events"] = [{"name": "peak", "loadMultiplier": 2, **fields}]

    return change


def _snap(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["workloads"]["web"][key] = value

    return change


def _snap_at(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["at"] = value

    return change


def _snap_extra(doc: dict[str, Any]) -> None:
    doc["workloads"]["ghost"] = {"load": 1, "currentReplicas": 1}


def _deep_block(depth: int) -> str:
    lines = [f"{'  ' * i}k{i}:" for i in range(depth)]
    return POLICY_YAML + "metadata:\n" + "\n".join("  " + line for line in lines) + " 1\n"


def _dup_key_yaml() -> str:
    return POLICY_YAML.replace("  interval: 15s\n", "  interval: 15s\n  interval: 1h\n")


def _dup_key_nested() -> str:
    return POLICY_YAML.replace("    maxReplicas: 30\n", "    maxReplicas: 30\n    maxReplicas: 3\n")


def _dup_key_json() -> str:
    text = json.dumps(POLICY)
    return text.replace('"interval": "15s"', '"interval": "15s", "interval": "1h"')


def _days_trace(days: int) -> str:
    return "time,requests\n" + "\n".join(trace_rows(days, step=86400)) + "\n"


CASES: list[Case] = [
    # --- the policy file: decoding, structure, size
    Case("policy-not-utf8", plan_policy_text(POLICY_YAML.encode() + b"# caf\xe9\n"), "UTF-8"),
    Case("policy-utf16", plan_policy_text(POLICY_YAML.encode("utf-16")), "UTF-8"),
    Case("policy-binary", plan_policy_text(bytes(range(256)) * 8), "UTF-8"),
    Case("policy-deep-flow-yaml", plan_policy_text("spec: " + "[" * 5000 + "]" * 5000), "nest"),
    Case("policy-deep-block-yaml", plan_policy_text(_deep_block(300)), "nest"),
    Case("policy-deep-json", plan_policy_text("[" * 100_000 + "]" * 100_000, ".json"), "nest"),
    Case("policy-billion-laughs", plan_policy_text(BILLION_LAUGHS), "alias"),
    Case("policy-duplicate-key", plan_policy_text(_dup_key_yaml()), "interval"),
    Case("policy-duplicate-nested-key", plan_policy_text(_dup_key_nested()), "maxReplicas"),
    Case("policy-duplicate-key-json", plan_policy_text(_dup_key_json(), ".json"), "interval"),
    Case("policy-too-large", plan_policy_text(POLICY_YAML + "#" * (5 << 20) + "\n"), "MiB"),
    Case("policy-dev-zero", lambda d: ["plan", "/dev/zero", "--metrics", "/dev/null"], "MiB"),
    Case(
        "policy-5000-digit-int", plan_policy_text(POLICY_YAML.replace("30", DIGITS)), "maxReplicas"
    ),
    Case(
        "policy-5000-digit-int-json",
        plan_policy_text(json.dumps(POLICY).replace("30", DIGITS), ".json"),
        "maxReplicas",
    ),
    Case(
        "policy-5000-digit-float",
        plan_policy(_set("capacityPerReplica", f"{DIGITS}.5")),
        "capacityPerReplica",
    ),
    Case("policy-empty", plan_policy_text(""), "document"),
    Case("policy-two-documents", plan_policy_text(POLICY_YAML + "---\n" + POLICY_YAML), "--name"),
    Case(
        "policy-no-scalingpolicy",
        plan_policy_text("kind: Namespace\n---\nkind: Service\n"),
        "ScalingPolicy",
    ),
    Case(
        "policy-name-not-found",
        plan_with("--name", "x" * 5000),
        "--name",
    ),
    Case("policy-stdin-empty", stdin_policy(), "document", stdin=b""),
    Case(
        "policy-stdin-too-large",
        stdin_policy(),
        "MiB",
        stdin=(POLICY_YAML + "#" * (5 << 20) + "\n").encode(),
    ),
    Case(
        "policy-stdin-not-utf8", stdin_policy(), "UTF-8", stdin=POLICY_YAML.encode() + b"# \xe9\n"
    ),
    Case("policy-stdin-billion-laughs", stdin_policy(), "alias", stdin=BILLION_LAUGHS.encode()),
    Case(
        "policy-python-tag",
        plan_policy_text("spec: !!python/object/apply:os.system [true]\n"),
        "YAML",
    ),
    Case("policy-list", plan_policy_text("- a\n- b\n"), "ScalingPolicy"),
    Case(
        "policy-json-nan",
        plan_policy_text(json.dumps(POLICY).replace("50", "NaN"), ".json"),
        "capacityPerReplica",
    ),
    # --- numbers the core cannot handle
    Case("policy-quantity-1e400", plan_policy(_spec("budget", {"maxCpu": "1e400"})), "maxCpu"),
    Case("policy-cpu-1e400", plan_policy(_set("resources.cpu", "1e400")), "cpu"),
    Case("policy-memory-huge", plan_policy(_set("resources.memory", "99999999999Ei")), "memory"),
    Case("policy-price-1e308", plan_policy(_set("cost.perReplicaHour", 1e308)), "perReplicaHour"),
    Case(
        "policy-capacity-1e308",
        plan_policy(_set("capacityPerReplica", 1e308)),
        "capacityPerReplica",
    ),
    Case(
        "policy-capacity-tiny",
        plan_policy(_set("capacityPerReplica", 1e-300)),
        "capacityPerReplica",
    ),
    Case(
        "policy-budget-1e308",
        plan_policy(_spec("budget", {"maxCostPerHour": 1e308})),
        "maxCostPerHour",
    ),
    Case(
        "policy-latency-workers",
        plan_policy(
            lambda d: (
                _set("capacityPerReplica", 1e9)(d),
                _set("slo", {"latencyMs": 250, "serviceTimeMs": 100})(d),
            )
        ),
        "workers",
    ),
    Case(
        "policy-latency-1e308",
        plan_policy(_set("slo", {"latencyMs": 1e308, "serviceTimeMs": 100})),
        "latencyMs",
    ),
    Case("policy-interval-0s", plan_policy(_spec("interval", "0s")), "interval"),
    Case(
        "event-floor-huge",
        plan_policy(
            _event(
                start="2026-11-11T00:00:00Z",
                end="2026-11-11T02:00:00Z",
                minReplicas={"web": 10**15},
            )
        ),
        "minReplicas",
    ),
    Case(
        "static-replicas-huge",
        plan_policy(_spec("onMetricFailure", {"action": "Static", "replicas": 10**15})),
        "replicas",
    ),
    Case("policy-startup-huge", plan_policy(_set("startup", "9" * 31 + "d")), "startup"),
    Case(
        "policy-history-huge",
        plan_policy(_spec("forecast", {"history": "9" * 31 + "d"})),
        "history",
    ),
    Case("policy-ttl-huge", plan_policy(_spec("onMetricFailure", {"ttl": "9" * 31 + "d"})), "ttl"),
    # --- times: 1-9999 and the API server's timestamp range
    Case(
        "event-year-0",
        plan_policy(_event(start="0000-01-01T00:00:00Z", end="0000-01-02T00:00:00Z")),
        "start",
    ),
    Case(
        "event-before-year-1-in-utc",
        plan_policy(_event(start="0001-01-01T00:30:00+01:00", end="0001-01-02T00:00:00+01:00")),
        "start",
    ),
    Case(
        "event-after-9999-in-utc",
        plan_policy(_event(start="9999-12-31T20:00:00-05:00", end="9999-12-31T23:30:00-05:00")),
        "end",
    ),
    Case(
        "event-local-time-before-year-1",
        plan_policy(
            _event(start="0001-01-01T00:30:00", end="0001-01-02T00:00:00", timeZone="Asia/Shanghai")
        ),
        "start",
    ),
    Case(
        "event-unquoted-year-0",
        plan_policy_text(
            POLICY_YAML
            + "  events:\n  - {name: p, loadMultiplier: 2, start: 0000-01-01T00:00:00Z, "
            "end: '2026-01-02T00:00:00Z'}\n"
        ),
        "start",
    ),
    # --- the snapshot
    Case("snapshot-not-utf8", plan_snapshot_text(b"at: \xff\n"), "UTF-8"),
    Case("snapshot-deep-json", plan_snapshot_text("[" * 100_000 + "]" * 100_000, ".json"), "nest"),
    Case("snapshot-5000-digit-int", plan_snapshot(_snap("currentReplicas", 0)), "currentReplicas"),
    Case("snapshot-load-string", plan_snapshot(_snap("load", "700")), "load"),
    Case("snapshot-load-1e308", plan_snapshot(_snap("load", 1e308)), "load"),
    Case("snapshot-extra-workload", plan_snapshot(_snap_extra), "ghost"),
    Case("snapshot-at-year-0", plan_snapshot(_snap_at("0000-01-01T00:00:00Z")), "at"),
    Case("snapshot-at-before-year-1", plan_snapshot(_snap_at("0001-01-01T00:00:00+01:00")), "at"),
    Case("snapshot-at-after-9999", plan_snapshot(_snap_at("9999-12-31T23:59:59-01:00")), "at"),
    Case(
        "snapshot-current-huge", plan_snapshot(_snap("currentReplicas", 10**20)), "currentReplicas"
    ),
    Case("snapshot-history-time-huge", plan_snapshot(_snap("history", [[1e300, 5]])), "history"),
    Case(
        "snapshot-history-time-negative", plan_snapshot(_snap("history", [[-1e300, 5]])), "history"
    ),
    Case("snapshot-history-load-1e308", plan_snapshot(_snap("history", [[1e9, 1e308]])), "history"),
    Case(
        "snapshot-duplicate-key",
        plan_snapshot_text(yaml.safe_dump(SNAPSHOT) + "workloads: {}\n"),
        "workloads",
    ),
    Case(
        "snapshot-too-large", plan_snapshot_text(yaml.safe_dump(SNAPSHOT) + "#" * (40 << 20)), "MiB"
    ),
    # --- plan options
    Case(
        "current-superscript",
        plan_args("--prometheus", "http://127.0.0.1:9", "--current", "web=²"),
        "--current",
    ),
    Case(
        "current-huge",
        plan_args("--prometheus", "http://127.0.0.1:9", "--current", "web=" + "9" * 30),
        "--current",
    ),
    Case("prometheus-not-a-url", plan_args("--prometheus", "not a url"), "--prometheus"),
    Case("prometheus-ftp", plan_args("--prometheus", "ftp://prometheus:9090"), "--prometheus"),
    Case("at-before-year-1", plan_with("--at", "0001-01-01T00:00:00+01:00"), "--at"),
    Case("at-after-9999", plan_with("--at", "9999-12-31T23:59:59-01:00"), "--at"),
    Case("time-limit-nan", plan_with("--time-limit", "nan"), "--time-limit"),
    Case("time-limit-inf", plan_with("--time-limit", "inf"), "--time-limit"),
    # --- traces and simulate options
    Case("trace-not-utf8", simulate(TRACE.encode() + b"\xff\xfe,1\n"), "UTF-8"),
    Case(
        "trace-cell-over-128k",
        simulate(TRACE + "1794272400," + "9" * (200 << 10) + "\n"),
        "128 KiB",
    ),
    Case(
        "trace-epoch-ms",
        simulate("time,requests\n" + "\n".join(trace_rows(start=1_794_268_800_000, step=60_000))),
        "milliseconds",
    ),
    Case("trace-one-epoch-ms-row", simulate(TRACE + "1794272400000,5\n"), "milliseconds"),
    Case("trace-huge-gap", simulate(TRACE + "90000000000,5\n"), "interval"),
    Case("trace-time-1e300", simulate(TRACE + "1e300,5\n"), "time"),
    Case("trace-count-1e308", simulate(TRACE + "1794272400,1e308\n"), "count"),
    Case("trace-dev-zero", simulate_path("/dev/zero"), "MiB"),
    Case("trace-too-many-steps", simulate(_days_trace(40 * 365)), "steps"),
    Case("step-1ms", simulate(TRACE, "--step", "1ms"), "--step"),
    Case("step-half-second", simulate(TRACE, "--step", "0.5s"), "--step"),
    Case("step-huge", simulate(TRACE, "--step", "9" * 400 + "s"), "--step"),
    Case("startup-huge", simulate(TRACE, "--startup", "9" * 400 + "s"), "--startup"),
    Case("metrics-lag-huge", simulate(TRACE, "--metrics-lag", "9" * 400 + "s"), "--metrics-lag"),
    Case("baseline-target-nan", simulate(TRACE, "--baseline-target", "nan"), "--baseline-target"),
    Case("from-before-year-1", simulate(TRACE, "--from", "0001-01-01T00:00:00+01:00"), "--from"),
    Case("plot-under-a-file", plot_under_file, "--plot"),
    Case(
        "policy-interval-1ms", simulate(TRACE, policy=_policy(_spec("interval", "1ms"))), "interval"
    ),
    # --- operator start-up settings
    Case(
        "operator-metrics-port-abc",
        operator(),
        "PEAKPILOT_METRICS_PORT",
        {"PEAKPILOT_METRICS_PORT": "abc"},
    ),
    Case(
        "operator-liveness-port-range",
        operator(),
        "PEAKPILOT_LIVENESS_PORT",
        {"PEAKPILOT_LIVENESS_PORT": "99999"},
    ),
    Case("operator-metrics-port-flag", operator("--metrics-port", "70000"), "--metrics-port"),
    Case(
        "operator-time-limit-0",
        operator(),
        "PEAKPILOT_SOLVER_TIME_LIMIT",
        {"PEAKPILOT_SOLVER_TIME_LIMIT": "0"},
    ),
    Case(
        "operator-time-limit-abc",
        operator(),
        "PEAKPILOT_SOLVER_TIME_LIMIT",
        {"PEAKPILOT_SOLVER_TIME_LIMIT": "abc"},
    ),
    Case(
        "operator-time-limit-nan",
        operator(),
        "PEAKPILOT_SOLVER_TIME_LIMIT",
        {"PEAKPILOT_SOLVER_TIME_LIMIT": "nan"},
    ),
    Case("operator-time-limit-flag", operator("--time-limit", "-1"), "--time-limit"),
    Case("operator-log-format-xml", operator("--log-format", "xml"), "--log-format"),
    Case(
        "operator-log-format-env",
        operator(),
        "PEAKPILOT_LOG_FORMAT",
        {"PEAKPILOT_LOG_FORMAT": "xml"},
    ),
    Case("operator-log-level", operator(), "PEAKPILOT_LOG_LEVEL", {"PEAKPILOT_LOG_LEVEL": "LOUD"}),
    Case("operator-solver-env", operator(), "PEAKPILOT_SOLVER", {"PEAKPILOT_SOLVER": "gurobi"}),
    Case(
        "operator-kubeconfig-missing",
        operator_bare("--kubeconfig", "/nonexistent/kubeconfig"),
        "--kubeconfig",
    ),
    Case(
        "operator-kubeconfig-garbage",
        lambda d: operator_bare("--kubeconfig", str(_write(d, "kc", "{[")))(d),
        "--kubeconfig",
    ),
    Case("operator-prometheus-url", operator("--prometheus-url", "not a url"), "--prometheus-url"),
    Case(
        "operator-prometheus-urls-env",
        operator(),
        "PEAKPILOT_PROMETHEUS_URLS",
        {"PEAKPILOT_PROMETHEUS_URLS": "http://prometheus:9090,ftp://x"},
    ),
    Case(
        "operator-peering-lifetime-abc",
        operator("--peering", "peakpilot"),
        "PEAKPILOT_PEERING_LIFETIME",
        {"PEAKPILOT_PEERING_LIFETIME": "abc"},
    ),
    Case(  # was refused only once connected, and only with --peering
        "operator-peering-lifetime-short",
        operator(),
        "PEAKPILOT_PEERING_LIFETIME",
        {"PEAKPILOT_PEERING_LIFETIME": "3"},
    ),
    Case("operator-solver-empty", operator(), "PEAKPILOT_SOLVER", {"PEAKPILOT_SOLVER": ""}),
    Case(
        "operator-metrics-port-empty",
        operator(),
        "PEAKPILOT_METRICS_PORT",
        {"PEAKPILOT_METRICS_PORT": ""},
    ),
    Case("operator-log-level-flag", operator("--log-level", "LOUD"), "--log-level"),
    Case(
        "operator-peering-lifetime-flag",
        operator("--peering-lifetime", "4"),
        "--peering-lifetime",
    ),
    Case(  # overflowed Kopf's timedelta
        "operator-peering-lifetime-huge",
        operator("--peering", "peakpilot"),
        "PEAKPILOT_PEERING_LIFETIME",
        {"PEAKPILOT_PEERING_LIFETIME": "99999999999999999999"},
    ),
]
# The 5000-digit snapshot integer is text, not a value yaml.safe_dump can write.
CASES[[c.name for c in CASES].index("snapshot-5000-digit-int")] = Case(
    "snapshot-5000-digit-int",
    plan_snapshot_text(
        yaml.safe_dump(SNAPSHOT).replace("currentReplicas: 4", f"currentReplicas: {DIGITS}")
    ),
    "currentReplicas",
)


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr

    @property
    def hung(self) -> bool:
        return self.code is None

    @property
    def problem_lines(self) -> list[str]:
        """The lines that state a problem: not the `error: invalid input in X:` header."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return [line for line in lines if not line.endswith(":") or not line.startswith("error:")]


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(
    args: list[str],
    env: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
    stdin: bytes | None = None,
) -> Outcome:
    """One CLI run in a subprocess, with the memory limit; `code` None when it timed out."""
    environ = {**os.environ, "COLUMNS": "200", **(env or {})}
    environ.pop("KUBECONFIG", None)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "peakpilot.cli", *args],
            cwd=ROOT,
            capture_output=True,
            input=stdin,
            env=environ,
            timeout=timeout,
            preexec_fn=_limits,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        err = exc.stderr or b""
        return Outcome(None, out.decode(errors="replace"), err.decode(errors="replace"), timeout)
    return Outcome(
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
        time.monotonic() - started,
    )


def clean(case: Case, outcome: Outcome) -> bool:
    """Exit 2, one problem line naming the field, no traceback."""
    lines = outcome.problem_lines
    return (
        outcome.code == 2
        and not outcome.traceback
        and len(lines) == 1
        and case.field.lower() in outcome.stderr.lower()
    )


def main() -> None:
    import tempfile

    counts = {"cases": 0, "clean": 0, "traceback": 0, "hang": 0, "other": 0}
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            outcome = run(case.build(Path(folder)), case.env, stdin=case.stdin)
        counts["cases"] += 1
        if clean(case, outcome):
            kind = "clean"
        elif outcome.hung:
            kind = "hang"
        elif outcome.traceback:
            kind = "traceback"
        else:
            kind = "other"
        counts[kind] += 1
        last = (outcome.stderr.strip().splitlines() or [""])[-1][:150]
        print(f"{kind:9} {case.name:34} exit={outcome.code} {outcome.seconds:5.1f}s  {last}")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
