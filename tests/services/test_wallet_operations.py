"""Every wallet operation and every refusal through the HTTP API, against real Postgres and NATS."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from walletlib import W, Wallet, protect, slug

from gameplane.contracts.players import LimitState, ProtectionChanged
from gameplane.devtools.testing import as_service, running, stored_events
from gameplane.kit.events import Envelope
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings


@pytest.fixture(scope="module", params=[True, False], ids=["sql-fast-path", "python-path"])
async def wallet(module_service_settings: Any, request: pytest.FixtureRequest) -> AsyncIterator[Wallet]:
    """Every test runs against both ways bets and wins are answered (the other operations have one)."""
    app = build_app(module_service_settings(WalletSettings, house_shards=4, hold_sweep_seconds=3600,
                                            sql_fast_path=request.param))
    async with running(app) as client:
        yield Wallet(app, client)


@pytest.fixture
def player() -> uuid.UUID:
    return uuid.uuid4()


async def test_deposit_credits_cash_and_replays_identically(wallet: Wallet, player: uuid.UUID) -> None:
    first = await wallet.deposit(player, 1000, key="d-replay-" + str(player))
    assert first["balance"] == {"currency": "EUR", "cash": 1000, "bonus": 0, "withdrawal_hold": 0}
    again = await wallet.deposit(player, 1000, key="d-replay-" + str(player))
    assert again == first
    assert (await wallet.balance(player))["cash"] == 1000
    other = await wallet.deposit(player, 999, key="d-replay-" + str(player), status=409)
    assert slug(other) == "duplicate-transaction"


async def test_same_key_for_a_different_operation_is_a_conflict(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100, key=f"shared-{player}")
    body = wallet.bet_body(player, 10, "r1", key=f"shared-{player}")
    assert slug(await wallet.post("/bets", body, 409)) == "duplicate-transaction"


async def test_concurrent_duplicates_apply_once(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 1000)
    body = wallet.bet_body(player, 100, "r-dup")
    results = await asyncio.gather(*[wallet.post("/bets", body) for _ in range(8)])
    assert len({r["transaction_id"] for r in results}) == 1
    assert all(r == results[0] for r in results)
    assert (await wallet.balance(player))["cash"] == 900


async def test_bet_uses_cash_first_then_bonus_and_win_follows_the_split(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 300)
    await wallet.post("/bonuses", {"idempotency_key": f"g-{player}", "grant_id": f"g-{player}",
                                   "player_id": str(player), "currency": "EUR", "amount": 200})
    bet = await wallet.post("/bets", wallet.bet_body(player, 400, "r1"))
    assert bet["split"] == {"cash": 300, "bonus": 100, "grants": {f"g-{player}": 100}}
    assert bet["balance"] == {"currency": "EUR", "cash": 0, "bonus": 100, "withdrawal_hold": 0}
    win = await wallet.post("/wins", wallet.win_body(player, 1001, "r1"))
    # bonus 1001*100/400 rounded down; remainder to cash
    assert win["split"] == {"cash": 751, "bonus": 250, "grants": {f"g-{player}": 250}}
    assert win["balance"] == {"currency": "EUR", "cash": 751, "bonus": 350, "withdrawal_hold": 0}


async def test_bet_beyond_balance_is_refused_and_moves_nothing(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 50)
    body = wallet.bet_body(player, 51, "r1")
    problem = await wallet.post("/bets", body, 402)
    assert slug(problem) == "insufficient-funds" and problem["balance"]["cash"] == 50
    # the refusal was not stored: the same key may succeed once funds arrive
    await wallet.deposit(player, 1)
    assert (await wallet.post("/bets", body))["balance"]["cash"] == 0


async def test_bet_by_an_unknown_player_is_refused(wallet: Wallet, player: uuid.UUID) -> None:
    assert slug(await wallet.post("/bets", wallet.bet_body(player, 1, "r1"), 402)) == "insufficient-funds"


async def test_zero_stake_bet_is_accepted(wallet: Wallet, player: uuid.UUID) -> None:
    result = await wallet.post("/bets", wallet.bet_body(player, 0, "free-1"))
    assert result["split"] == {"cash": 0, "bonus": 0}
    win = await wallet.post("/wins", wallet.win_body(player, 70, "free-1"))
    assert win["split"] == {"cash": 70, "bonus": 0}


async def test_closed_round_refuses_bets_and_wins(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    await wallet.post("/bets", wallet.bet_body(player, 10, "r-close"))
    await wallet.post("/wins", wallet.win_body(player, 0, "r-close", close=True))
    assert slug(await wallet.post("/bets", wallet.bet_body(player, 10, "r-close"), 409)) == "round-closed"
    assert slug(await wallet.post("/wins", wallet.win_body(player, 5, "r-close"), 409)) == "round-closed"


async def test_multiple_wins_while_the_round_is_open(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    await wallet.post("/bets", wallet.bet_body(player, 10, "r-multi"))
    await wallet.post("/wins", wallet.win_body(player, 5, "r-multi", close=False))
    await wallet.post("/wins", wallet.win_body(player, 7, "r-multi", close=True))
    assert (await wallet.balance(player))["cash"] == 102


async def test_win_without_a_bet_and_in_another_currency(wallet: Wallet, player: uuid.UUID) -> None:
    assert slug(await wallet.post("/wins", wallet.win_body(player, 5, "nope"), 404)) == "bet-not-found"
    await wallet.deposit(player, 100)
    await wallet.post("/bets", wallet.bet_body(player, 10, "r-cur"))
    body = {**wallet.win_body(player, 5, "r-cur"), "currency": "USD"}
    assert slug(await wallet.post("/wins", body, 409)) == "currency-mismatch"


async def test_rollback_restores_the_exact_split(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    await wallet.post("/bonuses", {"idempotency_key": f"g-{player}", "grant_id": f"g-{player}",
                                   "player_id": str(player), "currency": "EUR", "amount": 50})
    bet = await wallet.post("/bets", wallet.bet_body(player, 130, "r1", key=f"b-{player}"))
    rb = await wallet.post("/rollbacks", wallet.rollback_body(player, f"b-{player}"))
    assert rb["split"] == bet["split"] == {"cash": 100, "bonus": 30, "grants": {f"g-{player}": 30}}
    assert not rb["noop"]
    assert rb["balance"] == {"currency": "EUR", "cash": 100, "bonus": 50, "withdrawal_hold": 0}
    tx = await wallet.get(f"/transactions/{rb['transaction_id']}")
    bet_tx = await wallet.get(f"/transactions/{bet['transaction_id']}")
    assert tx["reverses"] == bet["transaction_id"]
    assert sorted((e["account"], -e["amount"]) for e in tx["entries"]) == sorted(
        (e["account"], e["amount"]) for e in bet_tx["entries"])


async def test_repeated_rollback_moves_nothing(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    await wallet.post("/bets", wallet.bet_body(player, 40, "r1", key=f"b-{player}"))
    body = wallet.rollback_body(player, f"b-{player}")
    first = await wallet.post("/rollbacks", body)
    assert await wallet.post("/rollbacks", body) == first  # replay of the same key
    second = await wallet.post("/rollbacks", wallet.rollback_body(player, f"b-{player}"))  # another key
    assert second["noop"] and second["amount"] == 0
    assert (await wallet.balance(player))["cash"] == 100


async def test_rollback_before_its_bet_leaves_a_tombstone(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    rb = await wallet.post("/rollbacks", wallet.rollback_body(player, f"late-{player}"))
    assert rb["noop"] and rb["amount"] == 0
    late = await wallet.post("/bets", wallet.bet_body(player, 10, "r1", key=f"late-{player}"), 409)
    assert slug(late) == "bet-rolled-back"
    assert (await wallet.balance(player))["cash"] == 100


async def test_rollback_after_payout_is_refused(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    await wallet.post("/bets", wallet.bet_body(player, 10, "r-paid", key=f"b-{player}"))
    await wallet.post("/wins", wallet.win_body(player, 25, "r-paid", close=False))
    problem = await wallet.post("/rollbacks", wallet.rollback_body(player, f"b-{player}"), 409)
    assert slug(problem) == "round-settled"
    assert (await wallet.balance(player))["cash"] == 115


async def test_rollback_of_a_lost_round_and_the_next_win_splits_on_what_is_left(wallet: Wallet,
                                                                                player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    await wallet.post("/bonuses", {"idempotency_key": f"g-{player}", "grant_id": f"g-{player}",
                                   "player_id": str(player), "currency": "EUR", "amount": 100})
    await wallet.post("/bets", wallet.bet_body(player, 100, "r2", key=f"b1-{player}"))  # all cash
    await wallet.post("/bets", wallet.bet_body(player, 100, "r2", key=f"b2-{player}"))  # all bonus
    await wallet.post("/rollbacks", wallet.rollback_body(player, f"b1-{player}"))
    win = await wallet.post("/wins", wallet.win_body(player, 60, "r2"))
    assert win["split"] == {"cash": 0, "bonus": 60, "grants": {f"g-{player}": 60}}


async def test_rollback_refusals(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100, key=f"d-{player}")
    await wallet.post("/bets", wallet.bet_body(player, 10, "r1", key=f"b-{player}"))
    not_a_bet = await wallet.post("/rollbacks", wallet.rollback_body(player, f"d-{player}"), 404)
    assert slug(not_a_bet) == "bet-not-found"
    stranger = await wallet.post("/rollbacks", wallet.rollback_body(uuid.uuid4(), f"b-{player}"), 404)
    assert slug(stranger) == "bet-not-found"
    usd = {**wallet.rollback_body(player, f"b-{player}"), "currency": "USD"}
    assert slug(await wallet.post("/rollbacks", usd, 409)) == "currency-mismatch"
    own_key = wallet.rollback_body(player, "same", key="same")
    assert slug(await wallet.post("/rollbacks", own_key, 422)) == "validation-error"


async def test_withdrawal_hold_partial_post_then_void(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 1000)
    hold = await wallet.post("/withdrawals", {"idempotency_key": f"h-{player}", "player_id": str(player),
                                              "currency": "EUR", "amount": 600})
    assert hold["balance"] == {"currency": "EUR", "cash": 400, "bonus": 0, "withdrawal_hold": 600}
    hid = hold["hold_id"]
    post = await wallet.post(f"/withdrawals/{hid}/post", {"idempotency_key": f"p-{player}", "amount": 250})
    assert post["remaining"] == 350 and post["balance"]["withdrawal_hold"] == 350
    exceeded = await wallet.post(f"/withdrawals/{hid}/post", {"idempotency_key": f"p2-{player}", "amount": 351}, 409)
    assert slug(exceeded) == "hold-exceeded"
    void = await wallet.post(f"/withdrawals/{hid}/void", {"idempotency_key": f"v-{player}"})
    assert void["amount"] == 350 and void["balance"] == {"currency": "EUR", "cash": 750, "bonus": 0,
                                                         "withdrawal_hold": 0}
    closed = await wallet.post(f"/withdrawals/{hid}/post", {"idempotency_key": f"p3-{player}"}, 409)
    assert slug(closed) == "hold-closed"
    # the same post key on another hold is a different request
    other = await wallet.post(f"/withdrawals/{uuid.uuid4()}/post", {"idempotency_key": f"p-{player}",
                                                                    "amount": 250}, 409)
    assert slug(other) == "duplicate-transaction"


async def test_withdrawal_full_post_and_refusals(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    too_much = await wallet.post("/withdrawals", {"idempotency_key": f"h0-{player}", "player_id": str(player),
                                                  "currency": "EUR", "amount": 101}, 402)
    assert slug(too_much) == "insufficient-funds"
    hold = await wallet.post("/withdrawals", {"idempotency_key": f"h-{player}", "player_id": str(player),
                                              "currency": "EUR", "amount": 100})
    post = await wallet.post(f"/withdrawals/{hold['hold_id']}/post", {"idempotency_key": f"p-{player}"})
    assert post["amount"] == 100 and post["remaining"] == 0
    assert post["balance"] == {"currency": "EUR", "cash": 0, "bonus": 0, "withdrawal_hold": 0}
    missing = await wallet.post(f"/withdrawals/{uuid.uuid4()}/void", {"idempotency_key": f"v-{player}"}, 404)
    assert slug(missing) == "hold-not-found"


async def test_expired_holds_are_voided_by_the_sweep(wallet: Wallet, player: uuid.UUID) -> None:
    rt = wallet.app.state.runtime
    real = rt.state["ctx"]
    now = [datetime.now(UTC)]
    rt.state["ctx"] = dataclasses.replace(real, clock=lambda: now[0])  # the wallet's time is the test's
    try:
        await wallet.deposit(player, 100)
        hold = await wallet.post("/withdrawals", {"idempotency_key": f"h-{player}", "player_id": str(player),
                                                  "currency": "EUR", "amount": 70, "expires_in_seconds": 60})
        now[0] += timedelta(seconds=59)
        assert hold["hold_id"] not in (await wallet.post("/withdrawals/expire", {}))["expired"]  # not yet
        now[0] += timedelta(seconds=2)
        late = await wallet.post(f"/withdrawals/{hold['hold_id']}/post", {"idempotency_key": f"p-{player}"}, 409)
        assert slug(late) == "hold-closed" and late["state"] == "expired"
        swept = await wallet.post("/withdrawals/expire", {})
        assert hold["hold_id"] in swept["expired"]
        assert await wallet.balance(player) == {"currency": "EUR", "cash": 100, "bonus": 0, "withdrawal_hold": 0}
        assert hold["hold_id"] not in (await wallet.post("/withdrawals/expire", {}))["expired"]
    finally:
        rt.state["ctx"] = real


async def test_bonus_convert_and_forfeit_move_only_their_grant(wallet: Wallet, player: uuid.UUID) -> None:
    g = {"player_id": str(player), "currency": "EUR"}
    await wallet.post("/bonuses", {"idempotency_key": f"g1-{player}", "grant_id": f"g1-{player}", "amount": 300, **g})
    exists = await wallet.post("/bonuses", {"idempotency_key": f"g1b-{player}", "grant_id": f"g1-{player}",
                                            "amount": 300, **g}, 409)
    assert slug(exists) == "grant-exists"
    await wallet.post("/bonuses", {"idempotency_key": f"g2-{player}", "grant_id": f"g2-{player}", "amount": 50, **g})
    # the cap converts 120 of g1's 300; g1's other 180 goes back to the liability; g2 keeps its 50
    conv = await wallet.post(f"/bonuses/g1-{player}/convert", {"idempotency_key": f"c1-{player}", "amount": 120})
    assert conv["amount"] == 120 and conv["split"] == {"cash": 120, "bonus": -300, "grants": {f"g1-{player}": -300}}
    assert conv["balance"] == {"currency": "EUR", "cash": 120, "bonus": 50, "withdrawal_hold": 0}
    closed = await wallet.post(f"/bonuses/g1-{player}/forfeit", {"idempotency_key": f"f1-{player}"}, 409)
    assert slug(closed) == "grant-closed"
    forfeit = await wallet.post(f"/bonuses/g2-{player}/forfeit", {"idempotency_key": f"f2-{player}"})
    assert forfeit["amount"] == 50 and forfeit["balance"]["bonus"] == 0 and forfeit["balance"]["cash"] == 120
    missing = await wallet.post("/bonuses/nope/convert", {"idempotency_key": f"c9-{player}"}, 404)
    assert slug(missing) == "grant-not-found"


async def test_manual_adjustment_records_reason_and_actor(wallet: Wallet, player: uuid.UUID) -> None:
    # the actor is the staff member of the staff token, whatever a body says
    body = {"idempotency_key": f"a-{player}", "player_id": str(player), "currency": "EUR", "amount": 500,
            "reason": "goodwill after outage", "actor": "someone-else"}
    result = await wallet.post("/adjustments", body)
    tx = await wallet.get(f"/transactions/{result['transaction_id']}")
    assert tx["details"] == {"reason": "goodwill after outage", "actor": "staff:finance-clerk"}
    assert sorted(e["account"].split(":")[1] for e in tx["entries"]) == ["cash", "world"]
    debit = {**body, "idempotency_key": f"a2-{player}", "amount": -501}
    assert slug(await wallet.post("/adjustments", debit, 402)) == "insufficient-funds"
    zero = {**body, "idempotency_key": f"a3-{player}", "amount": 0}
    assert slug(await wallet.post("/adjustments", zero, 422)) == "validation-error"


async def test_validation_at_the_edge(wallet: Wallet, player: uuid.UUID) -> None:
    body = wallet.bet_body(player, 10, "r1")
    assert slug(await wallet.post("/bets", {**body, "amount": 1.5}, 422)) == "validation-error"
    assert slug(await wallet.post("/bets", {**body, "amount": -1}, 422)) == "validation-error"
    assert slug(await wallet.post("/bets", {**body, "currency": "XXX"}, 422)) == "unsupported-currency"


async def test_internal_routes_need_a_service_token(wallet: Wallet, player: uuid.UUID) -> None:
    r = await wallet.client.post(W + "/deposits", json={"idempotency_key": "x", "player_id": str(player),
                                                        "currency": "EUR", "amount": 1})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


async def test_history_pages_with_a_cursor_and_player_routes(wallet: Wallet, player: uuid.UUID) -> None:
    for i in range(7):
        await wallet.deposit(player, 10 + i)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = await wallet.get(f"/players/{player}/transactions", **params)
        seen += [t["amount"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [16, 15, 14, 13, 12, 11, 10]
    assert slug(await wallet.get(f"/players/{player}/transactions", 400, cursor="garbage")) == "invalid-cursor"
    mine = as_service(wallet.app, "gateway", player)
    r = await wallet.client.get("/v1/wallet/balances", headers=mine)
    assert r.json()["balances"] == [{"currency": "EUR", "cash": 91, "bonus": 0, "withdrawal_hold": 0}]
    r = await wallet.client.get("/v1/wallet/transactions", params={"limit": 2}, headers=mine)
    items = r.json()["items"]
    assert [t["amount"] for t in items] == [16, 15]
    r = await wallet.client.get(f"/v1/wallet/transactions/{items[0]['id']}", headers=mine)
    assert r.status_code == 200 and len(r.json()["entries"]) == 2
    stranger = as_service(wallet.app, "gateway", uuid.uuid4())
    r = await wallet.client.get(f"/v1/wallet/transactions/{items[0]['id']}", headers=stranger)
    assert r.status_code == 404
    r = await wallet.client.get("/v1/wallet/balances", headers=as_service(wallet.app, "gateway"))
    assert r.status_code == 401


async def _events(wallet: Wallet, expect: int = 1, **match: Any) -> list[dict[str, Any]]:
    """The wallet events JetStream stored whose data has `match` (the outbox relay put them there)."""
    found = await stored_events(wallet.app.state.runtime.settings.nats_url, "gameplane.wallet.>", match, expect)
    return [Envelope.model_validate(e).model_dump(mode="json") for e in found]


async def test_operations_publish_events_with_the_split(wallet: Wallet, player: uuid.UUID) -> None:
    dep = await wallet.deposit(player, 100)
    (ev,) = await _events(wallet, transaction_id=dep["transaction_id"])
    assert ev["type"] == "wallet.deposit_credited" and ev["data"]["first_deposit"] is True
    dep2 = await wallet.deposit(player, 100)
    assert (await _events(wallet, transaction_id=dep2["transaction_id"]))[0]["data"]["first_deposit"] is False
    bet = await wallet.post("/bets", wallet.bet_body(player, 30, "r-ev"))
    (ev,) = await _events(wallet, transaction_id=bet["transaction_id"])
    assert ev["type"] == "wallet.bet_placed" and (ev["data"]["cash"], ev["data"]["bonus"]) == (30, 0)
    assert (ev["data"]["round_id"], ev["data"]["game_id"], ev["data"]["provider"]) == ("r-ev", "starburst", "rgs")
    win = await wallet.post("/wins", wallet.win_body(player, 45, "r-ev"))
    (ev,) = await _events(wallet, transaction_id=win["transaction_id"])
    assert ev["type"] == "wallet.win_settled" and ev["data"]["round_closed"] is True
    assert (ev["data"]["amount"], ev["data"]["cash"], ev["data"]["bonus"]) == (45, 45, 0)
    # a refused operation publishes nothing
    await wallet.post("/bets", wallet.bet_body(player, 10**9, "r-ev2"), 402)
    assert await _events(wallet, expect=0, player_id=str(player), round_id="r-ev2") == []


async def _protect(wallet: Wallet, player: uuid.UUID, revision: int, **fields: Any) -> None:
    await protect(wallet, player, revision, **fields)


async def _processed(wallet: Wallet, event_id: uuid.UUID) -> None:
    """Wait until the wallet's consumer has recorded the event as processed (same transaction as its effect)."""
    for _ in range(400):
        async with wallet.app.state.runtime.database.session() as s:
            if (await s.execute(text("SELECT 1 FROM processed_events WHERE event_id = :e"),
                                {"e": event_id})).first() is not None:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"event {event_id} was never processed")


async def test_self_exclusion_and_timeout_block_bets_and_deposits(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    now = datetime.now(UTC)
    await _protect(wallet, player, 1, self_excluded_until=now + timedelta(days=180))
    p = await wallet.post("/bets", wallet.bet_body(player, 10, "r1"), 403)
    assert slug(p) == "player-blocked" and p["reason"] == "self-excluded"
    p = await wallet.deposit(player, 10, status=403)
    assert p["reason"] == "self-excluded"
    await _protect(wallet, player, 2, timeout_until=now + timedelta(hours=24))
    assert (await wallet.post("/bets", wallet.bet_body(player, 10, "r1"), 403))["reason"] == "timed-out"
    # an older snapshot arriving late changes nothing
    await _protect(wallet, player, 3)
    event = ProtectionChanged(player_id=player, revision=2, currency="EUR", limits=[], reason="stale",
                              timeout_until=now + timedelta(days=9))
    env = Envelope.wrap(event, "players")
    bus = wallet.app.state.runtime.bus
    await bus.js.publish(event.subject(), env.model_dump_json().encode(), headers={"Nats-Msg-Id": str(env.id)})
    await _processed(wallet, env.id)  # handled and committed, so what follows sees its effect, if any
    async with wallet.app.state.runtime.database.session() as s:
        held = (await s.execute(text("SELECT revision, timeout_until FROM protection WHERE player_id = :p"),
                                {"p": player})).one()
    assert tuple(held) == (3, None)
    assert (await wallet.post("/bets", wallet.bet_body(player, 10, "r1")))["balance"]["cash"] == 90
    # withdrawals and wins are never blocked by protection
    await _protect(wallet, player, 4, self_excluded_until=now + timedelta(days=180))
    await wallet.post("/wins", wallet.win_body(player, 5, "r1"))
    await wallet.post("/withdrawals", {"idempotency_key": f"h-{player}", "player_id": str(player),
                                       "currency": "EUR", "amount": 95})


async def test_deposit_limit_strictest_window(wallet: Wallet, player: uuid.UUID) -> None:
    limits = [LimitState(kind="deposit", period="day", value=500), LimitState(kind="deposit", period="week", value=300)]
    await _protect(wallet, player, 1, limits=limits)
    await wallet.deposit(player, 200)
    p = await wallet.deposit(player, 101, status=403)
    assert p["reason"] == "deposit-limit" and "week" in p["detail"]
    await wallet.deposit(player, 100)  # exactly up to the limit
    # deposits in another currency are not counted against the EUR limit
    await wallet.post("/deposits", {"idempotency_key": f"usd-{player}", "player_id": str(player),
                                    "currency": "USD", "amount": 10_000})


async def test_loss_limit_counts_stakes_minus_wins(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 10_000)
    await _protect(wallet, player, 1, limits=[LimitState(kind="loss", period="day", value=100)])
    await wallet.post("/bets", wallet.bet_body(player, 80, "r1"))
    p = await wallet.post("/bets", wallet.bet_body(player, 21, "r2"), 403)
    assert p["reason"] == "loss-limit"
    await wallet.post("/wins", wallet.win_body(player, 50, "r1"))  # net loss now 30
    await wallet.post("/bets", wallet.bet_body(player, 70, "r3", key=f"b3-{player}"))  # net loss 100
    assert (await wallet.post("/bets", wallet.bet_body(player, 1, "r4"), 403))["reason"] == "loss-limit"
    await wallet.post("/rollbacks", wallet.rollback_body(player, f"b3-{player}"))  # the stake is back
    await wallet.post("/bets", wallet.bet_body(player, 70, "r5"))


async def exported_breaches(wallet: Wallet) -> float:
    """gameplane_wallet_reconciliation_breaches as the wallet's /metrics shows it (what
    GameplaneWalletReconciliationBreach reads)."""
    text_ = (await wallet.client.get("/metrics")).text
    (value,) = [s.value for f in text_string_to_metric_families(text_) for s in f.samples
                if s.name == "gameplane_wallet_reconciliation_breaches"]
    return value


async def test_reconciliation_is_clean_then_reports_a_planted_breach(wallet: Wallet, player: uuid.UUID,
                                                                    pg: Any) -> None:
    report = await wallet.reconcile()
    assert report["ok"] and report["breaches"] == [] and report["transactions"] > 0
    assert await exported_breaches(wallet) == 0
    # the CLI runs its own event loop, so it goes to a thread
    from typer.testing import CliRunner

    from gameplane.cli.main import app as cli

    url = wallet.app.state.runtime.settings.database_url
    runner = CliRunner()
    ok = await asyncio.to_thread(runner.invoke, cli, ["wallet", "reconcile", "--database-url", url])
    assert ok.exit_code == 0, ok.output
    await wallet.deposit(player, 100)
    async with wallet.app.state.runtime.database.transaction() as s:
        await s.execute(text("UPDATE accounts SET balance = balance + 1 WHERE owner = :o AND kind = 'cash'"),
                        {"o": str(player)})
    try:
        report = await wallet.reconcile()
        assert not report["ok"]
        assert {b["invariant"] for b in report["breaches"]} == {3, 4}
        # the alert's input: one balance off by one breaks invariant 3 (this row) and 4 (its currency)
        assert await exported_breaches(wallet) == len(report["breaches"]) >= 2
        bad = await asyncio.to_thread(runner.invoke, cli, ["wallet", "reconcile", "--database-url", url])
        assert bad.exit_code == 1 and "invariant 3" in bad.output
    finally:
        async with wallet.app.state.runtime.database.transaction() as s:
            await s.execute(text("UPDATE accounts SET balance = balance - 1 WHERE owner = :o AND kind = 'cash'"),
                            {"o": str(player)})
    assert (await wallet.reconcile())["ok"]
    assert await exported_breaches(wallet) == 0


async def test_database_refuses_a_negative_player_balance(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 5)
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError, match="player_non_negative"):
        async with wallet.app.state.runtime.database.transaction() as s:
            await s.execute(text("UPDATE accounts SET balance = -1 WHERE owner = :o AND kind = 'cash'"),
                            {"o": str(player)})
