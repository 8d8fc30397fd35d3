"""The wallet as a real process (`python -m gameplane.wallet`), SIGKILLed in the middle of load and
restarted. Clients keep retrying their keys until they get a definite answer. Afterwards: zero
invariant breaches, every acknowledged key present exactly once with the acknowledged transaction
id, no transaction nobody asked for, and balances equal to the sum of the acknowledged answers."""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.process import ServiceProcess

CLIENTS, OPS_PER_CLIENT, PLAYERS = 16, 30, 4


async def test_sigkill_mid_load_loses_and_doubles_nothing(new_database: Any, nats_server: Any,
                                                          tmp_path: Path) -> None:
    db_url = new_database("wallet_crash")
    wallet = ServiceProcess("wallet", {"DATABASE_URL": db_url, "NATS_URL": nats_server.url, "LOG_LEVEL": "WARNING"},
                            tmp_path / "wallet.log", grace=10.0)
    rng = random.Random(7)
    players = [str(uuid.uuid4()) for _ in range(PLAYERS)]
    acked: dict[str, dict[str, Any]] = {}
    ambiguous = 0
    ids = dev_identities()  # the wallet's settings come from them (tests/conftest.py)

    def headers(path: str) -> dict[str, str]:
        caller = {"/deposits": "payments", "/reconciliation": "backoffice"}.get(path, "games")
        return ids.bearer(caller, "wallet", ttl=600)
    wallet.start()
    try:
        await wallet.ready(30.0)
        async with httpx.AsyncClient(base_url=wallet.url, timeout=5.0) as client:

            async def send(path: str, body: dict[str, Any], allowed: tuple[int, ...] = (200, 402, 409)) -> None:
                nonlocal ambiguous
                while True:  # a client that got no answer cannot know what happened: same key again
                    try:
                        r = await client.post("/internal/wallet" + path, json=body, headers=headers(path))
                    except httpx.TransportError:
                        ambiguous += 1
                        await asyncio.sleep(0.1)
                        continue
                    if r.status_code == 503:
                        await asyncio.sleep(0.1)
                        continue
                    assert r.status_code in allowed, r.text
                    if r.status_code == 200:
                        assert acked.setdefault(body["idempotency_key"], r.json()) == r.json()
                    return

            async def worker(n: int) -> None:
                for i in range(OPS_PER_CLIENT):
                    p = rng.choice(players)
                    money = {"idempotency_key": f"k{n}-{i}", "player_id": p, "currency": "EUR"}
                    roll = rng.random()
                    if roll < 0.3:
                        await send("/deposits", {**money, "amount": rng.randint(100, 2000)})
                    elif roll < 0.75:
                        await send("/bets", {**money, "amount": rng.randint(1, 300), "round_id": f"r{n}-{i // 2}",
                                             "game_id": "g", "provider": "rgs"})
                    else:
                        body = {**money, "amount": rng.randint(0, 400), "round_id": f"r{n}-{(i - 1) // 2}",
                                "game_id": "g", "provider": "rgs", "close_round": False}
                        # the round may not exist (its bet was refused): 404 is then the definite answer
                        await send("/wins", body, (200, 404))

            async def crash() -> None:
                while len(acked) < CLIENTS * OPS_PER_CLIENT // 4:  # well into the load
                    await asyncio.sleep(0.01)
                wallet.kill()
                await asyncio.sleep(0.5)
                wallet.start()
                await wallet.ready(30.0)

            await asyncio.gather(crash(), *[worker(n) for n in range(CLIENTS)])
            assert ambiguous > 0, "the kill interrupted no request; the test proved nothing"
            report = (await client.get("/internal/wallet/reconciliation",
                                       headers=headers("/reconciliation"))).json()
            assert report["ok"], report["breaches"]
            balances = {p: (await client.get(f"/internal/wallet/players/{p}/balances/EUR",
                                             headers=headers("/balance"))).json() for p in players}
    finally:
        wallet.stop()

    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = dict((await conn.execute(text("SELECT idempotency_key, id::text FROM transactions"))).tuples().all())
    finally:
        await engine.dispose()
    assert rows == {k: d["transaction_id"] for k, d in acked.items()}, "lost or doubled transactions"
    expected = {p: [0, 0] for p in players}
    for d in acked.values():
        sign = 1 if d["kind"] in ("deposit", "win") else -1
        split = d["split"] or {"cash": d["amount"], "bonus": 0}
        expected[d["player_id"]][0] += sign * split["cash"]
        expected[d["player_id"]][1] += sign * split["bonus"]
    assert {p: [b["cash"], b["bonus"]] for p, b in balances.items()} == expected
