"""The umbrella chart without the operator, on the real node: `helm install --wait` waits for real
readiness, and `helm test` runs real Pods that call every service's /readyz through its Service —
and fails when a service's readiness is broken (the negative control). NATS keeps its JetStream
store on a PersistentVolume (the node has no dynamic provisioner: a static hostPath volume of
this module's own, see docs/cluster.md), so its stream outlives the Pod."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from clusterlib import Run, wait_for
from realnode import pod_ready, pod_states, pods, restricted, service_url

pytestmark = pytest.mark.cluster
NS, RELEASE = "real-umbrella", "casino"
STATIC_CLASS = "gameplane-static"  # no provisioner: the PersistentVolume below is made by hand


def _static_volume(kubectl: Run, name: str) -> str:
    """A hostPath PersistentVolume on the node (everything runs on this machine) that any
    non-root Pod can write, for the chart's NATS volume claim."""
    path = tempfile.mkdtemp(prefix=f"gp-{name}-")
    os.chmod(path, 0o777)  # the dev NATS runs as uid 1000 and cannot chown (restricted Pods)
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Retain", "storageClassName": STATIC_CLASS,
                   "hostPath": {"path": path, "type": "Directory"}}}  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(pv))
    return path


@pytest.fixture(scope="module")
def umbrella(real_node: Any, helm: Run, kubectl: Run) -> Iterator[str]:
    from hack import images as images_module

    restricted(kubectl, NS)
    store = _static_volume(kubectl, f"{NS}-nats")
    helm("install", RELEASE, "charts/gameplane", "-n", NS,
         "--set", f"postgres.image={images_module.BY_KEY['dev-postgres'].tag}",
         "--set", f"nats.image={images_module.BY_KEY['dev-nats'].tag}",
         "--set", f"nats.storageClassName={STATIC_CLASS}",
         "--wait", "--timeout", "300s", timeout=360)  # fmt: skip
    yield RELEASE
    helm("uninstall", RELEASE, "-n", NS, "--wait", check=False)
    kubectl("delete", "namespace", NS, "--wait=false", check=False)
    kubectl("delete", "pv", f"{NS}-nats", "--wait=false", check=False)
    shutil.rmtree(store, ignore_errors=True)


def _stream(kubectl: Run) -> dict[str, Any]:
    """The GAMEPLANE stream as NATS' monitoring port reports it (through the API server's pod proxy:
    the dev image is FROM scratch, nothing to exec)."""
    raw = kubectl("get", "--raw", f"/api/v1/namespaces/{NS}/pods/{RELEASE}-nats-0:8222/proxy/jsz?streams=true").stdout
    streams = [s for acc in json.loads(raw).get("account_details") or [] for s in acc.get("stream_detail") or []]
    return next(s for s in streams if s["name"] == "GAMEPLANE")


def test_nats_keeps_its_stream_across_a_pod_restart(umbrella: str, kubectl: Run) -> None:
    pvc = json.loads(kubectl("get", "pvc", "-n", NS, "-o", "json").stdout)["items"]
    assert [c["status"]["phase"] for c in pvc] == ["Bound"], pvc
    # Events in the stream first: a registration publishes players' snapshot events.
    gateway = service_url(kubectl, NS, f"{RELEASE}-gateway")
    body = {"email": f"store-{uuid.uuid4().hex[:10]}@example.com", "password": "store-In-Cluster-2026",
            "date_of_birth": "1990-01-02", "country": "MT", "currency": "EUR"}

    def registered() -> httpx.Response | None:
        # Right after the install the first registration (a cold players Pod hashing a password while
        # 14 Pods start on two cores) once took longer than the gateway's 10 s upstream timeout: the
        # gateway's 503 says "try again", which a client does; any other answer is final.
        r = httpx.post(gateway + "/v1/players/register", timeout=30, json=body)
        return None if r.status_code == 503 else r

    reg = wait_for("a registration through the gateway", registered, timeout=90, interval=2)
    assert reg.status_code == 201, reg.text
    before = wait_for("events in the stream", lambda: (s := _stream(kubectl))["state"]["messages"] > 0 and s,
                      timeout=60, interval=1)  # fmt: skip
    kubectl("delete", "pod", "-n", NS, f"{RELEASE}-nats-0", "--wait=true")
    wait_for("nats back", lambda: any(pod_ready(p) for p in pods(kubectl, NS, "app.kubernetes.io/component=nats")),
             timeout=120)  # fmt: skip
    after = _stream(kubectl)
    # The same stream, not one a service re-created on an empty store (that one would be newer),
    # holding at least every message it held before.
    assert after["created"] == before["created"], (before, after)
    assert after["state"]["last_seq"] >= before["state"]["last_seq"]
    assert after["state"]["messages"] >= before["state"]["messages"] > 0
    print(f"\nNATS restart: stream created {before['created']}, messages {before['state']['messages']} -> "
          f"{after['state']['messages']}")


def _sql(kubectl: Run, statement: str) -> None:
    kubectl("exec", "-n", NS, f"{RELEASE}-postgres-0", "--", "psql", "-U", "gameplane", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-Atc", statement)  # fmt: skip


def test_install_waits_for_real_readiness(umbrella: str, kubectl: Run) -> None:
    running = pods(kubectl, NS)
    assert running and all(pod_ready(p) and p["spec"]["nodeName"] == "gameplane-node" for p in running)
    components = {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in running}
    assert components == {"gateway", "players", "wallet", "games", "sessions", "payments", "bonus", "risk",
                          "affiliates", "analytics", "web", "backoffice", "postgres", "nats"}, components


def test_helm_test_passes_with_real_test_pods(umbrella: str, helm: Run, kubectl: Run) -> None:
    out = helm("test", RELEASE, "-n", NS, "--timeout", "180s", check=False)
    if out.returncode != 0:  # a failed test Pod stays (only succeeded ones are deleted): say why it failed
        failed = re.findall(r"pod (\S+) failed", out.stderr)
        logs = {pod: kubectl("logs", pod, "-n", NS, check=False).stdout[-3000:] for pod in failed}
        raise AssertionError(f"helm test failed:\n{out.stdout}\n{out.stderr}\nlogs of the failed Pods: {logs}\n"
                             f"the namespace's Pods:\n{pod_states(kubectl, NS)}")
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
    # A Pod Ready again reaches its Service's endpoints a moment later (the EndpointSlice update):
    # the hooks pass again once it has.
    try:
        wait_for("helm test passing again", lambda: helm(
            "test", RELEASE, "-n", NS, "--timeout", "120s", check=False).returncode == 0, timeout=240, interval=5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nthe namespace's Pods:\n{pod_states(kubectl, NS)}") from None


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
