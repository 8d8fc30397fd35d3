"""Payments as a real process (`python -m gameplane.payments`), SIGKILLed in the middle of a webhook
storm and restarted. The PSP is the real simulator (gameplane.simulators.psp, both dialects) and
payments talks to it through its real adapters (`simpsp`, `cardgw`): every deposit is paid on the
hosted page while the simulator holds its webhooks back, then the backlog is released at once, each
webhook delivered 1-3 times, some held back so later ones overtake them, retried until payments
answers 2xx. Afterwards every deposit is credited exactly once, balances are the sums, and
`python -m gameplane.payments reconcile` finds the day clean against the simulator's settlement reports.

Wallet, players and the simulator run in this test's process (real HTTP, Postgres, NATS); risk is
not running, so payments' fail-safe lets the deposits through (they are under its limit)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.process import ServiceProcess
from gameplane.devtools.pspsim import psp_simulator
from gameplane.kit.auth import PLAYER_HEADER
from gameplane.players.app import build_app as build_players
from gameplane.players.settings import PlayersSettings
from gameplane.wallet.app import build_app as build_wallet
from gameplane.wallet.settings import WalletSettings

DEPOSITS, PLAYERS = 200, 20
CARD = "4242424242424242"  # a valid (Luhn) card the simulator pays with
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}
PSPS = ("simpsp", "cardgw")


async def test_sigkill_mid_webhook_storm_still_credits_each_deposit_exactly_once(
        new_database: Any, nats_server: Any, tmp_path: Path) -> None:
    rng = random.Random(1414)
    ids = dev_identities()
    socks = {"wallet": listener(), "players": listener()}
    urls = {n: f"http://127.0.0.1:{s.getsockname()[1]}" for n, s in socks.items()}
    common = {"nats_url": nats_server.url, "endpoints": urls, "log_level": "WARNING"}
    wallet = build_wallet(WalletSettings(database_url=new_database("wallet"), hold_sweep_seconds=3600, **common))
    players = build_players(PlayersSettings(database_url=new_database("players"), jurisdiction="mga",
                                            **FAST_HASH, **common))
    env = {"DATABASE_URL": new_database("payments"), "NATS_URL": nats_server.url, "LOG_LEVEL": "WARNING",
           "ENDPOINTS": json.dumps(urls), "JURISDICTION": "mga", "SWEEP_SECONDS": "0.5",
           "RISK_FAILSAFE_MAX_DEPOSIT": "10000000"}
    payments = ServiceProcess("payments", env, tmp_path / "payments.log", grace=10.0)
    hooks = {d: f"{payments.url}/webhooks/payments/{d}" for d in PSPS}
    async with contextlib.AsyncExitStack() as stack:
        for s in socks.values():
            stack.callback(s.close)
        psp = await stack.enter_async_context(psp_simulator(
            hooks, seed=1414, duplicate_ratio=0.6, max_copies=3, reorder_ratio=0.3, reorder_delay_seconds=0.2,
            delivery_concurrency=16, retry_max_seconds=0.5, delivery_timeout_seconds=5.0))
        payments.env["GP_PAYMENTS_PSPS"] = json.dumps({d: psp.connection(d) for d in PSPS})
        await stack.enter_async_context(served(wallet, socks["wallet"]))
        await stack.enter_async_context(served(players, socks["players"]))
        payments.start()
        stack.callback(payments.stop)
        await payments.ready(60.0)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10.0))
        control = psp.control_headers()

        async def deliveries() -> dict[str, Any]:
            r = await http.get(f"{psp.url}/control/deliveries", headers=control)
            assert r.status_code == 200, r.text
            return dict(r.json())

        pids = []
        for _ in range(PLAYERS):
            r = await http.post(urls["players"] + "/v1/players/register", headers=ids.bearer("gateway", "players"),
                                json={"email": f"p-{uuid.uuid4().hex[:10]}@example.com", "country": "MT",
                                      "password": "correct horse battery staple", "date_of_birth": "1990-01-01",
                                      "currency": "EUR"})
            assert r.status_code == 201, r.text
            pids.append(r.json()["id"])

        # The storm is built first: webhooks wait at the simulator while every page is paid.
        r = await http.patch(f"{psp.url}/control/delivery", headers=control, json={"paused": True})
        assert r.status_code == 200 and r.json()["paused"], r.text
        deposits: list[tuple[str, str, str, int]] = []  # (player, psp, reference, amount)
        for i in range(DEPOSITS):
            pid, name, amount = pids[i % PLAYERS], PSPS[i % 2], rng.randint(100, 90_000)
            r = await http.post(payments.url + "/v1/payments/deposits",
                                headers={**ids.bearer("gateway", "payments", ttl=600), PLAYER_HEADER: pid},
                                json={"amount": amount, "currency": "EUR", "psp": name})
            assert r.status_code == 201, r.text
            assert r.json()["redirect_url"].startswith(psp.url + "/pay/"), r.text
            paid = await http.post(r.json()["redirect_url"], data={"method": "card", "card_number": CARD,
                                                                   "action": "pay"})
            assert paid.status_code == 303 and "status=succeeded" in paid.headers["location"], paid.text
            deposits.append((pid, name, r.json()["reference"], amount))
        backlog = (await deliveries())["pending"]
        assert backlog > DEPOSITS, backlog  # every success, and duplicates of some

        killed_after: list[int] = []

        async def crash() -> None:
            while (acked := sum(a["ok"] for a in (await deliveries())["attempts"])) < backlog // 4:
                await asyncio.sleep(0.01)
            payments.kill()
            killed_after.append(acked)
            await asyncio.sleep(0.5)
            payments.start()
            await payments.ready(60.0)

        r = await http.patch(f"{psp.url}/control/delivery", headers=control, json={"paused": False})
        assert r.status_code == 200, r.text
        await crash()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while (state := await deliveries())["pending"] and loop.time() < deadline:
            await asyncio.sleep(0.25)  # the simulator retries whatever got no 2xx
        assert state["pending"] == 0, state["pending"]
        attempts = state["attempts"]
        assert killed_after and killed_after[0] < backlog, "the kill came after the storm; it proved nothing"
        unanswered = [a for a in attempts if a["status"] is None]  # connection refused or cut by the kill
        assert unanswered, "no delivery met the dead process; the test proved nothing"
        acked_events = Counter(a["event_id"] for a in attempts if a["ok"])
        assert len(acked_events) == DEPOSITS and max(acked_events.values()) > 1  # each, some more than once
        assert all(a["status"] is None or a["status"] < 400 for a in attempts), [
            a for a in attempts if a["status"] and a["status"] >= 400][:5]  # never refused: each was genuine

        refs = {ref for _, _, ref, _ in deposits}

        async def credits() -> list[dict[str, Any]]:
            r = await http.get(urls["wallet"] + "/internal/wallet/movements",
                               headers=ids.bearer("payments", "wallet"),
                               params={"prefix": "payments:deposit:", "since": "2000-01-01T00:00:00Z",
                                       "until": "2100-01-01T00:00:00Z"})
            assert r.status_code == 200, r.text
            return [m for m in r.json()["items"] if m["idempotency_key"].rsplit(":", 1)[-1] in refs]

        deadline = loop.time() + 60
        while len(moves := await credits()) < DEPOSITS and loop.time() < deadline:
            await asyncio.sleep(0.5)  # a success recorded just before the kill is credited by the sweeper
        assert sorted(m["idempotency_key"] for m in moves) == sorted(f"payments:deposit:{r}" for r in refs)
        expected: Counter[str] = Counter()
        for pid, _, _, amount in deposits:
            expected[pid] += amount
        for pid in pids:
            r = await http.get(f"{urls['wallet']}/internal/wallet/players/{pid}/balances/EUR",
                               headers=ids.bearer("games", "wallet"))
            assert r.json()["cash"] == expected[pid]

        day = datetime.now(UTC).date().isoformat()
        cli = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "gameplane.payments", "reconcile",
                                                       "--date", day],
                                      env=payments.env, capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        run = json.loads(cli.stdout)
        # each PSP's report: a row per deposit and one for its fee
        assert run["report_rows"] == 2 * DEPOSITS and run["mismatches"] == [], run
