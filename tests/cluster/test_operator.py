"""The operator (kopf.testing.KopfRunner, with its own ServiceAccount's token) against the real
control plane: reconcile, Pod Security "restricted", drift repair, prune, pause, garbage collection,
Secrets a platform references but does not have, and the Events it posts.

The tests of this module run in order on one platform, like an operator's day. Its Pods go to kwok's
(tainted) fake nodes through spec.scheduling.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from clusterlib import KWOK_SCHEDULING, OPERATOR_USER, Run, free_port, restricted_namespace, wait_for
from kopf.testing import KopfRunner
from prometheus_client.parser import text_string_to_metric_families

NS = "op-demo"
NAME = "demo"
GROUP, VERSION, PLURAL = "gameplane.io", "v1alpha1", "gamingplatforms"
REPO = Path(__file__).resolve().parents[2]
# every built service, nothing else
SERVICES = ["gateway", "players", "wallet", "games", "sessions", "payments", "bonus", "risk", "affiliates",
            "analytics", "web", "backoffice"]
SPEC: dict[str, Any] = {
    "version": "0.1.0",
    "services": [
        {"name": "gateway", "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4}},
        {"name": "wallet", "replicas": 2},
    ],
    "scheduling": KWOK_SCHEDULING,
}
SELECTOR = f"gameplane.io/platform={NAME},app.kubernetes.io/managed-by=gameplane-operator"


@pytest.fixture(scope="module")
def operator(operator_env: dict[str, str]) -> Iterator[dict[str, int]]:
    ports = {"health": free_port(), "metrics": free_port()}
    keys = ("KUBECONFIG", "GAMEPLANE_OPERATOR_HELM", "GAMEPLANE_OPERATOR_DEBOUNCE_SECONDS", "PATH")
    extra = ("GAMEPLANE_OPERATOR_METRICS_PORT", "GAMEPLANE_OPERATOR_METRICS_HOST")
    saved = {k: os.environ.get(k) for k in (*keys, *extra)}
    os.environ.update({k: operator_env[k] for k in keys})
    os.environ["GAMEPLANE_OPERATOR_METRICS_PORT"] = str(ports["metrics"])
    os.environ["GAMEPLANE_OPERATOR_METRICS_HOST"] = "127.0.0.1"
    # Its own namespaces only: a second operator (the real node's, as a Pod) may run in this cluster.
    args = ["run", "--standalone", "--namespace=op-*", "--liveness", f"http://127.0.0.1:{ports['health']}/healthz",
            "-m", "gameplane_operator.handlers"]  # fmt: skip
    try:
        with KopfRunner(args, timeout=60) as runner:
            wait_for("operator liveness", lambda: _get(f"http://127.0.0.1:{ports['health']}/healthz"), 60)
            yield ports
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert runner.exception is None, runner.exception


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def metric(operator: dict[str, int], name: str, **labels: str) -> float | None:
    """One sample of the operator's own /metrics, parsed as Prometheus parses it (None: absent)."""
    text = _get(f"http://127.0.0.1:{operator['metrics']}/metrics")
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def grows(operator: dict[str, int], name: str, before: float, **labels: str) -> bool:
    return (metric(operator, name, **labels) or 0) > before


@pytest.fixture(scope="module")
def api(admin: kubernetes.client.ApiClient) -> dict[str, Any]:
    return {
        "custom": kubernetes.client.CustomObjectsApi(admin),
        "core": kubernetes.client.CoreV1Api(admin),
        "apps": kubernetes.client.AppsV1Api(admin),
        "autoscaling": kubernetes.client.AutoscalingV2Api(admin),
        "policy": kubernetes.client.PolicyV1Api(admin),
        "net": kubernetes.client.NetworkingV1Api(admin),
    }


def platform(api: dict[str, Any]) -> dict[str, Any]:
    return api["custom"].get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME)


def patch_platform(api: dict[str, Any], body: dict[str, Any]) -> None:
    api["custom"].patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME, body)


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def ready_and_current(api: dict[str, Any]) -> dict[str, Any] | None:
    obj = platform(api)
    status = obj.get("status") or {}
    ok = condition(obj, "Ready").get("status") == "True"
    return obj if ok and status.get("observedGeneration") == obj["metadata"]["generation"] else None


def deployments(api: dict[str, Any]) -> dict[str, Any]:
    return {d.metadata.name: d for d in api["apps"].list_namespaced_deployment(NS, label_selector=SELECTOR).items}


@pytest.fixture(scope="module")
def demo(operator: dict[str, int], kubectl: Run, api: dict[str, Any]) -> dict[str, Any]:
    restricted_namespace(kubectl, NS)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GamingPlatform", "metadata": {"name": NAME}, "spec": SPEC}
    api["custom"].create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    return wait_for("platform Ready", lambda: ready_and_current(api), timeout=120)


def test_platform_reconciles_to_ready(demo: dict[str, Any], api: dict[str, Any], kubectl: Run) -> None:
    status = demo["status"]
    assert status["serviceSummary"] == "12/12"
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "Reconciled", "SecretsResolved",
                                                          "MonitoringConfigured", "Degraded"}  # fmt: skip
    assert condition(demo, "SecretsResolved")["reason"] == "NoSecretsReferenced"
    assert condition(demo, "Reconciled")["reason"] == "Applied"
    assert condition(demo, "Degraded")["status"] == "False"
    # No Prometheus Operator in this cluster: reported, not hidden.
    assert condition(demo, "MonitoringConfigured")["reason"] == "PrometheusOperatorMissing"

    deps = deployments(api)
    assert set(deps) == {f"{NAME}-{s}" for s in SERVICES}  # PostgreSQL and NATS are StatefulSets
    svcs = {s.metadata.name for s in api["core"].list_namespaced_service(NS, label_selector=SELECTOR).items}
    assert svcs == {f"{NAME}-{s}" for s in SERVICES} | {f"{NAME}-nats", f"{NAME}-postgres"}
    hpas = api["autoscaling"].list_namespaced_horizontal_pod_autoscaler(NS, label_selector=SELECTOR).items
    assert [(h.metadata.name, h.spec.min_replicas, h.spec.max_replicas) for h in hpas] == [(f"{NAME}-gateway", 2, 4)]
    pdb_list = api["policy"].list_namespaced_pod_disruption_budget(NS, label_selector=SELECTOR).items
    pdbs = {p.metadata.name: p for p in pdb_list}
    assert set(pdbs) == {f"{NAME}-{s}" for s in SERVICES}
    assert pdbs[f"{NAME}-wallet"].spec.min_available == 1  # 2 replicas: keep all but one
    assert pdbs[f"{NAME}-players"].spec.max_unavailable == 1  # 1 replica: never block a drain
    nps = {n.metadata.name for n in api["net"].list_namespaced_network_policy(NS, label_selector=SELECTOR).items}
    assert f"{NAME}-default-deny" in nps and {f"{NAME}-{s}" for s in SERVICES} <= nps

    # Discovery: the ConfigMap every Pod mounts, and status.services[].endpoint, agree.
    cm = api["core"].read_namespaced_config_map(f"{NAME}-endpoints", NS)
    endpoints = json.loads(cm.data["endpoints.json"])
    assert endpoints == {s: f"http://{NAME}-{s}.{NS}.svc:80" for s in SERVICES}
    rows = {r["name"]: r for r in status["services"]}
    assert {n: r["endpoint"] for n, r in rows.items()} == endpoints
    assert rows["wallet"]["replicas"] == rows["wallet"]["readyReplicas"] == 2
    assert rows["gateway"]["autoscaler"]["minReplicas"] == 2
    assert status["gatewayUrl"] == endpoints["gateway"]

    # Pods really run (kwok): 2 gateway + 2 wallet + 10 others + NATS + PostgreSQL, on kwok's nodes;
    # beside them each service with a database has its migration Job (docs/upgrades.md)
    jobs = kubectl("get", "jobs", "-n", NS, "-l", "app.kubernetes.io/component=migrate",
                   "-o", "jsonpath={.items[*].spec.template.spec.containers[0].args[1]}").stdout.split()
    assert sorted(jobs) == sorted(s for s in SERVICES if s not in ("gateway", "web", "backoffice"))  # no database

    def running() -> bool:
        pods = api["core"].list_namespaced_pod(
            NS, label_selector=f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component!=migrate").items
        return len(pods) == 16 and all(p.status.phase == "Running" for p in pods)

    wait_for("16 Pods Running", running, 60)
    pods = api["core"].list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/instance={NAME}").items
    assert all(p.spec.node_name.startswith("kwok-node-") for p in pods)
    wallet = deps[f"{NAME}-wallet"].spec.template.spec
    assert wallet.node_selector == {"type": "kwok"}
    assert [c.topology_key for c in wallet.topology_spread_constraints] == [
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"]  # fmt: skip
    assert pdbs[f"{NAME}-wallet"].spec.unhealthy_pod_eviction_policy == "AlwaysAllow"

    # Every child is owned by the platform and applied by the operator's own field manager.
    uid = demo["metadata"]["uid"]
    for dep in deps.values():
        assert [(o.uid, o.controller) for o in dep.metadata.owner_references] == [(uid, True)]
        assert "gameplane-operator" in {m.manager for m in dep.metadata.managed_fields}


def test_everything_admitted_under_restricted_pod_security(demo: dict[str, Any], api: dict[str, Any]) -> None:
    ns = api["core"].read_namespace(NS)
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    events = api["core"].list_namespaced_event(NS).items
    refused = [e.message for e in events if "violates PodSecurity" in (e.message or "")]
    assert not refused, refused
    # The namespace does enforce: a Pod that is not "restricted" is refused.
    # (A plain Pod with no securityContext: fine under "baseline", refused under "restricted".)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    with pytest.raises(kubernetes.client.ApiException) as info:
        api["core"].create_namespaced_pod(NS, pod)
    assert "violates PodSecurity" in info.value.body


def test_events_metrics_and_liveness(demo: dict[str, Any], api: dict[str, Any], operator: dict[str, int]) -> None:
    events = api["core"].list_namespaced_event(NS, field_selector=f"involvedObject.name={NAME}").items
    assert {"Applied", "AllServicesReady"} <= {e.reason for e in events}
    # Attributed to the operator by name, not to the framework; a platform starting up is not a problem.
    assert {(e.reporting_component, e.source.component) for e in events} == {("gameplane-operator",) * 2}
    assert {e.type for e in events} == {"Normal"}, [(e.type, e.reason, e.message) for e in events]
    text = _get(f"http://127.0.0.1:{operator['metrics']}/metrics")
    assert 'gameplane_operator_reconciles_total{reason="Applied"}' in text
    assert "gameplane_operator_api_writes_total" in text
    for stage in ("render", "apply", "prune", "status", "other"):  # exported from the start, at 0 or more
        assert metric(operator, "gameplane_operator_reconcile_errors_total", stage=stage) is not None, stage
    assert metric(operator, "gameplane_operator_drift_corrections_total", kind="Deployment") is not None
    assert _get(f"http://127.0.0.1:{operator['health']}/healthz")


DRIFT = "gameplane_operator_drift_corrections_total"
ERRORS = "gameplane_operator_reconcile_errors_total"


def test_deleted_child_is_recreated(demo: dict[str, Any], api: dict[str, Any], operator: dict[str, int]) -> None:
    drift = metric(operator, DRIFT, kind="Service") or 0
    old = api["core"].read_namespaced_service(f"{NAME}-wallet", NS).metadata.uid
    api["core"].delete_namespaced_service(f"{NAME}-wallet", NS)

    def recreated() -> bool:
        return api["core"].read_namespaced_service(f"{NAME}-wallet", NS).metadata.uid != old

    wait_for("Service recreated", recreated, 30)
    wait_for("a Service drift correction counted", lambda: grows(operator, DRIFT, drift, kind="Service"), 10)


def test_each_service_has_its_own_key_and_reconciles_never_rotate_it(demo: dict[str, Any], api: dict[str, Any]) -> None:
    from gameplane.kit.keys import KeySet, SigningKey

    def identities() -> dict[str, dict[str, str]]:
        return {s: api["core"].read_namespaced_secret(f"{NAME}-{s}-identity", NS).data for s in SERVICES}

    before = identities()
    keys = {s: SigningKey.from_pem(base64.b64decode(d["key.pem"]).decode()) for s, d in before.items()}
    assert len({k.kid for k in keys.values()}) == len(SERVICES)
    for s in SERVICES:  # each Pod template mounts its own key, none other
        volumes = api["apps"].read_namespaced_deployment(f"{NAME}-{s}", NS).spec.template.spec.volumes
        assert [v.secret.secret_name for v in volumes if v.secret] == [f"{NAME}-{s}-identity"]
    # a reconcile (a deleted child brings one) re-renders everything: the keys stay what they were
    old = api["core"].read_namespaced_config_map(f"{NAME}-public-keys", NS).metadata.uid
    api["core"].delete_namespaced_config_map(f"{NAME}-public-keys", NS)

    def recreated() -> Any:
        try:
            cm = api["core"].read_namespaced_config_map(f"{NAME}-public-keys", NS)
        except kubernetes.client.ApiException:
            return None
        return cm if cm.metadata.uid != old else None

    published = KeySet.from_pems(json.loads(wait_for("public keys recreated", recreated, 30).data["public-keys.json"]))
    assert identities() == before
    assert {s: published.keys[k.kid].owner for s, k in keys.items()} == {s: s for s in SERVICES}


def test_hand_scaled_deployment_returns_to_spec(demo: dict[str, Any], api: dict[str, Any],
                                                operator: dict[str, int]) -> None:  # fmt: skip
    drift = metric(operator, DRIFT, kind="Deployment") or 0
    api["apps"].patch_namespaced_deployment_scale(f"{NAME}-players", NS, {"spec": {"replicas": 4}})
    wait_for("players back to 1 replica",
             lambda: api["apps"].read_namespaced_deployment(f"{NAME}-players", NS).spec.replicas == 1, 30)  # fmt: skip
    wait_for("a Deployment drift correction counted", lambda: grows(operator, DRIFT, drift, kind="Deployment"), 10)


def test_spec_change_rolls_only_the_affected_service(demo: dict[str, Any], api: dict[str, Any]) -> None:
    wait_for("platform Ready", lambda: ready_and_current(api), 60)
    before = {n: d.metadata.generation for n, d in deployments(api).items()}
    services = [*SPEC["services"], {"name": "games", "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}}}]
    patch_platform(api, {"spec": {"services": services}})
    after_obj = wait_for("Ready at the new generation", lambda: ready_and_current(api), 60)
    after = {n: d.metadata.generation for n, d in deployments(api).items()}
    changed = {n for n in before if after[n] != before[n]}
    assert changed == {f"{NAME}-games"}
    games = deployments(api)[f"{NAME}-games"].spec.template.spec.containers[0].resources.requests
    assert games == {"cpu": "200m", "memory": "256Mi"}
    assert after_obj["status"]["serviceSummary"] == "12/12"


def test_disabling_a_service_prunes_its_objects(demo: dict[str, Any], api: dict[str, Any], kubectl: Run) -> None:
    services = [*SPEC["services"], {"name": "sessions", "enabled": False}]
    patch_platform(api, {"spec": {"services": services}})
    obj = wait_for("Ready without sessions", lambda: ready_and_current(api), 60)
    assert obj["status"]["serviceSummary"] == "11/11"
    kinds = "deployments,services,configmaps,serviceaccounts,poddisruptionbudgets,networkpolicies"
    left = kubectl("get", kinds, "-n", NS, "-l", "app.kubernetes.io/name=sessions", "-o", "name").stdout
    assert left.strip() == ""
    endpoints = json.loads(api["core"].read_namespaced_config_map(f"{NAME}-endpoints", NS).data["endpoints.json"])
    assert "sessions" not in endpoints and len(endpoints) == 11


def test_pause_annotation_stops_reconciling(demo: dict[str, Any], api: dict[str, Any]) -> None:
    import time

    patch_platform(api, {"metadata": {"annotations": {"gameplane.io/paused": "true"}}})
    wait_for("Reconciled=False/Paused", lambda: condition(platform(api), "Reconciled").get("reason") == "Paused", 30)
    api["core"].delete_namespaced_service(f"{NAME}-players", NS)
    time.sleep(3)  # long enough for ~10 debounced reconciles, had the operator not been paused
    names = {s.metadata.name for s in api["core"].list_namespaced_service(NS, label_selector=SELECTOR).items}
    assert f"{NAME}-players" not in names
    patch_platform(api, {"metadata": {"annotations": {"gameplane.io/paused": None}}})
    wait_for("players Service back", lambda: api["core"].read_namespaced_service(f"{NAME}-players", NS), 30)
    wait_for("Reconciled again", lambda: condition(platform(api), "Reconciled").get("reason") == "Applied", 30)


def test_a_refused_apply_counts_as_an_apply_error_until_it_succeeds(demo: dict[str, Any], api: dict[str, Any],
                                                                     operator: dict[str, int]) -> None:  # fmt: skip
    # A ResourceQuota allowing no more Services: the operator's re-creation of a deleted one is
    # refused by the API server (403 exceeded quota), a real failure at the apply stage.
    wait_for("platform Ready", lambda: ready_and_current(api), 60)
    before = {s: metric(operator, ERRORS, stage=s) or 0 for s in ("apply", "render")}
    drift = metric(operator, DRIFT, kind="Service") or 0
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-more-services"},
             "spec": {"hard": {"services": "0"}}}  # fmt: skip
    api["core"].create_namespaced_resource_quota(NS, quota)
    try:
        wait_for("the quota counted", lambda: (api["core"].read_namespaced_resource_quota(
            "no-more-services", NS).status.used or {}).get("services"), 30)  # fmt: skip
        api["core"].delete_namespaced_service(f"{NAME}-bonus", NS)
        wait_for("an apply error counted", lambda: grows(operator, ERRORS, before["apply"], stage="apply"), 30)
        wait_for("Reconciled=False/ApplyFailed", lambda: reconciled_reason(api) == "ApplyFailed", 30)
        assert (metric(operator, ERRORS, stage="render") or 0) == before["render"]  # only the stage that failed
    finally:
        api["core"].delete_namespaced_resource_quota("no-more-services", NS)
    # retried with backoff (at most a minute apart): the Service comes back, counted as a drift correction
    wait_for("bonus Service back", lambda: api["core"].read_namespaced_service(f"{NAME}-bonus", NS), 90, interval=1)
    wait_for("Reconciled again", lambda: reconciled_reason(api) == "Applied", 30)
    assert (metric(operator, DRIFT, kind="Service") or 0) > drift


def reconciled_reason(api: dict[str, Any]) -> str | None:
    return condition(platform(api), "Reconciled").get("reason")


SECRETS_NS = "op-secrets"


def _platforms_ready(operator: dict[str, int]) -> float:
    text = _get(f"http://127.0.0.1:{operator['metrics']}/metrics")
    return float(next(line.split()[-1] for line in text.splitlines()
                      if line.startswith("gameplane_operator_platforms_ready ")))  # fmt: skip


def _certificate() -> tuple[str, float]:
    """A real self-signed certificate (base64 PEM, as Secret data) and its notAfter."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.x509.oid import NameOID

    key = Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "casino.example")])
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(expires - dt.timedelta(days=60))
            .not_valid_after(expires).sign(key, None))  # fmt: skip
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(), expires.timestamp()


def _secret(name: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": kind, "data": encoded}


def test_missing_secrets_block_ready_until_they_exist(operator: dict[str, int], kubectl: Run,
                                                      api: dict[str, Any]) -> None:  # fmt: skip
    """k8s/samples/full.yaml references five Secrets. Without them it is not Ready and says which
    ones; creating them (no edit of the platform) is enough to bring it to Ready."""
    restricted_namespace(kubectl, SECRETS_NS)
    body = yaml.safe_load((REPO / "k8s" / "samples" / "full.yaml").read_text())
    body["spec"]["scheduling"] = copy.deepcopy(KWOK_SCHEDULING)  # kwok, instead of the sample's pools
    for svc in body["spec"]["services"]:
        svc.pop("scheduling", None)
    # kwok has no volume provisioner: the sample's NATS volume would stay Pending, so NATS runs on
    # an emptyDir here, which the status reports (DataDurable=False).
    body["spec"]["messaging"]["embedded"].pop("storageSize")
    custom, core = api["custom"], api["core"]
    custom.create_namespaced_custom_object(GROUP, VERSION, SECRETS_NS, PLURAL, body)

    def casino() -> dict[str, Any]:
        return custom.get_namespaced_custom_object(GROUP, VERSION, SECRETS_NS, PLURAL, "casino")

    def reason_is(reason: str) -> dict[str, Any] | None:
        obj = casino()
        return obj if condition(obj, "SecretsResolved").get("reason") == reason else None

    obj = wait_for("SecretsResolved=False", lambda: reason_is("SecretNotFound"), 60)
    secrets, ready = condition(obj, "SecretsResolved"), condition(obj, "Ready")
    assert secrets["status"] == "False"
    for name, field in (("casino-db", "spec.database.external.secretRef"),
                        ("acme-slots-credentials", "spec.providers[0].secretRef (acme-slots)"),
                        ("rgs-credentials", "spec.providers[1].secretRef (rgs)"),
                        ("payfast-credentials", "spec.paymentProviders[0].secretRef (payfast)"),
                        ("casino-tls", "spec.gateway.ingress.tlsSecretName")):  # fmt: skip
        assert f"Secret {name} not found in namespace {SECRETS_NS} ({field})" in secrets["message"], secrets
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    # Everything else is applied meanwhile (and, on kwok, its Pods "run"): only the Secrets are missing.
    assert condition(obj, "Reconciled")["status"] == "True"
    wait_for("casino Deployments all ready", lambda: all(
        (d.status.ready_replicas or 0) >= (d.spec.replicas or 1)
        for d in api["apps"].list_namespaced_deployment(SECRETS_NS).items), 60)  # fmt: skip
    assert condition(casino(), "Ready")["status"] == "False"  # ...and still not Ready: the kwok Pods lie
    ready_without = _platforms_ready(operator)  # the metric agrees with the condition
    events = core.list_namespaced_event(SECRETS_NS, field_selector="involvedObject.name=casino").items
    warnings = [e for e in events if e.type == "Warning"]
    assert {e.reason for e in warnings} == {"SecretNotFound"}, [(e.type, e.reason) for e in events]
    durable = condition(obj, "DataDurable")
    assert (durable["status"], durable["reason"]) == ("False", "EphemeralEvents"), durable
    assert all(e.reporting_component == "gameplane-operator" for e in events)

    # The database Secret with the wrong key: still not resolved, and the message says which key.
    core.create_namespaced_secret(SECRETS_NS, _secret("casino-db", {"dsn": "postgresql+asyncpg://u:p@db:5432"}))
    for name in ("acme-slots-credentials", "rgs-credentials", "payfast-credentials"):
        core.create_namespaced_secret(SECRETS_NS, _secret(name, {"secret": "k" * 32}))
    cert, expires = _certificate()
    tls = _secret("casino-tls", {"tls.key": "k"}, "kubernetes.io/tls")
    tls["data"]["tls.crt"] = cert
    core.create_namespaced_secret(SECRETS_NS, tls)
    obj = wait_for("SecretKeyNotFound", lambda: reason_is("SecretKeyNotFound"), 30)
    assert condition(obj, "SecretsResolved")["message"] == (
        f"Secret casino-db in namespace {SECRETS_NS} has no key url (spec.database.external.secretRef)")
    before = casino()["metadata"]["generation"]
    core.patch_namespaced_secret("casino-db", SECRETS_NS, {"stringData": {"url": "postgresql+asyncpg://u:p@db:5432"}})
    obj = wait_for("casino Ready", lambda: casino() if condition(casino(), "Ready").get("status") == "True" else None,
                   60)  # fmt: skip
    assert obj["metadata"]["generation"] == before  # nobody touched the platform
    wait_for("platforms_ready counts casino", lambda: _platforms_ready(operator) == ready_without + 1, 10)
    assert condition(obj, "SecretsResolved")["reason"] == "AllSecretsFound"
    # the Ingress certificate's expiry, read from the Secret (GameplaneCertificateExpiringSoon)
    expiry = {"platform_namespace": SECRETS_NS, "platform": "casino", "secret": "casino-tls", "key": "tls.crt"}
    assert metric(operator, "gameplane_operator_certificate_expiry_timestamp_seconds", **expiry) == expires
    events = core.list_namespaced_event(SECRETS_NS, field_selector="involvedObject.name=casino").items
    assert ("Normal", "AllSecretsFound") in {(e.type, e.reason) for e in events}
    # The sample's sites: each on its own host behind the ingress controller, and the player site
    # knows the addresses players' browsers use (never an in-cluster name).
    ingresses = {i.metadata.name: i for i in api["net"].list_namespaced_ingress(SECRETS_NS).items}
    # (the sample lists the back office's site but leaves the service disabled: no Ingress for it)
    assert {n: [r.host for r in i.spec.rules] for n, i in ingresses.items()} == {
        "casino-gateway": ["casino.example.com"], "casino-web": ["www.casino.example.com"]}
    web = api["apps"].read_namespaced_deployment("casino-web", SECRETS_NS).spec.template.spec.containers[0]
    env = {e.name: e.value for e in web.env or []}
    assert env["GP_WEB_PUBLIC_URL"] == "https://www.casino.example.com"
    assert json.loads(env["GP_WEB_GAME_URLS"]) == {"acme-slots": "https://play.acme.example"}
    assert json.loads(env["GP_WEB_PSP_URLS"]) == ["https://pay.payfast.example"]
    payments = api["apps"].read_namespaced_deployment("casino-payments", SECRETS_NS).spec.template.spec.containers[0]
    assert {e.name: e.value for e in payments.env or []}["GP_PAYMENTS_RETURN_URL"] == (
        "https://www.casino.example.com/cashier/return?reference={reference}")
    custom.delete_namespaced_custom_object(GROUP, VERSION, SECRETS_NS, PLURAL, "casino")


def test_deleting_the_platform_collects_everything(demo: dict[str, Any], api: dict[str, Any], kubectl: Run,
                                                   operator: dict[str, int]) -> None:  # fmt: skip
    api["custom"].delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME)
    kinds = ("deployments,statefulsets,jobs,services,configmaps,secrets,serviceaccounts,"
             "poddisruptionbudgets,networkpolicies,hpa")

    def gone() -> bool:
        return kubectl("get", kinds, "-n", NS, "-l", SELECTOR, "-o", "name").stdout.strip() == ""

    wait_for("garbage collection of every child", gone, 90, interval=1)
    wait_for("Pods gone", lambda: not api["core"].list_namespaced_pod(NS).items, 90, interval=1)
    # the operator forgets it (and casino, deleted before): no platform left to count, nor to alert
    # on as not Ready, nor a certificate of theirs
    wait_for("no platform counted", lambda: metric(operator, "gameplane_operator_platforms") == 0, 30)
    assert metric(operator, "gameplane_operator_platforms_ready") == 0
    assert metric(operator, "gameplane_operator_certificate_expiry_timestamp_seconds") is None


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("patch", "deployments.apps", True),
        ("delete", "networkpolicies.networking.k8s.io", True),
        ("patch", "gamingplatforms.gameplane.io/status", True),
        ("create", "clusterroles.rbac.authorization.k8s.io", False),
        ("create", "pods", False),
        ("delete", "namespaces", False),
        ("update", "customresourcedefinitions.apiextensions.k8s.io", False),
        ("create", "pods/exec", False),
        ("list", "pods", True),  # the Pods whose fault reports FaultsActive reads ...
        ("get", "pods/proxy", True),  # ... through the Pod proxy, GET only
        ("create", "pods/proxy", False),
        ("watch", "pods", False),
    ],
)
def test_operator_identity_is_least_privilege(operator_kubeconfig: Any, kubectl: Run, verb: str, resource: str,
                                              allowed: bool) -> None:  # fmt: skip
    # The API server's own authorizer answers, for the ServiceAccount the operator tests run as.
    # `kubectl auth can-i get pods/proxy` would ask about a Pod *named* proxy: a subresource is a flag.
    kind, _, sub = resource.partition("/") if resource.startswith("pods/") else (resource, "", "")
    extra = [f"--subresource={sub}"] if sub else []
    out = kubectl("auth", "can-i", verb, kind, *extra, "-A", "--as", OPERATOR_USER, check=False)
    assert out.stdout.strip() == ("yes" if allowed else "no"), (verb, resource, out.stdout, out.stderr)
