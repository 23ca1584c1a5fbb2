"""One reconcile as its five steps (read the policy, observe, decide, apply, record), against an
in-memory cluster and Prometheus: no network. The integration tests run the same code against the
API emulator, a real Prometheus and the real operator process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from peakpilot import api
from peakpilot.kube import Conflict, KubeError, Scale, Target
from peakpilot.observe import observe
from peakpilot.prometheus import AllowList, MetricError, PrometheusSettings
from peakpilot.reconcile import Outcome, PolicyState, reconcile, write_status
from peakpilot.translate import to_policy
from peakplan.controller import Memory

NS = "shop"
QUERY = 'sum(rate(http_requests_total{app="%s"}[1m]))'
FAST_UP = {"policies": [{"type": "Percent", "value": 10000, "periodSeconds": 15}]}


def workload(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": 1,
        "maxReplicas": 50,
        "load": {"query": QUERY % name},
        "capacityPerReplica": 10,
        **extra,
    }


def body(*names: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "peak", "namespace": NS, "generation": 1},
        "spec": {
            "mode": "Enforce",
            "prometheus": {"url": "http://prometheus.test:9090"},
            "forecast": {"method": "reactive"},
            "workloads": [workload(n) for n in names],
            # Any scale-up in one step (the default would take 2 -> 25 in three).
            "behavior": {"scaleUp": FAST_UP},
            **spec,
        },
    }


class FakeCluster:
    """Deployments by name: replicas, annotations; failures by name and call."""

    def __init__(self, replicas: Mapping[str, int]) -> None:
        self.replicas = dict(replicas)
        self.annotations: dict[str, dict[str, str]] = {}
        self.fail: dict[tuple[str, str], KubeError] = {}  # (call, name) -> error
        self.owned: dict[str, str] = {}  # deployment -> HPA name
        self.secrets: dict[tuple[str, str], str] = {}
        self.writes: list[tuple[str, int]] = []
        self.lists = 0  # LIST requests (a policy of more than LIST_ABOVE Deployments)

    def _check(self, call: str, name: str) -> None:
        error = self.fail.get((call, name))
        if error is not None:
            raise error

    def read_target(self, target: Target) -> dict[str, Any]:
        self._check("read", target.name)
        if target.name not in self.replicas:
            raise KubeError(f"{target}: not found", 404)
        return {"metadata": {"annotations": self.annotations.get(target.name, {})}}

    def read_scale(self, target: Target, obj: dict[str, Any] | None = None) -> Scale:
        return Scale(self.replicas[target.name], None, "1")

    def list_targets(
        self, namespace: str, api_version: str, kind: str
    ) -> dict[str, tuple[dict[str, Any], Scale]]:
        self._check("list", namespace)
        self.lists += 1
        return {
            name: (
                {"metadata": {"annotations": self.annotations.get(name, {})}},
                Scale(n, None, "1"),
            )
            for name, n in self.replicas.items()
            if ("read", name) not in self.fail
        }

    def set_replicas(self, target: Target, replicas: int, expected: int, attempts: int = 3) -> int:
        self._check("scale", target.name)
        before = self.replicas[target.name]
        self.replicas[target.name] = replicas
        self.writes.append((target.name, replicas))
        return before

    def autoscalers(self, namespace: str) -> list[tuple[str, str, dict[str, Any]]]:
        self._check("autoscalers", namespace)
        return [("HorizontalPodAutoscaler", h, {"name": d}) for d, h in self.owned.items()]

    def owners(
        self, target: Target, autoscalers: Sequence[tuple[str, str, Mapping[str, Any]]] | None
    ) -> list[str]:
        return [f"{k}/{n}" for k, n, ref in autoscalers or [] if ref.get("name") == target.name]

    def secret_value(self, namespace: str, ref: api.SecretKeyRef, *, one_line: bool = False) -> str:
        try:
            return self.secrets[(ref.name, ref.key)]
        except KeyError:
            raise KubeError(f"Secret {namespace}/{ref.name}: not found", 404) from None


class FakePrometheus:
    """Loads by workload name (None: the query fails); records the settings it was opened with."""

    def __init__(self, loads: Mapping[str, float | None]) -> None:
        self.loads = dict(loads)
        self.opened: list[PrometheusSettings] = []
        self.history_queries: list[str] = []

    def __call__(self, settings: PrometheusSettings) -> FakePrometheus:
        self.opened.append(settings)
        return self

    def _load(self, query: str) -> float | None:
        return next(v for n, v in self.loads.items() if query == QUERY % n)

    def instant(self, query: str, at: float | None = None) -> float:
        value = self._load(query)
        if value is None:
            raise MetricError(f"no data: {query}")
        return value

    def history(
        self, query: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        self.history_queries.append(query)
        value = self._load(query)
        return [] if value is None else [(start, value)]

    def close(self) -> None:
        pass


def run(
    cluster: FakeCluster,
    prom: FakePrometheus,
    policy: dict[str, Any],
    state: PolicyState | None = None,
    now: float = 1000.0,
    allowed: AllowList | None = None,
) -> Outcome:
    return reconcile(
        cluster,  # type: ignore[arg-type]
        policy,
        state or PolicyState(),
        now=now,
        allowed=allowed,
        metrics=prom,
    )


def conditions(outcome: Outcome) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in outcome.status["conditions"]}


def message(outcome: Outcome, kind: str) -> str:
    return str(next(c for c in outcome.status["conditions"] if c["type"] == kind)["message"])


def test_a_reconcile_scales_each_workload_and_records_the_plan() -> None:
    cluster = FakeCluster({"web": 2, "api": 2})
    prom = FakePrometheus({"web": 200.0, "api": 40.0})  # 10 rps a replica at 80 %: 25 and 5
    outcome = run(cluster, prom, body("web", "api"))
    assert outcome.outcome == "ok"
    assert cluster.replicas == {"web": 25, "api": 5}
    assert [e.reason for e in outcome.events] == ["ScaledUp", "ScaledUp"]
    assert conditions(outcome)["Ready"] == ("True", "Reconciled")
    assert conditions(outcome)["MetricsAvailable"] == ("True", "AllLoadsRead")
    plan = outcome.status["lastPlan"]
    assert {w["name"]: w["desired"] for w in plan["workloads"]} == {"web": 25, "api": 5}
    # load is the observed load, demand what was sized for (reactive here: the same)
    assert {w["name"]: (w["load"], w["demand"]) for w in plan["workloads"]} == {
        "web": (200.0, 200.0),
        "api": (40.0, 40.0),
    }
    api.LastPlan.model_validate(plan)  # the CRD's status schema holds it: nothing pruned
    assert list(outcome.status)[:1] == ["observedGeneration"]


def test_preview_plans_without_writing_and_says_so() -> None:
    cluster = FakeCluster({"web": 2})
    outcome = run(cluster, FakePrometheus({"web": 200.0}), body("web", mode="Preview"))
    assert cluster.writes == [] and outcome.events == []
    assert conditions(outcome)["Paused"] == ("True", "Preview")
    assert outcome.status["lastPlan"]["workloads"][0]["desired"] == 25


def test_the_summary_totals_the_plan_for_kubectl_get() -> None:
    cluster = FakeCluster({"web": 2, "api": 2})
    prom = FakePrometheus({"web": 200.0, "api": 40.0})
    priced = body("web", "api", budget={"maxCostPerHour": 5.0})
    for w in priced["spec"]["workloads"]:
        w["cost"] = {"perReplicaHour": 0.25}
    outcome = run(cluster, prom, priced)
    # 30 replicas at 0.25/h would cost 7.5/h: the 5/h budget binds, 20 replicas are planned.
    assert outcome.status["summary"] == {
        "workloads": 2,
        "desiredReplicas": 20,
        "currentReplicas": 4,
        "costPerHour": 5.0,
        "budgetPerHour": 5.0,
        "binding": "cost",
        "fallback": False,
        "paused": False,
    }
    free = run(FakeCluster({"web": 25}), FakePrometheus({"web": None}), body("web"))
    assert free.status["summary"] == {
        "workloads": 1,
        "desiredReplicas": 25,
        "currentReplicas": 25,
        "costPerHour": 0.0,
        "budgetPerHour": None,
        "binding": "none",
        "fallback": True,  # the load was not read
        "paused": False,
    }


def test_a_policy_not_planned_clears_the_summary_figures_and_shows_pause() -> None:
    cluster, prom = FakeCluster({"web": 2}), FakePrometheus({"web": 200.0})
    off = run(cluster, prom, body("web", mode="Off")).status["summary"]
    # Every key present: status is merge-patched, so a missing key would keep a stale figure.
    assert off == dict.fromkeys(off, None) | {"fallback": False, "paused": True}
    assert set(off) == {f.alias for f in api.PolicySummary.model_fields.values()}
    bad = body("web")
    bad["spec"]["workloads"][0]["minReplicas"] = -1
    assert run(cluster, prom, bad).status["summary"]["paused"] is False


def test_a_failed_scale_write_is_reported_and_does_not_use_up_the_rate_limit() -> None:
    # At most +4 pods per 60 s. The first write fails: the retry 15 s later has the whole +4.
    up = {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}
    policy = body("web", behavior={"scaleUp": up})
    cluster, prom, state = FakeCluster({"web": 4}), FakePrometheus({"web": 400.0}), PolicyState()
    cluster.fail[("scale", "web")] = Conflict("Deployment/web /scale: still conflicting", 409)
    failed = run(cluster, prom, policy, state, now=1000.0)
    assert failed.outcome == "error"
    assert [e.reason for e in failed.events] == ["ScaleFailed", "WorkloadProblems"]
    assert "web: scaling failed" in message(failed, "Ready")
    assert not state.memory.of("web").changes
    del cluster.fail[("scale", "web")]
    run(cluster, prom, policy, state, now=1015.0)
    assert cluster.replicas == {"web": 8}
    assert list(state.memory.of("web").changes) == [(1015.0, 4)]


def test_an_invalid_spec_warns_once() -> None:
    cluster, prom, state = FakeCluster({}), FakePrometheus({}), PolicyState()
    bad = body("web")
    bad["spec"]["workloads"][0]["minReplicas"] = -1
    first = run(cluster, prom, bad, state)
    assert first.outcome == "invalid"
    assert conditions(first)["Ready"] == ("False", "InvalidSpec")
    assert [e.reason for e in first.events] == ["InvalidSpec"]
    assert run(cluster, prom, bad, state).events == []  # the same problem: no second event
    assert prom.opened == []


def test_a_prometheus_not_allowed_is_refused_before_any_secret_is_read() -> None:
    cluster, prom = FakeCluster({"web": 2}), FakePrometheus({"web": 200.0})
    outcome = run(cluster, prom, body("web"), allowed=AllowList(["http://other:9090"]))
    assert outcome.outcome == "invalid" and prom.opened == []
    assert conditions(outcome)["MetricsAvailable"] == ("False", "PrometheusNotAllowed")
    assert cluster.writes == []


def test_paused_and_off_plan_nothing() -> None:
    cluster, prom = FakeCluster({"web": 2}), FakePrometheus({"web": 200.0})
    paused = body("web")
    paused["metadata"]["annotations"] = {"peakpilot.io/paused": "true"}
    assert run(cluster, prom, paused).outcome == "paused"
    off = run(cluster, prom, body("web", mode="Off"))
    assert conditions(off)["Paused"] == ("True", "ModeOff")
    assert cluster.writes == [] and prom.opened == []


def test_missing_load_keeps_current_replicas_and_warns() -> None:
    cluster = FakeCluster({"web": 9})
    outcome = run(cluster, FakePrometheus({"web": None}), body("web"))
    assert cluster.replicas == {"web": 9} and cluster.writes == []
    assert conditions(outcome)["MetricsAvailable"] == ("False", "MetricsUnavailable")
    assert [e.reason for e in outcome.events] == ["MetricsUnavailable"]


def test_targets_owned_paused_or_unreadable_are_held_and_the_others_scaled() -> None:
    cluster = FakeCluster({"owned": 2, "paused": 2, "free": 2})
    cluster.owned["owned"] = "owned-hpa"
    cluster.annotations["paused"] = {"peakpilot.io/paused": "true"}
    loads = dict.fromkeys(("owned", "paused", "free", "gone"), 200.0)
    outcome = run(cluster, FakePrometheus(loads), body("owned", "paused", "free", "gone"))
    assert outcome.outcome == "error"
    assert cluster.writes == [("free", 25)]
    ready = message(outcome, "Ready")
    assert "already scaled by HorizontalPodAutoscaler/owned-hpa" in ready
    assert "Deployment/gone: not found" in ready
    assert conditions(outcome)["Paused"] == ("True", "WorkloadsPaused")
    plan = outcome.status["lastPlan"]
    assert [w["name"] for w in plan["leftOut"]] == ["gone"]
    assert "gone" not in {w["name"] for w in plan["workloads"]}


def test_a_failed_ownership_check_holds_every_workload() -> None:
    cluster = FakeCluster({"web": 2})
    cluster.fail[("autoscalers", NS)] = KubeError("listing HorizontalPodAutoscalers: HTTP 500")
    outcome = run(cluster, FakePrometheus({"web": 200.0}), body("web"))
    assert cluster.writes == [] and outcome.outcome == "error"


def test_prometheus_auth_and_timeout_come_from_the_policy_and_its_secrets() -> None:
    cluster = FakeCluster({"web": 2})
    cluster.secrets[("prom", "token")] = "s3cret"
    prom = FakePrometheus({"web": 200.0})
    auth = {"bearerTokenSecret": {"name": "prom", "key": "token"}}
    spec = {"url": "http://prometheus.test:9090", "timeout": "7s", "auth": auth}
    run(cluster, prom, body("web", prometheus=spec))
    (settings,) = prom.opened
    assert settings.timeout == 7.0 and settings.headers == {"Authorization": "Bearer s3cret"}
    # Without the Secret the loads are missing: nothing is scaled.
    del cluster.secrets[("prom", "token")]
    missing = run(cluster, prom, body("web", prometheus=spec))
    assert "Prometheus credentials: Secret shop/prom: not found" in message(missing, "Ready")
    assert cluster.writes == [("web", 25)]  # the first reconcile's; none without the loads


def test_history_is_read_once_per_workload_to_warm_the_forecast() -> None:
    cluster, prom, state = FakeCluster({"web": 2}), FakePrometheus({"web": 200.0}), PolicyState()
    auto = body("web", forecast={"method": "auto", "history": "1h"})
    run(cluster, prom, auto, state, now=1000.0)
    run(cluster, prom, auto, state, now=1015.0)
    assert prom.history_queries == [QUERY % "web"]


def test_observe_without_a_cluster_takes_the_given_replicas_or_min_replicas() -> None:
    spec = api.ScalingPolicySpec.model_validate(body("web", "api")["spec"])
    prom = FakePrometheus({"web": 200.0, "api": 40.0})
    memory = Memory()
    seen = observe(None, prom, spec, to_policy(spec), NS, memory, set(), 1000.0, {"web": 7})
    assert {n: o.current for n, o in seen.observation.workloads.items()} == {"web": 7, "api": 1}
    assert seen.problems == []


class StatusCounter:
    """The status subresource: every PATCH kept."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.patches.append(status)


def test_the_status_is_patched_only_when_it_changed() -> None:
    cluster, prom, state = FakeCluster({"web": 2}), FakePrometheus({"web": 200.0}), PolicyState()
    writer = StatusCounter()
    outcomes = []
    for k in range(6):  # six intervals of a steady load: one scale-up, then nothing new
        outcome = run(cluster, prom, body("web"), state, now=1000.0 + 15 * k)
        write_status(writer, NS, "peak", state, outcome.status)
        outcomes.append(outcome)
    assert cluster.writes == [("web", 25)]
    # The first plan (2 -> 25) and the next (25 -> 25: current changed); then the same status
    # each interval, but for lastPlan.at and the solver's seconds, so no PATCH.
    assert [p["lastPlan"]["workloads"][0]["current"] for p in writer.patches] == [2, 25]
    assert outcomes[-1].status["lastPlan"]["at"] != writer.patches[-1]["lastPlan"]["at"]
    # A change of load is a change of the plan: written.
    prom.loads["web"] = 100.0
    outcome = run(cluster, prom, body("web"), state, now=1100.0)
    assert write_status(writer, NS, "peak", state, outcome.status)
    assert len(writer.patches) == 3
    # So is a condition's change (an invalid spec), and a restart writes once whatever it holds.
    invalid = body("web")
    invalid["spec"]["workloads"][0]["minReplicas"] = 99
    invalid["metadata"]["generation"] = 2  # as the API server counts a change of the spec
    assert write_status(writer, NS, "peak", state, run(cluster, prom, invalid, state).status)
    assert write_status(writer, NS, "peak", PolicyState(), outcome.status)


def test_a_spec_is_validated_once_per_generation() -> None:
    cluster, prom, state = FakeCluster({"web": 2}), FakePrometheus({"web": 200.0}), PolicyState()
    run(cluster, prom, body("web"), state)
    parsed = state.spec.parsed
    assert parsed is not None and state.spec.generation == 1
    run(cluster, prom, body("web"), state, now=1015.0)
    assert state.spec.parsed is parsed  # the same generation: not validated again
    edited = body("web")
    edited["metadata"]["generation"] = 2
    edited["spec"]["workloads"][0]["maxReplicas"] = 10
    outcome = run(cluster, prom, edited, state, now=1030.0)
    assert state.spec.generation == 2 and state.spec.parsed is not parsed
    assert outcome.status["lastPlan"]["workloads"][0]["desired"] == 10  # the edit is in force
