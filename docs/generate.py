"""Regenerate every command sample in README.md and docs/*.md from the real command.

    python docs/generate.py           # rewrite the samples in place
    python docs/generate.py --check   # exit 1 and show a diff when a sample has drifted

A sample is a ```text block whose first line is `$ peakpilot ...` (continued with a trailing
backslash). The command runs from the repository root with the `peakpilot` of this interpreter,
piped, and its stdout replaces the rest of the block. What it prints does not depend on the
terminal (it wraps to 80 columns itself; tests/cli/test_terminal_width.py checks), so a sample is
also what an 80-column terminal shows. Solver times differ from run to
run, so "in 13.2 ms" is compared as "in N ms". A sample whose input files are missing (the full
World Cup trace lives outside the repository) is reported and left alone.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
FENCE = re.compile(r"^```text\n(\$ peakpilot .*?)^```$", re.M | re.S)
COLUMNS = "80"  # changes nothing (see above); set so that no caller's COLUMNS leaks in


@dataclass(frozen=True)
class Sample:
    doc: Path
    command: str  # as written, continuation lines included
    output: str  # what the document shows below the command

    @property
    def argv(self) -> list[str]:
        words = shlex.split(self.command.removeprefix("$ ").replace("\\\n", " "))
        exe = Path(sys.executable).with_name("peakpilot")
        return [str(exe), *words[1:]]

    def inputs_missing(self) -> list[str]:
        """Arguments that name files under ../ that are not there (NAME=PATH included)."""
        missing = []
        for word in self.argv[1:]:
            path = word.split("=", 1)[-1]
            if path.startswith("../") and not (ROOT / path).exists():
                missing.append(path)
        return missing


def samples(doc: Path) -> list[Sample]:
    found = []
    for match in FENCE.finditer(doc.read_text(encoding="utf-8")):
        body = match.group(1)
        lines = body.splitlines(keepends=True)
        n = 1
        while lines[n - 1].rstrip("\n").endswith("\\"):
            n += 1
        found.append(Sample(doc, "".join(lines[:n]).rstrip("\n"), "".join(lines[n:])))
    return found


def run(sample: Sample) -> str:
    env = {**os.environ, "COLUMNS": COLUMNS, "TZ": "UTC", "NO_COLOR": "1"}
    done = subprocess.run(
        sample.argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode not in (0, 3):  # 3: a load was unavailable, still a plan to show
        raise SystemExit(f"{sample.doc.name}: `{sample.command}` failed: {done.stderr.strip()}")
    # Exactly what the command printed (it leaves no blank at the end of a wrapped line).
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a sample has drifted")
    args = parser.parse_args()
    drifted = 0
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for sample in samples(doc):
            missing = sample.inputs_missing()
            if missing:
                print(
                    f"{doc.name}: skipped `{sample.argv[1]}` ({', '.join(missing)} missing)",
                    file=sys.stderr,
                )
                continue
            fresh = run(sample)
            if fresh == sample.output:
                continue
            drifted += 1
            if args.check:
                diff = difflib.unified_diff(
                    sample.output.splitlines(),
                    fresh.splitlines(),
                    "document",
                    "command",
                    lineterm="",
                )
                print(
                    f"{doc.relative_to(ROOT)}: `{sample.argv[1]}` sample drifted:",
                    *diff,
                    sep="\n",
                    file=sys.stderr,
                )
            else:
                text = text.replace(
                    sample.command + "\n" + sample.output, sample.command + "\n" + fresh, 1
                )
        if not args.check:
            doc.write_text(text, encoding="utf-8")
    if args.check and drifted:
        print(f"{drifted} sample(s) drifted: run `make docs` and commit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
