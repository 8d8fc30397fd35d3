"""Payments as a real process (`python -m gameplane.payments`), SIGKILLed in the middle of a webhook
storm and restarted: the PSP (this test) keeps delivering each success 1-3 times, shuffled and
concurrently, retrying whatever got no answer. Afterwards every deposit is credited exactly once,
balances are the sums, and `python -m gameplane.payments reconcile` finds the day clean.

Wallet and players run in this test's process (real HTTP, Postgres, NATS); the PSP adapter is
gameplane.devtools.filepsp, loaded into payments with GP_PAYMENTS_ADAPTER_MODULES."""

from __future__ import annotations

import asyncio
import contextlib
import csv
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

from gameplane.devtools.filepsp import FilePsp
from gameplane.devtools.identities import dev_identities
from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.process import ServiceProcess
from gameplane.kit.auth import PLAYER_HEADER
from gameplane.payments.settings import PspConfig
from gameplane.players.app import build_app as build_players
from gameplane.players.settings import PlayersSettings
from gameplane.wallet.app import build_app as build_wallet
from gameplane.wallet.settings import WalletSettings

DEPOSITS, PLAYERS, WORKERS = 200, 20, 16
SECRET = "filepsp-system-test-secret-0123456789"
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}


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
    psp_dir = tmp_path / "psp"
    psp_dir.mkdir()
    psp = FilePsp("filepsp", PspConfig(base_url=f"file://{psp_dir}", secret=SECRET))
    payments_db = new_database("payments")
    env = {"DATABASE_URL": payments_db, "NATS_URL": nats_server.url, "LOG_LEVEL": "WARNING",
           "ENDPOINTS": json.dumps(urls), "JURISDICTION": "mga", "SWEEP_SECONDS": "0.5",
           "RISK_FAILSAFE_MAX_DEPOSIT": "10000000", "ADAPTER_MODULES": json.dumps(["gameplane.devtools.filepsp"]),
           "PSPS": json.dumps({"filepsp": {"base_url": f"file://{psp_dir}", "secret": SECRET}})}
    payments = ServiceProcess("payments", env, tmp_path / "payments.log", grace=10.0)
    async with contextlib.AsyncExitStack() as stack:
        for s in socks.values():
            stack.callback(s.close)
        await stack.enter_async_context(served(wallet, socks["wallet"]))
        await stack.enter_async_context(served(players, socks["players"]))
        payments.start()
        stack.callback(payments.stop)
        await payments.ready(60.0)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10.0))

        pids = []
        for _ in range(PLAYERS):
            r = await http.post(urls["players"] + "/v1/players/register", headers=ids.bearer("gateway", "players"),
                                json={"email": f"p-{uuid.uuid4().hex[:10]}@example.com", "country": "MT",
                                      "password": "correct horse battery staple", "date_of_birth": "1990-01-01",
                                      "currency": "EUR"})
            assert r.status_code == 201, r.text
            pids.append(r.json()["id"])
        deposits: list[tuple[str, str, int]] = []
        for i in range(DEPOSITS):
            pid, amount = pids[i % PLAYERS], rng.randint(100, 90_000)
            r = await http.post(payments.url + "/v1/payments/deposits",
                                headers={**ids.bearer("gateway", "payments", ttl=600), PLAYER_HEADER: pid},
                                json={"amount": amount, "currency": "EUR", "psp": "filepsp"})
            assert r.status_code == 201, r.text
            deposits.append((pid, r.json()["reference"], amount))

        now = datetime.now(UTC)
        with (psp_dir / f"settlement-{now.date().isoformat()}.csv").open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["psp_reference", "reference", "kind", "amount", "currency", "settled_at"])
            for _, ref, amount in deposits:
                out.writerow([psp.psp_reference(ref), ref, "deposit", amount, "EUR", now.isoformat()])

        def webhook(ref: str, amount: int, pid: str) -> bytes:
            return json.dumps({"id": f"evt_{ref}", "type": "payment.succeeded", "reference": ref,
                               "psp_reference": psp.psp_reference(ref), "amount": amount, "currency": "EUR",
                               "occurred_at": datetime.now(UTC).isoformat(),
                               "method": {"type": "card", "fingerprint": f"fp-{pid}", "label": "VISA ..4242"}}
                              ).encode()

        queue = [webhook(ref, amount, pid) for pid, ref, amount in deposits for _ in range(rng.randint(1, 3))]
        rng.shuffle(queue)
        acked: Counter[str] = Counter()
        ambiguous = 0
        pending = asyncio.Queue[bytes]()
        for body in queue:
            pending.put_nowait(body)

        async def deliver() -> None:
            nonlocal ambiguous
            while not pending.empty():
                body = pending.get_nowait()
                while True:  # a PSP retries until it gets a 2xx
                    try:
                        r = await http.post(payments.url + "/webhooks/payments/filepsp", content=body,
                                            headers=psp.sign(body))
                    except httpx.TransportError:
                        ambiguous += 1
                        await asyncio.sleep(0.1)
                        continue
                    if r.status_code >= 500:
                        await asyncio.sleep(0.1)
                        continue
                    assert r.status_code == 200, r.text
                    acked[r.json()["outcome"]] += 1
                    break

        async def crash() -> None:
            while sum(acked.values()) < len(queue) // 4:
                await asyncio.sleep(0.01)
            payments.kill()
            await asyncio.sleep(0.5)
            payments.start()
            await payments.ready(60.0)

        await asyncio.gather(crash(), *(deliver() for _ in range(WORKERS)))
        assert ambiguous > 0, "the kill interrupted no delivery; the test proved nothing"
        assert acked["applied"] <= DEPOSITS and sum(acked.values()) == len(queue)

        refs = {ref for _, ref, _ in deposits}

        async def credits() -> list[dict[str, Any]]:
            r = await http.get(urls["wallet"] + "/internal/wallet/movements",
                               headers=ids.bearer("payments", "wallet"),
                               params={"prefix": "payments:deposit:", "since": "2000-01-01T00:00:00Z",
                                       "until": "2100-01-01T00:00:00Z"})
            assert r.status_code == 200, r.text
            return [m for m in r.json()["items"] if m["idempotency_key"].rsplit(":", 1)[-1] in refs]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(moves := await credits()) < DEPOSITS and loop.time() < deadline:
            await asyncio.sleep(0.5)  # a success recorded just before the kill is credited by the sweeper
        assert sorted(m["idempotency_key"] for m in moves) == sorted(f"payments:deposit:{r}" for r in refs)
        expected: Counter[str] = Counter()
        for pid, _, amount in deposits:
            expected[pid] += amount
        for pid in pids:
            r = await http.get(f"{urls['wallet']}/internal/wallet/players/{pid}/balances/EUR",
                               headers=ids.bearer("games", "wallet"))
            assert r.json()["cash"] == expected[pid]

        cli = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "gameplane.payments", "reconcile",
                                                       "--date", now.date().isoformat()],
                                      env=payments.env,
                                      capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        run = json.loads(cli.stdout)
        assert run["report_rows"] == DEPOSITS and run["mismatches"] == []
