"""`peakpilot plan` (and `crd`, `--version`) end to end, through the real entry point.

The tests run `python -m peakpilot.cli` in a subprocess from the repository root, on the shop
example or on copies of it changed in one place, and check the output and the exit code:
0 ok, 2 invalid input (a message naming the field, never a traceback), 3 metrics unavailable.
The last one renders the table in-process, to feed it text no snapshot can produce.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from peakpilot.report import plan_document, print_decision
from peakplan.controller import Decision, Memory, Observation, WorkloadObservation, decide
from peakplan.policy import Policy, WorkloadPolicy

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "shop-promotion.yaml"
SNAPSHOT = ROOT / "examples" / "metrics" / "shop-singles-day.yaml"
DATA = Path(__file__).resolve().parent / "data"
WORKLOADS = ["frontend", "catalog", "cart", "checkout", "payments"]


def peakpilot(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peakpilot.cli", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net against a hang, not a performance assertion
        check=False,
    )


def plan_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    done = peakpilot("plan", *args, "-o", "json")
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def edited(source: Path, tmp_path: Path, change: Callable[[Any], None]) -> Path:
    """A copy of a YAML file with one change applied to its parsed document."""
    document = yaml.safe_load(source.read_text())
    change(document)
    path = tmp_path / source.name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_table_shows_every_workload_the_event_and_the_binding_budget() -> None:
    done = peakpilot("plan", POLICY, "--metrics", SNAPSHOT)
    assert done.returncode == 0, done.stderr
    assert "PeakPilot plan for shop-peak at 2026-11-10T15:50:00Z" in done.stdout
    rows = {line.split()[0] for line in done.stdout.splitlines()[2:] if line[:1].isalpha()}
    assert set(WORKLOADS) <= rows
    assert all(len(line) <= 100 for line in done.stdout.splitlines())  # reasons under the rows
    assert "singles-day" in done.stdout  # the event shaping the plan
    assert "binding: cost limit 30.00/h" in done.stdout
    assert "raising it by 3.00/h" in done.stdout  # what relaxing the budget would buy
    assert "solver: highs" in done.stdout


def test_json_has_the_documented_keys() -> None:
    code, data = plan_json(POLICY, "--metrics", SNAPSHOT)
    assert code == 0
    assert (data["policy"], data["at"], data["metricsOk"]) == (
        "shop-peak",
        "2026-11-10T15:50:00Z",
        True,
    )
    assert [w["name"] for w in data["workloads"]] == WORKLOADS
    for w in data["workloads"]:
        assert {"name", "current", "desired", "load", "utilization", "costPerHour", "reason"} <= (
            w.keys()
        )
        assert isinstance(w["desired"], int) and w["reason"]
        assert w["events"] == ["singles-day"]
    by_name = {w["name"]: w for w in data["workloads"]}
    # load is what was observed, demand what was sized for (here the event's 4x multiple): the
    # same meanings as in status.lastPlan, which the same function writes.
    assert (by_name["checkout"]["load"], by_name["checkout"]["demand"]) == (180.0, 720.0)
    assert by_name["checkout"]["forecast"]["basis"] == "event singles-day"
    assert data["leftOut"] == []
    assert by_name["checkout"]["desired"] == 40  # the event's floor
    assert by_name["checkout"]["limitedBy"] == "floor"
    assert data["totals"]["costPerHour"] == pytest.approx(
        sum(w["costPerHour"] for w in data["workloads"])
    )
    assert data["totals"]["costPerHour"] <= 30 + 1e-6
    (binding,) = data["binding"]
    assert binding["constraint"] == "cost"
    assert binding["limit"] == 30
    assert {"by", "newLimit", "gainPerHour", "replicas"} <= binding["relax"].keys()
    assert binding["relax"]["newLimit"] == pytest.approx(33)
    solver = data["solver"]
    assert {"status", "seconds", "gap", "usedGreedy"} <= solver.keys()
    assert solver["name"] == "highs"
    assert isinstance(solver["usedGreedy"], bool)


def test_yaml_output_parses_to_the_same_plan_as_json() -> None:
    done = peakpilot("plan", POLICY, "--metrics", SNAPSHOT, "-o", "yaml")
    assert done.returncode == 0, done.stderr
    as_yaml = yaml.safe_load(done.stdout)
    _, as_json = plan_json(POLICY, "--metrics", SNAPSHOT)
    assert as_yaml["workloads"] == as_json["workloads"]
    assert as_yaml["binding"] == as_json["binding"]


def test_cbc_solver_works() -> None:
    code, data = plan_json(POLICY, "--metrics", SNAPSHOT, "--solver", "cbc")
    assert code == 0
    assert data["solver"]["name"] == "cbc"
    assert data["totals"]["costPerHour"] <= 30 + 1e-6
    assert {w["name"]: w["desired"] for w in data["workloads"]}["checkout"] == 40


def test_at_moves_the_plan_in_time() -> None:
    # 20:00 in Shanghai is four hours before the event: no floor, no multiplier.
    code, data = plan_json(POLICY, "--metrics", SNAPSHOT, "--at", "2026-11-10T20:00:00+08:00")
    assert code == 0
    assert data["at"] == "2026-11-10T12:00:00Z"
    checkout = {w["name"]: w for w in data["workloads"]}["checkout"]
    assert checkout["events"] == []
    assert checkout["demand"] == checkout["load"] == 180
    assert checkout["desired"] < 40


def test_null_load_exits_3_with_the_plan_and_no_scale_down() -> None:
    # catalog's load is null; with it, the budget would take catalog from 24 down to 21.
    snapshot = DATA / "shop-catalog-missing.yaml"
    done = peakpilot("plan", POLICY, "--metrics", snapshot, "-o", "json")
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "metrics unavailable for catalog" in done.stderr
    data = json.loads(done.stdout)
    assert data["metricsOk"] is False
    catalog = {w["name"]: w for w in data["workloads"]}["catalog"]
    assert (catalog["load"], catalog["source"]) == (None, "missing")
    assert catalog["desired"] >= catalog["current"] == 24
    # Nothing was sized: null, never "utilisation 0, needs 0"; the note says why.
    assert [catalog[k] for k in ("demand", "needed", "utilization", "outsideSlo")] == [None] * 4
    assert catalog["note"] == "load unavailable (null in the snapshot); keeping current replicas"
    assert "load needs" not in catalog["reason"]
    table = peakpilot("plan", POLICY, "--metrics", snapshot)
    assert table.returncode == 3
    (row,) = [line for line in table.stdout.splitlines() if line.startswith("catalog ")]
    assert row.split() == ["catalog", "24", "=", "24", "unavailable", "-", "-", "2.88"]
    assert "  load unavailable: null in the snapshot" in table.stdout.splitlines()


def test_missing_load_above_max_replicas_keeps_current(tmp_path: Path) -> None:
    # frontend runs 250 replicas, above its maxReplicas 200, and its load is unavailable: the
    # operator's rule (fail closed) is the CLI's, and the CLI says which rule it applied.
    snapshot = yaml.safe_load(SNAPSHOT.read_text())
    snapshot["workloads"]["frontend"] = {"load": None, "currentReplicas": 250}
    path = tmp_path / "snapshot.yaml"
    path.write_text(yaml.safe_dump(snapshot))
    done = peakpilot("plan", POLICY, "--metrics", path, "-o", "json")
    assert done.returncode == 3, done.stderr
    assert "no scale-down on missing data, even above maxReplicas" in done.stderr
    frontend = {w["name"]: w for w in json.loads(done.stdout)["workloads"]}["frontend"]
    assert (frontend["current"], frontend["desired"]) == (250, 250)
    assert "no scale-down on missing data, even above maxReplicas" in frontend["reason"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_unreachable_prometheus_exits_3_and_keeps_current_replicas() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code, data = plan_json(POLICY, "--prometheus", url, "--current", "checkout=9")
    assert code == 3
    assert data["metricsOk"] is False
    by_name = {w["name"]: w for w in data["workloads"]}
    assert by_name["checkout"]["current"] == 9
    assert by_name["frontend"]["current"] == 3  # default: minReplicas
    assert all(w["desired"] >= w["current"] for w in data["workloads"])
    assert "cannot reach Prometheus" in by_name["checkout"]["note"]


def _set(path: str, value: Any) -> Callable[[Any], None]:
    """Set a dotted path (list indexes as numbers) in a parsed YAML document."""

    def change(document: Any) -> None:
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value

    return change


def _drop_payments(snapshot: Any) -> None:
    del snapshot["workloads"]["payments"]


INVALID_POLICIES: dict[str, tuple[Callable[[Any], None], list[str]]] = {
    "min-above-max": (
        _set("spec.workloads.0.minReplicas", 500),
        ["spec.workloads[0].minReplicas", "minReplicas must be <= maxReplicas"],
    ),
    "unknown-field": (
        _set("spec.workloads.1.capacity", 10),
        ["spec.workloads[1].capacity", "unknown field"],
    ),
    "snake-case-field": (
        _set("spec.budget.max_cpu", "10"),
        ["spec.budget.max_cpu", "unknown field"],
    ),
    "infinite-number": (
        _set("spec.workloads.2.capacityPerReplica", float("inf")),
        ["spec.workloads[2].capacityPerReplica", "not a finite number"],
    ),
    "event-ends-before-start": (
        _set("spec.events.0.end", "2026-11-10T23:00:00"),
        ["spec.events[0].end", "end must be after start"],
    ),
    "bad-duration": (
        _set("spec.workloads.0.startup", "soon"),
        ["spec.workloads[0].startup"],
    ),
}


@pytest.mark.parametrize(
    ("change", "expected"), INVALID_POLICIES.values(), ids=INVALID_POLICIES.keys()
)
def test_invalid_policy_exits_2_naming_the_field(
    tmp_path: Path, change: Callable[[Any], None], expected: list[str]
) -> None:
    policy = edited(POLICY, tmp_path, change)
    done = peakpilot("plan", policy, "--metrics", SNAPSHOT)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"invalid input in {policy}" in done.stderr
    for text in expected:
        assert text in done.stderr
    assert done.stdout == ""


INVALID_INVOCATIONS: dict[str, tuple[list[str], list[str]]] = {
    "bad-at": (
        ["--metrics", str(SNAPSHOT), "--at", "next tuesday"],
        ["invalid input in --at", "'next tuesday' is not an RFC 3339 time"],
    ),
    "both-sources": (
        ["--metrics", str(SNAPSHOT), "--prometheus", "http://127.0.0.1:9"],
        ["give exactly one of --metrics FILE or --prometheus URL"],
    ),
    "no-source": ([], ["give exactly one of --metrics FILE or --prometheus URL"]),
    "bad-current": (
        ["--prometheus", "http://127.0.0.1:9", "--current", "checkuot=3"],
        ["invalid input in --current", "'checkuot=3': use NAME=REPLICAS"],
    ),
    "missing-snapshot-file": (
        ["--metrics", str(DATA / "no-such-file.yaml")],
        ["no-such-file.yaml", "cannot read the file"],
    ),
    "broken-yaml-snapshot": (
        ["--metrics", str(DATA / "broken.yaml")],
        # The { left open on line 3 is found where line 4's key ends.
        ["broken.yaml", "not valid YAML", "at line 4, column 10"],
    ),
}


@pytest.mark.parametrize(
    ("args", "expected"), INVALID_INVOCATIONS.values(), ids=INVALID_INVOCATIONS.keys()
)
def test_invalid_invocation_exits_2_naming_the_problem(
    args: list[str], expected: list[str]
) -> None:
    done = peakpilot("plan", POLICY, *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    for text in expected:
        assert text in done.stderr


INVALID_SNAPSHOTS: dict[str, tuple[Callable[[Any], None], list[str]]] = {
    "missing-workload": (
        _drop_payments,
        ["workloads.payments: not in the snapshot", "add its load and currentReplicas"],
    ),
    "negative-load": (
        _set("workloads.cart.load", -5),
        ["workloads.cart.load", "greater than or equal to 0"],
    ),
    "nan-load": (_set("workloads.cart.load", float("nan")), ["workloads.cart.load", "finite"]),
    "missing-current": (
        _set("workloads.cart", {"load": 5}),
        ["workloads.cart.currentReplicas", "required field is missing"],
    ),
    "unknown-field": (
        _set("workloads.cart.replicas", 3),
        ["workloads.cart.replicas", "unknown field"],
    ),
}


@pytest.mark.parametrize(
    ("change", "expected"), INVALID_SNAPSHOTS.values(), ids=INVALID_SNAPSHOTS.keys()
)
def test_invalid_snapshot_exits_2_naming_the_field(
    tmp_path: Path, change: Callable[[Any], None], expected: list[str]
) -> None:
    snapshot = edited(SNAPSHOT, tmp_path, change)
    done = peakpilot("plan", POLICY, "--metrics", snapshot)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"invalid input in {snapshot}" in done.stderr
    for text in expected:
        assert text in done.stderr


def _table(decision: Decision, width: int = 80) -> list[str]:
    out = StringIO()
    print_decision(decision, "shop", Console(file=out, width=width))
    return out.getvalue().splitlines()


def test_an_unavailable_load_is_said_so_in_a_few_lines_never_as_zero() -> None:
    long_error = "Prometheus at http://prom:9090 answered HTTP 400: " + "parse error " * 40
    policy = Policy((WorkloadPolicy("web", 1, 10, capacity=10), WorkloadPolicy("api", 1, 10, 10)))
    seen = {"web": WorkloadObservation(3, None, long_error), "api": WorkloadObservation(2, 10.0)}
    decision = decide(policy, Observation(0, seen), Memory())
    lines = _table(decision)
    web = lines.index(next(line for line in lines if line.startswith("web ")))
    api = lines.index(next(line for line in lines if line.startswith("api ")))
    assert lines[web].split() == ["web", "3", "=", "3", "unavailable", "-", "-", "0.00"]
    under = lines[web + 1 : api]
    assert not any("load needs" in line or "0%" in line for line in under)
    # At most three lines (80 columns), however long the error; the last points to the full text.
    first = under.index(next(line for line in under if "HTTP 400" in line))
    error = under[first:]
    assert error[0].startswith("  load unavailable: Prometheus at http://prom:9090 answered HTTP")
    assert len(error) == 3 and all(line.startswith("    ") for line in error[1:])
    assert " ".join(" ".join(error).split()).count("parse error") > 8  # more than one line holds
    assert error[-1].endswith("… (full text: -o json)")
    assert all(len(line) <= 80 for line in lines)
    assert long_error.strip() in plan_document(decision)["workloads"][0]["note"]


def test_a_held_load_shows_what_was_held() -> None:
    policy = Policy((WorkloadPolicy("web", 1, 10, capacity=10),))
    memory = Memory()
    decide(policy, Observation(0, {"web": WorkloadObservation(3, 24.0)}), memory)
    seen = {"web": WorkloadObservation(3, None, "no series")}
    lines = _table(decide(policy, Observation(30, seen), memory))
    assert lines[2].split()[4:6] == ["unavailable", "24.0"]  # sized for the held value
    assert "  load unavailable (holding the value from 30s ago): no series" in lines


def test_the_solver_line_says_when_no_solve_was_needed() -> None:
    policy = Policy((WorkloadPolicy("web", 1, 10, capacity=10),))
    decision = decide(policy, Observation(0, {"web": WorkloadObservation(3, 24.0)}), Memory())
    assert decision.plan.solver.solver == "none"
    assert "solver: no solve needed (no shared limit binds)" in _table(decision)
    done = peakpilot("plan", POLICY, "--metrics", SNAPSHOT)
    assert "solver: highs optimal, gap" in done.stdout  # the shop's budget binds: solved
    assert " ms" not in done.stdout  # no wall-clock time: the same plan prints the same bytes


def plan_input(*args: str | Path, stdin: str | bytes = "") -> subprocess.CompletedProcess[str]:
    data = stdin.decode("latin-1") if isinstance(stdin, bytes) else stdin
    return subprocess.run(
        [sys.executable, "-m", "peakpilot.cli", "plan", *map(str, args)],
        cwd=ROOT,
        input=data,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_policy_from_stdin_plans_as_the_file_does() -> None:
    # As `kubectl get sp -o yaml` gives it: server metadata, and a status (Kopf's part too).
    got = yaml.safe_load(POLICY.read_text())
    got["metadata"] |= {"uid": "0a1b", "resourceVersion": "42", "generation": 3}
    got["status"] = {"kopf": {"progress": {}}, "summary": {"workloads": 5}, "conditions": []}
    from_file = peakpilot("plan", POLICY, "--metrics", SNAPSHOT, "-o", "json")
    from_stdin = plan_input("-", "--metrics", SNAPSHOT, "-o", "json", stdin=yaml.safe_dump(got))
    assert from_stdin.returncode == from_file.returncode == 0, from_stdin.stderr
    plans = [json.loads(done.stdout) for done in (from_file, from_stdin)]
    for plan in plans:
        del plan["solver"]["seconds"]  # the one figure that differs between runs
    assert plans[0] == plans[1]


def _manifest(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


SHOP = yaml.safe_load(POLICY.read_text())
OTHER = {**SHOP, "metadata": {"name": "other", "namespace": "shop"}}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


def test_a_multi_document_manifest_gives_its_scaling_policy() -> None:
    done = plan_input("-", "--metrics", SNAPSHOT, stdin=_manifest(NAMESPACE, SHOP))
    assert done.returncode == 0, done.stderr
    assert "PeakPilot plan for shop-peak" in done.stdout
    listed = {"apiVersion": "v1", "kind": "List", "items": [NAMESPACE, SHOP, OTHER]}
    done = plan_input("-", "--metrics", SNAPSHOT, "--name", "other", stdin=_manifest(listed))
    assert done.returncode == 0, done.stderr
    assert "PeakPilot plan for other" in done.stdout


MANIFEST_ERRORS = {
    "two-policies": (
        [NAMESPACE, SHOP, OTHER],
        [],
        "2 ScalingPolicies among the 3 documents ('shop-peak', 'other'): pick one with --name NAME",
    ),
    "no-policy": (
        [NAMESPACE, {"kind": "Service"}],
        [],
        "no ScalingPolicy among the 2 documents (kinds: Namespace, Service): give one",
    ),
    "name-not-found": (
        [NAMESPACE, SHOP, OTHER],
        ["--name", "nope"],
        "no ScalingPolicy named 'nope' among the 3 documents (ScalingPolicies: 'shop-peak', "
        "'other'): check --name",
    ),
    "name-twice": (
        [SHOP, SHOP],
        ["--name", "shop-peak"],
        "2 ScalingPolicies named 'shop-peak': keep one of them",
    ),
}


@pytest.mark.parametrize(
    ("docs", "extra", "line"), MANIFEST_ERRORS.values(), ids=MANIFEST_ERRORS.keys()
)
def test_an_ambiguous_or_missing_policy_is_one_line(
    tmp_path: Path, docs: list[dict[str, Any]], extra: list[str], line: str
) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(_manifest(*docs))
    done = plan_input(path, "--metrics", SNAPSHOT, *extra)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: invalid input in {path}:", f"  - {line}"]


def test_crd_check_passes_on_the_repository() -> None:
    done = peakpilot("crd", "--check")
    assert done.returncode == 0, done.stderr


def crd_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # -P: the folder is not on sys.path (a fake operator/peakpilot/ there would shadow).
        [sys.executable, "-P", "-m", "peakpilot.cli", "crd", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_crd_prints_the_yaml_and_writes_nothing(tmp_path: Path) -> None:
    done = crd_in(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "crds" / "scalingpolicies.peakpilot.io.yaml").read_text()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--write", "--check"])
def test_crd_write_or_check_outside_the_repository_refuses_in_one_line(
    tmp_path: Path, option: str
) -> None:
    done = crd_in(tmp_path, option)
    assert done.returncode == 2
    assert done.stderr.splitlines()[1:] == [
        f"  - {tmp_path} is not inside the PeakPilot repository (no pyproject.toml and "
        "operator/peakpilot/api.py here or above): run it in a clone, or `peakpilot crd > FILE` "
        "for the YAML"
    ]
    assert list(tmp_path.iterdir()) == []


def test_crd_write_updates_the_repository_from_a_subfolder_and_check_agrees(
    tmp_path: Path,
) -> None:
    (tmp_path / "operator" / "peakpilot").mkdir(parents=True)
    (tmp_path / "operator" / "peakpilot" / "api.py").write_text("")
    (tmp_path / "pyproject.toml").write_text("")
    assert crd_in(tmp_path, "--check").returncode == 1  # no copies yet
    done = crd_in(tmp_path / "operator", "--write")
    assert done.returncode == 0, done.stderr
    expected = (ROOT / "crds" / "scalingpolicies.peakpilot.io.yaml").read_text()
    for rel in ("crds", "charts/peakpilot/crds"):
        assert (tmp_path / rel / "scalingpolicies.peakpilot.io.yaml").read_text() == expected
    assert crd_in(tmp_path / "operator", "--check").returncode == 0
    assert not (tmp_path / "operator" / "crds").exists()


def test_version() -> None:
    done = peakpilot("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"peakpilot {version('peakpilot')}"


def test_table_prints_names_reasons_and_notes_literally() -> None:
    # A Prometheus error quotes the query, whose [1m] is console markup syntax; so is [/x].
    error = 'no series for sum(rate(http_requests_total{app="web"}[1m])) [/x]'
    policy = Policy((WorkloadPolicy("web", 1, 10, capacity=10),))
    seen = {"web": WorkloadObservation(3, None, error)}
    decision = decide(policy, Observation(0, seen), Memory())
    out = StringIO()
    print_decision(decision, "[bold]shop[/bold]", Console(file=out, width=400))
    text = out.getvalue()
    assert error in " ".join(text.split())  # wrapped at spaces to 80 columns, never cut
    assert "PeakPilot plan for [bold]shop[/bold]" in text


def test_prometheus_auth_from_the_policy_needs_the_cluster_its_secret_is_in(tmp_path: Path) -> None:
    # `plan --prometheus` observes as the operator does: the policy's bearer token comes from its
    # Secret. Without a cluster to read it from, the loads are missing (exit 3) and it says why.
    def with_auth(doc: Any) -> None:
        token = {"name": "prom-token", "key": "token"}
        doc["spec"]["prometheus"] = {
            "url": "http://unused:9090",
            "auth": {"bearerTokenSecret": token},
        }

    policy = edited(POLICY, tmp_path, with_auth)
    url = f"http://127.0.0.1:{_closed_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "peakpilot.cli", "plan", str(policy), "--prometheus", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KUBECONFIG": str(tmp_path / "none")},
    )
    assert done.returncode == 3, done.stderr
    assert "Secret" in done.stderr and "prom-token" in done.stderr and "--kubeconfig" in done.stderr


def test_a_one_shot_command_collects_less_often_while_it_runs_and_restores_the_collector() -> None:
    import gc

    from peakpilot.cli import ONE_SHOT_GC_THRESHOLD, _one_shot

    seen: list[int] = []

    @_one_shot
    def command(fail: bool) -> None:
        seen.append(gc.get_threshold()[0])
        if fail:
            raise ValueError("a command that fails")

    before = gc.get_threshold()
    command(False)
    with pytest.raises(ValueError, match="fails"):
        command(True)
    assert seen == [ONE_SHOT_GC_THRESHOLD, ONE_SHOT_GC_THRESHOLD]
    assert gc.get_threshold() == before


def test_the_entry_point_skips_the_interpreters_last_collection_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    from peakpilot import cli

    registered: list[object] = []
    monkeypatch.setattr(cli.atexit, "register", registered.append)
    cli._no_last_collection.cache_clear()
    try:
        cli._no_last_collection()
        cli._no_last_collection()  # a runner calling main() again
    finally:
        cli._no_last_collection.cache_clear()
    assert registered == [gc.freeze]
