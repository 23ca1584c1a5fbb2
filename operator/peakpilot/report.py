"""A decision as people and programs read it: the stable JSON shape and the terminal table.

The plan document (`plan_document`, documented in docs/cli.md) is what `peakpilot plan --output
json` prints and, compact, what `status.lastPlan` holds; keep its keys stable, add new ones freely.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from peakpilot.wrapping import WIDTH, joined, wrap
from peakplan import Binding, Decision, ForecastUse, WorkloadInput, format_amount


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


STATUS_TEXT = 512  # characters of one text in status.lastPlan (the CRD's maxLength)
# status.lastPlan of a big policy: every workload up to STATUS_WORKLOADS; beyond, only those that
# matter now (changed, squeezed by a limit, or without an observed load), at most
# STATUS_WORKLOADS of them, and `omittedWorkloads` counts the rest (the totals cover them all).
# So a policy of 1000 workloads keeps its status far under the API server's object size limit
# (1.5 MiB): under 256 KiB whatever happens (tests/unit/test_plan_document.py).
STATUS_WORKLOADS = 100


def forecast_dict(use: ForecastUse | None, compact: bool = False) -> dict[str, Any] | None:
    """How the demand was sized: the forecast method, why, and what set the demand (compact:
    without the figures)."""
    if use is None:
        return None
    out: dict[str, Any] = {"method": use.method, "reason": use.reason, "basis": use.basis}
    if compact:
        out["reason"] = use.reason[:STATUS_TEXT]
        return out
    out["horizonSeconds"] = _num(use.horizon)
    out["value"] = _num(use.value)
    out["band"] = _num(use.band)
    out["scores"] = {k: _num(v) for k, v in use.scores.items()}
    return out


def unsized(given: WorkloadInput) -> bool:
    """The load is unavailable and no last good value is held: the workload was not sized (its
    replicas are kept or floored by onMetricFailure), so there is no demand, need or utilisation."""
    return given.load is None and given.source != "held"


def unsized_reason(reason: str) -> str:
    """An unsized workload's reason without the planner's "load needs 0" (no need at all)."""
    return reason.removesuffix("; load needs 0")


def plan_document(
    decision: Decision, policy_name: str = "", *, compact: bool = False
) -> dict[str, Any]:
    """The plan document (docs/cli.md, "The plan document"): what `plan --output json` prints
    and, `compact`, what `status.lastPlan` holds. Compact keeps every key's meaning and drops only
    what a status need not carry: the policy's name (the object's own), the forecast's figures,
    the solver's model size; texts are cut to 512 characters. Every other key is always written
    (null when it has no value): status is merge-patched, and a key left out would keep a stale
    value."""

    def text(value: str | None) -> str | None:
        return value[:STATUS_TEXT] if compact and value is not None else value

    plan = decision.plan
    shown = list(plan.workloads)
    if compact and len(shown) > STATUS_WORKLOADS:
        squeezed = {name for b in plan.binding for name in b.squeezed}
        shown = [
            d
            for d in plan.workloads
            if d.desired != d.current
            or d.name in squeezed
            or decision.input(d.name).source != "observed"
        ][:STATUS_WORKLOADS]
    left_out = list(decision.left_out.items())
    if compact and len(left_out) > STATUS_WORKLOADS:
        hidden = len(left_out) - STATUS_WORKLOADS
        left_out = left_out[:STATUS_WORKLOADS]
    else:
        hidden = 0
    workloads = []
    for d in shown:
        given = decision.input(d.name)
        # No load and no held value: nothing was sized, so the planner's demand, need,
        # utilisation and shortfall (all from a demand of 0) mean nothing; null, and `note` says
        # why the load is missing (as the table's "unavailable" and "-").
        sized = not unsized(given)
        workloads.append(
            {
                "name": d.name,
                "current": d.current,
                "desired": d.desired,
                "load": _num(given.load) if given.load is not None else None,
                "demand": _num(d.demand) if sized else None,
                "source": given.source,
                "needed": d.needed if sized else None,
                "utilization": _num(d.utilization) if sized else None,
                "costPerHour": _num(d.cost_per_hour),
                "outsideSlo": _num(d.outside_slo) if sized else None,
                "reason": text(d.reason if sized else unsized_reason(d.reason)),
                "limitedBy": d.limited_by,
                "events": list(given.events),
                "note": text(given.note),
                "forecast": forecast_dict(given.forecast, compact),
                "surge": text(given.surge),
            }
        )
    current_cost = sum(
        d.current * (d.cost_per_hour / d.desired if d.desired else 0.0) for d in plan.workloads
    )
    s = plan.solver
    solver: dict[str, Any] = {
        "name": s.solver,
        "status": s.status,
        "seconds": round(s.seconds, 6),
        "gap": _num(s.gap) if s.gap is not None else None,
        "usedGreedy": s.used_greedy,
        "fallbackReason": text(s.fallback_reason),
    }
    if not compact:
        solver |= {
            "formulation": s.formulation,
            "variables": s.variables,
            "constraints": s.constraints,
        }
    document: dict[str, Any] = {} if compact else {"policy": policy_name}
    return document | {
        "at": iso(decision.at),
        "metricsOk": decision.metrics_ok,
        "workloads": workloads,
        "totals": {
            "costPerHour": _num(plan.cost_per_hour),
            "currentCostPerHour": _num(current_cost) if current_cost else None,
            "objective": _num(plan.objective),
            "outsideSlo": _num(sum(d.outside_slo for d in plan.workloads)),
            "workloads": len(plan.workloads),
            "changed": sum(1 for d in plan.workloads if d.desired != d.current),
            "desiredReplicas": sum(d.desired for d in plan.workloads),
            "currentReplicas": sum(d.current for d in plan.workloads),
        },
        "omittedWorkloads": len(plan.workloads) - len(shown),
        "binding": [binding_dict(b) for b in plan.binding],
        "solver": solver,
        "notes": [text(n) for n in plan.notes]
        + ([f"{hidden} more workloads left out (not listed)"] if hidden else []),
        # Workloads not planned (their replicas could not be read, and were never seen): why.
        "leftOut": [{"name": n, "reason": text(why)} for n, why in left_out],
    }


def _amount(binding: Binding, value: float) -> str:
    return format_amount(binding.constraint, value, grouped=True)


COLUMNS = ("workload", "replicas", "load rps", "sized for", "util", "cost/h")


UNAVAILABLE = "unavailable"
_UNAVAILABLE_NOTE = "load unavailable ("  # the core's note: "load unavailable (WHY); ACTION"


def unavailable_line(note: str, source: str) -> str:
    """A missing load's note with the error last (it may be long: the table cuts it). The row's
    reason already says what was kept, unless the last good value is held: then the note does."""
    if note.startswith(_UNAVAILABLE_NOTE) and "); " in note:
        why, _, action = note.removeprefix(_UNAVAILABLE_NOTE).rpartition("); ")
        return (
            f"load unavailable ({action}): {why}"
            if source == "held"
            else f"load unavailable: {why}"
        )
    return note


ERROR_LINES = 3  # a missing load's error under its row: at most this many lines


def one_line(text: str, width: int) -> str:
    """`text` on one line of at most `width` characters; cut ones point to the full text."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    tail = "… (full text: -o json)"
    return text[: max(0, width - len(tail))].rstrip() + tail


def under_row(text: str, style: str = "", most: int | None = None) -> list[Text]:
    """`text` under a row: indented, wrapped to WIDTH, and when `most` is given on at most that
    many lines (the last cut, pointing to the full text)."""
    lines = wrap(Text(" ".join(text.split()), style=style), indent=2)
    if most is None or len(lines) <= most:
        return lines
    kept = lines[: most - 1]
    rest = " ".join(text.split()[sum(len(line.plain.split()) for line in kept) :])
    return [*kept, Text("    " + one_line(rest, WIDTH - 4), style=style)]


def _row_texts(decision: Decision) -> list[tuple[list[str], str, list[Text]]]:
    """Per workload: the cells, the replicas' style, and the lines under the row."""
    rows = []
    for d in decision.plan.workloads:
        given = decision.input(d.name)
        arrow = "→" if d.desired != d.current else "="
        style = "green" if d.desired > d.current else ("yellow" if d.desired < d.current else "")
        load = f"{given.load:,.1f}" if given.load is not None else UNAVAILABLE
        sized = f"{d.demand:,.1f}"
        util = f"{d.utilization:.0%}" if math.isfinite(d.utilization) else "∞"
        reason = d.reason
        if unsized(given):
            sized = util = "-"
            reason = unsized_reason(reason)
        cells = [d.name, f"{d.current} {arrow} {d.desired}", load, sized, util]
        cells.append(f"{d.cost_per_hour:,.2f}")
        reason += f" ({', '.join(given.events)})" if given.events else ""
        under = under_row(reason)
        if given.load is None and given.note:
            # A few lines however long the error (a Prometheus answer); -o json has all of it.
            line = unavailable_line(given.note, given.source)
            under += under_row(line, "red", most=ERROR_LINES)
        elif given.note:
            under += under_row(given.note, "dim")
        if given.forecast is not None:
            f = given.forecast
            under += under_row(f"forecast {f.method}; sized by the {f.basis}", "dim")
        if given.surge is not None:
            under += under_row(f"surge: {given.surge}", "yellow")
        rows.append((cells, style, under))
    return rows


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    """Left-aligned names, right-aligned figures, two spaces between columns."""
    parts = [cells[0].ljust(widths[0])]
    parts += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
    return "  ".join(parts).rstrip()


def print_decision(decision: Decision, policy_name: str, console: Console) -> None:
    """The plan as a table (each reason under its row), then what binds and what relaxing buys.

    Every line is wrapped here to WIDTH (80) columns and printed as is: the same bytes in any
    terminal and piped. Plain `Text`, or markup with every outside text escaped: names, reasons
    and notes may hold `[1m]` (a PromQL range in a Prometheus error), which rich would read as
    markup and drop or fail on."""
    plan = decision.plan
    rows = _row_texts(decision)
    total = ["total", "", "", "", "", f"{plan.cost_per_hour:,.2f}"]
    widths = [
        max(len(cells[i]) for cells in [list(COLUMNS), total, *(r[0] for r in rows)])
        for i in range(len(COLUMNS))
    ]
    lines = wrap(f"PeakPilot plan for {policy_name} at {iso(decision.at)}")
    lines.append(Text(_line([c.upper() for c in COLUMNS], widths), style="bold"))
    for cells, style, under in rows:
        row = Text(_line(cells, widths))
        if style:
            start = row.plain.index(cells[1], widths[0])
            row.stylize(style, start, start + len(cells[1]))
        if cells[2] == UNAVAILABLE:
            start = row.plain.index(UNAVAILABLE, widths[0])
            row.stylize("red", start, start + len(UNAVAILABLE))
        lines.append(row)
        lines += under
    lines.append(Text(_line(total, widths), style="bold"))
    reasons: dict[str, list[str]] = {}
    for given in decision.inputs:
        if given.forecast is not None:
            reasons.setdefault(given.forecast.reason, []).append(given.name)
    for why, names in reasons.items():
        lines += wrap(Text(f"forecast for {', '.join(names)}: {' '.join(why.split())}", "dim"))
    s = plan.solver
    gap = f", gap {s.gap:.2%}" if s.gap is not None else ""
    # No wall-clock time in the table: the same plan prints the same bytes on every run (the
    # time is in `-o json`, solver.seconds).
    solver = f"solver: {s.solver} {s.status}{gap}"
    if s.solver == "none":  # no shared limit binds: each workload's own best count is exact
        solver = "solver: no solve needed (no shared limit binds)"
    if s.used_greedy:
        solver += f" [yellow]- greedy plan used: {escape(s.fallback_reason or '')}[/]"
    lines += _say(solver)
    for b in plan.binding:
        head = "[red]soft[/] " if b.soft else ""
        lines += _say(
            f"{head}[bold]binding: {b.constraint}[/] limit {_amount(b, b.limit)}, "
            f"plan uses {_amount(b, b.used)}, meeting every SLO needs {_amount(b, b.needed)}"
        )
        if b.squeezed:
            short = escape(", ".join(f"{k} -{v}" for k, v in b.squeezed.items()))
            lines += _say(f"squeezed (replicas below what their load needs): {short}", indent=2)
        if b.relax is not None:
            r = b.relax
            bought = escape(", ".join(f"{k} {v:+d}" for k, v in r.replicas.items())) or "no change"
            late = -r.outside_slo_change
            effect = (
                f"{late:,.1f} rps back inside the SLO"
                if late >= 0
                else f"{-late:,.1f} rps more outside the SLO, on lower-priority workloads"
            )
            lines += _say(
                f"raising it by {_amount(b, r.amount)} to "
                f"{_amount(b, r.new_limit)} buys {bought}: {effect}",
                indent=2,
            )
    for note in plan.notes:
        lines += _say(f"[yellow]note:[/] {escape(note)}")
    if console.color_system is None and not console.record:
        # Nothing to style (piped, or NO_COLOR): the same characters, written at once; rich
        # would still render each line (0.1 s for 1000 workloads).
        console.file.write("".join(f"{line.plain}\n" for line in lines))
    else:
        console.print(joined(lines), soft_wrap=True)


def _say(markup: str, indent: int = 0) -> list[Text]:
    """A line of markup (outside texts escaped), wrapped to WIDTH."""
    return wrap(Text.from_markup(" ".join(markup.split())), indent=indent)
