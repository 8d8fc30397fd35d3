"""The GamingPlatform CRD against the real API server: schema, CEL rules, printer columns, explain."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from clusterlib import Run

REPO = Path(__file__).resolve().parents[2]
NS = "crd-tests"
CRD_FILE = REPO / "k8s" / "crds" / "gamingplatforms.gameplane.io.yaml"


def gp(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "gameplane.io/v1alpha1", "kind": "GamingPlatform", "metadata": {"name": name}, "spec": spec}


@pytest.fixture(scope="module")
def ns(crd: None, kubectl: Run) -> str:
    kubectl("create", "namespace", NS)
    return NS


@pytest.fixture(scope="module")
def custom(admin: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(admin)


def create(custom: kubernetes.client.CustomObjectsApi, body: dict[str, Any], dry_run: bool = True) -> Any:
    return custom.create_namespaced_custom_object(
        "gameplane.io", "v1alpha1", NS, "gamingplatforms", body,
        dry_run="All" if dry_run else None, field_validation="Strict",
    )  # fmt: skip


def test_every_schema_field_has_a_description() -> None:
    schema = yaml.safe_load(CRD_FILE.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    missing: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if path.count(".") > 0 and path != ".metadata" and not node.get("description"):
            missing.append(path)
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{key}")
        if "items" in node:
            walk(node["items"], path + "[]")
        if isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"].get("type"):
            walk(node["additionalProperties"], path + "{}")

    walk(schema, "")
    assert not missing, f"fields without a description: {missing}"


def test_samples_apply_and_show_printer_columns(ns: str, kubectl: Run) -> None:
    for sample in ("minimal.yaml", "full.yaml"):
        kubectl("apply", "-n", ns, "-f", str(REPO / "k8s" / "samples" / sample))
    out = kubectl("get", "gp", "-n", ns).stdout
    header = out.splitlines()[0].split()
    assert header == ["NAME", "READY", "SERVICES", "VERSION", "AGE"]
    assert {line.split()[0] for line in out.splitlines()[1:]} == {"demo", "casino"}
    wide = kubectl("get", "gamingplatforms", "-n", ns, "-o", "wide").stdout.splitlines()[0].split()
    assert wide[-1] == "MESSAGE"  # priority 1: only with -o wide
    # The category lists platforms with `kubectl get gameplane`.
    assert "demo" in kubectl("get", "gameplane", "-n", ns).stdout
    # Defaults are filled in by the API server.
    demo = json.loads(kubectl("get", "gp", "demo", "-n", ns, "-o", "json").stdout)
    assert demo["spec"]["size"] == "small"
    assert demo["spec"]["database"]["mode"] == "embedded"
    assert demo["spec"]["image"]["repository"] == "gameplane/gameplane"
    kubectl("delete", "-n", ns, "gp", "demo", "casino", "--wait=false")


def test_explain_reads_well(crd: None, kubectl: Run) -> None:
    out = kubectl("explain", "gamingplatform.spec.services").stdout
    assert "Per-service settings, keyed by name" in out
    for field in ("autoscaling", "enabled", "image", "name", "replicas", "resources"):
        assert f"  {field}\t" in out, out
    deep = kubectl("explain", "gp.spec.services.autoscaling.rpsTarget").stdout
    assert "requests per second" in deep
    scheduling = kubectl("explain", "gp.spec.scheduling").stdout
    assert "Where the platform's Pods run" in scheduling
    for field in ("affinity", "nodeSelector", "priorityClassName", "tolerations", "topologySpread"):
        assert f"  {field}\t" in scheduling, scheduling
    assert "ScheduleAnyway" in kubectl("explain", "gp.spec.scheduling.topologySpread").stdout
    assert "replaces the" in kubectl("explain", "gp.spec.services.scheduling").stdout
    for path, text in (("gp.spec.database.embedded.image", "platformDefaults.postgresImage"),
                       ("gp.spec.messaging.embedded.image", "platformDefaults.natsImage"),
                       ("gp.status.services.updatedReplicas", "current Pod template")):  # fmt: skip
        assert text in kubectl("explain", path).stdout, path


VALID: dict[str, Any] = {"version": "0.1.0"}
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("no-version", {}, "spec.version: Required value"),
    ("bad-version", {"version": "latest"}, "spec.version: Invalid value"),
    ("bad-size", {**VALID, "size": "huge"}, 'Unsupported value: "huge"'),
    ("unknown-service", {**VALID, "services": [{"name": "poker"}]}, 'Unsupported value: "poker"'),
    ("duplicate-service", {**VALID, "services": [{"name": "wallet"}, {"name": "wallet"}]}, "Duplicate value"),
    ("min-over-max", {**VALID, "services": [{"name": "games", "autoscaling": {
        "enabled": True, "minReplicas": 5, "maxReplicas": 2}}]},
     "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"),
    ("replicas-and-hpa", {**VALID, "services": [{"name": "games", "replicas": 3, "autoscaling": {"enabled": True}}]},
     "set either replicas or autoscaling"),
    ("negative-replicas", {**VALID, "services": [{"name": "games", "replicas": -1}]},
     "should be greater than or equal to 0"),
    ("no-gateway", {**VALID, "services": [{"name": "gateway", "enabled": False}]},
     "the gateway service cannot be disabled"),
    ("no-wallet", {**VALID, "services": [{"name": "wallet", "enabled": False}]},
     "the wallet service cannot be disabled"),
    ("external-db-no-secret", {**VALID, "database": {"mode": "external"}},
     "database.external.secretRef is required"),
    ("inline-db-password", {**VALID, "database": {"mode": "external", "external": {
        "secretRef": {"name": "db"}, "password": "hunter2"}}}, 'unknown field "spec.database.external.password"'),
    ("nats-credentials-in-url", {**VALID, "messaging": {"mode": "external", "url": "nats://user:pw@nats:4222"}},
     "carry no credentials"),
    ("provider-credentials-in-url", {**VALID, "providers": [{"name": "acme", "baseUrl": "https://k:s@acme.example",
                                                             "secretRef": {"name": "acme"}}]}, "without credentials"),
    ("provider-without-secret", {**VALID, "providers": [{"name": "acme", "baseUrl": "https://acme.example"}]},
     "secretRef: Required value"),
    ("ingress-without-host", {**VALID, "gateway": {"ingress": {"enabled": True}}}, "gateway.host is required"),
    ("site-ingress-without-host", {**VALID, "sites": {"web": {"ingress": {"enabled": True}}}},
     "sites.web.host is required when the web site is exposed through an Ingress"),
    ("game-url-with-credentials", {**VALID, "providers": [{"name": "acme", "baseUrl": "https://acme.example",
                                                           "gameUrl": "https://k:s@play.acme.example",
                                                           "secretRef": {"name": "acme"}}]},
     "gameUrl must be an http(s) URL without credentials"),
    ("hosted-page-not-http", {**VALID, "paymentProviders": [{"name": "payfast", "baseUrl": "https://api.pf.example",
                                                             "hostedUrl": "javascript:alert(1)",
                                                             "secretRef": {"name": "pf"}}]},
     "hostedUrl must be an http(s) URL without credentials"),
    ("ingress-and-route", {**VALID, "gateway": {"host": "a.example", "ingress": {"enabled": True},
                                                "gatewayAPI": {"enabled": True}}}, "choose one of gateway.ingress"),
    ("fault-on-disabled", {**VALID, "services": [{"name": "games", "enabled": False}],
                           "faults": [{"scenario": "latency", "service": "games"}]},
     "a fault may only target an enabled service"),
    ("fault-on-unlisted-simulator", {**VALID, "faults": [{"scenario": "errors", "service": "rgs"}]},
     "a fault may only target an enabled service"),
    ("bad-toleration", {**VALID, "scheduling": {"tolerations": [{"key": "a", "operator": "Maybe"}]}},
     'Unsupported value: "Maybe"'),
    ("affinity-typo", {**VALID, "scheduling": {"affinity": {"nodeAfinity": {}}}},
     'unknown field "spec.scheduling.affinity.nodeAfinity"'),
    ("service-scheduling-typo", {**VALID, "services": [{"name": "wallet", "scheduling": {"nodeSelektor": {}}}]},
     'unknown field "spec.services[0].scheduling.nodeSelektor"'),
    ("bad-jurisdiction", {**VALID, "jurisdiction": "atlantis"}, 'Unsupported value: "atlantis"'),
    ("a-platform-name-that-is-far-too-long-to-prefix", VALID, "at most 40 characters"),
    ("1st-casino", VALID, "must be a DNS label starting with a letter"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "spec", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_platform_is_refused(
    ns: str, custom: kubernetes.client.CustomObjectsApi, name: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(kubernetes.client.ApiException) as info:
        create(custom, gp(name, spec))
    assert info.value.status in (400, 422), info.value.body  # 400: strict decoding of unknown fields
    detail = json.loads(info.value.body)["message"]
    assert message in detail, detail


def test_valid_platform_passes_the_same_checks(ns: str, custom: kubernetes.client.CustomObjectsApi) -> None:
    # The rules refuse the cases above, not everything: the full sample is valid...
    full = yaml.safe_load((REPO / "k8s" / "samples" / "full.yaml").read_text())
    create(custom, full)
    # ...so are services that are not built, listed as disabled, and a fault on a listed simulator.
    listed = {**VALID, "services": [{"name": n, "enabled": False} for n in
                                    ("bonus", "web", "backoffice", "psp")]
              + [{"name": "rgs", "enabled": True}], "faults": [{"scenario": "errors", "service": "rgs"}]}  # fmt: skip
    create(custom, gp("listed-but-off", listed))
    # Defaults: the platform-wide spread is on unless turned off.
    made = create(custom, gp("spread", {**VALID, "scheduling": {"nodeSelector": {"pool": "casino"}}}))
    assert made["spec"]["scheduling"] == {"nodeSelector": {"pool": "casino"}, "topologySpread": True}


def test_immutable_fields_cannot_change(ns: str, custom: kubernetes.client.CustomObjectsApi) -> None:
    body = gp("immutable", {**VALID, "database": {"mode": "embedded", "embedded": {"storageSize": "1Gi"}}})
    create(custom, body, dry_run=False)
    try:
        for patch, message in (
            ({"spec": {"database": {"mode": "external", "external": {"secretRef": {"name": "db"}}}}},
             "database.mode is immutable"),
            ({"spec": {"database": {"embedded": {"storageSize": "5Gi"}}}}, "storageSize is immutable"),
        ):  # fmt: skip
            with pytest.raises(kubernetes.client.ApiException) as info:
                custom.patch_namespaced_custom_object(
                    "gameplane.io", "v1alpha1", NS, "gamingplatforms", "immutable", copy.deepcopy(patch)
                )
            assert message in json.loads(info.value.body)["message"]
        # Mutable fields still change.
        custom.patch_namespaced_custom_object(
            "gameplane.io", "v1alpha1", NS, "gamingplatforms", "immutable", {"spec": {"size": "large"}}
        )
    finally:
        custom.delete_namespaced_custom_object("gameplane.io", "v1alpha1", NS, "gamingplatforms", "immutable")


def test_status_is_a_subresource(ns: str, custom: kubernetes.client.CustomObjectsApi) -> None:
    create(custom, gp("status-sub", VALID), dry_run=False)
    try:
        # A write to the main resource cannot set status...
        custom.patch_namespaced_custom_object(
            "gameplane.io", "v1alpha1", NS, "gamingplatforms", "status-sub", {"status": {"serviceSummary": "9/9"}}
        )
        obj = custom.get_namespaced_custom_object("gameplane.io", "v1alpha1", NS, "gamingplatforms", "status-sub")
        assert "status" not in obj or "serviceSummary" not in obj["status"]
        # ...only the status subresource can.
        custom.patch_namespaced_custom_object_status(
            "gameplane.io", "v1alpha1", NS, "gamingplatforms", "status-sub", {"status": {"serviceSummary": "9/9"}}
        )
        obj = custom.get_namespaced_custom_object("gameplane.io", "v1alpha1", NS, "gamingplatforms", "status-sub")
        assert obj["status"]["serviceSummary"] == "9/9"
    finally:
        custom.delete_namespaced_custom_object("gameplane.io", "v1alpha1", NS, "gamingplatforms", "status-sub")
