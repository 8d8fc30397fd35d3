"""Fault drills through the GamingPlatform on the real node, with the operator as a Pod.

`latency` on games: a client through the gateway sees games' answers slow down by the asked
delay, the games Pod itself reports the drill (/readyz, gameplane_fault_active), and the
operator says FaultsActive=True only once the Pod reports it; removing the drill clears both.
`unavailable` on sessions (a service no money moves through): its Pod leaves its Service, the
gateway answers 503 for sessions' routes only, and logins, deposits and bets still succeed."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from typing import Any

import httpx
import pytest
from clusterlib import Run, wait_for
from realnode import condition, platform, pods, secret_value, service_url, wait_ready

from gameplane.kit.auth import issue_service_token
from gameplane.kit.keys import SigningKey

pytestmark = pytest.mark.cluster
DELAY_MS = 400


def _set_faults(kubectl: Run, ns: str, name: str, faults: list[dict[str, Any]] | None) -> None:
    kubectl("patch", "gamingplatform", name, "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"faults": faults}}))


def _faults_active(kubectl: Run, ns: str, name: str) -> dict[str, Any]:
    return condition(platform(kubectl, ns, name), "FaultsActive")


def _median_seconds(url: str, n: int = 15) -> float:
    took = []
    with httpx.Client(timeout=10) as client:
        client.get(url)  # a warm connection; not counted
        for _ in range(n):
            started = time.perf_counter()
            r = client.get(url)
            took.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text  # slower, never failed
    return statistics.median(took)


def _pod_report(kubectl: Run, ns: str, component: str) -> tuple[int, dict[str, Any]]:
    [pod] = pods(kubectl, ns, f"app.kubernetes.io/component={component}")
    raw = kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}:8000/proxy/readyz",
                  check=False)  # fmt: skip
    body = raw.stdout or raw.stderr[raw.stderr.find("{"):]
    return raw.returncode, json.loads(body) if body.strip().startswith("{") else {}


def test_latency_drill_slows_games_and_is_reported_then_cleared(demo: dict[str, Any], kubectl: Run) -> None:
    ns, name = demo["namespace"], demo["name"]
    games = service_url(kubectl, ns, f"{name}-gateway") + "/v1/games"
    assert _faults_active(kubectl, ns, name)["status"] == "False"
    baseline = _median_seconds(games)
    asked = time.monotonic()
    _set_faults(kubectl, ns, name, [{"scenario": "latency", "service": "games", "latencyMs": DELAY_MS}])
    try:
        # The condition follows the Pod's own report (its mounted settings refresh within the
        # kubelet's sync period), never the spec alone: until then it is pending.
        first = _faults_active(kubectl, ns, name)
        assert first["status"] == "False" or "latency@games" in first["message"], first
        cond = wait_for("FaultsActive=True from the games Pod's report", lambda: (
            c := _faults_active(kubectl, ns, name))["status"] == "True" and c, timeout=240, interval=2)  # fmt: skip
        applied_after = time.monotonic() - asked
        assert cond["reason"] == "FaultsApplied" and "latency@games (1/1 Pods)" in cond["message"], cond
        code, report = _pod_report(kubectl, ns, "games")
        assert code == 0 and report["faults"][0]["scenario"] == "latency", report
        assert report["faults"][0]["latencyMs"] == DELAY_MS
        slowed = _median_seconds(games)
        # Clearly higher, as a ratio to the drill's own size rather than a hard latency bound.
        assert slowed - baseline > 0.75 * DELAY_MS / 1000, (baseline, slowed)
        # Other services are untouched by a drill on games.
        players_live = service_url(kubectl, ns, f"{name}-players") + "/livez"
        unaffected = _median_seconds(players_live, n=5)
    finally:
        _set_faults(kubectl, ns, name, None)
    cleared = wait_for("FaultsActive=False once the Pod stops applying it", lambda: (
        c := _faults_active(kubectl, ns, name))["status"] == "False" and c, timeout=240, interval=2)  # fmt: skip
    assert cleared["reason"] == "NoFaults", cleared
    assert _pod_report(kubectl, ns, "games")[1]["faults"] == []
    after = _median_seconds(games)
    assert after < slowed - 0.5 * DELAY_MS / 1000, (slowed, after)
    print(f"\nlatency drill on games ({DELAY_MS} ms asked): median through the gateway {baseline * 1000:.1f} ms "
          f"before, {slowed * 1000:.1f} ms during, {after * 1000:.1f} ms after; players /livez during "
          f"{unaffected * 1000:.1f} ms; FaultsActive True {applied_after:.0f} s after the spec change")


def test_unavailable_sessions_leaves_logins_deposits_and_bets_working(demo: dict[str, Any], kubectl: Run) -> None:
    ns, name = demo["namespace"], demo["name"]
    gateway = service_url(kubectl, ns, f"{name}-gateway")
    wallet = service_url(kubectl, ns, f"{name}-wallet")
    # games' own key (its identity Secret) for bets; the test callers' payments key for deposits
    games = SigningKey.from_pem(secret_value(kubectl, ns, f"{name}-games-identity", "key.pem"))
    payments = SigningKey.from_pem(secret_value(kubectl, ns, "test-callers", "payments.pem"))
    _set_faults(kubectl, ns, name, [{"scenario": "unavailable", "service": "sessions"}])
    try:
        cond = wait_for("FaultsActive=True from the sessions Pod", lambda: (
            c := _faults_active(kubectl, ns, name))["status"] == "True" and c, timeout=240, interval=2)  # fmt: skip
        assert "unavailable@sessions" in cond["message"], cond

        def sessions_out() -> bool:
            row = next(r for r in platform(kubectl, ns, name)["status"]["services"] if r["name"] == "sessions")
            return not row["ready"]

        wait_for("sessions out of its Service", sessions_out, timeout=120, interval=2)
        [sessions] = pods(kubectl, ns, "app.kubernetes.io/component=sessions")
        assert sessions["status"]["phase"] == "Running"  # unready, not restarted: liveness is untouched
        with httpx.Client(base_url=gateway, timeout=30) as gw:
            email = f"drill-{uuid.uuid4().hex[:10]}@example.com"
            reg = gw.post("/v1/players/register", json={"email": email, "password": "drill-In-Cluster-2026",
                                                        "date_of_birth": "1990-01-02", "country": "MT",
                                                        "currency": "EUR"})  # fmt: skip
            assert reg.status_code == 201, reg.text
            login = gw.post("/v1/players/login", json={"email": email, "password": "drill-In-Cluster-2026"})
            assert login.status_code == 200, login.text
            player, token = login.json()["player_id"], login.json()["access_token"]
            launch = gw.post("/v1/sessions", json={"game_id": "fruit-fives"},
                             headers={"authorization": f"Bearer {token}"})
            # The negative control: sessions really is out, and the gateway says so for its routes only.
            assert launch.status_code == 503 and "sessions" in launch.text, launch.text
        with httpx.Client(base_url=wallet, timeout=30) as w:
            dep = w.post("/internal/wallet/deposits", json={
                "idempotency_key": f"drill:{uuid.uuid4()}", "player_id": player, "currency": "EUR",
                "amount": 10_000, "psp": "test"},
                headers={"authorization": "Bearer " + issue_service_token(payments, "payments", "wallet")})
            assert dep.status_code == 200, dep.text

            def bet() -> httpx.Response:
                return w.post("/internal/wallet/bets", json={
                    "idempotency_key": f"drill:{uuid.uuid4()}", "player_id": player, "currency": "EUR",
                    "amount": 100, "round_id": f"drill-{uuid.uuid4().hex[:8]}", "game_id": "fruit-fives",
                    "provider": "rgs"},
                    headers={"authorization": "Bearer " + issue_service_token(games, "games", "wallet")})

            # The wallet learns of a new player from players' event; a bet before that is refused.
            placed = wait_for("a bet accepted", lambda: (r := bet()).status_code == 200 and r, timeout=60, interval=1)
            assert placed.json()["balance"]["cash"] == 9_900, placed.json()
    finally:
        _set_faults(kubectl, ns, name, None)
    wait_for("FaultsActive=False", lambda: _faults_active(kubectl, ns, name)["status"] == "False",
             timeout=240, interval=2)  # fmt: skip
    wait_ready(kubectl, ns, name, timeout=240)
