"""The `peakpilot` command: plan, simulate, crd, operator."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from peakpilot import __version__
from peakpilot.inputs import InputError

app = typer.Typer(
    name="peakpilot",
    help="Joint, budget-aware autoscaling for Kubernetes workloads, ahead of known peaks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_METRICS = 3


class Solver(StrEnum):
    highs = "highs"
    cbc = "cbc"


def _console() -> Console:
    """A console that keeps tables readable when piped (rich would default to 80 columns)."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=160)
    return console


def _version(value: bool) -> None:
    if value:
        typer.echo(f"peakpilot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """PeakPilot: plan, simulate, generate the CRD, or run the operator."""


@app.command()
def crd(
    root: Annotated[Path, typer.Option(help="Repository root to write into.")] = Path("."),
    check: Annotated[
        bool, typer.Option("--check", help="Only check the committed files are up to date.")
    ] = False,
) -> None:
    """Write the ScalingPolicy CRD (crds/ and the Helm chart) from the API models."""
    from peakpilot.crd import stale_crds, write_crds

    if check:
        stale = stale_crds(root)
        for path in stale:
            typer.echo(f"{path} is out of date: run `peakpilot crd` (or `make crd`)", err=True)
        raise typer.Exit(1 if stale else 0)
    for path in write_crds(root):
        typer.echo(f"wrote {path}")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def _fail(exc: InputError) -> NoReturn:
    err = Console(stderr=True)
    # soft_wrap: one line per problem, never broken at the console width (people grep these).
    err.print(
        f"[red]error:[/] invalid input in {escape(exc.source)}:", highlight=False, soft_wrap=True
    )
    for line in exc.lines:
        err.print(f"  - {line}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_INVALID)


def _parse_time(text: str, option: str) -> float:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        _fail(
            InputError(
                option, [f"{text!r} is not an RFC 3339 time, e.g. 2026-11-10T23:40:00+08:00"]
            )
        )
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _parse_currents(pairs: list[str], names: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in names or not value.isdigit():
            _fail(
                InputError(
                    "--current",
                    [
                        f"{pair!r}: use NAME=REPLICAS with a workload of the policy "
                        f"({', '.join(names)})"
                    ],
                )
            )
        out[name] = int(value)
    return out


def _emit(data: dict[str, object], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False, width=100))


@app.command()
def plan(
    policy_file: Annotated[
        Path, typer.Argument(metavar="POLICY.yaml", help="A ScalingPolicy manifest.")
    ],
    metrics: Annotated[
        Path | None,
        typer.Option(
            "--metrics",
            metavar="FILE",
            help="A recorded snapshot (JSON or YAML) of load and replicas.",
        ),
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus", metavar="URL", help="Read the load queries live from this Prometheus."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="Plan as of this time (RFC 3339); default: the snapshot's time or now.",
        ),
    ] = None,
    current: Annotated[
        list[str] | None,
        typer.Option(
            "--current",
            metavar="NAME=N",
            help="Current replicas with --prometheus (default minReplicas).",
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table, json or yaml.")
    ] = OutputFormat.table,
    solver: Annotated[Solver, typer.Option(help="MILP solver.")] = Solver.highs,
    time_limit: Annotated[float, typer.Option(help="Solver time limit, seconds.", min=0.01)] = 3.0,
) -> None:
    """What PeakPilot would do now: the joint plan for a policy's workloads, and what binds.

    Exit codes: 0 ok, 2 invalid input, 3 metrics unavailable (the safe plan is still printed).
    """
    from peakpilot.inputs import load_policy, load_snapshot
    from peakpilot.report import decision_dict, print_decision
    from peakpilot.translate import to_policy
    from peakplan.controller import Memory, Observation, WorkloadObservation, decide
    from peakplan.planner import SolveOptions

    if (metrics is None) == (prometheus is None):
        _fail(InputError("arguments", ["give exactly one of --metrics FILE or --prometheus URL"]))
    try:
        manifest = load_policy(policy_file)
    except InputError as exc:
        _fail(exc)
    core = to_policy(manifest.spec)
    names = [w.name for w in manifest.spec.workloads]
    seen: dict[str, WorkloadObservation] = {}
    if metrics is not None:
        try:
            snap = load_snapshot(metrics, manifest)
        except InputError as exc:
            _fail(exc)
        when = _parse_time(at, "--at") if at else snap.epoch()
        for name in names:
            sample = snap.workloads[name]
            error = None if sample.load is not None else "null in the snapshot"
            seen[name] = WorkloadObservation(sample.current_replicas, sample.load, error)
    else:
        assert prometheus is not None
        from peakpilot.prometheus import MetricError, PrometheusSettings, PrometheusSource

        when = _parse_time(at, "--at") if at else time.time()
        currents = _parse_currents(current or [], names)
        source = PrometheusSource(PrometheusSettings(prometheus))
        try:
            for spec in manifest.spec.workloads:
                replicas = currents.get(spec.name, spec.min_replicas)
                try:
                    seen[spec.name] = WorkloadObservation(
                        replicas, source.instant(spec.load.query, when)
                    )
                except MetricError as exc:
                    seen[spec.name] = WorkloadObservation(replicas, None, str(exc))
        finally:
            source.close()

    options = SolveOptions(solver=solver.value, time_limit=time_limit)
    decision = decide(core, Observation(when, seen), Memory(), options, applies=False)
    if output is OutputFormat.table:
        console = _console()
        print_decision(decision, manifest.metadata.name, console)
    else:
        _emit(decision_dict(decision, manifest.metadata.name), output)
    if not decision.metrics_ok:
        missing = [i.name for i in decision.inputs if i.source != "observed"]
        Console(stderr=True).print(
            f"[yellow]metrics unavailable for {', '.join(missing)}: "
            "no scale-down planned for them[/]",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_METRICS)


@app.command("operator")
def operator_command(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", metavar="NS", help="Watch this namespace (repeatable)."),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace (cluster-wide).")
    ] = False,
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            "--kubeconfig", metavar="FILE", help="Default: in-cluster, then ~/.kube/config."
        ),
    ] = None,
    peering: Annotated[
        str | None,
        typer.Option(
            "--peering",
            metavar="NAME",
            help="Kopf peering object: one active replica, others stand by.",
        ),
    ] = None,
    standalone: Annotated[
        bool, typer.Option("--standalone", help="No peering (a single replica); the default.")
    ] = False,
    priority: Annotated[
        int | None,
        typer.Option(help="Peering priority (default: random, so exactly one peer is active)."),
    ] = None,
    liveness_port: Annotated[
        int | None,
        typer.Option(help="Liveness endpoint port (env PEAKPILOT_LIVENESS_PORT, default 8080)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="/metrics port (env PEAKPILOT_METRICS_PORT, default 9100); 0 disables."),
    ] = None,
    solver: Annotated[
        Solver | None, typer.Option(help="MILP solver (env PEAKPILOT_SOLVER, default highs).")
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option(
            help="Solver time limit, seconds (env PEAKPILOT_SOLVER_TIME_LIMIT, default 3)."
        ),
    ] = None,
    log_format: Annotated[
        str | None, typer.Option(help="json or plain (env PEAKPILOT_LOG_FORMAT, default json).")
    ] = None,
) -> None:
    """Run the operator: reconcile every ScalingPolicy at its interval."""
    from peakpilot.operator import OperatorSettings, run

    if not namespace and not all_namespaces:
        _fail(InputError("arguments", ["give --all-namespaces or at least one --namespace NS"]))
    if namespace and all_namespaces:
        _fail(InputError("arguments", ["give either --all-namespaces or --namespace, not both"]))
    if peering and standalone:
        _fail(InputError("arguments", ["--peering and --standalone exclude each other"]))
    settings = OperatorSettings.from_env(
        namespaces=tuple(namespace or ()),
        all_namespaces=all_namespaces,
        kubeconfig=kubeconfig,
        peering=peering,
        priority=priority,
        liveness_port=liveness_port,
        metrics_port=metrics_port,
        solver=solver.value if solver else None,
        time_limit=time_limit,
        log_format=log_format,
    )
    run(settings)


def main() -> None:
    app(prog_name="peakpilot")  # also under `python -m peakpilot.cli`


if __name__ == "__main__":
    main()
