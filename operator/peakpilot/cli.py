"""The `peakpilot` command: plan, simulate, crd, operator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from peakpilot import __version__

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


def main() -> None:
    app()
