"""The operator's pure parts (no cluster): spec -> values, referenced Secrets, the no-op-write
check, status, Events, queue."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
from typing import Any

import pytest

from gameplane_operator.desired import contains, prepare, up_to_date
from gameplane_operator.refs import Resolution, resolve, secret_refs
from gameplane_operator.scheduler import Scheduler
from gameplane_operator.status import Outcome, WorkloadInfo, compute, events
from gameplane_operator.values import Defaults, chart_values, enabled_services

KEYS = {"postgres-password": "pw"}
PLATFORM: dict[str, Any] = {
    "apiVersion": "gameplane.io/v1alpha1",
    "kind": "GamingPlatform",
    "metadata": {"name": "demo", "namespace": "casino", "uid": "u-1", "generation": 2},
    "spec": {"version": "0.1.0"},
}


def test_enabled_services_defaults_and_overrides() -> None:
    assert enabled_services({"version": "1.0.0"}) == [
        "gateway", "players", "wallet", "games", "sessions", "payments", "bonus", "risk", "affiliates", "analytics",
        "web", "backoffice"]
    assert "rgs" not in enabled_services({})
    spec = {"services": [{"name": "rgs", "enabled": True}, {"name": "sessions", "enabled": False}]}
    assert enabled_services(spec) == ["gateway", "players", "wallet", "games", "payments", "bonus", "risk",
                                      "affiliates", "analytics", "web", "backoffice", "rgs"]


def test_a_service_that_is_not_built_never_renders_even_if_the_spec_asks(backoffice_unbuilt: str) -> None:
    # A platform stored before the CRD's rule existed: the operator still renders no Deployment of
    # code the image does not have.
    spec = {"version": "0.1.0",
            "services": [{"name": "backoffice", "enabled": True}]}
    v = chart_values("demo", spec, KEYS)
    assert v["backoffice"]["enabled"] is False
    assert "backoffice" not in enabled_services(spec)
    assert v["wallet"]["enabled"] is True  # negative control: a built service stays on


def test_chart_values_map_the_spec() -> None:
    spec = {
        "version": "0.2.0",
        "size": "large",
        "services": [{"name": "games", "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5}},
                     {"name": "wallet", "replicas": 3}],
        "database": {"mode": "external", "external": {"secretRef": {"name": "db", "key": "dsn"}}},
        "messaging": {"mode": "external", "url": "nats://nats:4222"},
        "monitoring": {"labels": {"release": "prom"}},
        "faults": [{"scenario": "latency", "service": "backoffice", "enabled": False}, {"scenario": "errors"}],
        "providers": [{"name": "acme", "baseUrl": "https://acme", "secretRef": {"name": "acme-keys"}}],
    }  # fmt: skip
    v = chart_values("demo", spec, KEYS)
    assert v["games"]["autoscaling"] == {"enabled": True, "minReplicas": 2, "maxReplicas": 5,
                                         "cpuTargetPercent": 70, "rpsTarget": 0}  # fmt: skip
    assert v["wallet"]["replicas"] == 3
    assert v["gateway"]["database"] == {"enabled": False} and v["gateway"]["exposed"] is True
    assert v["global"]["database"] == {"secretName": "db", "secretKey": "dsn"}
    assert v["global"]["natsUrl"] == "nats://nats:4222"
    assert v["postgres"] == {"enabled": False} and v["nats"] == {"enabled": False}
    assert v["global"]["faults"] == [{"scenario": "errors", "service": "", "ratio": "1"}]
    assert v["global"]["monitoring"]["labels"] == {"release": "prom"}
    assert v["games"]["providers"] == [{"name": "acme", "baseUrl": "https://acme", "secretName": "acme-keys"}]
    assert v["secrets"]["postgresPassword"] == ""  # no dev database, no password
    assert v["global"]["managedBy"] == "gameplane-operator"


def test_no_spec_providers_means_no_provider_for_games_or_the_simulator() -> None:
    spec = {"version": "0.2.0", "services": [{"name": "rgs", "enabled": True}]}
    v = chart_values("demo", spec, KEYS)
    assert "providers" not in v["games"] and "providers" not in v["rgs"]
    spec["providers"] = [{"name": "acme", "baseUrl": "https://acme", "secretRef": {"name": "acme-keys"}},
                         {"name": "rgs", "baseUrl": "http://demo-rgs", "secretRef": {"name": "rgs-keys"}}]
    v = chart_values("demo", spec, KEYS)
    assert [p["name"] for p in v["games"]["providers"]] == ["acme", "rgs"]
    # The simulator signs as "rgs": it is handed that Secret and no other provider's.
    assert v["rgs"]["providers"] == [{"name": "rgs", "baseUrl": "http://demo-rgs", "secretName": "rgs-keys"}]
    # payment providers are payments' alone: not games', not the game simulator's
    assert "paymentProviders" not in v["games"] and "paymentProviders" not in v["rgs"]


def test_payment_providers_reach_payments_and_the_psp_simulator_only_its_dialects() -> None:
    spec: dict[str, Any] = {"version": "0.2.0", "services": [{"name": "psp", "enabled": True}]}
    v = chart_values("demo", spec, KEYS)
    assert "paymentProviders" not in v["payments"] and "paymentProviders" not in v["psp"]
    spec["paymentProviders"] = [
        {"name": "payfast", "baseUrl": "https://api.payfast.example", "secretRef": {"name": "payfast-keys"}},
        {"name": "simpsp", "baseUrl": "http://demo-psp:8000", "secretRef": {"name": "simpsp-keys"}},
        {"name": "cardgw", "baseUrl": "http://demo-psp:8000", "secretRef": {"name": "cardgw-keys"}}]
    v = chart_values("demo", spec, KEYS)
    assert v["payments"]["paymentProviders"] == [
        {"name": "payfast", "baseUrl": "https://api.payfast.example", "secretName": "payfast-keys"},
        {"name": "simpsp", "baseUrl": "http://demo-psp:8000", "secretName": "simpsp-keys"},
        {"name": "cardgw", "baseUrl": "http://demo-psp:8000", "secretName": "cardgw-keys"}]
    # the simulator signs as simpsp and cardgw: it never holds a real PSP's Secret
    assert [p["secretName"] for p in v["psp"]["paymentProviders"]] == ["simpsp-keys", "cardgw-keys"]
    assert "providers" not in v["payments"] and "providers" not in v["psp"]
    assert not any("paymentProviders" in v[n] for n in ("games", "wallet", "gateway", "rgs"))


def _env(values: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in values.get("extraEnv") or []}


def test_browser_facing_addresses_come_from_the_sites_the_providers_and_the_psps() -> None:
    spec: dict[str, Any] = {
        "version": "0.2.0", "services": [{"name": "rgs", "enabled": True}],
        "sites": {"web": {"host": "www.casino.example", "ingress": {"enabled": True, "className": "nginx",
                                                                   "tlsSecretName": "www-tls"}},
                  "backoffice": {"host": "office.casino.example", "ingress": {"enabled": True}}},
        "providers": [{"name": "acme", "baseUrl": "http://acme-api.internal", "gameUrl": "https://play.acme.example",
                       "secretRef": {"name": "acme-keys"}},
                      {"name": "rgs", "baseUrl": "http://demo-rgs", "secretRef": {"name": "rgs-keys"}}],
        "paymentProviders": [{"name": "payfast", "baseUrl": "https://api.payfast.example",
                              "hostedUrl": "https://pay.payfast.example/checkout", "secretRef": {"name": "pf"}}],
    }  # fmt: skip
    v = chart_values("demo", spec, KEYS)
    web = _env(v["web"])
    assert web["GP_WEB_PUBLIC_URL"] == "https://www.casino.example"
    # each studio's browser-facing address; one without a gameUrl is not framed at all
    assert json.loads(web["GP_WEB_GAME_URLS"]) == {"acme": "https://play.acme.example"}
    assert json.loads(web["GP_WEB_PSP_URLS"]) == ["https://pay.payfast.example/checkout"]
    assert web["GP_WEB_FORWARDED_FOR_HOPS"] == "1"
    assert v["web"]["ingress"] == {"enabled": True, "host": "www.casino.example", "className": "nginx",
                                   "tlsSecretName": "www-tls"}  # fmt: skip
    assert v["backoffice"]["ingress"]["host"] == "office.casino.example"
    assert json.loads(_env(v["sessions"])["GP_SESSIONS_GAME_URLS"]) == {"acme": "https://play.acme.example"}
    assert _env(v["payments"])["GP_PAYMENTS_RETURN_URL"] == (
        "https://www.casino.example/cashier/return?reference={reference}")
    assert json.loads(_env(v["rgs"])["GP_RGS_ALLOWED_PARENTS"]) == ["https://www.casino.example"]
    # an exposed site without a TLS Secret is plain http, and nobody else gets an ingress from sites
    spec["sites"]["web"]["ingress"] = {"enabled": True}
    assert _env(chart_values("demo", spec, KEYS)["web"])["GP_WEB_PUBLIC_URL"] == "http://www.casino.example"
    assert "ingress" not in v["gateway"] and "ingress" not in v["wallet"]


def test_without_sites_or_game_urls_no_development_address_reaches_a_cluster() -> None:
    v = chart_values("demo", {"version": "0.2.0", "providers": [
        {"name": "acme", "baseUrl": "https://acme", "secretRef": {"name": "acme-keys"}}]}, KEYS)
    web = _env(v["web"])
    # the site's own 127.0.0.1 defaults for studios and PSPs are replaced by "none known"
    assert json.loads(web["GP_WEB_GAME_URLS"]) == {} and json.loads(web["GP_WEB_PSP_URLS"]) == []
    assert "GP_WEB_PUBLIC_URL" not in web and "ingress" not in v["web"]
    assert "extraEnv" not in v["sessions"] and "extraEnv" not in v["payments"]


def test_prepare_owns_and_hashes_and_turns_string_data_into_data() -> None:
    rendered = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-secrets"}, "stringData": {"k": "v"}}]
    (obj,) = prepare(rendered, PLATFORM)
    assert obj["data"] == {"k": base64.b64encode(b"v").decode()} and "stringData" not in obj
    assert obj["metadata"]["namespace"] == "casino"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert obj["metadata"]["labels"]["gameplane.io/platform"] == "demo"
    (again,) = prepare(rendered, PLATFORM)
    assert again == obj  # deterministic: the same render gives the same hash
    changed = copy.deepcopy(rendered)
    changed[0]["stringData"]["k"] = "w"
    assert prepare(changed, PLATFORM)[0]["metadata"]["annotations"] != obj["metadata"]["annotations"]


def test_up_to_date_ignores_server_defaults_but_sees_drift() -> None:
    want = prepare([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                     "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "ports": [
                         {"containerPort": 8000}]}]}}}}], PLATFORM)[0]  # fmt: skip
    live = copy.deepcopy(want)
    live["metadata"]["resourceVersion"] = "7"
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"  # defaulted
    live["status"] = {"readyReplicas": 2}
    assert up_to_date(live, want)
    live["spec"]["replicas"] = 5  # kubectl scale
    assert not up_to_date(live, want)
    assert not up_to_date(None, want)
    stale = copy.deepcopy(want)
    stale["metadata"]["annotations"]["gameplane.io/applied-hash"] = "old"
    assert not up_to_date(stale, want)  # a field may have been dropped from the render


def test_contains_treats_empty_as_absent_and_lists_strictly() -> None:
    assert contains({"a": 1}, {"a": 1, "b": {}})
    assert not contains({"a": [1, 2]}, {"a": [1]})
    assert not contains({"a": True}, {"a": "true"})
    assert contains({"port": 80}, {"port": 80})


def _status(workloads: dict[str, WorkloadInfo], outcome: Outcome | None = None, **kw: Any) -> dict[str, Any]:
    return compute(
        platform=kw.get("platform", PLATFORM), services=["gateway", "wallet"], workloads=workloads,
        autoscalers={}, endpoints={}, outcome=outcome or Outcome(True, "Applied", "9 objects in sync"),
        paused=kw.get("paused", False), dashboards=[], now=kw.get("now", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    )  # fmt: skip


def test_status_counts_ready_services_and_keeps_transition_times() -> None:
    ready = WorkloadInfo("gateway", "demo-gateway", 1, 1, 1, True, "")
    waiting = WorkloadInfo("wallet", "demo-wallet", 2, 1, 2, True, "")
    first = _status({"gateway": ready, "wallet": waiting})
    cond = {c["type"]: c for c in first["conditions"]}
    assert first["serviceSummary"] == "1/2" and cond["Ready"]["status"] == "False"
    assert "waiting for wallet" in cond["Ready"]["message"]
    later = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    second = _status({"gateway": ready, "wallet": waiting}, platform={**PLATFORM, "status": first}, now=later)
    assert second == first  # nothing changed: identical status, so no write
    done = WorkloadInfo("wallet", "demo-wallet", 2, 2, 2, True, "")
    third = _status({"gateway": ready, "wallet": done}, platform={**PLATFORM, "status": first}, now=later)
    assert ("Normal", "AllServicesReady", "all 2 services ready") in events(first, third)
    assert {c["type"]: c for c in third["conditions"]}["Ready"]["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_status_reports_failures_and_pause() -> None:
    stuck = WorkloadInfo("wallet", "demo-wallet", 1, 0, 1, True, "ProgressDeadlineExceeded")
    s = _status({"wallet": stuck}, Outcome(False, "ApplyFailed", "forbidden"))
    cond = {c["type"]: c for c in s["conditions"]}
    assert (cond["Ready"]["reason"], cond["Reconciled"]["status"]) == ("ApplyFailed", "False")
    assert cond["Degraded"]["status"] == "True" and "ProgressDeadlineExceeded" in cond["Degraded"]["message"]
    paused = {c["type"]: c for c in _status({}, paused=True)["conditions"]}
    assert paused["Reconciled"]["reason"] == "Paused"


async def test_scheduler_coalesces_nudges_and_bounds_workers() -> None:
    runs: list[tuple[tuple[str, str], bool]] = []
    active = peak = 0

    async def run(key: tuple[str, str], full: bool) -> bool:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        runs.append((key, full))
        return True

    sched = Scheduler(run, workers=2, debounce=0.02, resync=3600)
    for _ in range(20):  # a burst of events for one platform...
        sched.nudge(("ns", "a"), full=False)
    sched.nudge(("ns", "a"), full=True)
    for name in "bcde":  # ...and four more platforms
        sched.nudge(("ns", name))
    await asyncio.sleep(0.5)
    await sched.close()
    assert [r for r in runs if r[0] == ("ns", "a")] == [(("ns", "a"), True)]  # one run, and a full one
    assert len(runs) == 5 and peak == 2


def test_status_never_claims_a_generation_it_has_not_reconciled() -> None:
    ready = WorkloadInfo("gateway", "demo-gateway", 1, 1, 1, True, "")
    s = compute(platform=PLATFORM, services=["gateway"], workloads={"gateway": ready}, autoscalers={}, endpoints={},
                outcome=Outcome(True, "Applied", "ok"), paused=False, dashboards=[], observed_generation=1)  # fmt: skip
    assert s["observedGeneration"] == 1  # the platform is at generation 2: not reconciled yet
    assert {c["observedGeneration"] for c in s["conditions"]} == {1}


KWOK = {"nodeSelector": {"type": "kwok"},
        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]}


def test_scheduling_maps_platform_wide_and_per_service_keys_as_given() -> None:
    spec = {"version": "0.1.0", "scheduling": {**KWOK, "priorityClassName": "casino", "topologySpread": False},
            "services": [{"name": "wallet", "scheduling": {"tolerations": [], "topologySpread": True}},
                         {"name": "games", "replicas": 2}]}  # fmt: skip
    v = chart_values("demo", spec, KEYS)
    assert v["global"]["scheduling"] == {**KWOK, "priorityClassName": "casino", "topologySpread": False}
    # A key the service sets (even empty) is passed, so it overrides; unset keys stay out and inherit.
    assert v["wallet"]["scheduling"] == {"tolerations": [], "topologySpread": True}
    assert "scheduling" not in v["games"] and "scheduling" not in v["players"]
    assert "scheduling" not in chart_values("demo", {"version": "0.1.0"}, KEYS)["global"]


def test_backend_images_come_from_the_spec_then_the_operator_defaults() -> None:
    base = {"version": "0.1.0"}
    assert "image" not in chart_values("d", base, KEYS)["postgres"]  # the chart's public default
    local = Defaults(postgres_image="gameplane/dev-postgres:17", nats_image="gameplane/dev-nats:2.11")
    v = chart_values("d", base, KEYS, local)
    assert v["postgres"]["image"] == "gameplane/dev-postgres:17" and v["nats"]["image"] == "gameplane/dev-nats:2.11"
    own = {**base, "database": {"mode": "embedded", "embedded": {"image": "postgres:18-alpine"}},
           "messaging": {"mode": "embedded", "embedded": {"image": "nats:2.12-alpine"}}}  # fmt: skip
    v = chart_values("d", own, KEYS, local)
    assert v["postgres"]["image"] == "postgres:18-alpine" and v["nats"]["image"] == "nats:2.12-alpine"
    external = {**base, "database": {"mode": "external", "external": {"secretRef": {"name": "db"}}},
                "messaging": {"mode": "external", "url": "nats://nats:4222"}}  # fmt: skip
    v = chart_values("d", external, KEYS, local)
    assert v["postgres"] == {"enabled": False} and v["nats"] == {"enabled": False}


FULL_REFS_SPEC: dict[str, Any] = {
    "version": "0.1.0",
    "database": {"mode": "external", "external": {"secretRef": {"name": "casino-db", "key": "url"}}},
    "messaging": {"mode": "external", "url": "nats://n:4222", "credentialsSecretRef": {"name": "nats-creds"}},
    "providers": [{"name": "acme", "baseUrl": "https://a", "secretRef": {"name": "acme-keys"}}],
    "paymentProviders": [{"name": "payfast", "baseUrl": "https://p", "secretRef": {"name": "payfast-keys"}}],
    "gateway": {"host": "c.example", "ingress": {"enabled": True, "tlsSecretName": "casino-tls"}},
}


def test_secret_references_name_the_secret_key_namespace_and_field() -> None:
    refs = secret_refs(FULL_REFS_SPEC)
    assert [(r.name, r.key) for r in refs] == [("casino-db", "url"), ("nats-creds", "nats.creds"),
                                               ("acme-keys", None), ("payfast-keys", "secret"),
                                               ("casino-tls", "tls.crt")]
    nothing = resolve(refs, "casino", lambda name: None)
    assert (nothing.ok, nothing.reason) == (False, "SecretNotFound")
    assert "Secret casino-db not found in namespace casino (spec.database.external.secretRef)" in nothing.message
    assert "spec.paymentProviders[0].secretRef (payfast)" in nothing.message
    present = {"casino-db": frozenset({"dsn"}), "nats-creds": frozenset({"nats.creds"}), "acme-keys": frozenset(),
               "payfast-keys": frozenset({"secret"}), "casino-tls": frozenset({"tls.crt", "tls.key"})}  # fmt: skip
    wrong_key = resolve(refs, "casino", present.get)
    assert (wrong_key.ok, wrong_key.reason) == (False, "SecretKeyNotFound")
    assert wrong_key.message == ("Secret casino-db in namespace casino has no key url "
                                 "(spec.database.external.secretRef)")  # fmt: skip
    present["casino-db"] = frozenset({"url"})
    assert resolve(refs, "casino", present.get).ok
    # a PSP's Secret without its webhook key: payments could not start
    present["payfast-keys"] = frozenset({"api_key"})
    no_psp_key = resolve(refs, "casino", present.get)
    assert (no_psp_key.ok, no_psp_key.reason) == (False, "SecretKeyNotFound")
    assert "Secret payfast-keys in namespace casino has no key secret (spec.paymentProviders[0].secretRef" \
        in no_psp_key.message
    # A platform with embedded backends and no integrations references nothing.
    assert resolve(secret_refs({"version": "0.1.0"}), "casino", lambda n: None) == Resolution(
        True, "NoSecretsReferenced", "the platform references no Secret of its own")
    # Only what is used: an Ingress without TLS and an embedded database reference no Secret.
    assert secret_refs({"gateway": {"host": "h", "ingress": {"enabled": True}},
                        "database": {"mode": "embedded", "external": {"secretRef": {"name": "x"}}}}) == []


def _full(**kw: Any) -> dict[str, Any]:
    ready = WorkloadInfo("gateway", "demo-gateway", 1, 1, 1, True, "", total=1)
    args: dict[str, Any] = dict(platform=PLATFORM, services=["gateway"], workloads={"gateway": ready},
                                autoscalers={}, endpoints={}, outcome=Outcome(True, "Applied", "ok"), paused=False,
                                dashboards=[], now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))  # fmt: skip
    args.update(kw)
    return compute(**args)


def _cond(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == ctype)


def test_a_missing_secret_blocks_ready_with_its_own_condition() -> None:
    missing = Resolution(False, "SecretNotFound", "Secret casino-db not found in namespace casino (...)")
    s = _full(secrets=missing)
    assert (_cond(s, "Ready")["status"], _cond(s, "Ready")["reason"]) == ("False", "SecretNotFound")
    assert (_cond(s, "SecretsResolved")["status"], _cond(s, "SecretsResolved")["reason"]) == ("False", "SecretNotFound")
    assert _cond(s, "Ready")["message"] == missing.message
    fine = _full(secrets=Resolution(True, "AllSecretsFound", "1 referenced Secrets found: casino-db"))
    assert _cond(fine, "Ready")["status"] == "True" and _cond(fine, "SecretsResolved")["status"] == "True"


def test_platform_waits_for_its_development_postgres_and_nats() -> None:
    starting = WorkloadInfo("postgres", "demo-postgres", 1, 0, 1, True, "", total=1)
    nats = WorkloadInfo("nats", "demo-nats", 1, 1, 1, True, "", total=1)
    gateway = WorkloadInfo("gateway", "demo-gateway", 1, 1, 1, True, "", total=1)
    s = _full(workloads={"gateway": gateway, "postgres": starting, "nats": nats}, backends=("postgres", "nats"))
    ready = _cond(s, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "BackendsNotReady")
    assert "waiting for the development PostgreSQL" in ready["message"] and s["serviceSummary"] == "1/1"
    up = WorkloadInfo("postgres", "demo-postgres", 1, 1, 1, True, "", total=1)
    s = _full(workloads={"gateway": gateway, "postgres": up, "nats": nats}, backends=("postgres", "nats"))
    assert _cond(s, "Ready")["status"] == "True"
    # An external database: no PostgreSQL of its own to wait for (negative control).
    s = _full(workloads={"gateway": gateway, "nats": nats}, backends=("nats",))
    assert _cond(s, "Ready")["status"] == "True"


@pytest.mark.parametrize(
    ("ready", "updated", "total", "done"),
    [
        (2, 1, 3, False),  # surge: 2 old ready, 1 new starting
        (2, 2, 3, False),  # 2 new (1 ready) + 1 old ready: readyReplicas says 2, the rollout is not done
        (2, 2, 2, True),  # old ones gone, both new ones ready
        (1, 2, 2, False),  # new ones in place, one not ready yet
    ],
)
def test_a_rollout_counts_only_when_new_pods_are_the_ready_ones(ready: int, updated: int, total: int,
                                                                 done: bool) -> None:  # fmt: skip
    w = WorkloadInfo("wallet", "demo-wallet", 2, ready, updated, True, "", total=total)
    s = _full(services=["wallet"], workloads={"wallet": w})
    assert (_cond(s, "Ready")["status"] == "True") is done
    assert s["services"][0]["updatedReplicas"] == updated


def _with(status: dict[str, Any], **conds: tuple[str, str]) -> dict[str, Any]:
    return {"conditions": [{"type": t, "status": v, "reason": r, "message": f"{t} {r}"} for t, (v, r) in conds.items()]}


def test_warning_events_only_for_real_problems() -> None:
    empty: dict[str, Any] = {}
    starting = _with(empty, Ready=("False", "ServicesNotReady"), Reconciled=("True", "Applied"),
                     SecretsResolved=("True", "NoSecretsReferenced"), Degraded=("False", "AsExpected"),
                     FaultsActive=("False", "NoFaults"))  # fmt: skip
    # A platform starting up: Normal, and nothing for conditions that merely begin True/False.
    assert events(empty, starting) == [("Normal", "ServicesNotReady", "Ready ServicesNotReady")]
    ready = _with(empty, Ready=("True", "AllServicesReady"))
    assert events(starting, ready) == [("Normal", "AllServicesReady", "Ready AllServicesReady")]
    broken = _with(empty, Ready=("False", "ApplyFailed"), Reconciled=("False", "ApplyFailed"),
                   Degraded=("True", "ApplyFailed"))  # fmt: skip
    assert {e[0] for e in events(starting, broken)} == {"Warning"}
    secretless = _with(empty, Ready=("False", "SecretNotFound"), SecretsResolved=("False", "SecretNotFound"))
    assert events(_with(empty, Ready=("True", "AllServicesReady"), SecretsResolved=("True", "AllSecretsFound")),
                  secretless) == [("Warning", "SecretNotFound", "Ready SecretNotFound"),
                                  ("Warning", "SecretNotFound", "SecretsResolved SecretNotFound")]  # fmt: skip
    found = _with(empty, SecretsResolved=("True", "AllSecretsFound"))
    assert events(secretless, found) == [("Normal", "AllSecretsFound", "SecretsResolved AllSecretsFound")]
    stuck = _with(empty, Degraded=("True", "RolloutStuck"))
    assert events(_with(empty, Degraded=("False", "AsExpected")), stuck)[0][0] == "Warning"
    assert events(stuck, _with(empty, Degraded=("False", "AsExpected")))[0][:2] == ("Normal", "Recovered")
    paused = _with(empty, Ready=("False", "Paused"), Reconciled=("False", "Paused"))
    assert {e[0] for e in events(starting, paused)} == {"Normal"}
    drill = _with(empty, FaultsActive=("True", "FaultsInjected"))
    assert events(_with(empty, FaultsActive=("False", "NoFaults")), drill)[0][0] == "Normal"


def test_service_image_comes_from_the_spec_else_the_operator_default_as_a_whole() -> None:
    base = {"version": "0.1.0"}
    plain = chart_values("d", base, KEYS)["global"]["image"]
    assert (plain["repository"], plain["tag"]) == ("gameplane/gameplane", "")  # tag "" = spec.version
    built = Defaults(image_repository="dev/gameplane", image_tag="0f3a9c")
    g = chart_values("d", base, KEYS, built)["global"]["image"]
    assert (g["repository"], g["tag"]) == ("dev/gameplane", "0f3a9c")
    # What the API server stores for a platform that set nothing: the CRD's default repository,
    # which is no choice of the platform's.
    stored = {**base, "image": {"repository": "gameplane/gameplane", "pullPolicy": "IfNotPresent"}}
    g = chart_values("d", stored, KEYS, built)["global"]["image"]
    assert (g["repository"], g["tag"], g["pullPolicy"]) == ("dev/gameplane", "0f3a9c", "IfNotPresent")
    # A platform that names a repository or a tag keeps its choice; the default tag never lands on
    # someone else's repository, nor the default repository under the platform's own tag.
    own_repo = chart_values("d", {**base, "image": {"repository": "reg.example/gp"}}, KEYS, built)["global"]["image"]
    assert (own_repo["repository"], own_repo["tag"]) == ("reg.example/gp", "")
    own_tag = chart_values("d", {**base, "image": {"tag": "0.1.1"}}, KEYS, built)["global"]["image"]
    assert (own_tag["repository"], own_tag["tag"]) == ("gameplane/gameplane", "0.1.1")
    # Only a repository as default: the tag stays the platform's version.
    repo_only = chart_values("d", base, KEYS, Defaults(image_repository="mirror/gp"))["global"]["image"]
    assert (repo_only["repository"], repo_only["tag"]) == ("mirror/gp", "")
    # Per-service images are the spec's own and untouched by the defaults.
    svc = {**base, "services": [{"name": "wallet", "image": {"tag": "hotfix"}}]}
    assert chart_values("d", svc, KEYS, built)["wallet"]["image"] == {"tag": "hotfix"}


def test_dev_reload_is_set_only_by_the_operator_default() -> None:
    assert "dev" not in chart_values("d", {"version": "0.1.0"}, KEYS)["global"]
    assert "dev" not in chart_values("d", {"version": "0.1.0"}, KEYS, Defaults())["global"]
    v = chart_values("d", {"version": "0.1.0"}, KEYS, Defaults(dev_reload=True))
    assert v["global"]["dev"] == {"reload": True}


@pytest.mark.parametrize(("raw", "on"), [("true", True), ("1", True), ("TRUE", True), ("yes", True),
                                         ("", False), ("false", False), ("0", False), ("nope", False)])  # fmt: skip
def test_operator_config_reads_the_dev_defaults_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, on: bool
) -> None:
    from gameplane_operator.config import Config

    monkeypatch.setenv("GAMEPLANE_OPERATOR_IMAGE_REPOSITORY", "gameplane/gameplane")
    monkeypatch.setenv("GAMEPLANE_OPERATOR_IMAGE_TAG", "abc")
    monkeypatch.setenv("GAMEPLANE_OPERATOR_DEV_RELOAD", raw)
    d = Config().defaults()
    assert (d.image_repository, d.image_tag, d.dev_reload) == ("gameplane/gameplane", "abc", on)
    monkeypatch.delenv("GAMEPLANE_OPERATOR_IMAGE_REPOSITORY")
    monkeypatch.delenv("GAMEPLANE_OPERATOR_IMAGE_TAG")
    monkeypatch.delenv("GAMEPLANE_OPERATOR_DEV_RELOAD")
    assert Config().defaults() == Defaults()


def _durable(spec: dict[str, Any]) -> dict[str, Any]:
    status = _status({}, platform={**PLATFORM, "spec": {"version": "0.1.0", **spec}})
    return {c["type"]: c for c in status["conditions"]}["DataDurable"]


def test_data_durable_says_what_a_restart_of_an_ephemeral_backend_would_lose() -> None:
    # The CRD's defaults: both development servers, no volumes.
    both = _durable({})
    assert (both["status"], both["reason"]) == ("False", "EphemeralStorage")
    assert "loses every balance" in both["message"] and "spec.database.embedded.storageSize" in both["message"]
    assert "events no consumer has read" in both["message"]
    sized_db = _durable({"database": {"mode": "embedded", "embedded": {"storageSize": "5Gi"}}})
    assert (sized_db["status"], sized_db["reason"]) == ("False", "EphemeralEvents")
    assert "balance" not in sized_db["message"] and "spec.messaging.embedded.storageSize" in sized_db["message"]
    external_db = _durable({"database": {"mode": "external", "external": {"secretRef": {"name": "db", "key": "url"}}}})
    assert external_db["reason"] == "EphemeralEvents"
    sized_nats = _durable({"messaging": {"mode": "embedded", "embedded": {"storageSize": "1Gi"}}})
    assert sized_nats["reason"] == "EphemeralDatabase"
    durable = _durable({"database": {"mode": "external", "external": {"secretRef": {"name": "db", "key": "url"}}},
                        "messaging": {"mode": "embedded", "embedded": {"storageSize": "1Gi"}}})
    assert (durable["status"], durable["reason"]) == ("True", "PersistentStorage")
    assert _durable({"database": {"mode": "external"}, "messaging": {"mode": "external", "url": "nats://n:4222"}})[
        "status"] == "True"


def test_an_ephemeral_backend_is_said_once_as_a_normal_event() -> None:
    empty: dict[str, Any] = {}
    ephemeral = _with(empty, DataDurable=("False", "EphemeralEvents"))
    assert events(empty, ephemeral) == [("Normal", "EphemeralEvents", "DataDurable EphemeralEvents")]
    assert events(ephemeral, ephemeral) == []
    assert events(empty, _with(empty, DataDurable=("True", "PersistentStorage"))) == []


def test_an_exposed_sites_tls_secret_is_a_referenced_secret() -> None:
    spec = {"sites": {"web": {"host": "www.casino.example", "ingress": {"enabled": True, "tlsSecretName": "www-tls"}},
                      "backoffice": {"host": "office.casino.example", "ingress": {"enabled": False,
                                                                                "tlsSecretName": "office-tls"}}}}
    refs = secret_refs(spec)
    assert [(r.name, r.key, r.field) for r in refs] == [("www-tls", "tls.crt", "spec.sites.web.ingress.tlsSecretName")]


def test_only_a_requests_per_second_target_makes_the_reconcile_ask_for_custom_metrics_again() -> None:
    from gameplane_operator.reconcile import wants_custom_metrics

    assert wants_custom_metrics({"services": [{"name": "gateway", "autoscaling": {"enabled": True, "rpsTarget": 50}}]})
    # CPU-only autoscaling, a zero target, no services at all: the cached probe is good enough
    assert not wants_custom_metrics({"services": [{"name": "gateway", "autoscaling": {"enabled": True,
                                                                                      "cpuTargetPercent": 70}}]})
    assert not wants_custom_metrics({"services": [{"name": "gateway", "autoscaling": {"rpsTarget": 0}}]})
    assert not wants_custom_metrics({"services": [{"name": "wallet"}]}) and not wants_custom_metrics({})
