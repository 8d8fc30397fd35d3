"""NATS SIGKILLed under load and restarted on the same port and JetStream store: players and
wallet run as real processes (`python -m gameplane.<service>`), players keep registering,
logging in and self-excluding throughout. Afterwards every event players committed reached the
wallet exactly once (its processed-event records equal the stream's protection events, one
each), every self-exclusion acknowledged to a player is in the wallet's own copy, readiness never
failed during the outage, and the outbox backlog, visible meanwhile, drained to zero."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.infra import NatsServer
from gameplane.devtools.process import ServiceProcess
from gameplane.kit.auth import PLAYER_HEADER

PASSWORD = "correct horse battery staple"
PLAYERS = 60
CONSUMER = "wallet:players.protection_changed"


def _metric(body: str, name: str, service: str) -> float:
    for line in body.splitlines():
        if line.startswith(f'{name}{{service="{service}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} for {service} not exported")


async def _stream_event_ids(url: str, subject: str) -> list[str]:
    """Every message on `subject` the stream holds (their Nats-Msg-Id is the event id)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("GAMEPLANE")
        sub = await js.subscribe(subject, ordered_consumer=True,
                                 config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        ids: list[str] = []
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except TimeoutError:
                break
            ids.append(json.loads(msg.data)["id"])
            if msg.metadata.sequence.stream >= info.state.last_seq:
                break
        return ids
    finally:
        await nc.close()


async def test_nats_killed_under_load_loses_no_event_and_readiness_holds(new_database: Any,
                                                                         tmp_path: Path) -> None:
    broker = NatsServer(tmp_path / "nats")
    broker.start()
    common = {"NATS_URL": broker.url, "LOG_LEVEL": "WARNING"}  # keys: the test identities (tests/conftest.py)
    players_db, wallet_db = new_database("outage_players"), new_database("outage_wallet")
    players = ServiceProcess("players", {**common, "DATABASE_URL": players_db, "ARGON2_TIME_COST": "1",
                                         "ARGON2_MEMORY_KIB": "8192", "ARGON2_PARALLELISM": "1"},
                             tmp_path / "players.log")
    wallet = ServiceProcess("wallet", {**common, "DATABASE_URL": wallet_db}, tmp_path / "wallet.log")
    gateway = dev_identities().bearer("gateway", "players", ttl=900)
    excluded: list[str] = []  # self-exclusions the players service acknowledged
    during_outage = {"requests": 0, "unready": [], "backlog": 0.0}
    outage = asyncio.Event()
    try:
        players.start()
        wallet.start()
        await asyncio.gather(players.ready(interval=0.2), wallet.ready(interval=0.2))
        async with httpx.AsyncClient(timeout=10.0) as client:

            async def journey(n: int) -> None:
                email = f"outage-{n}-{uuid.uuid4().hex[:8]}@example.com"
                r = await client.post(players.url + "/v1/players/register", headers=gateway, json={
                    "email": email, "password": PASSWORD, "date_of_birth": "1985-06-15", "country": "GB",
                    "currency": "GBP"})
                assert r.status_code == 201, r.text
                pid = r.json()["id"]
                login = await client.post(players.url + "/v1/players/login", headers=gateway,
                                          json={"email": email, "password": PASSWORD})
                assert login.status_code == 200, login.text
                r = await client.post(players.url + "/v1/players/me/self-exclusion", json={"months": 6},
                                      headers={**gateway, PLAYER_HEADER: pid})
                assert r.status_code in (200, 201), r.text
                excluded.append(pid)
                if outage.is_set():
                    during_outage["requests"] += 3

            async def load() -> None:
                for wave in range(PLAYERS // 10):
                    await asyncio.gather(*(journey(wave * 10 + i) for i in range(10)))

            async def watch_readiness() -> None:
                while outage.is_set():
                    for svc in (players, wallet):
                        r = await client.get(svc.url + "/readyz")
                        if r.status_code != 200:
                            during_outage["unready"].append((svc.service, r.text))  # type: ignore[attr-defined]
                    metrics = (await client.get(players.url + "/metrics")).text
                    during_outage["backlog"] = max(during_outage["backlog"],  # type: ignore[type-var]
                                                   _metric(metrics, "gameplane_outbox_pending", "players"))
                    await asyncio.sleep(0.3)

            async def kill_and_restart() -> None:
                while len(excluded) < PLAYERS // 4:  # well into the load
                    await asyncio.sleep(0.01)
                broker.stop(hard=True)  # SIGKILL: a crash, not a shutdown
                outage.set()
                watcher = asyncio.create_task(watch_readiness())
                while len(excluded) < PLAYERS * 3 // 4:  # keep going while NATS is gone
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                outage.clear()
                await watcher
                broker.start()  # same port, same JetStream store directory

            await asyncio.gather(load(), kill_and_restart())
            assert len(excluded) == PLAYERS
            assert during_outage["requests"] > 0, "no request ran during the outage: the test proved nothing"
            assert during_outage["unready"] == [], during_outage["unready"]
            assert during_outage["backlog"] > 0, "the outbox never held a backlog: the outage was not under load"

            async def drained() -> bool:
                metrics = (await client.get(players.url + "/metrics")).text
                return _metric(metrics, "gameplane_outbox_pending", "players") == 0

            deadline = time.monotonic() + 60
            while not await drained():
                assert time.monotonic() < deadline, "the players outbox did not drain after NATS came back"
                await asyncio.sleep(0.5)

            engine = create_async_engine(wallet_db)
            try:
                deadline = time.monotonic() + 60
                while True:
                    async with engine.connect() as conn:
                        mirrored = set((await conn.execute(text(
                            "SELECT player_id::text FROM protection WHERE self_excluded_until IS NOT NULL"))).scalars())
                    if set(excluded) <= mirrored or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)
                missing = set(excluded) - mirrored
                assert not missing, f"{len(missing)} self-exclusions never reached the wallet"
                async with engine.connect() as conn:
                    processed = list((await conn.execute(text(
                        "SELECT event_id::text FROM processed_events WHERE consumer = :c"), {"c": CONSUMER})).scalars())
            finally:
                await engine.dispose()
        published = await _stream_event_ids(broker.url, "gameplane.players.protection_changed")
        assert len(published) == len(set(published)), "an event was stored twice in the stream"
        assert sorted(processed) == sorted(published)  # every one consumed, none twice, none unknown
        assert len(published) >= 2 * PLAYERS  # a snapshot at registration and one at self-exclusion
        async with httpx.AsyncClient(timeout=5.0) as client:
            after = (await client.get(players.url + "/readyz")).json()
        print(f"\nNATS outage: {during_outage['requests']} requests served while down, peak outbox backlog "
              f"{during_outage['backlog']:.0f}, {len(published)} protection events each consumed once; "
              f"players notes after: {after.get('notes')}")
    finally:
        players.stop()
        wallet.stop()
        broker.stop()
