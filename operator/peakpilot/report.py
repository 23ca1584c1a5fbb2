"""A decision as people and programs read it: the stable JSON shape and the terminal table.

The JSON shape (documented in docs/cli.md) is what `peakpilot plan --output json` prints and what
`status.lastPlan` mirrors; keep its keys stable, add new ones freely.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from peakplan.controller import Decision, ForecastUse
from peakplan.plan import Binding

UNITS = {"cost": "/h", "cpu": " cores", "memory": " bytes"}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _num(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def binding_dict(b: Binding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "constraint": b.constraint,
        "limit": _num(b.limit),
        "used": _num(b.used),
        "needed": _num(b.needed),
        "soft": b.soft,
        "squeezed": dict(b.squeezed),
    }
    if b.relax is not None:
        out["relax"] = {
            "by": _num(b.relax.amount),
            "newLimit": _num(b.relax.new_limit),
            "gainPerHour": _num(b.relax.objective_gain),
            "costChangePerHour": _num(b.relax.cost_change),
            "outsideSloChange": _num(b.relax.outside_slo_change),
            "replicas": dict(b.relax.replicas),
        }
    return out


def forecast_dict(use: ForecastUse | None) -> dict[str, Any] | None:
    """How the demand was sized: the forecast method, why, and what set the demand."""
    if use is None:
        return None
    return {
        "method": use.method,
        "reason": use.reason,
        "horizonSeconds": _num(use.horizon),
        "value": _num(use.value),
        "band": _num(use.band),
        "basis": use.basis,
        "scores": {k: _num(v) for k, v in use.scores.items()},
    }


def decision_dict(decision: Decision, policy_name: str = "") -> dict[str, Any]:
    """The stable JSON form of one decision."""
    plan = decision.plan
    workloads = []
    for d in plan.workloads:
        given = decision.input(d.name)
        workloads.append(
            {
                "name": d.name,
                "current": d.current,
                "desired": d.desired,
                "load": _num(given.load) if given.load is not None else None,
                "demand": _num(d.demand),
                "source": given.source,
                "needed": d.needed,
                "utilization": _num(d.utilization),
                "costPerHour": _num(d.cost_per_hour),
                "outsideSlo": _num(d.outside_slo),
                "reason": d.reason,
                "limitedBy": d.limited_by,
                "events": list(given.events),
                "note": given.note,
                "forecast": forecast_dict(given.forecast),
                "surge": given.surge,
            }
        )
    current_cost = sum(
        d.current * (d.cost_per_hour / d.desired if d.desired else 0.0) for d in plan.workloads
    )
    s = plan.solver
    return {
        "policy": policy_name,
        "at": iso(decision.at),
        "metricsOk": decision.metrics_ok,
        "workloads": workloads,
        "totals": {
            "costPerHour": _num(plan.cost_per_hour),
            "currentCostPerHour": _num(current_cost) if current_cost else None,
            "objective": _num(plan.objective),
            "outsideSlo": _num(sum(d.outside_slo for d in plan.workloads)),
        },
        "binding": [binding_dict(b) for b in plan.binding],
        "solver": {
            "name": s.solver,
            "status": s.status,
            "seconds": round(s.seconds, 6),
            "gap": _num(s.gap) if s.gap is not None else None,
            "usedGreedy": s.used_greedy,
            "fallbackReason": s.fallback_reason,
            "formulation": s.formulation,
            "variables": s.variables,
            "constraints": s.constraints,
        },
        "notes": list(plan.notes),
    }


def _fmt_amount(constraint: str, value: float) -> str:
    if constraint == "cost":
        return f"{value:,.2f}/h"
    if constraint == "cpu":
        return f"{value:,.2f} cores"
    return f"{value / 2**30:,.1f} GiB"


def print_decision(decision: Decision, policy_name: str, console: Console) -> None:
    """The plan as a table, then what binds and what relaxing it buys."""
    plan = decision.plan
    # Names, reasons and notes are plain text: a PromQL range such as [1m] in a Prometheus error
    # would otherwise be read as console markup, and vanish or raise a MarkupError.
    table = Table(
        title=f"PeakPilot plan for {escape(policy_name)} at {iso(decision.at)}",
        title_justify="left",
    )
    for col, justify in (
        ("workload", "left"),
        ("replicas", "right"),
        ("load rps", "right"),
        ("sized for", "right"),
        ("util", "right"),
        ("cost/h", "right"),
        ("reason", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for d in plan.workloads:
        given = decision.input(d.name)
        arrow = "→" if d.desired != d.current else "="
        style = "green" if d.desired > d.current else ("yellow" if d.desired < d.current else "")
        replicas = (
            f"[{style}]{d.current} {arrow} {d.desired}[/]"
            if style
            else f"{d.current} = {d.desired}"
        )
        load = f"{given.load:,.1f}" if given.load is not None else "[red]missing[/]"
        util = f"{d.utilization:.0%}" if math.isfinite(d.utilization) else "∞"
        reason = escape(d.reason)
        if given.events:
            reason += f" [dim]({escape(', '.join(given.events))})[/]"
        if given.note:
            reason += f"\n[dim]{escape(given.note)}[/]"
        if given.forecast is not None:
            f = given.forecast
            reason += f"\n[dim]forecast {f.method}; sized by the {escape(f.basis)}[/]"
        if given.surge is not None:
            reason += f"\n[yellow]surge: {escape(given.surge)}[/]"
        table.add_row(
            escape(d.name),
            replicas,
            load,
            f"{d.demand:,.1f}",
            util,
            f"{d.cost_per_hour:,.2f}",
            reason,
        )
    table.add_section()
    table.add_row("total", "", "", "", "", f"{plan.cost_per_hour:,.2f}", "")
    console.print(table)
    reasons: dict[str, list[str]] = {}
    for given in decision.inputs:
        if given.forecast is not None:
            reasons.setdefault(given.forecast.reason, []).append(given.name)
    for why, names in reasons.items():
        line = f"[dim]forecast for {escape(', '.join(names))}: {escape(why)}[/]"
        console.print(line, soft_wrap=True)
    s = plan.solver
    gap = f", gap {s.gap:.2%}" if s.gap is not None else ""
    solver = f"solver: {s.solver} {s.status} in {s.seconds * 1000:.1f} ms{gap}"
    if s.used_greedy:
        solver += f" [yellow]- greedy plan used: {escape(s.fallback_reason or '')}[/]"
    console.print(solver)
    for b in plan.binding:
        head = "[red]soft[/] " if b.soft else ""
        console.print(
            f"{head}[bold]binding: {b.constraint}[/] limit {_fmt_amount(b.constraint, b.limit)}, "
            f"plan uses {_fmt_amount(b.constraint, b.used)}, meeting every SLO needs "
            f"{_fmt_amount(b.constraint, b.needed)}"
        )
        if b.squeezed:
            short = escape(", ".join(f"{k} -{v}" for k, v in b.squeezed.items()))
            console.print(f"  squeezed (replicas below what their load needs): {short}")
        if b.relax is not None:
            r = b.relax
            bought = escape(", ".join(f"{k} {v:+d}" for k, v in r.replicas.items())) or "no change"
            late = -r.outside_slo_change
            effect = (
                f"{late:,.1f} rps back inside the SLO"
                if late >= 0
                else f"{-late:,.1f} rps more outside the SLO, on lower-priority workloads"
            )
            console.print(
                f"  raising it by {_fmt_amount(b.constraint, r.amount)} to "
                f"{_fmt_amount(b.constraint, r.new_limit)} buys {bought}: {effect}; "
                f"objective {-r.objective_gain:+,.2f}/h"
            )
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
