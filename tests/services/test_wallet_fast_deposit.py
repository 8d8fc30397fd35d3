"""Deposits on the wallet's asyncpg path (gameplane.wallet.fastdeposit): it serves a plain credit
and declines everything whose answer is not one (a replay, a conflict, protection that could
refuse), which cashier.deposit then answers. Against real Postgres and NATS, through the HTTP API.
The deposit behaviours themselves are specified in test_wallet_operations / test_wallet_chargebacks,
which run against both paths; this holds that the fast one really runs, and writes what the other does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from walletlib import Wallet, protect, slug

from gameplane.contracts.players import LimitState
from gameplane.devtools.testing import running
from gameplane.kit.db import libpq_dsn
from gameplane.wallet.app import build_app
from gameplane.wallet.fastplay import FAST_PATH
from gameplane.wallet.settings import WalletSettings


@pytest.fixture(scope="module", params=[True, False], ids=["sql-fast-path", "python-path"])
async def wallet(module_service_settings: Any, request: pytest.FixtureRequest) -> AsyncIterator[Wallet]:
    app = build_app(module_service_settings(WalletSettings, house_shards=4, hold_sweep_seconds=3600,
                                            sql_fast_path=request.param))
    async with running(app) as client:
        yield Wallet(app, client)


def fast(wallet: Wallet) -> bool:
    return bool(wallet.app.state.runtime.settings.sql_fast_path)


def counts() -> dict[str, float]:
    return {out: FAST_PATH.labels("deposit", out)._value.get() for out in ("served", "declined")}


async def stored(wallet: Wallet, key: str) -> dict[str, Any]:
    """What a deposit wrote besides its answer: transaction details, entries by account, outbox event."""
    async with wallet.app.state.runtime.database.session() as s:
        tx = (await s.execute(text("SELECT id, kind, amount, details FROM transactions WHERE idempotency_key = :k"),
                              {"k": key})).mappings().one()
        entries = dict((await s.execute(text(
            "SELECT a.owner || ':' || a.kind, e.amount FROM entries e JOIN accounts a ON a.id = e.account_id "
            "WHERE e.transaction_id = :t"), {"t": tx["id"]})).tuples().all())
    return {"kind": tx["kind"], "amount": tx["amount"], "details": tx["details"], "entries": entries}


async def test_a_plain_deposit_is_served_fast_and_its_replay_and_conflict_by_the_python_path(
        wallet: Wallet) -> None:
    player = uuid.uuid4()
    key = f"fd-{player}"
    before = counts()
    first = await wallet.deposit(player, 1500, key=key)
    served = counts()
    assert served["served"] - before["served"] == (1 if fast(wallet) else 0)  # python-path: a negative control
    assert await wallet.deposit(player, 1500, key=key) == first  # the replay, identical
    assert slug(await wallet.deposit(player, 1499, key=key, status=409)) == "duplicate-transaction"
    after = counts()
    assert after["served"] == served["served"]
    assert after["declined"] - served["declined"] == (2 if fast(wallet) else 0)
    assert (await wallet.balance(player))["cash"] == 1500
    assert await stored(wallet, key) == {
        "kind": "deposit", "amount": 1500,
        "details": {"psp": "manual", "psp_reference": None, "first_deposit": True, "receivable_settled": 0,
                    "received": False},
        "entries": {f"{player}:cash": 1500, "platform:psp_clearing": -1500}}


async def test_a_deposit_limit_is_left_to_the_python_path_unless_the_money_was_received(wallet: Wallet) -> None:
    player = uuid.uuid4()
    await protect(wallet, player, 1, limits=[LimitState(kind="deposit", period="day", value=500)])
    before = counts()
    await wallet.deposit(player, 400)
    refused = await wallet.deposit(player, 101, status=403)
    assert refused["reason"] == "deposit-limit"
    mid = counts()
    assert mid["served"] == before["served"]
    assert mid["declined"] - before["declined"] == (2 if fast(wallet) else 0)
    # money a PSP already took is credited whatever the limit says, and that is a plain credit
    got = await wallet.deposit(player, 300, received=True)
    assert got["balance"]["cash"] == 700
    assert counts()["served"] - mid["served"] == (1 if fast(wallet) else 0)
    details = (await stored(wallet, got["idempotency_key"]))["details"]
    assert details["received"] is True and details["first_deposit"] is False


async def test_a_deposit_caught_in_a_deadlock_is_answered_once_not_a_500(wallet: Wallet) -> None:
    """A real deadlock: another transaction holds the clearing account and then waits for the
    player's cash row, which the deposit holds while it waits for the clearing account. PostgreSQL
    aborts the deposit's transaction (it waited first, and the other one's deadlock_timeout is
    long); the deposit runs again (the fast path hands it to the Python path, which retries) and is
    answered 200, credited once."""
    player = uuid.uuid4()
    await wallet.deposit(player, 100)  # the player's cash row and the clearing account exist
    other = await asyncpg.connect(libpq_dsn(wallet.app.state.runtime.settings.database_url))
    before = counts()
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute("SET LOCAL deadlock_timeout = '30s'")
        await other.execute("SELECT 1 FROM accounts WHERE owner = 'platform' AND kind = 'psp_clearing' "
                            "AND currency = 'EUR' FOR UPDATE")
        deposit = asyncio.create_task(wallet.deposit(player, 250, key=f"dl-{player}"))
        for _ in range(200):  # until the deposit waits on the clearing account, holding the cash row
            if await other.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted") > 0:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the deposit never waited on the clearing account")
        # closes the cycle; PostgreSQL breaks it after the deposit's deadlock_timeout (1 s)
        await other.execute("UPDATE accounts SET balance = balance WHERE owner = $1 AND kind = 'cash'",
                            str(player))
        await tx.rollback()
    finally:
        await other.close()
    answer = await asyncio.wait_for(deposit, 30)
    assert answer["balance"]["cash"] == 350
    assert (await wallet.balance(player))["cash"] == 350
    assert (await stored(wallet, f"dl-{player}"))["amount"] == 250  # one transaction for the key
    if fast(wallet):
        assert counts()["declined"] - before["declined"] == 1  # the fast path gave it up, nothing committed
