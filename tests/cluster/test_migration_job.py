"""Migrations once per release in Kubernetes (docs/upgrades.md), as the charts render them with the
real `helm` (the operator renders the same way): each service that owns a database gets one Job
running `python -m gameplane migrate <service>`, named for its Pod template so that a new release
is a new Job and an unchanged one is left alone; the service's Pods do not migrate; and nothing of
the service selects the Job's Pod."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gameplane import catalog
from gameplane_operator.render import parse_manifests
from hack import controlplane as cp_module

REPO = Path(__file__).resolve().parents[2]
HELM = cp_module.tool("helm")

pytestmark = pytest.mark.skipif(not HELM.exists(), reason=f"helm is not built yet ({HELM}): run hack/cluster.py build")


def render(*sets: str) -> list[dict[str, Any]]:
    args = [str(HELM), "template", "p", "charts/gameplane", "--namespace", "ns", "--set", "rgs.enabled=true"]
    for s in sets:
        args += ["--set", s]
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, check=True, timeout=120).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def jobs(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Migration Jobs by the service they migrate."""
    found: dict[str, dict[str, Any]] = {}
    for job in (d for d in rendered if d["kind"] == "Job"):
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "migrate" and args[1] not in found
        found[args[1]] = job
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_each_service_with_a_database_has_one_migration_job_and_its_pods_do_not_migrate() -> None:
    rendered = render()
    by_service = jobs(rendered)
    owning = {s.name for s in catalog.SERVICES if s.built and s.database}
    assert set(by_service) == owning  # not the gateway, not the simulators
    configmaps = {d["metadata"]["name"]: d["data"] for d in rendered if d["kind"] == "ConfigMap"}
    deployments = {d["spec"]["template"]["spec"]["containers"][0]["args"][-1]: d
                   for d in rendered if d["kind"] == "Deployment"}
    for name, job in by_service.items():
        pod = job["spec"]["template"]
        dep_env = {e["name"]: e for e in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        job_env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
        prefix = catalog.get(name).env_prefix
        for key in ("GP_DATABASE_SERVER_URL", prefix + "DATABASE_URL"):
            assert job_env[key] == dep_env[key], (name, key)  # the same database as the service
        assert configmaps[f"p-{name}"][prefix + "MIGRATE_ON_START"] == "false"
        assert job["spec"]["template"]["spec"]["containers"][0]["image"] == \
            deployments[name]["spec"]["template"]["spec"]["containers"][0]["image"]
        # the Job's Pod is no endpoint, disruption-budget or policy subject of any service
        for obj in rendered:
            selector = {"Service": lambda o: o["spec"].get("selector"),
                        "PodDisruptionBudget": lambda o: o["spec"]["selector"]["matchLabels"],
                        "Deployment": lambda o: o["spec"]["selector"]["matchLabels"]}.get(obj["kind"])
            if selector and selector(obj):
                assert not selects(selector(obj), pod["metadata"]["labels"]), (name, obj["metadata"]["name"])
        policies = [o for o in rendered if o["kind"] == "NetworkPolicy"
                    and selects(o["spec"]["podSelector"].get("matchLabels") or {}, pod["metadata"]["labels"])]
        assert {p["metadata"]["name"] for p in policies} == {"p-default-deny", f"p-{name}-migrate"}
        assert "ingress" not in next(p for p in policies if p["metadata"]["name"].endswith("-migrate"))["spec"]
    assert "GP_GATEWAY_MIGRATE_ON_START" not in configmaps["p-gateway"]


def test_a_new_release_is_a_new_job_and_an_unchanged_one_the_same() -> None:
    base = jobs(render())
    again = jobs(render("wallet.replicas=3", "global.size=medium"))  # the Pods change, the Job does not
    release = jobs(render("global.version=0.2.0"))
    for name in base:
        assert again[name]["metadata"]["name"] == base[name]["metadata"]["name"]
        assert release[name]["metadata"]["name"] != base[name]["metadata"]["name"]
        assert release[name]["metadata"]["name"].startswith(f"p-{name}-migrate-")


def test_the_operator_keeps_the_jobs_that_helm_template_renders() -> None:
    args = [str(HELM), "template", "p", "charts/gameplane", "--namespace", "ns", "--skip-tests"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, check=True, timeout=120).stdout
    kept = parse_manifests(out)  # what the operator applies
    assert {j["spec"]["template"]["spec"]["containers"][0]["args"][1] for j in kept if j["kind"] == "Job"} == \
        {s.name for s in catalog.SERVICES if s.built and s.database and s.enabled_by_default}


def test_in_the_dev_reload_mode_the_pods_migrate_themselves() -> None:
    # synced sources may carry migrations the image's Job does not have
    configmaps = [d for d in render("global.dev.reload=true") if d["kind"] == "ConfigMap"]
    assert configmaps and not any(k.endswith("_MIGRATE_ON_START") for c in configmaps for k in c.get("data") or {})
