"""A player's journey, run inside the cluster as a Job in the service image (mounted from a ConfigMap).

Everything goes through in-cluster DNS and Services, as another workload of the cluster would:
register and log in through the gateway, a test deposit through the wallet's internal API (until
payments lands), launch a game (the launch URL points at the RGS simulator's Pod), N spins that the
simulator settles through the gateway's provider API, then balance, history and the wallet's
reconciliation must agree. Prints one JSON line, `JOURNEY {...}`; exits 1 on any disagreement.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid

import httpx

from gameplane.kit.auth import issue_service_token
from gameplane.kit.keys import SigningKey

GATEWAY, WALLET = os.environ["GATEWAY_URL"], os.environ["WALLET_URL"]
# The callers this journey stands in for (not built yet), trusted by the platform for the test.
PAYMENTS = SigningKey.from_pem(os.environ["PAYMENTS_KEY"])
BACKOFFICE = SigningKey.from_pem(os.environ["BACKOFFICE_KEY"])
SPINS, STAKE, DEPOSIT = int(os.environ.get("SPINS", "20")), 50, 10_000


def wait_reachable(*urls: str, patience: float = 60) -> None:
    """A TCP connection to each: this Pod's NetworkPolicy admission reaches the node's policy agent
    a moment after the Pod starts (longer on a busy node), refusing connections meanwhile."""
    deadline = time.monotonic() + patience
    for url in urls:
        u = httpx.URL(url)
        while True:
            try:
                socket.create_connection((u.host, u.port or 80), timeout=5).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise
                print("not reachable yet:", url, exc, flush=True)
                time.sleep(2)


def main() -> int:
    wait_reachable(GATEWAY, WALLET)
    out: dict[str, object] = {}
    problems: list[str] = []
    with httpx.Client(base_url=GATEWAY, timeout=30) as gw:
        email = f"journey-{uuid.uuid4().hex[:10]}@example.com"
        reg = gw.post("/v1/players/register", json={"email": email, "password": "journey-In-Cluster-2026",
                                                    "date_of_birth": "1990-01-02", "country": "MT", "currency": "EUR"})
        if reg.status_code != 201:
            raise SystemExit(f"register refused: {reg.status_code} {reg.text}")
        login = gw.post("/v1/players/login", json={"email": email, "password": "journey-In-Cluster-2026"})
        login.raise_for_status()
        player, token = login.json()["player_id"], login.json()["access_token"]
        auth = {"authorization": f"Bearer {token}"}
        dep = httpx.post(f"{WALLET}/internal/wallet/deposits", timeout=30,
                         headers={"authorization": "Bearer " + issue_service_token(PAYMENTS, "payments", "wallet")},
                         json={"idempotency_key": f"journey:{uuid.uuid4()}", "player_id": player, "currency": "EUR",
                               "amount": DEPOSIT, "psp": "test"})
        dep.raise_for_status()
        session = gw.post("/v1/sessions", json={"game_id": "fruit-fives"}, headers=auth)
        if session.status_code != 201:
            raise SystemExit(f"launch refused: {session.status_code} {session.text}")
        launch = session.json()["launch_url"]
        out["launch_host"] = httpx.URL(launch).host
        with httpx.Client(timeout=120) as studio:
            table = studio.get(launch)
            table.raise_for_status()
            base = str(httpx.URL(launch).copy_with(path="/", query=None)).rstrip("/")
            played = studio.post(f"{base}/sessions/{session.json()['token']}/spins",
                                 json={"count": SPINS, "stake": STAKE})
            played.raise_for_status()
        p = played.json()
        out.update(settled=p["settled"], staked=p["staked"], won=p["won"], final=p["balance"])
        if p["settled"] != SPINS or p["staked"] != SPINS * STAKE:
            problems.append(f"played {p}")
        if p["balance"] != DEPOSIT - p["staked"] + p["won"]:
            problems.append(f"simulator balance {p['balance']} != {DEPOSIT} - {p['staked']} + {p['won']}")
        balances = gw.get("/v1/wallet/balances", headers=auth).json()["balances"]
        eur = next(b for b in balances if b["currency"] == "EUR")
        out["wallet_balance"] = eur["cash"] + eur["bonus"]
        if eur["cash"] + eur["bonus"] != p["balance"]:
            problems.append(f"wallet balance {eur} != simulator's {p['balance']}")
        items = gw.get("/v1/wallet/transactions", params={"limit": 200}, headers=auth).json()["items"]
        kinds = {k: [i for i in items if i["kind"] == k] for k in ("bet", "win", "deposit")}
        out["history"] = {k: len(v) for k, v in kinds.items()}
        if len(kinds["bet"]) != SPINS or sum(i["amount"] for i in kinds["bet"]) != p["staked"]:
            problems.append(f"history bets {out['history']} do not match {p['staked']} staked")
        if sum(i["amount"] for i in kinds["win"]) != p["won"]:
            problems.append("history wins do not match the simulator's")
    rec = httpx.get(f"{WALLET}/internal/wallet/reconciliation", timeout=60,
                    headers={"authorization": "Bearer " + issue_service_token(BACKOFFICE, "backoffice", "wallet")})
    rec.raise_for_status()
    out["reconciliation_ok"] = rec.json()["ok"]
    if not rec.json()["ok"]:
        problems.append(f"reconciliation breaches: {rec.json()['breaches']}")
    out["problems"] = problems
    print("JOURNEY " + json.dumps(out), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
