"""A player plays 200 rounds of Fruit Fives on a real `gameplane up`: register and log in through
the gateway, a test deposit through the wallet's internal API (until payments lands), launch the
game (gateway -> sessions -> the RGS simulator's launch URL), 200 spins that the simulator settles
through the gateway's provider API, and then balance, history and ledger agree to the minor unit.
Then the provider conformance kit, run as an integrator would, passes every check through the gateway."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from gameplane.contracts import wallet as wallet_api

PASSWORD = "play-Fruit-Fives-2026"
DEPOSIT = 20_000
STAKE = 50


def history(gateway: httpx.Client, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = gateway.get("/v1/wallet/transactions", params=params, headers={"authorization": f"Bearer {token}"})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def test_two_hundred_spins_and_the_money_agrees(platform: Any) -> None:
    for service in ("players", "wallet", "games", "sessions", "rgs"):
        platform.url(service)
    with httpx.Client(base_url=platform.gateway, timeout=30) as gateway:
        email = f"play-{uuid.uuid4().hex[:10]}@example.com"
        reg = gateway.post("/v1/players/register", json={"email": email, "password": PASSWORD,
                                                         "date_of_birth": "1988-03-02", "country": "MT",
                                                         "currency": "EUR"})
        assert reg.status_code == 201, reg.text
        login = gateway.post("/v1/players/login", json={"email": email, "password": PASSWORD}).json()
        player, token = uuid.UUID(login["player_id"]), login["access_token"]
        auth = {"authorization": f"Bearer {token}"}

        deposit = wallet_api.DepositRequest(idempotency_key=f"system-test:{uuid.uuid4()}", player_id=player,
                                            currency="EUR", amount=DEPOSIT, psp="test")
        r = httpx.post(platform.url("wallet") + wallet_api.PATH_DEPOSITS, json=deposit.model_dump(mode="json"),
                       headers=platform.identities().bearer("payments", "wallet"), timeout=30)
        assert r.status_code in (200, 201), r.text

        session = gateway.post("/v1/sessions", json={"game_id": "fruit-fives"}, headers=auth)
        assert session.status_code == 201, session.text
        launch_url = session.json()["launch_url"]
        assert launch_url.startswith(platform.url("rgs") + "/launch?")

        with httpx.Client(timeout=120) as studio:
            table = studio.get(launch_url)
            assert table.status_code == 200, table.text
            assert table.json()["balance"] == DEPOSIT and table.json()["player_id"] == str(player)
            tok = session.json()["token"]
            played = [studio.post(f"{platform.url('rgs')}/sessions/{tok}/spins",
                                  json={"count": 100, "stake": STAKE}).json() for _ in range(2)]
        assert [p["settled"] for p in played] == [100, 100], played
        staked = sum(p["staked"] for p in played)
        won = sum(p["won"] for p in played)
        final = played[-1]["balance"]
        assert staked == 200 * STAKE and final == DEPOSIT - staked + won

        balances = gateway.get("/v1/wallet/balances", headers=auth).json()["balances"]
        eur = next(b for b in balances if b["currency"] == "EUR")
        assert eur["cash"] + eur["bonus"] == final

        items = history(gateway, token)
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            by_kind.setdefault(item["kind"], []).append(item)
        assert len(by_kind["bet"]) == 200 and sum(i["amount"] for i in by_kind["bet"]) == staked
        assert len(by_kind["win"]) == 200 and sum(i["amount"] for i in by_kind["win"]) == won
        assert sum(i["amount"] for i in by_kind["deposit"]) == DEPOSIT
        assert set(by_kind) <= {"bet", "win", "deposit"}

        report = httpx.get(platform.url("wallet") + "/internal/wallet/reconciliation", timeout=60,
                           headers=platform.identities().bearer("backoffice", "wallet"))
        assert report.status_code == 200, report.text
        assert report.json()["ok"], report.json()["breaches"]


def test_the_documented_conformance_command_works_against_a_local_platform(platform: Any, tmp_path: Path) -> None:
    """docs/integration/providers.md's command, as written, next to `make run`'s data dir: no secret
    on the command line or in the environment (only the ports of this run differ)."""
    for service in ("players", "wallet", "games", "sessions"):
        platform.url(service)
    (tmp_path / ".gameplane").symlink_to(platform.data_dir)
    env = {k: v for k, v in os.environ.items()
           if k not in ("GP_SERVICE_TOKEN_SECRET", "GP_RGS_PROVIDER_SECRET", "GAMEPLANE_DATA_DIR")}
    run = subprocess.run(
        [sys.executable, "-m", "gameplane.cli", "providers", "conformance", "--url", platform.gateway,
         "--provider", "rgs", "--bootstrap", "--wallet-url", platform.url("wallet")],
        env={**env, "COLUMNS": "200"}, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    # 10 checks of the provider API and 6 of free spins (awarded through the run's games, played at its RGS)
    assert "16/16 checks passed" in run.stdout, run.stdout
    # Negative control: away from the platform's data dir there is no secret to use, and it says so.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "gameplane.cli", "providers", "conformance", "--url", platform.gateway,
         "--provider", "rgs", "--bootstrap", "--wallet-url", platform.url("wallet")],
        env={**env, "COLUMNS": "200"}, cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "no secret for provider 'rgs'" in run.stdout + run.stderr, run.stdout + run.stderr


def test_the_wallet_reconciles_against_the_local_platform_without_a_dsn(platform: Any, tmp_path: Path) -> None:
    platform.url("wallet")
    (tmp_path / ".gameplane").symlink_to(platform.data_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("GP_WALLET_DATABASE_URL", "GAMEPLANE_DATA_DIR")}
    run = subprocess.run([sys.executable, "-m", "gameplane.cli", "wallet", "reconcile"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("checked ") and "OK" in run.stdout, run.stdout
