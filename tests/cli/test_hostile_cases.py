"""Every named hostile input (hostile_cases.CASES) through the real CLI, in subprocesses with a
memory limit and a timeout: exit 2, one problem line that names the field, no traceback.

The cases run in parallel once per session; each is then its own test, so a failure names it.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from hostile_cases import CASES, POLICY, SNAPSHOT, Case, Outcome, clean, run

TIMEOUT = 60.0  # a hang, not a slow case: every case takes about a second


def _run(case: Case) -> Outcome:
    with tempfile.TemporaryDirectory() as folder:
        return run(case.build(Path(folder)), case.env, TIMEOUT, case.stdin)


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip((c.name for c in CASES), pool.map(_run, CASES), strict=True))


def test_case_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_one_clean_line(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.name]
    assert not outcome.hung, f"no answer within {TIMEOUT:g}s"
    assert not outcome.traceback, outcome.stderr[-2000:]
    assert outcome.code == 2, (outcome.code, outcome.stderr[-2000:])
    assert outcome.stdout == "", "nothing but our own output on stdout, and none on an error"
    assert clean(case, outcome), (
        f"expected one problem line naming {case.field!r}, got:\n{outcome.stderr}"
    )


def _write(tmp_path: Path, policy: str) -> list[str]:
    p = tmp_path / "policy.yaml"
    p.write_text(policy)
    s = tmp_path / "snapshot.yaml"
    s.write_text(yaml.safe_dump(SNAPSHOT))
    return ["plan", str(p), "--metrics", str(s), "-o", "json"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("maxReplicas: 30", "maxReplicas: 30.0"),
        ("minReplicas: 1", "minReplicas: null"),
        ("interval: 15s", "interval: null"),
        ("capacityPerReplica: 50", "capacityPerReplica: 50.0"),
        ("kind: Deployment", "kind: Deployment\n      apiVersion: null"),
    ],
    ids=["integral-float", "null-int", "null-duration", "float-capacity", "null-api-version"],
)
def test_what_kubectl_apply_accepts_plans(tmp_path: Path, old: str, new: str) -> None:
    text = yaml.safe_dump(POLICY, sort_keys=False)
    assert old in text
    outcome = run(_write(tmp_path, text.replace(old, new)))
    assert outcome.code == 0, outcome.stderr
    assert not outcome.traceback
