"""Bonus money per grant (migration 0008): bets draw cash first, then the open grants in spend order;
wins follow the stake per grant; rollbacks mirror it; convert and forfeit move one grant's money;
free-spin wins land on their grant; the max stake of an open grant refuses a larger bet and moves
nothing; reconciliation invariant 8 holds and catches a planted breach. Expected figures are
worked out by hand in the comments, not taken from the wallet's code."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from walletlib import Wallet, slug

from gameplane.devtools.testing import as_service, running, stored_events
from gameplane.kit.events import Envelope
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings


@pytest.fixture(scope="module", params=[True, False], ids=["sql-fast-path", "python-path"])
async def wallet(module_service_settings: Any, request: pytest.FixtureRequest) -> AsyncIterator[Wallet]:
    app = build_app(module_service_settings(WalletSettings, house_shards=4, hold_sweep_seconds=3600,
                                            sql_fast_path=request.param))
    async with running(app) as client:
        yield Wallet(app, client)


@pytest.fixture
def player() -> uuid.UUID:
    return uuid.uuid4()


async def grant(w: Wallet, player: uuid.UUID, gid: str, amount: int, status: int = 200,
                **extra: Any) -> dict[str, Any]:
    return await w.post("/bonuses", {"idempotency_key": f"k-{gid}", "grant_id": gid, "player_id": str(player),
                                     "currency": "EUR", "amount": amount, **extra}, status)


async def listed(w: Wallet, player: uuid.UUID) -> dict[str, int]:
    return {g["grant_id"]: g["balance"] for g in await w.get(f"/players/{player}/grants/EUR")}


async def events(w: Wallet, expect: int = 1, **match: Any) -> list[dict[str, Any]]:
    found = await stored_events(w.app.state.runtime.settings.nats_url, "gameplane.wallet.>", match, expect)
    return [Envelope.model_validate(e).model_dump(mode="json") for e in found]


async def test_a_bet_draws_cash_then_grants_by_priority_and_age_and_wins_follow_per_grant(
        wallet: Wallet, player: uuid.UUID) -> None:
    p = str(player)[:8]
    a, b, c = f"a-{p}", f"b-{p}", f"c-{p}"
    await wallet.deposit(player, 100)
    await grant(wallet, player, a, 100)               # oldest, priority 0
    await grant(wallet, player, b, 300, priority=5)   # spent last: higher priority number
    await grant(wallet, player, c, 50)                # priority 0, younger than a
    assert await listed(wallet, player) == {a: 100, b: 300, c: 50}
    bet = await wallet.post("/bets", wallet.bet_body(player, 400, "r1"))
    # 100 cash, then a (100), c (50), b (the rest: 150)
    assert bet["split"] == {"cash": 100, "bonus": 300, "grants": {a: 100, c: 50, b: 150}}
    assert bet["balance"] == {"currency": "EUR", "cash": 0, "bonus": 150, "withdrawal_hold": 0}
    assert await listed(wallet, player) == {a: 0, b: 150, c: 0}
    win = await wallet.post("/wins", wallet.win_body(player, 1001, "r1"))
    # bonus part 1001 * 300 // 400 = 750 (cash 251); per grant 750*100//300 = 250, 750*50//300 = 125,
    # 750*150//300 = 375: exact, nothing left over
    assert win["split"] == {"cash": 251, "bonus": 750, "grants": {a: 250, c: 125, b: 375}}
    assert await listed(wallet, player) == {a: 250, b: 525, c: 125}
    assert win["balance"] == {"currency": "EUR", "cash": 251, "bonus": 900, "withdrawal_hold": 0}
    (ev,) = await events(wallet, transaction_id=win["transaction_id"])
    assert ev["data"]["grants"] == {a: 250, c: 125, b: 375}
    assert (await wallet.reconcile())["ok"]


async def test_the_rounding_remainder_goes_to_the_largest_stake(wallet: Wallet, player: uuid.UUID) -> None:
    p = str(player)[:8]
    a, b, c = f"a-{p}", f"b-{p}", f"c-{p}"
    for gid in (a, b, c):
        await grant(wallet, player, gid, 1)
    await grant(wallet, player, f"d-{p}", 0)  # a free-spins grant with nothing yet: not drawn on
    await wallet.post("/bets", wallet.bet_body(player, 3, "r1"))
    win = await wallet.post("/wins", wallet.win_body(player, 10, "r1"))
    # all bonus: 10 over three equal stakes = 3 each, remainder 1 to the largest (a tie: smallest id, a)
    assert win["split"] == {"cash": 0, "bonus": 10, "grants": {a: 4, b: 3, c: 3}}
    assert (await wallet.reconcile())["ok"]


async def test_a_rollback_gives_each_grant_back_exactly_what_the_bet_took(wallet: Wallet, player: uuid.UUID) -> None:
    p = str(player)[:8]
    a, b = f"a-{p}", f"b-{p}"
    await wallet.deposit(player, 10)
    await grant(wallet, player, a, 20)
    await grant(wallet, player, b, 30)
    bet = await wallet.post("/bets", wallet.bet_body(player, 45, "r1", key=f"bet-{p}"))
    assert bet["split"]["grants"] == {a: 20, b: 15}
    rb = await wallet.post("/rollbacks", wallet.rollback_body(player, f"bet-{p}"))
    assert rb["split"] == bet["split"] and await listed(wallet, player) == {a: 20, b: 30}
    (ev,) = await events(wallet, transaction_id=rb["transaction_id"])
    assert ev["type"] == "wallet.rolled_back" and ev["data"]["grants"] == {a: 20, b: 15}
    # the round's stake per grant is gone with it: the next bet and win split on what is left
    await wallet.post("/bets", wallet.bet_body(player, 10, "r1"))  # all cash
    win = await wallet.post("/wins", wallet.win_body(player, 40, "r1"))
    assert win["split"] == {"cash": 40, "bonus": 0}
    assert (await wallet.reconcile())["ok"]


async def test_convert_moves_one_grant_up_to_its_cap_and_forfeit_one_grant_with_its_reason(
        wallet: Wallet, player: uuid.UUID) -> None:
    p = str(player)[:8]
    a, b = f"a-{p}", f"b-{p}"
    await grant(wallet, player, a, 500)
    await grant(wallet, player, b, 70)
    conv = await wallet.post(f"/bonuses/{a}/convert", {"idempotency_key": f"c-{p}", "amount": 200})
    assert conv["amount"] == 200 and conv["balance"] == {"currency": "EUR", "cash": 200, "bonus": 70,
                                                        "withdrawal_hold": 0}
    assert await listed(wallet, player) == {b: 70}  # a is closed: not listed
    (ev,) = await events(wallet, transaction_id=conv["transaction_id"])
    assert ev["type"] == "wallet.bonus_converted"
    assert (ev["data"]["cash"], ev["data"]["forfeited"], ev["data"]["bonus"]) == (200, 300, -500)
    forfeit = await wallet.post(f"/bonuses/{b}/forfeit", {"idempotency_key": f"f-{p}", "reason": "expired"})
    assert forfeit["amount"] == 70 and forfeit["balance"]["bonus"] == 0 and forfeit["balance"]["cash"] == 200
    (ev,) = await events(wallet, transaction_id=forfeit["transaction_id"])
    assert ev["type"] == "wallet.bonus_forfeited" and ev["data"]["reason"] == "expired"
    again = await wallet.post(f"/bonuses/{b}/convert", {"idempotency_key": f"c2-{p}"}, 409)
    assert slug(again) == "grant-closed"
    assert (await wallet.reconcile())["ok"]


async def test_max_stake_refuses_a_larger_bet_and_moves_nothing_while_bonus_is_held(
        wallet: Wallet, player: uuid.UUID) -> None:
    p = str(player)[:8]
    a, b = f"a-{p}", f"b-{p}"
    await wallet.deposit(player, 1000)
    await grant(wallet, player, a, 100, max_stake=80)
    await grant(wallet, player, b, 100, max_stake=50)
    before = await wallet.balance(player)
    body = wallet.bet_body(player, 51, "r1", key=f"bet-{p}")
    problem = await wallet.post("/bets", body, 403)
    assert slug(problem) == "bonus-max-stake" and (problem["max_stake"], problem["grant_id"]) == (50, b)
    assert await wallet.balance(player) == before
    assert await events(wallet, expect=0, player_id=str(player), round_id="r1") == []
    ok = await wallet.post("/bets", wallet.bet_body(player, 50, "r1"))  # at the cap: accepted (all cash)
    assert ok["split"] == {"cash": 50, "bonus": 0}
    # negative control: once the player holds no bonus money, the grants' max stake no longer applies,
    # and the refused key was never consumed
    await wallet.post(f"/bonuses/{a}/forfeit", {"idempotency_key": f"fa-{p}"})
    await wallet.post(f"/bonuses/{b}/forfeit", {"idempotency_key": f"fb-{p}"})
    accepted = await wallet.post("/bets", body)
    assert accepted["amount"] == 51 and accepted["balance"]["cash"] == 1000 - 50 - 51
    assert (await wallet.reconcile())["ok"]


async def test_a_grant_without_max_stake_does_not_limit_bets(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 5000)
    await grant(wallet, player, f"a-{player}", 100)
    assert (await wallet.post("/bets", wallet.bet_body(player, 5000, "r1")))["split"]["cash"] == 5000


async def test_a_win_or_rollback_for_a_grant_closed_since_the_bet_goes_back_to_the_liability(
        wallet: Wallet, player: uuid.UUID) -> None:
    p = str(player)[:8]
    a, b = f"a-{p}", f"b-{p}"
    await grant(wallet, player, a, 100)
    await grant(wallet, player, b, 100)
    await wallet.post("/bets", wallet.bet_body(player, 150, "r1"))  # a: 100, b: 50
    await wallet.post(f"/bonuses/{a}/forfeit", {"idempotency_key": f"fa-{p}"})  # a had 0 left
    win = await wallet.post("/wins", wallet.win_body(player, 300, "r1"))
    # all bonus: a's share 200 goes back to the liability (a is closed), b's 100 to b
    assert win["split"] == {"cash": 0, "bonus": 300, "grants": {a: 200, b: 100}}
    assert win["balance"]["bonus"] == 150 and await listed(wallet, player) == {b: 150}
    await wallet.post("/bets", wallet.bet_body(player, 120, "r2", key=f"bet2-{p}"))  # all from b
    await wallet.post(f"/bonuses/{b}/convert", {"idempotency_key": f"cb-{p}"})       # b's 30 to cash
    rb = await wallet.post("/rollbacks", wallet.rollback_body(player, f"bet2-{p}"))
    assert rb["split"]["grants"] == {b: 120} and rb["balance"]["bonus"] == 0 and rb["balance"]["cash"] == 30
    assert await listed(wallet, player) == {}
    report = await wallet.reconcile()
    assert report["ok"], report["breaches"]
    async with wallet.app.state.runtime.database.session() as s:
        returned = (await s.execute(text(
            "SELECT t.idempotency_key, t.amount FROM transactions t WHERE t.player_id = :p "
            "AND t.details->>'reason' = 'closed-grant' ORDER BY t.seq"), {"p": player})).all()
    assert [r.amount for r in returned] == [200, 120]


async def test_free_spin_wins_land_on_their_grant(wallet: Wallet, player: uuid.UUID) -> None:
    p = str(player)[:8]
    fs = f"fs-{p}"
    await grant(wallet, player, fs, 0, max_stake=20)
    body = {"idempotency_key": f"rgs:spin1-{p}", "player_id": str(player), "currency": "EUR", "amount": 35,
            "award_id": f"award-{p}", "round_id": f"fr1-{p}", "game_id": "starburst", "provider": "rgs"}
    won = await wallet.post(f"/bonuses/{fs}/free-spin-wins", body)
    assert won["split"] == {"cash": 0, "bonus": 35, "grants": {fs: 35}} and won["grant_id"] == fs
    assert await wallet.post(f"/bonuses/{fs}/free-spin-wins", body) == won  # a replay answers the same
    assert slug(await wallet.post(f"/bonuses/{fs}/free-spin-wins", {**body, "amount": 36}, 409)) \
        == "duplicate-transaction"
    zero = await wallet.post(f"/bonuses/{fs}/free-spin-wins",
                             {**body, "idempotency_key": f"rgs:spin2-{p}", "amount": 0})
    assert zero["noop"] is True and zero["amount"] == 0 and zero["balance"]["bonus"] == 35
    assert await listed(wallet, player) == {fs: 35}
    (ev,) = await events(wallet, transaction_id=won["transaction_id"])
    assert ev["type"] == "wallet.free_spin_won" and ev["data"]["award_id"] == f"award-{p}"
    other = await wallet.post(f"/bonuses/{fs}/free-spin-wins",
                              {**body, "idempotency_key": f"rgs:x-{p}", "player_id": str(uuid.uuid4())}, 404)
    assert slug(other) == "grant-not-found"
    missing = await wallet.post("/bonuses/nope/free-spin-wins", {**body, "idempotency_key": f"rgs:y-{p}"}, 404)
    assert slug(missing) == "grant-not-found"
    await wallet.post(f"/bonuses/{fs}/convert", {"idempotency_key": f"c-{p}"})
    closed = await wallet.post(f"/bonuses/{fs}/free-spin-wins", {**body, "idempotency_key": f"rgs:z-{p}"}, 409)
    assert slug(closed) == "grant-closed"
    assert (await wallet.balance(player))["cash"] == 35
    assert (await wallet.reconcile())["ok"]


async def test_grant_routes_accept_only_their_callers(wallet: Wallet, player: uuid.UUID) -> None:
    c = wallet.client
    listing = f"/internal/wallet/players/{player}/grants/EUR"
    assert (await c.get(listing, headers=as_service(wallet.app, "games"))).status_code == 403
    assert (await c.get(listing, headers=as_service(wallet.app, "bonus"))).json() == []
    assert (await c.get(f"/internal/wallet/players/{player}/grants/XXX",
                        headers=as_service(wallet.app, "bonus"))).status_code == 422
    body = {"idempotency_key": "k", "player_id": str(player), "currency": "EUR", "amount": 1, "award_id": "a",
            "round_id": "r", "game_id": "g", "provider": "rgs"}
    r = await c.post("/internal/wallet/bonuses/g/free-spin-wins", json=body, headers=as_service(wallet.app, "bonus"))
    assert r.status_code == 403


async def test_reconciliation_reports_a_grant_that_disagrees_with_its_entries(wallet: Wallet,
                                                                             player: uuid.UUID) -> None:
    gid = f"a-{player}"
    await grant(wallet, player, gid, 100)
    assert (await wallet.reconcile())["ok"]
    async with wallet.app.state.runtime.database.transaction() as s:
        await s.execute(text("UPDATE bonus_grants SET balance = balance + 1 WHERE grant_id = :g"), {"g": gid})
    try:
        report = await wallet.reconcile()
        found = {b["detail"].split(" ")[1] for b in report["breaches"] if b["invariant"] == 8}
        assert not report["ok"] and {gid, str(player)} <= found, report["breaches"]
    finally:
        async with wallet.app.state.runtime.database.transaction() as s:
            await s.execute(text("UPDATE bonus_grants SET balance = balance - 1 WHERE grant_id = :g"), {"g": gid})
    assert (await wallet.reconcile())["ok"]


# ---- migration 0008 on data made at 0007 ------------------------------------------------------

class Books0007:
    """Ledger rows as the release at 0007 wrote them (one bonus account per player and currency,
    grants as bookkeeping only), written with plain SQL on a database at 0007."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.n = 0

    async def book(self, kind: str, player: uuid.UUID, postings: list[tuple[str, str, int]],
                   grant_id: str | None = None) -> None:
        self.n += 1
        tx, key = uuid.uuid4(), f"old-{kind}-{self.n}"
        bonus = sum(a for owner, k, a in postings if k == "bonus" and owner != "platform")
        await self.conn.execute(text(
            "INSERT INTO transactions (id, idempotency_key, kind, player_id, currency, amount, bonus, details) "
            "VALUES (:tx, :key, :kind, :p, 'EUR', :amount, :bonus, CAST(:d AS jsonb))"),
            {"tx": tx, "key": key, "kind": kind, "p": player, "amount": abs(bonus), "bonus": bonus,
             "d": f'{{"grant_id": "{grant_id}"}}' if grant_id else "{}"})
        await self.conn.execute(text(
            "INSERT INTO operations (key, kind, request_hash, transaction_id, response) "
            "VALUES (:key, :kind, 'h', :tx, jsonb_build_object('transaction_id', CAST(:txt AS text)))"),
            {"key": key, "kind": kind, "tx": tx, "txt": str(tx)})
        for owner, k, amount in postings:
            account = (await self.conn.execute(text(
                "INSERT INTO accounts AS a (owner, kind, currency) VALUES (:o, :k, 'EUR') "
                "ON CONFLICT (owner, kind, currency, shard) DO UPDATE SET balance = a.balance RETURNING id"),
                {"o": owner, "k": k})).scalar_one()
            await self.conn.execute(text("UPDATE accounts SET balance = balance + :a WHERE id = :id"),
                                    {"a": amount, "id": account})
            await self.conn.execute(text(
                "INSERT INTO entries (transaction_id, account_id, currency, amount) VALUES (:tx, :acc, 'EUR', :a)"),
                {"tx": tx, "acc": account, "a": amount})

    async def grant(self, player: uuid.UUID, gid: str, amount: int, age: int, state: str = "active") -> None:
        await self.conn.execute(text(
            "INSERT INTO bonus_grants (grant_id, player_id, currency, amount, state, created_at) "
            "VALUES (:g, :p, 'EUR', :a, :s, now() - make_interval(hours => :age))"),
            {"g": gid, "p": player, "a": amount, "s": state, "age": age})
        await self.book("bonus_grant", player,
                        [("platform", "bonus_liability", -amount), (str(player), "bonus", amount)], gid)


async def test_migration_0008_spreads_existing_bonus_balances_over_grants_without_loss(new_database: Any) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from gameplane.kit import migrate
    from gameplane.wallet.reconcile import reconcile

    url = new_database("wallet_0007")
    await asyncio.to_thread(migrate.upgrade, "gameplane.wallet", url, "0007")
    p1, p2, p3, p4, p5 = (uuid.uuid4() for _ in range(5))
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            old = Books0007(conn)
            house = ("platform", "house", 0)
            # p1: g1 300 (oldest), g2 100, g3 200 converted; a bet spent 150 of bonus: 250 left
            await old.grant(p1, "g1", 300, age=30)
            await old.grant(p1, "g2", 100, age=20)
            await old.grant(p1, "g3", 200, age=10, state="converted")
            await old.book("bonus_convert", p1, [
                (str(p1), "bonus", -200), (str(p1), "cash", 200), ("platform", "bonus_cost", -200),
                ("platform", "bonus_liability", 200)])
            await old.book("bet", p1, [(str(p1), "bonus", -150), (house[0], house[1], 150)])
            # p2: h1 100 and a bonus win of 60 on top: 160, more than its grants were
            await old.grant(p2, "h1", 100, age=5)
            await old.book("win", p2, [(str(p2), "bonus", 60), (house[0], house[1], -60)])
            # p3: bonus money and no grant row at all; p4: a grant fully spent; p5: cash only
            await old.book("bonus_grant", p3, [("platform", "bonus_liability", -40), (str(p3), "bonus", 40)])
            await old.grant(p4, "k1", 50, age=1)
            await old.book("bet", p4, [(str(p4), "bonus", -50), (house[0], house[1], 50)])
            await old.book("deposit", p5, [("platform", "psp_clearing", -70), (str(p5), "cash", 70)])
            await conn.execute(text(
                "INSERT INTO rounds (provider, player_id, round_id, currency, game_id, stake_bonus) "
                "VALUES ('rgs', :p, 'open-round', 'EUR', 'g', 150)"), {"p": p1})
        await migrate.upgrade_async("gameplane.wallet", url)
        async with engine.connect() as conn:
            grants = {r.grant_id: (r.balance, r.state) for r in (await conn.execute(text(
                "SELECT grant_id, balance, state FROM bonus_grants"))).all()}
            bonus = dict((await conn.execute(text(
                "SELECT owner, balance FROM accounts WHERE kind = 'bonus' AND owner <> 'platform'"))).tuples().all())
            stake = (await conn.execute(text("SELECT stake_grants FROM rounds"))).scalar_one()
        assert grants == {"g1": (250, "active"), "g2": (0, "active"), "g3": (0, "converted"),
                          "h1": (100, "active"), f"migrated-{p2}-EUR": (60, "active"),
                          f"migrated-{p3}-EUR": (40, "active"), "k1": (0, "active")}
        assert bonus == {str(p1): 250, str(p2): 160, str(p3): 40, str(p4): 0}  # the accounts did not move
        assert stake == {}
        async with AsyncSession(engine) as s:
            report = await reconcile(s)
        assert report.ok, report.breaches
        # negative control: the same check on the same data sees a grant that lost its opening entry
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM grant_entries WHERE grant_id = 'h1'"))
        async with AsyncSession(engine) as s:
            report = await reconcile(s)
        assert [b.invariant for b in report.breaches] == [8] and "h1" in report.breaches[0].detail
    finally:
        await engine.dispose()


async def test_concurrent_play_and_settlement_on_one_players_grants_keep_every_grant_exact(
        service_settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Bets, wins, rollbacks, free-spin wins, conversions and forfeits racing on one player's grants
    (the lock order key → round → accounts → grant rows): no deadlock or error reaches a caller,
    every answer is a success or a refusal the rules allow, and afterwards every grant's balance
    equals its entries and the open grants hold the bonus account (reconciliation), and the grants
    listing agrees with the balance. No operation even met a deadlock (the wallet would retry it)."""
    caplog.set_level(logging.WARNING, logger="gameplane.wallet")
    app = build_app(service_settings(WalletSettings, house_shards=4, db_pool_size=20))
    player = uuid.uuid4()
    async with running(app) as client:
        w = Wallet(app, client)
        await w.deposit(player, 200)
        # The house rows exist before the race, as in any wallet past its first minutes: a fast-path
        # batch that creates a house row (wallet_fast_house, sql/0004, on a shard's first use) holds
        # that new row from before it locks its player's accounts, out of the lock order, and a
        # Python-path operation posting to the same shard then deadlocks with it (seen here on a
        # fresh database; an 0004 matter, reported, not one of the grants').
        async with app.state.runtime.database.transaction() as s:
            await s.execute(text("INSERT INTO accounts (owner, kind, currency, shard) SELECT 'platform', 'house', "
                                 "'EUR', n FROM generate_series(0, 3) AS n ON CONFLICT DO NOTHING"))
        ids = [f"cg{n}-{player}" for n in range(6)]
        for n, gid in enumerate(ids):
            await grant(w, player, gid, 300 + 50 * n, priority=n % 2, max_stake=None if n else 400)

        async def post(path: str, body: dict[str, Any]) -> int:
            r = await client.post("/internal/wallet" + path, json=body, headers=w.headers(path))
            assert r.status_code < 500, r.text
            return r.status_code

        async def play(n: int) -> list[int]:
            rnd, key = f"cr{n}", f"cb{n}-{player}"
            codes = [await post("/bets", w.bet_body(player, 90 + n, rnd, key=key))]
            if n % 3 == 0:
                codes.append(await post("/rollbacks", w.rollback_body(player, key)))
            else:
                codes.append(await post("/wins", w.win_body(player, 37 * n, rnd)))
            return codes

        async def settle(n: int, gid: str) -> list[int]:
            verb = "convert" if n % 2 else "forfeit"
            return [await post(f"/bonuses/{gid}/{verb}", {"idempotency_key": f"s{n}-{player}", "amount": 120})]

        async def spin(n: int, gid: str) -> list[int]:
            return [await post(f"/bonuses/{gid}/free-spin-wins", {
                "idempotency_key": f"rgs:cs{n}-{player}", "player_id": str(player), "currency": "EUR",
                "amount": 11 * n, "award_id": "a", "round_id": f"fs{n}", "game_id": "g", "provider": "rgs"})]

        jobs = [play(n) for n in range(24)] + [settle(n, ids[n]) for n in (1, 2, 4)] \
            + [spin(n, ids[n % 6]) for n in range(12)]
        codes = [c for cs in await asyncio.gather(*jobs) for c in cs]
        assert set(codes) <= {200, 402, 403, 409}, codes  # funds, max stake, closed grant / round settled
        assert codes.count(200) >= 30, codes
        report = await w.reconcile()
        assert report["ok"], report["breaches"]
        assert sum((await listed(w, player)).values()) == (await w.balance(player))["bonus"]
    assert "retrying after" not in caplog.text, caplog.text
