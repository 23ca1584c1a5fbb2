"""The `peakpilot` command: plan, simulate, crd, operator."""

from __future__ import annotations

import atexit
import functools
import gc
import json
import math
import os
import re
import sys
import time
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, NoReturn, cast

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from peakpilot.inputs import InputError
from peakpilot.settings import ENV

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from peakpilot.kube import Kube
    from peakpilot.settings import OperatorSettings
    from peakplan import Policy
    from peakplan.replay import Replay, ReplaySettings, Trace

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
MAX_TIME_LIMIT = 3600.0  # seconds a solve may take
MIN_STEP = 1.0  # seconds: the operator never reconciles more often either
MAX_TITLE = 80  # characters of --title: one line of the plot's title with the window after it
MAX_REPLAY_STEPS = 2_000_000  # 347 days of 15 s steps; a hang or a memory blow-up past it


class Solver(StrEnum):
    highs = "highs"
    cbc = "cbc"


def _require_solver(name: str, option: str = "--solver") -> None:
    """Exit 2 up front when the chosen solver is not installed (CBC is an optional extra)."""
    from peakplan import solver_missing

    problem = solver_missing(name)
    if problem:
        _fail(InputError(option, [problem]))


class _Stdout:
    """sys.stdout (looked up at each write) without the blank rich leaves at the end of a line
    it wraps: what the command prints is what the documents show, byte for byte. Rich needs only
    these members of a text file."""

    _TRAILING = re.compile(r"[ \t]+(?=\n)")

    def write(self, text: str) -> int:
        sys.stdout.write(self._TRAILING.sub("", text))
        return len(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def isatty(self) -> bool:
        return sys.stdout.isatty()

    def fileno(self) -> int:
        return sys.stdout.fileno()

    @property
    def encoding(self) -> str:
        return getattr(sys.stdout, "encoding", None) or "utf-8"


# Container objects a one-shot command allocates between two passes of the cyclic garbage
# collector (Python's default: 700). `plan` on 1000 workloads allocates fewer than this after its
# imports, and the passes it made (~170) cost ~0.1 s of CPU, re-walking the parsed policy and the
# models each time; what a command leaves in cycles is freed when it exits. mypy does the same.
ONE_SHOT_GC_THRESHOLD = 200_000


def _one_shot[**P, R](command: Callable[P, R]) -> Callable[P, R]:
    """`command` with the collector's threshold at ONE_SHOT_GC_THRESHOLD while it runs; restored
    after, for a process that goes on (the tests run commands in-process)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        saved = gc.get_threshold()
        gc.set_threshold(ONE_SHOT_GC_THRESHOLD, *saved[1:])
        try:
            return command(*args, **kwargs)
        finally:
            gc.set_threshold(*saved)

    return run


@functools.cache
def _no_last_collection() -> None:
    """Freeze every object when the process exits, before the interpreter's last collection: it
    walked all of them (the parsed policy, the models: ~0.14 s of CPU after `plan` on 1000
    workloads) only to free memory the process gives back anyway. Exit handlers run first, so
    nothing else changes; once a process (a test runner may call `main` many times)."""
    atexit.register(gc.freeze)


def _console() -> Console:
    """The console `plan` and `simulate` print their tables on. They wrap every line themselves
    to 80 columns (peakpilot.wrapping) and print it as is, so the terminal's width changes
    nothing: the same bytes in a narrow terminal, a wide one and piped."""
    return Console(file=cast("IO[str]", _Stdout()))


def _version(value: bool) -> None:
    if value:
        from peakpilot import __version__

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
    write: Annotated[
        bool,
        typer.Option("--write", help="Update the repository's crds/ and charts/peakpilot/crds/."),
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 when the repository's copies are out of date."),
    ] = False,
) -> None:
    """Print the ScalingPolicy CRD (YAML) generated from the API models.

    --write and --check work on the PeakPilot repository holding the current directory.
    """
    from peakpilot.crd import find_repository, render_crd, stale_crds, write_crds

    if write and check:
        _fail(InputError("arguments", ["give --write or --check, not both"]))
    if not (write or check):
        typer.echo(render_crd(), nl=False)
        return
    option = "--write" if write else "--check"
    here = Path.cwd()
    root = find_repository(here)
    if root is None:
        _fail(
            InputError(
                option,
                [
                    f"{here} is not inside the PeakPilot repository (no pyproject.toml and "
                    "operator/peakpilot/api.py here or above): run it in a clone, or "
                    "`peakpilot crd > FILE` for the YAML"
                ],
            )
        )
    if check:
        stale = stale_crds(root)
        for path in stale:
            typer.echo(
                f"{path} is out of date: run `peakpilot crd --write` (or `make crd`)", err=True
            )
        raise typer.Exit(1 if stale else 0)
    for path in write_crds(root):
        typer.echo(f"wrote {path}")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def _print_error(exc: InputError) -> None:
    err = Console(stderr=True)
    # soft_wrap: one line per problem, never broken at the console width (people grep these).
    err.print(
        f"[red]error:[/] invalid input in {escape(exc.source)}:", highlight=False, soft_wrap=True
    )
    for line in exc.lines:
        err.print(f"  - {line}", highlight=False, markup=False, soft_wrap=True)


def _fail(exc: InputError) -> NoReturn:
    _print_error(exc)
    raise typer.Exit(EXIT_INVALID)


def _parse_time(text: str, option: str) -> float:
    from peakpilot.times import check_time, epoch_seconds

    example = "e.g. 2026-11-10T23:40:00+08:00"
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        _fail(InputError(option, [f"{text!r} is not an RFC 3339 time, {example}"]))
    try:
        check_time(stamp)
    except ValueError as exc:
        _fail(InputError(option, [str(exc)]))
    return epoch_seconds(stamp)


def _epoch(moment: float | datetime) -> float:
    from peakpilot.times import epoch_seconds

    return epoch_seconds(moment) if isinstance(moment, datetime) else float(moment)


def _parse_currents(pairs: list[str], names: list[str]) -> dict[str, int]:
    from peakpilot.inputs import MAX_REPLICAS

    out: dict[str, int] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        # isdigit() alone takes "²", which int() refuses: ASCII digits only.
        if (
            name not in names
            or not (value.isascii() and value.isdigit())
            or len(value) > 10
            or int(value) > MAX_REPLICAS
        ):
            _fail(
                InputError(
                    "--current",
                    [
                        f"{pair!r}: use NAME=REPLICAS with a workload of the policy "
                        f"({', '.join(names)}) and 0 <= REPLICAS <= {MAX_REPLICAS}"
                    ],
                )
            )
        out[name] = int(value)
    return out


def _check_url(url: str, option: str) -> None:
    """An http(s) URL with a host: anything else is a typo, not a metrics outage (exit 2)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url
        _ = parts.port  # ValueError on a port that is no number or out of range
    except ValueError:
        ok = False
    if not ok:
        _fail(
            InputError(option, [f"{url!r} is not an http(s) URL: use e.g. http://prometheus:9090"])
        )


def _check_seconds(value: float, option: str, low: float, high: float) -> None:
    """A finite number of seconds within [low, high] (typer's min= lets nan and inf through)."""
    if not (math.isfinite(value) and low <= value <= high):
        _fail(InputError(option, [f"{value} is not between {low:g} and {high:g}: pick one in it"]))


def _emit(data: dict[str, object], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False, width=100))


# `--name`, shared by `plan` and `simulate`: which ScalingPolicy of a multi-document manifest.
PolicyName = Annotated[
    str | None,
    typer.Option(
        "--name",
        metavar="NAME",
        help="The ScalingPolicy to use when the manifest holds several (its metadata.name).",
    ),
]


@app.command()
@_one_shot
def plan(
    policy_file: Annotated[
        Path,
        typer.Argument(
            metavar="POLICY.yaml", help="A ScalingPolicy manifest; - reads standard input."
        ),
    ],
    policy_name: PolicyName = None,
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
            help="Current replicas with --prometheus (default: the cluster's, else minReplicas).",
        ),
    ] = None,
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            "--kubeconfig",
            metavar="FILE",
            help="With --prometheus: read replicas and Secrets from this cluster "
            "(default $KUBECONFIG or ~/.kube/config, if there is one).",
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
    from peakpilot.report import plan_document, print_decision
    from peakpilot.translate import to_policy
    from peakplan import (
        MISSING_DATA_RULE,
        Memory,
        Observation,
        SolveOptions,
        WorkloadObservation,
        decide,
        warm,
    )

    if (metrics is None) == (prometheus is None):
        _fail(InputError("arguments", ["give exactly one of --metrics FILE or --prometheus URL"]))
    _check_seconds(time_limit, "--time-limit", 0.01, MAX_TIME_LIMIT)
    try:
        manifest = load_policy(policy_file, policy_name)
    except InputError as exc:
        _fail(exc)
    core = to_policy(manifest.spec)
    names = [w.name for w in manifest.spec.workloads]
    seen: dict[str, WorkloadObservation] = {}
    problems: list[str] = []
    memory = Memory()
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
            if sample.history:  # earlier loads warm the forecaster, as Prometheus history would
                past = sorted((_epoch(t), v) for t, v in sample.history)
                warm(core, memory, name, [(t, v) for t, v in past if t < when])
    else:
        assert prometheus is not None
        from peakpilot import api
        from peakpilot.observe import observe
        from peakpilot.prometheus import PrometheusSource

        _check_url(prometheus, "--prometheus")

        when = _parse_time(at, "--at") if at else time.time()
        currents = _parse_currents(current or [], names)
        # The operator's observe step: the policy's Prometheus settings (auth from its Secrets,
        # timeout) at the URL given, the forecast warmed from history, the replicas from the
        # cluster when there is one (--current overrides them).
        given = manifest.spec.prometheus
        at_url = (
            given.model_copy(update={"url": prometheus})
            if given is not None
            else api.PrometheusSpec(url=prometheus)
        )
        spec = manifest.spec.model_copy(update={"prometheus": at_url})
        namespace = manifest.metadata.namespace or "default"
        cluster = _cluster(kubeconfig)
        observed = observe(
            cluster, PrometheusSource, spec, core, namespace, memory, set(), when, currents
        )
        seen = dict(observed.observation.workloads)
        problems = observed.problems

    _require_solver(solver.value)
    options = SolveOptions(solver=solver.value, time_limit=time_limit)
    decision = decide(core, Observation(when, seen), memory, options)
    if output is OutputFormat.table:
        console = _console()
        print_decision(decision, manifest.metadata.name, console)
    else:
        _emit(plan_document(decision, manifest.metadata.name), output)
    for problem in problems:
        Console(stderr=True).print(f"[yellow]{escape(problem)}[/]", soft_wrap=True)
    if not decision.metrics_ok:
        missing = [i.name for i in decision.inputs if i.source != "observed"]
        Console(stderr=True).print(
            f"[yellow]metrics unavailable for {', '.join(missing)}: "
            f"current replicas kept ({MISSING_DATA_RULE})[/]",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_METRICS)


class ReplayOutput(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def _duration(text: str, option: str) -> float:
    from peakpilot.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        _fail(InputError(option, [str(exc)]))


@app.command()
def simulate(
    policy_file: Annotated[
        Path,
        typer.Argument(
            metavar="POLICY.yaml", help="A ScalingPolicy manifest; - reads standard input."
        ),
    ],
    trace: Annotated[
        list[str],
        typer.Option(
            "--trace",
            metavar="WORKLOAD=TRACE.csv",
            help="A load trace per workload: CSV of time, count per interval (repeat).",
        ),
    ],
    policy_name: PolicyName = None,
    startup: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION", help="Pod startup for every workload (default: each its own)."
        ),
    ] = None,
    step: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Decision step (default: the policy's interval)."),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option("--from", metavar="TIME", help="Replay from (RFC 3339; default: start)."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="TIME", help="Replay until (RFC 3339; default: the end)."),
    ] = None,
    baseline_target: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="The HPA baseline's target utilisation."),
    ] = 0.7,
    metrics_lag: Annotated[
        str,
        typer.Option(metavar="DURATION", help="How late both controllers see the load."),
    ] = "30s",
    output: Annotated[
        ReplayOutput, typer.Option("--output", "-o", help="table, json or yaml.")
    ] = ReplayOutput.table,
    plot: Annotated[
        Path | None,
        typer.Option(metavar="FILE.png", help="Write a PNG of demand and ready capacity."),
    ] = None,
    title: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT",
            help="What the replay shows, for the plot's title (default: the policy's name).",
        ),
    ] = None,
    warm: Annotated[
        bool,
        typer.Option(help="Warm the forecaster with the trace before --from (the past)."),
    ] = True,
    solver: Annotated[Solver, typer.Option(help="MILP solver.")] = Solver.highs,
    time_limit: Annotated[float, typer.Option(help="Solver time limit, seconds.", min=0.01)] = 3.0,
) -> None:
    """Replay load traces through PeakPilot and the HPA, and score both (DESIGN section 5).

    Causal: a decision at t sees the trace only as Prometheus would show it at t (the load
    --metrics-lag ago, for both controllers) and the policy's calendar. Exit codes: 0 ok,
    2 invalid input.
    """
    from dataclasses import replace

    from peakpilot.comparison import iso, print_comparison, replay_dict
    from peakpilot.inputs import load_policy
    from peakpilot.traces import load_trace, trace_files
    from peakpilot.translate import to_policy
    from peakplan import SolveOptions
    from peakplan.replay import ReplaySettings

    _check_seconds(time_limit, "--time-limit", 0.01, MAX_TIME_LIMIT)
    _check_seconds(baseline_target, "--baseline-target", 0.01, 1.0)
    if plot is not None:
        _check_plot(plot)
    if title is not None:
        _check_title(title, plot)
    try:
        manifest = load_policy(policy_file, policy_name)
    except InputError as exc:
        _fail(exc)
    core = to_policy(manifest.spec)
    names = [w.name for w in core.workloads]
    try:
        traces = {n: load_trace(n, f) for n, f in trace_files(trace, names).items()}
    except InputError as exc:
        _fail(exc)
    if startup is not None:
        seconds = _duration(startup, "--startup")
        core = replace(core, workloads=tuple(replace(w, startup=seconds) for w in core.workloads))
    step_s = _duration(step, "--step") if step is not None else core.interval
    if step_s < MIN_STEP:
        source = "stdin" if str(policy_file) == "-" else str(policy_file)
        what = "--step" if step is not None else f"{source}: spec.interval"
        _fail(InputError(what, [f"the step must be at least {MIN_STEP:g}s, e.g. 15s"]))
    lag = _duration(metrics_lag, "--metrics-lag")
    start = _parse_time(from_, "--from") if from_ else max(t.start for t in traces.values())
    end = _parse_time(to, "--to") if to else min(t.end for t in traces.values())
    problems: list[str] = []
    for n, tr in traces.items():
        span = f"[{iso(tr.start)}, {iso(tr.end)})"
        if from_ and not tr.start <= start < tr.end:
            problems.append(f"--from {from_} is outside the trace of {n} {span}: pick a time in it")
        if to and not tr.start < end <= tr.end:
            problems.append(f"--to {to} is outside the trace of {n} {span}: pick a time in it")
    if not problems and end <= start:
        what = "--to must be after --from" if from_ or to else "the traces do not overlap"
        problems.append(f"{what}: the window [{iso(start)}, {iso(end)}) is empty")
    if problems:
        _fail(InputError("the replay window", problems))
    _require_solver(solver.value)

    settings = ReplaySettings(
        step=step_s,
        start=start,
        end=end,
        metrics_lag=lag,
        baseline_target=baseline_target,
        options=SolveOptions(solver=solver.value, time_limit=time_limit, explain=False),
        warm=warm,
    )
    steps = int((end - start) // step_s)
    if steps > MAX_REPLAY_STEPS:
        _fail(
            InputError(
                "the replay window",
                [
                    f"{steps:,} steps of {step_s:g}s: at most {MAX_REPLAY_STEPS:,}; use a "
                    "larger --step or a shorter --from/--to window"
                ],
            )
        )
    result = _run_replay(core, traces, settings, steps)
    if plot is not None:
        from peakpilot.plot import MissingPlotter, plot_replay

        try:
            capacity = {w.name: w.capacity for w in core.workloads}
            floors = {w.name: w.min_replicas for w in core.workloads}
            plot_replay(result, capacity, floors, plot, manifest.metadata.name, title)
        except MissingPlotter:
            _fail(
                InputError(
                    "--plot",
                    [
                        "matplotlib is not installed: pip install 'peakpilot[plot]' "
                        "(or leave out --plot)"
                    ],
                )
            )
    if output is ReplayOutput.json:
        typer.echo(json.dumps(replay_dict(result, manifest.metadata.name)))
    elif output is ReplayOutput.yaml:
        # libyaml's emitter when PyYAML has it: a long replay's arrays hold millions of numbers.
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        data = replay_dict(result, manifest.metadata.name)
        typer.echo(yaml.dump(data, Dumper=dumper, sort_keys=False, width=100), nl=False)
    else:
        print_comparison(
            result, manifest.metadata.name, _console(), str(plot) if plot is not None else None
        )


def _check_title(title: str, plot: Path | None) -> None:
    """The plot's title: one printable line of at most MAX_TITLE characters, with --plot."""
    if plot is None:
        _fail(InputError("--title", ["it titles the plot: add --plot FILE.png"]))
    if not title.strip() or not title.isprintable() or len(title) > MAX_TITLE:
        _fail(
            InputError(
                "--title",
                [f"one line of 1 to {MAX_TITLE} printable characters, e.g. '1998 World Cup final'"],
            )
        )


def _check_plot(plot: Path) -> None:
    """The PNG can be written: checked before a replay that may take minutes."""
    if plot.suffix.lower() != ".png":
        _fail(InputError("--plot", [f"{plot}: the plot is a PNG: name it FILE.png"]))
    folder = plot.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        _fail(InputError("--plot", [f"{plot}: cannot create the folder {folder}: {reason}"]))
    if plot.is_dir():
        _fail(InputError("--plot", [f"{plot} is a folder: name a file, e.g. {plot}/replay.png"]))


def _run_replay(
    policy: Policy, traces: Mapping[str, Trace], settings: ReplaySettings, steps: int
) -> Replay:
    """The replay, with a progress bar on stderr when it is long and stderr is a terminal."""
    from peakplan.replay import replay

    err = Console(stderr=True)
    if steps < 2000 or not err.is_terminal:
        return replay(policy, traces, settings)
    from rich.progress import BarColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.completed:,}/{task.total:,} steps",
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("replaying", total=steps)
        return replay(
            policy,
            traces,
            settings,
            lambda done, total: bar.update(task, completed=done, total=total),
        )


@app.command("operator")
def operator_command(
    ctx: typer.Context,
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
        # Refused, hidden: one value for every replica (the chart's extraArgs) pauses them all.
        typer.Option(hidden=True, help="Refused: each replica's priority comes from its pod."),
    ] = None,
    liveness_port: Annotated[
        int, typer.Option(envvar=ENV["liveness_port"], help="Liveness endpoint port.")
    ] = 8080,
    metrics_port: Annotated[
        int, typer.Option(envvar=ENV["metrics_port"], help="/metrics port; 0 disables.")
    ] = 9100,
    solver: Annotated[Solver, typer.Option(envvar=ENV["solver"], help="MILP solver.")] = (
        Solver.highs
    ),
    time_limit: Annotated[
        float, typer.Option(envvar=ENV["time_limit"], help="Solver time limit, seconds.")
    ] = 3.0,
    log_format: Annotated[
        str, typer.Option(envvar=ENV["log_format"], help="json or plain (Kopf's formats).")
    ] = "json",
    log_level: Annotated[
        str,
        typer.Option(envvar=ENV["log_level"], help="DEBUG, INFO, WARNING, ERROR or CRITICAL."),
    ] = "INFO",
    peering_lifetime: Annotated[
        int,
        typer.Option(
            envvar=ENV["peering_lifetime"],
            help="Seconds a replica's peering record counts as live (5 to 3600).",
        ),
    ] = 60,
    prometheus_url: Annotated[
        list[str] | None,
        typer.Option(
            "--prometheus-url",
            metavar="URL",
            envvar=ENV["prometheus_urls"],
            help="A Prometheus URL policies may query, or a prefix of such URLs (repeatable; "
            "the variable takes several, comma-separated; default: any).",
        ),
    ] = None,
) -> None:
    """Run the operator: reconcile every ScalingPolicy at its interval.

    Each setting is a flag or a PEAKPILOT_* variable (the flag wins), checked at start.
    """
    from peakpilot.operator import run
    from peakpilot.settings import OperatorSettings, split_urls

    if not namespace and not all_namespaces:
        _fail(InputError("arguments", ["give --all-namespaces or at least one --namespace NS"]))
    if namespace and all_namespaces:
        _fail(InputError("arguments", ["give either --all-namespaces or --namespace, not both"]))
    if peering and standalone:
        _fail(InputError("arguments", ["--peering and --standalone exclude each other"]))
    if priority is not None:
        why = (
            "--priority: not settable; each replica's peering priority is derived from its pod "
            "name (POD_NAME), so no two replicas share one (equal priorities pause them all); "
            "remove --priority (e.g. from the chart's operator.extraArgs)"
        )
        _fail(InputError("arguments", [why]))
    for setting, variable in ENV.items():
        # An empty variable is no default (click would skip it): say so, as for any bad value.
        # An empty URL list is the default, "any URL".
        if os.environ.get(variable) == "" and setting != "prometheus_urls":
            _fail(InputError(variable, ["empty: set a value, or unset it for the default"]))
    # The variable's commas, like the chart writes them; click splits on whitespace only.
    urls = split_urls(prometheus_url or ())
    settings = OperatorSettings(
        namespaces=tuple(namespace or ()),
        all_namespaces=all_namespaces,
        kubeconfig=kubeconfig,
        peering=peering,
        peering_lifetime=peering_lifetime,
        liveness_port=liveness_port,
        metrics_port=metrics_port,
        solver=solver.value,
        time_limit=time_limit,
        log_format=log_format,
        log_level=log_level,
        prometheus_urls=urls,
    )
    for setting, problem in settings.problems()[:1]:
        _fail(InputError(_setting_source(ctx, setting), [problem]))
    _require_solver(settings.solver, "--solver / PEAKPILOT_SOLVER")
    _check_operator_inputs(settings)
    run(settings)


def _setting_source(ctx: typer.Context, setting: str) -> str:
    """The flag or the variable a setting's value came from, as the user wrote it."""
    param = "prometheus_url" if setting == "prometheus_urls" else setting
    source = ctx.get_parameter_source(param)
    if source is not None and source.name == "ENVIRONMENT":
        return ENV[setting]
    return "--" + param.replace("_", "-")


def _cluster(kubeconfig: str | None) -> Kube | None:
    """The cluster `plan --prometheus` reads replicas and Secrets from: --kubeconfig, else
    $KUBECONFIG or ~/.kube/config when there is one; None (no cluster) otherwise."""
    default = Path(os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    if kubeconfig is None and not default.is_file():
        return None
    from kubernetes import client

    from peakpilot.kube import Kube, load_configuration

    path = kubeconfig or str(default)
    try:
        configuration = load_configuration(path)
    except Exception as exc:  # the client raises many kinds for a broken file; all are input
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        _fail(InputError("--kubeconfig", [f"{path}: {reason}: give a readable kubeconfig file"]))
    return Kube(client.ApiClient(configuration))


def _check_operator_inputs(settings: OperatorSettings) -> None:
    """What run() would otherwise stop on after start-up: the URL allow-list, the kubeconfig."""
    from peakpilot.kube import load_configuration
    from peakpilot.prometheus import AllowList

    try:
        AllowList(settings.prometheus_urls)
    except ValueError as exc:
        _fail(InputError("--prometheus-url / PEAKPILOT_PROMETHEUS_URLS", [str(exc)]))
    if settings.kubeconfig:
        try:
            load_configuration(settings.kubeconfig)
        except Exception as exc:  # the client raises many kinds for a broken file; all are input
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            _fail(
                InputError(
                    "--kubeconfig",
                    [f"{settings.kubeconfig}: {reason}: give a readable kubeconfig file"],
                )
            )


def _from_env(exc: Exception) -> str | None:
    """The variable a bad option value came from (typer's envvar=), None for a flag."""
    param, ctx = getattr(exc, "param", None), getattr(exc, "ctx", None)
    envvar = getattr(param, "envvar", None)
    if param is None or ctx is None or not isinstance(envvar, str):
        return None
    source = ctx.get_parameter_source(param.name)
    return envvar if source is not None and source.name == "ENVIRONMENT" else None


def _usage_source(exc: Exception) -> str:
    """The option or argument a usage error is about (`arguments` when none)."""
    envvar = _from_env(exc)
    if envvar is not None:
        return envvar
    option = getattr(exc, "option_name", None)
    if option:
        return str(option)
    param = getattr(exc, "param", None)
    if param is None:
        return "arguments"
    if getattr(param, "param_type_name", "") == "argument":
        return str(getattr(param, "metavar", None) or param.name)
    opts = getattr(param, "opts", None) or []
    return str(opts[0]) if opts else str(param.name)


def _usage_problem(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "peakpilot"
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    envvar = _from_env(exc)
    if envvar is not None:  # the value as the variable holds it, and what is wrong with it
        problem = str(getattr(exc, "message", message)).removeprefix("Value error, ")
        message = f"{os.environ.get(envvar, '')[:100]!r}: {problem}"
    return f"{' '.join(str(message).split())} (see {command} --help)"


def main() -> None:
    """The entry point (also `python -m peakpilot.cli`). Usage errors (a bad option value, a
    missing argument) are one line naming the option, exit 2, like every other invalid input."""
    import importlib

    # PeakPilot does no linear algebra: numpy comes only with highspy, to hand arrays over, and
    # OpenBLAS starting its thread pool at numpy's import cost ~0.05 s of CPU a process.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _no_last_collection()
    # click's exceptions, wherever typer takes click from (it vendors its own copy).
    click = importlib.import_module(typer.BadParameter.__module__)
    try:
        code = app(prog_name="peakpilot", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.UsageError as exc:
        _print_error(InputError(_usage_source(exc), [_usage_problem(exc)]))
        raise SystemExit(EXIT_INVALID) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        Console(stderr=True).print("Aborted!")
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
