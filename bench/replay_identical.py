"""Same answers: this checkout's replays against another tree's, decision by decision.

    python bench/replay_identical.py --against DIR
    # DIR: another tree's optimizer/ and operator/ (git archive REV optimizer operator | tar -x)

A speed-up of the decision core must not change one decision. Each tree, in its own process,
replays the same cases and digests (SHA-256) every step's whole `Decision` (plan, reasons,
inputs, forecast use; the solver's wall time aside) and the replay's DESIGN 5 JSON (`to_dict`:
every step's desired and ready replicas, the summaries); the digests must be equal. Cases: the
first week of five corpus traces with the corpus template policy (bench/frontier.py), a week of
the World Cup with its calendar, and the examples: worldcup-knockout and elb-spikes on their
traces, shop-promotion and preview-policy (budgets, several workloads) on corpus days. Prints
one line per case; exit 1 when any differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT.parent / "shared" / "traces"

CHILD = r"""
import dataclasses, hashlib, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/bench")
import frontier
from peakpilot.inputs import load_policy
from peakpilot.translate import to_policy
from peakplan.replay import ReplaySettings, Trace, parse_trace, simulation

root, traces = Path(sys.argv[1]), Path(sys.argv[2])
corpus = traces / "corpus"
DAY, WEEK = 86400.0, 7 * 86400.0
entries = {e.name: e for e in frontier.read_index(corpus)}

def trace(path):
    return parse_trace(Path(path).read_text(encoding="utf-8"))

def moved(tr, start, length, peak):
    # The first `length` seconds of a trace on a common clock, scaled to a peak rate.
    part = tr.slice(tr.start, tr.start + length)
    part = Trace(start, part.interval, part.counts, part.missing)
    return part.scaled(peak / part.peak_rate)

digest = None
real_decide = simulation.decide

def decide(*args, **kwargs):
    decision = real_decide(*args, **kwargs)
    solver = dataclasses.replace(decision.plan.solver, seconds=0.0)  # wall time: not an answer
    shown = dataclasses.replace(decision, plan=dataclasses.replace(decision.plan, solver=solver))
    digest.update(repr(shown).encode())
    return decision

simulation.decide = decide

def case(label, policy, traces_by_name, settings):
    global digest
    digest = hashlib.sha256()
    result = simulation.replay(policy, traces_by_name, settings)
    doc = json.dumps(result.to_dict(), sort_keys=True).encode()
    ours = result.controllers["peakpilot"]
    summary = {n: s.score.scale_changes for n, s in ours.workloads.items()}
    print(json.dumps({"case": label, "steps": result.steps, "decisions": digest.hexdigest(),
                      "json": hashlib.sha256(doc).hexdigest(), "changes": summary}), flush=True)

for name in ("nab_twitter_GOOG_5min", "clarknet_1995_1min", "nab_nyc_taxi_30min",
             "azure_functions_2019_40d07b99_1min", "nab_elb_request_count_8c0756_5min"):
    tr = frontier.load(entries[name].path)
    settings = ReplaySettings(step=15.0, start=tr.start, end=tr.start + WEEK, metrics_lag=30.0)
    case(f"{name}, first week", frontier.template_policy(tr), {"app": tr}, settings)

wc = frontier.load(entries["worldcup98_1min"].path)
start = 898819200.0  # 1998-06-26 00:00 UTC: the round of 16 and the quarter-finals
settings = ReplaySettings(step=15.0, start=start, end=start + WEEK, metrics_lag=30.0)
policy = frontier.template_policy(wc, entries["worldcup98_1min"].events)
case("worldcup98_1min with its calendar, 1998-06-26 + 7 d", policy, {"app": wc}, settings)

def example(name):
    return to_policy(load_policy(root / "examples" / name).spec)

knockout = example("worldcup-knockout.yaml")
settings = ReplaySettings(start=899424000.0, end=899424000.0 + 2 * DAY)  # 1998-07-03, 2 days
case("examples/worldcup-knockout.yaml, 1998-07-03 + 2 d", knockout,
     {"web": trace(traces / "worldcup98_1min.csv")}, settings)
case("examples/elb-spikes.yaml, whole trace", example("elb-spikes.yaml"),
     {"api": trace(traces / "nab_elb_request_count_5min.csv")}, ReplaySettings())

for file, hours in (("shop-promotion.yaml", 6), ("preview-policy.yaml", 12)):
    policy = example(file)
    names = [w.name for w in policy.workloads]
    sources = ["clarknet_1995_1min", "nab_twitter_AMZN_5min", "azure_functions_2019_40d07b99_1min",
               "nab_twitter_FB_5min", "nab_nyc_taxi_30min"]
    # Each workload peaks at 30 replicas' capacity: the shop's budget binds at times.
    by_name = {w.name: moved(frontier.load(entries[src].path), 0.0, hours * 3600.0,
                             30 * w.capacity) for w, src in zip(policy.workloads, sources)}
    settings = ReplaySettings(start=0.0, end=hours * 3600.0)
    case(f"examples/{file}, {hours} h of corpus traces", dataclasses.replace(policy, events=()),
         by_name, settings)
"""


def run(tree: Path, code_tree: Path | None) -> list[dict[str, object]]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    if code_tree is not None:
        env["PYTHONPATH"] = f"{code_tree / 'optimizer'}{os.pathsep}{code_tree / 'operator'}"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(TRACES)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, required=True, help="another tree's source")
    args = parser.parse_args()
    ours = run(ROOT, None)
    theirs = run(ROOT, args.against)
    same = True
    for a, b in zip(ours, theirs, strict=True):
        equal = a == b
        same &= equal
        print(f"{'same' if equal else 'DIFFERENT'}: {a['case']} ({a['steps']:,} steps)")
        if not equal:
            print(f"  this checkout: {a}\n  the other:     {b}")
    print("every decision and replay identical" if same else "the trees DIFFER")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
