"""The umbrella chart without the operator, on the real node: `helm install --wait` waits for real
readiness, and `helm test` runs real Pods that call every service's /readyz through its Service —
and fails when a service's readiness is broken (the negative control)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from clusterlib import Run, wait_for
from realnode import pod_ready, pods, restricted

pytestmark = pytest.mark.cluster
NS, RELEASE = "real-umbrella", "casino"


@pytest.fixture(scope="module")
def umbrella(real_node: Any, helm: Run, kubectl: Run) -> Iterator[str]:
    from hack import images as images_module

    restricted(kubectl, NS)
    helm("install", RELEASE, "charts/gameplane", "-n", NS,
         "--set", f"postgres.image={images_module.BY_KEY['dev-postgres'].tag}",
         "--set", f"nats.image={images_module.BY_KEY['dev-nats'].tag}",
         "--wait", "--timeout", "300s", timeout=360)  # fmt: skip
    yield RELEASE
    helm("uninstall", RELEASE, "-n", NS, "--wait", check=False)
    kubectl("delete", "namespace", NS, "--wait=false", check=False)


def _sql(kubectl: Run, statement: str) -> None:
    kubectl("exec", "-n", NS, f"{RELEASE}-postgres-0", "--", "psql", "-U", "gameplane", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-Atc", statement)  # fmt: skip


def test_install_waits_for_real_readiness(umbrella: str, kubectl: Run) -> None:
    running = pods(kubectl, NS)
    assert running and all(pod_ready(p) and p["spec"]["nodeName"] == "gameplane-node" for p in running)
    components = {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in running}
    assert components == {"gateway", "players", "wallet", "games", "sessions", "postgres", "nats"}, components


def test_helm_test_passes_with_real_test_pods(umbrella: str, helm: Run) -> None:
    out = helm("test", RELEASE, "-n", NS, "--timeout", "180s")
    suites = [ln for ln in out.stdout.splitlines() if ln.startswith("TEST SUITE:")]
    phases = [ln.split()[-1] for ln in out.stdout.splitlines() if ln.startswith("Phase:")]
    # one hook per service plus the discovery check, every one run by the kubelet to completion
    assert len(suites) >= 6 and phases == ["Succeeded"] * len(suites), out.stdout


def test_helm_test_fails_when_a_readiness_probe_breaks(umbrella: str, helm: Run, kubectl: Run) -> None:
    """players' /readyz pings its database: PostgreSQL refusing gp_players breaks that probe."""
    _sql(kubectl, "ALTER DATABASE gp_players ALLOW_CONNECTIONS false")
    _sql(kubectl, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'gp_players'")
    try:
        wait_for("players not ready", lambda: not any(
            pod_ready(p) for p in pods(kubectl, NS, "app.kubernetes.io/component=players")), timeout=90)  # fmt: skip
        out = helm("test", RELEASE, "-n", NS, "--timeout", "120s", check=False)
        assert out.returncode != 0, out.stdout
        failed = [ln for ln in out.stdout.splitlines() + out.stderr.splitlines() if "players" in ln]
        assert failed, out.stdout + out.stderr  # the broken service's hook is the one that failed
    finally:
        _sql(kubectl, "ALTER DATABASE gp_players ALLOW_CONNECTIONS true")
    wait_for("players ready again", lambda: all(
        pod_ready(p) for p in pods(kubectl, NS, "app.kubernetes.io/component=players")), timeout=120)  # fmt: skip
    assert helm("test", RELEASE, "-n", NS, "--timeout", "180s").returncode == 0


def _secret_url(kubectl: Run, service: str) -> str:
    import base64

    raw = kubectl("get", "secret", f"{RELEASE}-secrets", "-n", NS, "-o",
                  f"jsonpath={{.data.database-url-{service}}}").stdout  # fmt: skip
    return base64.b64decode(raw).decode()


def test_each_service_has_its_own_database_role_on_the_real_image(umbrella: str, kubectl: Run) -> None:
    """The image's init script made gp_<service> roles whose passwords are the Secret's: the wallet's
    role opens gp_wallet over TCP (scram-sha-256) and is refused gp_players."""
    import re

    url = _secret_url(kubectl, "wallet")
    user, password = re.match(r"postgresql\+asyncpg://([^:]+):([^@]+)@", url).groups()  # type: ignore[union-attr]
    assert user == "gp_wallet"

    def psql(database: str) -> Any:
        return kubectl("exec", "-n", NS, f"{RELEASE}-postgres-0", "--", "env", f"PGPASSWORD={password}",
                       "psql", "-h", "127.0.0.1", "-U", user, "-d", database, "-Atc", "SELECT current_user",
                       check=False)  # fmt: skip

    own = psql("gp_wallet")
    assert own.returncode == 0 and own.stdout.strip() == "gp_wallet", own.stderr
    other = psql("gp_players")
    assert other.returncode != 0 and "permission denied for database" in other.stderr, other.stderr


def test_metrics_answer_on_the_metrics_port_only(umbrella: str, kubectl: Run) -> None:
    pod = pods(kubectl, NS, "app.kubernetes.io/component=wallet")[0]["metadata"]["name"]
    probe = ("import urllib.request, urllib.error, sys\n"
             "def get(u):\n"
             "    try: return urllib.request.urlopen(u, timeout=5).status\n"
             "    except urllib.error.HTTPError as e: return e.code\n"
             "print(get('http://127.0.0.1:9090/metrics'), get('http://127.0.0.1:8000/metrics'))")
    out = kubectl("exec", "-n", NS, pod, "--", "python", "-c", probe).stdout.split()
    assert out == ["200", "404"], out
