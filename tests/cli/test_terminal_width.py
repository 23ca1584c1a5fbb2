"""`make demo`'s commands print the same bytes whatever the terminal: in a real terminal (a pty)
80 or 200 columns wide, with COLUMNS=80 or 200, and piped. Every line fits 80 columns, and nothing
is cut ("…") or wrapped by the terminal's width, so the README's samples are what a newcomer
reads in an 80-column terminal (issue 11)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("peakpilot"))
COMMANDS = {
    "plan": [
        "plan",
        "examples/shop-promotion.yaml",
        "--metrics",
        "examples/metrics/shop-singles-day.yaml",
    ],
    "simulate": [
        "simulate",
        "examples/worldcup-knockout.yaml",
        "--trace",
        "web=examples/traces/worldcup98-semifinal-1998-07-07.csv",
    ],
}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # a terminal gets colours and bold; compare the text


def _env(columns: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env |= {"TZ": "UTC", "TERM": "xterm-256color"}
    if columns is not None:
        env["COLUMNS"] = columns
    return env


def piped(args: list[str], columns: str | None) -> str:
    done = subprocess.run(
        [EXE, *args], cwd=ROOT, env=_env(columns), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def in_terminal(args: list[str], columns: int) -> str:
    """What a terminal `columns` wide shows (a pty of that size; COLUMNS unset)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [EXE, *args],
        cwd=ROOT,
        env=_env(None),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command has exited and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert process.wait(timeout=300) == 0
    text = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    return ANSI.sub("", text)


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_the_demo_prints_the_same_bytes_in_any_terminal(command: list[str]) -> None:
    expected = piped(command, None)
    assert piped(command, "80") == expected
    assert piped(command, "200") == expected
    assert in_terminal(command, 80) == expected
    assert in_terminal(command, 200) == expected
    lines = expected.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert "…" not in expected  # nothing cut
