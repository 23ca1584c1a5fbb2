"""The solver never writes to the process's stdout or stderr, and a missing one is named.

HiGHS 1.16 prints a copyright banner from C++ straight to file descriptor 1 when a process creates
its first instance; `plan -o json` and the operator's JSON log would carry it. The stand-in below
writes to the descriptors the same way (below Python's sys.stdout), in a child process, so the
test holds whichever HiGHS release the lock pins; tests/cli run the real solver end to end.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import os, sys, highspy
    from peakplan import ilp

    def noisy_highs():
        os.write(1, b"Running HiGHS banner on fd 1\\n")
        os.write(2, b"and on fd 2\\n")

    print("before", flush=False)  # buffered in Python when the descriptors are swapped
    highspy.Highs = noisy_highs
    ilp._swallow_highs_banner()
    ilp._swallow_highs_banner()  # once per process: the second call does nothing
    print("after")
    """
)


def test_the_highs_banner_is_swallowed_and_our_own_output_is_kept() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "before\nafter\n"
    assert done.stderr == ""


def test_a_real_solve_prints_nothing() -> None:
    # Two workloads under a binding cost limit: the integer program is solved by HiGHS.
    child = (
        "from peakplan import Budget, Problem, Workload, plan\n"
        "w = [Workload(name=n, demand=d, current=1, lo=1, hi=20, capacity=10.0, price=1.0)"
        " for n, d in (('a', 150.0), ('b', 50.0))]\n"
        "p = plan(Problem(workloads=tuple(w), budget=Budget(max_cost_per_hour=12.0)))\n"
        "assert p.solver.solver == 'highs' and p.solver.status == 'optimal', p.solver\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=True
    )
    assert (done.stdout, done.stderr) == ("", "")


def test_a_missing_solver_is_named_with_what_to_install() -> None:
    from peakplan.ilp import solver_missing

    assert solver_missing("highs") is None
    assert solver_missing("cbc", cbc_path="/nonexistent/cbc") == (
        "solver cbc is not installed: pip install 'peakpilot[cbc]'"
    )
    assert solver_missing("glpk") == "unknown solver 'glpk': use 'highs' or 'cbc'"
