"""spec.prometheus.workloadsQuery: every load from one `by (label)` query, checked per series,
with each workload it does not answer for falling back to its own load.query (or holding).
In memory: the answers are Prometheus API results as the adapter parses them; no network."""

from __future__ import annotations

import math
from typing import Any

import pytest
from test_reconcile import QUERY, FakeCluster, body, run

from peakpilot.kube import KubeError
from peakpilot.observe import MAX_BULK_HISTORY_POINTS, observe
from peakpilot.prometheus import (
    ByLabel,
    MetricError,
    PrometheusSettings,
    check_instant_by,
    split_by,
)
from peakpilot.reconcile import PolicyState
from peakpilot.translate import to_policy
from peakplan.controller import Memory

BULK = 'sum by (workload) (rate(http_requests_total{namespace="shop"}[1m]))'
NOW = 1000.0


def series(value: Any, stamp: float = NOW, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [stamp, str(value)]}


# ---------------------------------------------------------------------------------------------
# the strict checks, per series


def test_each_series_gives_the_load_of_the_workload_its_label_names() -> None:
    answer = [series(120.5, workload="web"), series(0, workload="api")]
    assert check_instant_by(BULK, "workload", answer, NOW, 120) == ByLabel(
        {"web": 120.5, "api": 0.0}, {}
    )


def test_a_label_value_on_two_series_is_refused_never_summed_or_picked() -> None:
    answer = [
        series(1, workload="web", pod="a"),
        series(2, workload="web", pod="b"),
        series(3, workload="api"),
    ]
    got = check_instant_by(BULK, "workload", answer, NOW, 120)
    assert got.values == {"api": 3.0}
    assert "2 series carry workload='web'" in got.refused["web"]
    assert "by (workload)" in got.refused["web"]


@pytest.mark.parametrize(
    ("value", "why"),
    [("NaN", "NaN"), ("+Inf", "+Inf"), ("-1", "negative"), ("1e300", "above"), ("x", "number")],
)
def test_a_value_that_fails_the_checks_refuses_that_workload_only(value: str, why: str) -> None:
    answer = [series(value, workload="web"), series(5, workload="api")]
    got = check_instant_by(BULK, "workload", answer, NOW, 120)
    assert got.values == {"api": 5.0}
    assert why in got.refused["web"] and got.refused["web"].startswith("workload='web'")


def test_a_stale_series_is_refused() -> None:
    got = check_instant_by(BULK, "workload", [series(5, NOW - 600, workload="web")], NOW, 120)
    assert got.values == {} and "stale" in got.refused["web"]


def test_series_without_the_label_are_ignored_and_counted() -> None:
    answer = [series(7, workload="web"), series(9), series(9, workload="")]
    got = check_instant_by(BULK, "workload", answer, NOW, 120)
    assert got.values == {"web": 7.0} and got.unlabelled == 2


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ([], "no series"),
        ([series(3, app="web")], "no series of the query carries the label 'workload'"),
        ("text", "unexpected answer type"),
    ],
)
def test_an_answer_naming_no_workload_is_an_error(answer: Any, why: str) -> None:
    with pytest.raises(MetricError, match=why):
        check_instant_by(BULK, "workload", answer, NOW, 120)


def test_range_series_split_by_label_leave_out_duplicates_and_bad_points() -> None:
    matrix = [
        {"metric": {"workload": "web"}, "values": [[1, "1"], [2, "NaN"], [3, "-4"], [4, "2"]]},
        {"metric": {"workload": "api"}, "values": [[1, "5"]]},
        {"metric": {"workload": "api", "pod": "b"}, "values": [[1, "6"]]},
        {"metric": {}, "values": [[1, "7"]]},
    ]
    assert split_by("workload", matrix) == {"web": [(1.0, 1.0), (4.0, 2.0)]}


# ---------------------------------------------------------------------------------------------
# observing with it: one query, and the fallbacks


class BulkPrometheus:
    """A Prometheus answering the workloads query with `answer` (a MetricError: it fails) and
    each workload's own query from `own` (None or missing: it fails); it counts the queries."""

    def __init__(
        self,
        answer: list[dict[str, Any]] | MetricError,
        own: dict[str, float | None] | None = None,
        matrix: list[dict[str, Any]] | None = None,
    ) -> None:
        self.answer = answer
        self.own = own or {}
        self.matrix = matrix or []
        self.queries: list[tuple[str, str]] = []  # (kind, query)

    def __call__(self, settings: PrometheusSettings) -> BulkPrometheus:
        return self

    def instant(self, query: str, at: float | None = None) -> float:
        self.queries.append(("instant", query))
        value = next((v for n, v in self.own.items() if query == QUERY % n), None)
        if value is None:
            raise MetricError(f"no data: {query}")
        return value

    def history(
        self, query: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        self.queries.append(("range", query))
        return []

    def instant_by(self, query: str, label: str, at: float | None = None) -> ByLabel:
        self.queries.append(("instant_by", query))
        if isinstance(self.answer, MetricError):
            raise self.answer
        assert at is not None
        return check_instant_by(query, label, self.answer, at, 120)

    def history_by(
        self, query: str, label: str, start: float, end: float, step: float
    ) -> dict[str, list[tuple[float, float]]]:
        self.queries.append(("range_by", query))
        self.step = step
        return split_by(label, self.matrix)

    def close(self) -> None:
        pass


def bulk_body(*names: str, own: bool = True, **spec: Any) -> dict[str, Any]:
    doc = body(*names, **spec)
    doc["spec"]["prometheus"]["workloadsQuery"] = {"query": BULK}
    if not own:
        for w in doc["spec"]["workloads"]:
            del w["load"]
    return doc


def loads_of(doc: dict[str, Any], prom: BulkPrometheus) -> dict[str, tuple[float | None, Any]]:
    from peakpilot import api

    spec = api.ScalingPolicySpec.model_validate(doc["spec"])
    names = [w.name for w in spec.workloads]
    seen = observe(
        None, prom, spec, to_policy(spec), "shop", Memory(), set(), NOW, dict.fromkeys(names, 1)
    )
    return {n: (w.load, w.error) for n, w in seen.observation.workloads.items()}


def test_every_load_comes_from_one_query() -> None:
    names = [f"w{i}" for i in range(200)]
    prom = BulkPrometheus([series(i, workload=n) for i, n in enumerate(names)])
    loads = loads_of(bulk_body(*names), prom)
    assert {n: v for n, (v, _) in loads.items()} == {n: float(i) for i, n in enumerate(names)}
    assert prom.queries == [("instant_by", BULK)]  # reactive: no history to warm


def test_a_workload_refused_or_missing_reads_its_own_query() -> None:
    answer = [series(1, workload="dup"), series(2, workload="dup"), series(3, workload="ok")]
    prom = BulkPrometheus(answer, own={"dup": 40.0, "gone": 50.0})
    loads = loads_of(bulk_body("ok", "dup", "gone"), prom)
    assert loads == {"ok": (3.0, None), "dup": (40.0, None), "gone": (50.0, None)}
    assert sorted(q for kind, q in prom.queries if kind == "instant") == [
        QUERY % "dup",
        QUERY % "gone",
    ]


def test_without_its_own_query_a_refused_workload_has_no_load_and_says_why() -> None:
    answer = [series("NaN", workload="bad"), series(3, workload="ok")]
    loads = loads_of(bulk_body("ok", "bad", "gone", own=False), BulkPrometheus(answer))
    assert loads["ok"] == (3.0, None)
    assert loads["bad"][0] is None and "NaN" in loads["bad"][1]
    assert loads["gone"] == (None, "not in the answer of spec.prometheus.workloadsQuery")


def test_when_its_own_query_fails_too_both_reasons_are_kept() -> None:
    answer = [series(1, workload="dup"), series(2, workload="dup"), series(3, workload="ok")]
    loads = loads_of(bulk_body("ok", "dup"), BulkPrometheus(answer))
    assert loads["dup"][0] is None
    assert "2 series carry" in loads["dup"][1] and "load.query: no data" in loads["dup"][1]


def test_a_failed_workloads_query_falls_back_to_every_own_query_and_is_a_problem() -> None:
    prom = BulkPrometheus(MetricError("Prometheus rejected the query"), own={"a": 1.0, "b": 2.0})
    cluster = FakeCluster({"a": 1, "b": 1})
    outcome = run(cluster, prom, bulk_body("a", "b"))  # type: ignore[arg-type]
    assert [w["load"] for w in outcome.status["lastPlan"]["workloads"]] == [1.0, 2.0]
    ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    assert "workloadsQuery: Prometheus rejected the query" in ready["message"]


def test_a_workload_missing_from_the_answer_is_never_scaled_down() -> None:
    cluster = FakeCluster({"web": 20, "api": 2})
    prom = BulkPrometheus([series(100, workload="api")])  # nothing for web, and no own query
    outcome = run(cluster, prom, bulk_body("web", "api", own=False))  # type: ignore[arg-type]
    assert cluster.replicas["web"] == 20  # held: data missing is no reason to scale down
    assert cluster.replicas["api"] == 13  # 100 rps at 10 a replica and 80 %
    metrics = next(c for c in outcome.status["conditions"] if c["type"] == "MetricsAvailable")
    assert metrics["status"] == "False" and "web" in metrics["message"]


def test_forecasts_are_warmed_from_one_range_query() -> None:
    names = [f"w{i}" for i in range(50)]
    matrix = [
        {"metric": {"workload": n}, "values": [[NOW - 3600 + 60 * k, "10"] for k in range(60)]}
        for n in names
    ]
    prom = BulkPrometheus([series(10, workload=n) for n in names], matrix=matrix)
    state = PolicyState()
    doc = bulk_body(*names, forecast={"method": "auto", "history": "1h"})
    run(FakeCluster(dict.fromkeys(names, 2)), prom, doc, state)  # type: ignore[arg-type]
    assert [kind for kind, _ in prom.queries] == ["instant_by", "range_by"]
    assert state.warmed == set(names)
    assert all(state.memory.of(n).forecaster is not None for n in names)
    run(FakeCluster(dict.fromkeys(names, 2)), prom, doc, state, now=NOW + 15)  # type: ignore[arg-type]
    assert [kind for kind, _ in prom.queries] == ["instant_by", "range_by", "instant_by"]


def test_the_bulk_warm_up_step_bounds_the_answer() -> None:
    names = [f"w{i}" for i in range(1000)]
    prom = BulkPrometheus([series(10, workload=n) for n in names])
    doc = bulk_body(*names, forecast={"method": "auto", "history": "7d"})
    run(FakeCluster(dict.fromkeys(names, 2)), prom, doc)  # type: ignore[arg-type]
    points = 7 * 86400 / prom.step * len(names)
    assert points <= MAX_BULK_HISTORY_POINTS and prom.step == math.ceil(prom.step)


def test_many_targets_are_read_with_one_list() -> None:
    names = [f"w{i}" for i in range(50)]
    cluster = FakeCluster(dict.fromkeys(names, 2))
    cluster.fail[("read", "w7")] = KubeError("Deployment/w7: not found", 404)
    prom = BulkPrometheus([series(10, workload=n) for n in names])
    outcome = run(cluster, prom, bulk_body(*names))  # type: ignore[arg-type]
    assert cluster.lists == 1
    assert "w7: Deployment/w7: not found" in next(
        c["message"] for c in outcome.status["conditions"] if c["type"] == "Ready"
    )
    cluster = FakeCluster(dict.fromkeys(names, 2))
    cluster.fail[("list", "shop")] = KubeError("listing deployments: HTTP 500", 500)
    run(cluster, prom, bulk_body(*names))  # type: ignore[arg-type]
    assert cluster.lists == 0 and cluster.replicas["w1"] == 2  # read one by one instead
