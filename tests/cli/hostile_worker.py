"""A long-lived CLI runner for the hypothesis suite: one Python start for many examples.

Reads one JSON request per line on stdin ({"args": [...], "env": {...}}), runs `peakpilot` in
this process with those arguments, and answers one JSON line: the exit code, what the CLI wrote
to stdout and stderr, and the seconds it took. An exception that escapes the CLI is answered
with its traceback in stderr, which is what the suite looks for. The process runs under an
address-space limit, so a memory blow-up is a MemoryError (a traceback), not a stuck machine.
Native code that writes to fd 1 (a solver banner) is sent to /dev/null: the answers go out on a
copy of the original stdout.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import time
import traceback

MEMORY_LIMIT = 3 << 30


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    from peakpilot.cli import main as cli

    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        saved = dict(os.environ)
        os.environ.update(request.get("env", {}))
        sys.argv = ["peakpilot", *request["args"]]
        started = time.monotonic()
        code: int | None = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # the suite's finding: any escape is a traceback
                err.write(traceback.format_exc())
                code = 1
        os.environ.clear()
        os.environ.update(saved)
        answer = {
            "code": code,
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
            "seconds": time.monotonic() - started,
        }
        answers.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
