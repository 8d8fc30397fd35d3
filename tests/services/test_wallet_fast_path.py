"""The one-round-trip SQL path for bets and wins (sql/0002_fast_play.sql, sent in batches by
sql/0004_fast_batch.sql): it serves the common case, declines everything else to the Python path
unchanged, and what it writes (answer, ledger rows, event) is exactly what the Python path writes;
in a batch each operation is answered and rolled back on its own."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from walletlib import W, Wallet, slug

from gameplane.contracts.wallet import BetRequest, OperationResult, WinRequest
from gameplane.devtools.testing import running, stored_events
from gameplane.kit.events import Envelope
from gameplane.wallet import ledger
from gameplane.wallet.app import build_app
from gameplane.wallet.fastplay import FAST_PATH, batch_totals, bet_op, win_op
from gameplane.wallet.rules import Context
from gameplane.wallet.settings import WalletSettings


@pytest.fixture(scope="module")
async def fast(module_service_settings: Any) -> AsyncIterator[Wallet]:
    app = build_app(module_service_settings(WalletSettings, house_shards=4))
    async with running(app) as client:
        yield Wallet(app, client)


@pytest.fixture(scope="module")
async def python_path(module_service_settings: Any, fast: Wallet) -> AsyncIterator[Wallet]:
    """A second wallet on the same database with the SQL path switched off."""
    app = build_app(module_service_settings(WalletSettings, house_shards=4, sql_fast_path=False,
                                            database_url=fast.app.state.runtime.settings.database_url))
    async with running(app) as client:
        yield Wallet(app, client)


@pytest.fixture(scope="module")
async def one_slot(module_service_settings: Any, fast: Wallet) -> AsyncIterator[Wallet]:
    """A wallet on the same database with one batch slot: concurrent requests queue into batches."""
    app = build_app(module_service_settings(WalletSettings, house_shards=4, fast_batch_slots=1,
                                            database_url=fast.app.state.runtime.settings.database_url))
    async with running(app) as client:
        yield Wallet(app, client)


def counted(operation: str, outcome: str) -> float:
    return FAST_PATH.labels(operation, outcome)._value.get()  # type: ignore[no-any-return]


class Tally:
    """How many bets/wins the SQL path served and declined since it was made."""

    def __init__(self) -> None:
        self.start = {(op, out): counted(op, out) for op in ("bet", "win") for out in ("served", "declined")}

    def __call__(self, operation: str, outcome: str) -> int:
        return int(counted(operation, outcome) - self.start[operation, outcome])


async def test_the_common_bet_and_win_are_served_in_one_round_trip(fast: Wallet) -> None:
    player = uuid.uuid4()
    await fast.deposit(player, 1000)
    tally = Tally()
    bet = await fast.post("/bets", fast.bet_body(player, 300, "r1"))
    win = await fast.post("/wins", fast.win_body(player, 500, "r1"))
    assert (tally("bet", "served"), tally("win", "served"), tally("bet", "declined")) == (1, 1, 0)
    assert OperationResult.model_validate(bet).balance.cash == 700
    assert OperationResult.model_validate(win).balance.cash == 1200
    assert (await fast.reconcile())["ok"] is True


async def test_everything_else_is_declined_to_the_python_path_with_its_exact_problem(fast: Wallet) -> None:
    player = uuid.uuid4()
    await fast.deposit(player, 100)
    tally = Tally()
    assert slug(await fast.post("/bets", fast.bet_body(player, 101, "r1"), 402)) == "insufficient-funds"
    body = fast.bet_body(player, 10, "r1")
    first = await fast.post("/bets", body)
    assert await fast.post("/bets", body) == first  # a replay: the stored answer
    assert slug(await fast.post("/bets", {**body, "amount": 11}, 409)) == "duplicate-transaction"
    assert slug(await fast.post("/bets", {**fast.bet_body(player, 1, "r1"), "currency": "USD"}, 409)) \
        == "currency-mismatch"
    await fast.post("/wins", fast.win_body(player, 0, "r1", close=True))
    assert slug(await fast.post("/bets", fast.bet_body(player, 1, "r1"), 409)) == "round-closed"
    assert slug(await fast.post("/wins", fast.win_body(player, 1, "r1"), 409)) == "round-closed"
    assert slug(await fast.post("/wins", fast.win_body(player, 1, "never-bet"), 404)) == "bet-not-found"
    assert (await fast.post("/bets", fast.bet_body(player, 0, "free")))["amount"] == 0  # zero stake: Python path
    rb = await fast.post("/rollbacks", fast.rollback_body(player, "late-bet"))
    assert rb["noop"] is True
    assert slug(await fast.post("/bets", fast.bet_body(player, 1, "r9", key="late-bet"), 409)) == "bet-rolled-back"
    assert (tally("bet", "served"), tally("win", "served")) == (1, 1)
    assert (tally("bet", "declined"), tally("win", "declined")) == (7, 2)
    assert (await fast.reconcile())["ok"] is True


async def _protection(w: Wallet, player: uuid.UUID, **fields: Any) -> None:
    row = {"limits": [], "timeout_until": None, "self_excluded_until": None, **fields}
    async with w.app.state.runtime.database.transaction() as s:
        await s.execute(text(
            "INSERT INTO protection (player_id, revision, currency, limits, timeout_until, self_excluded_until) "
            "VALUES (:p, 1, 'EUR', CAST(:limits AS jsonb), :t, :x) ON CONFLICT (player_id) DO UPDATE SET "
            "limits = EXCLUDED.limits, timeout_until = EXCLUDED.timeout_until, "
            "self_excluded_until = EXCLUDED.self_excluded_until"),
            {"p": player, "limits": json.dumps(row["limits"]), "t": row["timeout_until"],
             "x": row["self_excluded_until"]})


async def test_protection_that_could_matter_sends_the_bet_to_the_python_path(fast: Wallet) -> None:
    player = uuid.uuid4()
    await fast.deposit(player, 1000)
    now = datetime.now(UTC)
    await _protection(fast, player, limits=[{"kind": "loss", "period": "day", "value": 150}])
    tally = Tally()
    await fast.post("/bets", fast.bet_body(player, 100, "r1"))
    problem = await fast.post("/bets", fast.bet_body(player, 100, "r2"), 403)
    assert problem["reason"] == "loss-limit"
    await _protection(fast, player, timeout_until=now + timedelta(hours=1))
    assert (await fast.post("/bets", fast.bet_body(player, 1, "r3"), 403))["reason"] == "timed-out"
    await _protection(fast, player, self_excluded_until=now + timedelta(days=1))
    assert (await fast.post("/bets", fast.bet_body(player, 1, "r4"), 403))["reason"] == "self-excluded"
    assert (tally("bet", "served"), tally("bet", "declined")) == (0, 4)
    # a deposit limit or a lapsed time-out is nothing the bet path checks: served again
    await _protection(fast, player, limits=[{"kind": "deposit", "period": "day", "value": 5}],
                      timeout_until=now - timedelta(minutes=1))
    await fast.post("/bets", fast.bet_body(player, 1, "r5"))
    assert tally("bet", "served") == 1


def _same(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs by construction between two runs (ids, keys, times)."""
    return {k: v for k, v in answer.items() if k not in ("transaction_id", "idempotency_key", "player_id",
                                                         "created_at")}


async def _play(w: Wallet, player: uuid.UUID) -> list[dict[str, Any]]:
    """A cash-only player's round (a player holding bonus money: see _bonus_play)."""
    await w.deposit(player, 1500)
    return [await w.post("/bets", w.bet_body(player, 1200, "r1")),
            await w.post("/bets", w.bet_body(player, 7, "r1")),
            await w.post("/wins", w.win_body(player, 601, "r1", close=False)),
            await w.post("/wins", w.win_body(player, 0, "r1", close=True))]


async def test_both_paths_write_the_same_answers_rows_and_events(fast: Wallet, python_path: Wallet) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    tally = Tally()
    fast_answers, python_answers = await _play(fast, a), await _play(python_path, b)
    assert (tally("bet", "served"), tally("win", "served")) == (2, 2)
    assert [_same(x) for x in fast_answers] == [_same(x) for x in python_answers]
    assert fast_answers[0]["split"] == {"cash": 1200, "bonus": 0}
    assert fast_answers[2]["balance"]["cash"] == 1500 - 1207 + 601

    async def rows(player: uuid.UUID) -> list[Any]:
        async with fast.app.state.runtime.database.session() as s:
            return (await s.execute(text(
                "SELECT t.kind, t.amount, t.cash, t.bonus, t.details - 'session_id' AS details, "
                "array_agg(a.owner = 'platform' ORDER BY a.owner = 'platform', a.kind, e.amount) AS platform, "
                "array_agg(a.kind ORDER BY a.owner = 'platform', a.kind, e.amount) AS kinds, "
                "array_agg(e.amount ORDER BY a.owner = 'platform', a.kind, e.amount) AS amounts "
                "FROM transactions t JOIN entries e ON e.transaction_id = t.id JOIN accounts a ON a.id = e.account_id "
                "WHERE t.player_id = :p AND t.kind IN ('bet', 'win') GROUP BY t.seq, t.id ORDER BY t.seq"),
                {"p": player})).all()

    assert await rows(a) == await rows(b)

    async def events(player: uuid.UUID) -> list[Any]:
        found = await stored_events(fast.app.state.runtime.settings.nats_url, "gameplane.wallet.>",
                                    {"player_id": str(player), "game_id": "starburst"}, 4)
        out = []
        for env in found:
            e = Envelope.model_validate(env)
            assert e.open()  # a valid event of its registered type and version
            out.append((e.type, e.version, e.producer,
                        {k: v for k, v in e.data.items() if k not in ("transaction_id", "player_id", "occurred_at")}))
        return out

    assert await events(a) == await events(b)
    assert (await fast.reconcile())["ok"] is True


async def test_v3_declines_a_bonus_holders_bet_and_a_win_on_a_bonus_stake_and_serves_cash_only_play(
        fast: Wallet) -> None:
    """The SQL functions themselves (called as the Batcher calls them): a bet by a player holding
    bonus money and a win in a round staked with bonus money are declined, having written nothing;
    a cash-only player's bet and win in the same batch are served."""
    holder, cash_only = uuid.uuid4(), uuid.uuid4()
    await fast.deposit(holder, 1000)
    await fast.deposit(cash_only, 1000)
    await fast.post("/bonuses", {"idempotency_key": f"g-{holder}", "grant_id": f"g-{holder}",
                                 "player_id": str(holder), "currency": "EUR", "amount": 500})
    # a round with a bonus stake, made by the Python path (a stake beyond the cash)
    await fast.post("/bets", fast.bet_body(holder, 1200, "staked"))

    def bet(player: uuid.UUID, key: str, amount: int) -> dict[str, Any]:
        return bet_op(BetRequest(**fast.bet_body(player, amount, f"r-{key}", key=key)), Context())

    def win(player: uuid.UUID, key: str, round_id: str) -> dict[str, Any]:
        return win_op(WinRequest(**fast.win_body(player, 50, round_id, key=key)), Context())

    ops = [bet(holder, f"hb-{holder}", 10), win(holder, f"hw-{holder}", "staked"),
           bet(cash_only, f"cb-{cash_only}", 10), win(cash_only, f"cw-{cash_only}", f"r-cb-{cash_only}")]
    async with fast.app.state.runtime.database.pool.acquire() as con:
        answers = await con.fetchval("SELECT wallet_fast_batch_v3($1, 1)", json.dumps(ops))
    assert answers[0].startswith("!GPF01 fast path declined: bonus") and "bonus stake" in answers[1], answers
    assert [json.loads(a)["balance"]["cash"] for a in answers[2:]] == [990, 1040]
    async with fast.app.state.runtime.database.session() as s:
        taken = (await s.execute(text("SELECT count(*) FROM operations WHERE key = ANY(:k)"),
                                 {"k": [f"hb-{holder}", f"hw-{holder}"]})).scalar_one()
    assert taken == 0
    assert (await fast.reconcile())["ok"] is True


def _grant(w: Wallet, player: uuid.UUID, name: str, amount: int, **over: Any) -> Any:
    grant_id = f"{name}-{player}"
    return w.post("/bonuses", {"idempotency_key": f"grant-{grant_id}", "grant_id": grant_id,
                               "player_id": str(player), "currency": "EUR", "amount": amount, **over})


def _anon(value: Any, player: uuid.UUID) -> Any:
    """The same document with the player's id (also inside the grant ids) replaced: two players'
    documents compare equal when they played the same."""
    return json.loads(json.dumps(value).replace(str(player), "P"))


async def _bonus_play(w: Wallet, player: uuid.UUID) -> list[dict[str, Any]]:
    """A player with a little cash and three grants (b after a, c of a later priority) whose bets
    draw on several grants and whose wins go back over them."""
    await w.deposit(player, 300)
    await _grant(w, player, "a", 200)
    await _grant(w, player, "b", 500, max_stake=5000)
    await _grant(w, player, "c", 100, priority=1)
    return [await w.post("/bets", w.bet_body(player, 100, "r1")),   # all cash, the player holding bonus
            await w.post("/bets", w.bet_body(player, 450, "r1")),   # cash 200, then a 200 and b 50
            await w.post("/wins", w.win_body(player, 333, "r1", close=False)),
            await w.post("/wins", w.win_body(player, 0, "r1", close=True)),
            await w.post("/bets", w.bet_body(player, 700, "r2")),   # cash 182, a 121, b 397 (all), c 0
            await w.post("/bets", w.bet_body(player, 130, "r2")),   # the rest of b (83), then c 47
            await w.post("/wins", w.win_body(player, 1001, "r2"))]


async def test_bonus_bets_and_wins_are_served_in_one_round_trip_exactly_as_the_python_path_answers_them(
        fast: Wallet, python_path: Wallet) -> None:
    """Bets that split cash and bonus over several grants and wins that follow the split: the SQL
    path serves every one of them, and its answers, ledger and grant rows, rounds and events are
    those the Python path writes for the same play."""
    a, b = uuid.uuid4(), uuid.uuid4()
    tally = Tally()
    fast_answers = await _bonus_play(fast, a)
    assert (tally("bet", "served"), tally("win", "served"), tally("bet", "declined"), tally("win", "declined")) \
        == (4, 3, 0, 0)
    python_answers = await _bonus_play(python_path, b)
    assert (tally("bet", "served"), tally("win", "served")) == (4, 3)  # the Python wallet never asks the SQL path
    assert [_anon(_same(x), a) for x in fast_answers] == [_anon(_same(x), b) for x in python_answers]
    # worked by hand (not from the wallet's code): the stake r1 is cash 300 + bonus 250 (a 200, b 50);
    # the win 333 has bonus 333 * 250 // 550 = 151, over the grants 151 * 200 // 250 = 120 and
    # 151 * 50 // 250 = 30, the remaining 1 to a (the larger stake)
    assert [_anon(x["split"], a) for x in fast_answers[:3]] == [
        {"cash": 100, "bonus": 0}, {"cash": 200, "bonus": 250, "grants": {"a-P": 200, "b-P": 50}},
        {"cash": 182, "bonus": 151, "grants": {"a-P": 121, "b-P": 30}}]

    async def rows(player: uuid.UUID) -> Any:
        async with fast.app.state.runtime.database.session() as s:
            ledger_rows = (await s.execute(text(
                "SELECT t.kind, t.amount, t.cash, t.bonus, t.details - 'session_id' AS details, "
                "(SELECT array_agg(a.kind || ':' || (a.owner = 'platform') || ':' || e.amount "
                " ORDER BY a.owner = 'platform', a.kind, e.amount) "
                " FROM entries e JOIN accounts a ON a.id = e.account_id WHERE e.transaction_id = t.id) AS entries, "
                "(SELECT array_agg(replace(ge.grant_id, :ps, 'P') || ':' || ge.amount ORDER BY ge.grant_id) "
                " FROM grant_entries ge WHERE ge.transaction_id = t.id) AS grant_entries "
                "FROM transactions t WHERE t.player_id = :p AND t.kind IN ('bet', 'win') ORDER BY t.seq"),
                {"p": player, "ps": str(player)})).all()
            grant_rows = (await s.execute(text(
                "SELECT replace(grant_id, :ps, 'P'), balance, state FROM bonus_grants WHERE player_id = :p "
                "ORDER BY grant_id"), {"p": player, "ps": str(player)})).all()
            round_rows = (await s.execute(text(
                "SELECT round_id, stake_cash, stake_bonus, stake_grants, won, closed FROM rounds "
                "WHERE player_id = :p ORDER BY round_id"), {"p": player})).all()
        return [tuple(r) for r in ledger_rows], [tuple(r) for r in grant_rows], \
            [_anon(tuple(r), player) for r in round_rows]

    fast_rows = await rows(a)
    assert fast_rows == await rows(b)
    assert all(r[6] for r in fast_rows[0][1:3] + fast_rows[0][4:]), fast_rows[0]  # grant entries were written
    # by hand: r2's stake is cash 182 + bonus 648 (a 121, b 480, c 47); the win 1001 has bonus
    # 1001 * 648 // 830 = 781: a 781 * 121 // 648 = 145, b 578 + the remaining 2 (the largest), c 56
    assert fast_rows[1] == [("a-P", 145, "active"), ("b-P", 580, "active"), ("c-P", 53 + 56, "active")]

    async def events(player: uuid.UUID) -> list[Any]:
        found = await stored_events(fast.app.state.runtime.settings.nats_url, "gameplane.wallet.>",
                                    {"player_id": str(player), "game_id": "starburst"}, 7)
        out = []
        for env in found:
            e = Envelope.model_validate(env)
            assert e.open()
            out.append((e.type, e.version, e.producer, _anon(
                {k: v for k, v in e.data.items() if k not in ("transaction_id", "player_id", "occurred_at")}, player)))
        return out

    fast_events = await events(a)
    assert fast_events == await events(b)
    assert fast_events[1][3]["grants"] == {"a-P": 200, "b-P": 50}
    assert (await fast.reconcile())["ok"] is True


async def test_a_wins_remainder_goes_to_the_smallest_grant_id_in_code_point_order_on_both_paths(
        fast: Wallet, python_path: Wallet) -> None:
    """Equal stakes on two grants: the unit a win cannot split evenly goes to the grant whose id is
    smaller by code point ("Zed" < "ant", whatever the database's collation says)."""
    async def play(w: Wallet, player: uuid.UUID) -> list[dict[str, Any]]:
        await _grant(w, player, "ant", 50)
        await _grant(w, player, "Zed", 50)
        return [await w.post("/bets", w.bet_body(player, 100, "tie")),
                await w.post("/wins", w.win_body(player, 3, "tie"))]

    a, b = uuid.uuid4(), uuid.uuid4()
    tally = Tally()
    fast_answers = await play(fast, a)
    assert (tally("bet", "served"), tally("win", "served")) == (1, 1)
    python_answers = await play(python_path, b)
    assert [_anon(x["split"], a) for x in fast_answers] == [_anon(x["split"], b) for x in python_answers] == [
        {"cash": 0, "bonus": 100, "grants": {"ant-P": 50, "Zed-P": 50}},
        {"cash": 0, "bonus": 3, "grants": {"ant-P": 1, "Zed-P": 2}}]
    assert (await fast.reconcile())["ok"] is True


async def test_what_the_python_path_owns_in_bonus_play_is_declined_to_it(fast: Wallet) -> None:
    """A stake above a grant's max stake while the player holds bonus money is declined by the SQL
    path and refused by the Python path (403 bonus-max-stake, nothing moved); the same player's
    stake at the max stake is served (the negative control). A win whose grant closed since the bet
    is declined too: the Python path credits it and returns that grant's part to the liability."""
    player = uuid.uuid4()
    await fast.deposit(player, 100)
    await _grant(fast, player, "capped", 500, max_stake=150)
    tally = Tally()
    before = await fast.balance(player)
    problem = await fast.post("/bets", fast.bet_body(player, 151, "over"), 403)
    assert slug(problem) == "bonus-max-stake" and problem["max_stake"] == 150
    assert await fast.balance(player) == before
    assert (tally("bet", "served"), tally("bet", "declined")) == (0, 1)
    at_cap = fast.bet_body(player, 150, "at-cap")
    bet = await fast.post("/bets", at_cap)
    assert bet["split"] == {"cash": 100, "bonus": 50, "grants": {f"capped-{player}": 50}}
    assert (tally("bet", "served"), tally("bet", "declined")) == (1, 1)
    assert await fast.post("/bets", at_cap) == bet  # its replay (the Python path's) is the same document
    assert (tally("bet", "served"), tally("bet", "declined")) == (1, 2)
    await fast.post(f"/bonuses/capped-{player}/forfeit", {"idempotency_key": f"f-{player}"})
    win = await fast.post("/wins", fast.win_body(player, 300, "at-cap"))
    assert win["split"] == {"cash": 200, "bonus": 100, "grants": {f"capped-{player}": 100}}
    assert win["balance"]["bonus"] == 0  # the closed grant's part went back to the liability
    assert (tally("win", "served"), tally("win", "declined")) == (0, 1)
    assert (await fast.reconcile())["ok"] is True


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cash=st.integers(0, 10_000), bonus=st.integers(0, 10_000), stake=st.integers(1, 20_000),
       win=st.integers(0, 100_000))
async def test_splits_follow_the_ledger_rules(fast: Wallet, cash: int, bonus: int, stake: int, win: int) -> None:
    player = uuid.uuid4()
    if cash:
        await fast.deposit(player, cash)
    if bonus:
        await fast.post("/bonuses", {"idempotency_key": f"g-{player}", "grant_id": f"g-{player}",
                                     "player_id": str(player), "currency": "EUR", "amount": bonus})
    if stake > cash + bonus:
        assert slug(await fast.post("/bets", fast.bet_body(player, stake, "r"), 402)) == "insufficient-funds"
        return
    tally = Tally()
    bet = await fast.post("/bets", fast.bet_body(player, stake, "r"))
    stake_split = ledger.split_stake(stake, cash, bonus)
    grants = {"grants": {f"g-{player}": stake_split.bonus}} if stake_split.bonus else {}
    assert bet["split"] == {"cash": stake_split.cash, "bonus": stake_split.bonus, **grants}
    paid = await fast.post("/wins", fast.win_body(player, win, "r"))
    win_split = ledger.split_win(win, stake_split)
    grants = {"grants": {f"g-{player}": win_split.bonus}} if win_split.bonus else {}
    assert paid["split"] == {"cash": win_split.cash, "bonus": win_split.bonus, **grants}
    assert paid["balance"]["cash"] == cash - stake_split.cash + win_split.cash
    assert paid["balance"]["bonus"] == bonus - stake_split.bonus + win_split.bonus
    # bonus money or not, both are the SQL path's (no grant has a max stake, none closed)
    assert (tally("bet", "served"), tally("win", "served")) == (1, 1)


async def _house(w: Wallet) -> int:
    async with w.app.state.runtime.database.session() as s:
        return int((await s.execute(text(
            "SELECT coalesce(sum(balance), 0) FROM accounts WHERE owner = 'platform' AND kind = 'house' "
            "AND currency = 'EUR'"))).scalar_one())


async def test_concurrent_bets_share_batches_and_each_is_answered_as_if_alone(one_slot: Wallet) -> None:
    players = [uuid.uuid4() for _ in range(24)]
    for p in players:
        await one_slot.deposit(p, 100)
    replayed = one_slot.bet_body(players[0], 5, "r0")
    first = await one_slot.post("/bets", replayed)
    house0, (batches0, ops0) = await _house(one_slot), batch_totals()
    tally = Tally()
    bodies = [one_slot.bet_body(p, 10 + n, f"r{n}") for n, p in enumerate(players[1:], 1)]
    bodies += [one_slot.bet_body(players[0], 101, "r-broke"), replayed, {**replayed, "amount": 6}]
    responses = await asyncio.gather(*[one_slot.client.post(W + "/bets", json=b, headers=one_slot.headers("/bets"))
                                       for b in bodies])
    batches, ops = batch_totals()
    assert ops - ops0 == len(bodies) and batches - batches0 < len(bodies)  # some went out together
    served = responses[:-3]
    assert [r.status_code for r in served] == [200] * len(served)
    assert [r.json()["balance"]["cash"] for r in served] == [100 - 10 - n for n in range(1, 24)]
    # the neighbours the fast path declined get the Python path's exact answers
    assert [r.status_code for r in responses[-3:]] == [402, 200, 409]
    assert responses[-2].json() == first
    assert (tally("bet", "served"), tally("bet", "declined")) == (23, 3)
    assert await _house(one_slot) - house0 == sum(10 + n for n in range(1, 24))
    assert (await one_slot.reconcile())["ok"] is True


async def test_concurrent_bonus_play_shares_batches_and_races_with_forfeits_without_losing_a_unit(
        one_slot: Wallet) -> None:
    """Bonus holders' bets in shared batches, then their wins racing with forfeits of the grants
    the bets drew on (each win either is served before the forfeit or finds the grant closed and
    goes to the Python path): every call answers 200, each player's bonus balance is what their
    grants hold, and the ledger reconciles."""
    players = [uuid.uuid4() for _ in range(12)]
    for p in players:
        await one_slot.deposit(p, 10)
        await _grant(one_slot, p, "first", 30)
        await _grant(one_slot, p, "second", 100)
    (batches0, ops0), tally = batch_totals(), Tally()
    bets = await asyncio.gather(*[one_slot.client.post(W + "/bets", json=one_slot.bet_body(p, 60, "race"),
                                                       headers=one_slot.headers("/bets")) for p in players])
    assert [r.status_code for r in bets] == [200] * len(players), [r.text for r in bets]
    assert [r.json()["split"]["grants"] for r in bets] == [{f"first-{p}": 30, f"second-{p}": 20} for p in players]
    batches, ops = batch_totals()
    assert (tally("bet", "served"), tally("bet", "declined")) == (len(players), 0)
    assert batches - batches0 < ops - ops0  # some of them went out together
    calls = [one_slot.client.post(W + "/wins", json=one_slot.win_body(p, 90, "race"), headers=one_slot.headers("/wins"))
             for p in players]
    calls += [one_slot.client.post(W + f"/bonuses/second-{p}/forfeit", json={"idempotency_key": f"ff-{p}"},
                                   headers=one_slot.headers(f"/bonuses/second-{p}/forfeit")) for p in players]
    answers = await asyncio.gather(*calls)
    assert [r.status_code for r in answers] == [200] * len(answers), [r.text for r in answers]
    assert tally("win", "served") + tally("win", "declined") == len(players)
    for p in players:
        grants_held = await one_slot.get(f"/players/{p}/grants/EUR")
        assert (await one_slot.balance(p))["bonus"] == sum(g["balance"] for g in grants_held)
    assert (await one_slot.reconcile())["ok"] is True


async def test_an_operation_that_fails_inside_a_batch_is_rolled_back_alone(fast: Wallet) -> None:
    player = uuid.uuid4()
    await fast.deposit(player, 1000)
    house0 = await _house(fast)

    def bet(key: str, amount: int, **over: Any) -> dict[str, Any]:
        return {**bet_op(BetRequest(**fast.bet_body(player, amount, key, key=key)), Context()), **over}

    ops = [bet("ok-1", 100), bet("bad-uuid", 200, tx="not-a-uuid"), {"op": "refund"}, bet("broke", 5000),
           bet("ok-2", 300)]
    async with fast.app.state.runtime.database.pool.acquire() as con:
        answers = await con.fetchval("SELECT wallet_fast_batch_v3($1, 1)", json.dumps(ops))
    assert [a[:6] for a in answers[1:4]] == ["!22P02", "!GPF01", "!GPF01"]
    assert [json.loads(a)["balance"]["cash"] for a in (answers[0], answers[4])] == [900, 600]
    async with fast.app.state.runtime.database.session() as s:
        keys = (await s.execute(text("SELECT key FROM operations WHERE key = ANY(:k) ORDER BY key"),
                                {"k": ["ok-1", "bad-uuid", "broke", "ok-2"]})).scalars().all()
    assert keys == ["ok-1", "ok-2"]  # the failed ones left nothing, not even their key
    assert await _house(fast) - house0 == 400
    assert (await fast.reconcile())["ok"] is True


async def test_one_poisoned_bet_fails_alone_and_its_batch_neighbours_are_served(
        one_slot: Wallet, caplog: pytest.LogCaptureFixture) -> None:
    """A NUL character (which PostgreSQL cannot store) in one bet makes the batch call fail as a
    whole; the batch then goes again one by one: the others are served exactly, the bad one is a 4xx."""
    players = [uuid.uuid4() for _ in range(12)]
    for p in players:
        await one_slot.deposit(p, 1000)
    house0 = await _house(one_slot)
    bodies = [one_slot.bet_body(p, 10 + n, f"poison-r{n}") for n, p in enumerate(players[:-1])]
    poisoned = one_slot.bet_body(players[-1], 50, "poison-\x00-round")
    bodies.insert(6, poisoned)  # neither first (which may go out alone) nor last
    caplog.set_level(logging.WARNING, logger="gameplane.wallet.fastplay")
    responses = await asyncio.gather(*[one_slot.client.post(W + "/bets", json=b, headers=one_slot.headers("/bets"))
                                       for b in bodies])
    # the poisoned bet really shared a failed batch (else this test would prove nothing)
    failed = [r.args[0] for r in caplog.records if r.msg.startswith("a batch of")]
    assert failed and all(size >= 2 for size in failed), caplog.text
    bad = responses.pop(6)
    bodies.pop(6)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json", bad.text
    assert bad.json()["type"] == "https://gameplane.io/problems/validation-error"
    assert [r.status_code for r in responses] == [200] * len(responses), [r.text for r in responses]
    assert [r.json()["balance"]["cash"] for r in responses] == [1000 - 10 - n for n in range(len(responses))]
    for n, p in enumerate(players[:-1]):
        assert (await one_slot.balance(p))["cash"] == 1000 - 10 - n
    assert (await one_slot.balance(players[-1]))["cash"] == 1000  # nothing moved for the poisoned one
    async with one_slot.app.state.runtime.database.session() as s:
        stored = (await s.execute(text("SELECT count(*) FROM operations WHERE key = :k"),
                                  {"k": poisoned["idempotency_key"]})).scalar_one()
    assert stored == 0
    assert await _house(one_slot) - house0 == sum(10 + n for n in range(len(responses)))
    assert (await one_slot.reconcile())["ok"] is True
