"""Grants through their lives against the real wallet: expiry, forfeit on withdrawal, cancellation
by the back office, the player's forfeit, eligibility and player protection, cashback, and the
back office's roles, audit and liability report."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bonuslib import BonusPlatform, bonus_platform, eventually
from sqlalchemy import text


@pytest.fixture(scope="module")
async def bp(pg: Any, nats_server: Any) -> AsyncIterator[BonusPlatform]:
    async with bonus_platform(pg, nats_server.url) as p:
        yield p


@pytest.fixture(autouse=True)
def wall_clock(bp: BonusPlatform) -> Any:
    """Each test starts at the wall clock the other services keep (an earlier one may have moved it)."""
    bp.clock.offset = timedelta()
    yield bp.clock


async def test_a_grant_expires_after_its_days_and_its_money_goes_back(bp: BonusPlatform) -> None:
    pid = await bp.player(balance=10_000)
    offer = await bp.offer(amount=1500, wagering_multiplier=10, expiry_days=7)
    g = (await bp.opt_in(pid, offer))["grant"]
    assert (await bp.balance(pid))["bonus"] == 1500
    bp.clock.advance(days=6, hours=23)
    await bp.sweep()
    assert (await bp.grant(g["grant_id"]))["state"] == "active"  # negative control: not yet
    bp.clock.advance(hours=2)
    await bp.sweep()
    assert (await bp.grant(g["grant_id"]))["state"] == "expired"
    # the forfeit at the wallet: made by this sweep, or by the worker's own that had the row first
    done = await bp.grant_until(g["grant_id"], "forfeited at the wallet", wallet_pending=None)
    assert (done["state"], done["reason"]) == ("expired", "expired")
    assert await bp.balance(pid) == {**await bp.balance(pid), "cash": 10_000, "bonus": 0}


async def test_a_withdrawal_forfeits_only_the_grants_whose_offer_says_so(bp: BonusPlatform) -> None:
    pid = await bp.player(balance=20_000)
    strict = (await bp.opt_in(pid, await bp.offer(amount=1000, forfeit_on_withdrawal=True)))["grant"]
    lenient = (await bp.opt_in(pid, await bp.offer(amount=700, forfeit_on_withdrawal=False)))["grant"]
    assert (await bp.balance(pid))["bonus"] == 1700
    await bp.wallet("/internal/wallet/withdrawals", {"idempotency_key": f"wd-{uuid.uuid4()}", "player_id": str(pid),
                                                     "currency": "EUR", "amount": 5000})
    done = await bp.grant_until(strict["grant_id"], "forfeit on withdrawal", state="forfeited", wallet_pending=None)
    assert done["reason"] == "withdrawal"
    await asyncio.sleep(1.0)
    assert (await bp.grant(lenient["grant_id"]))["state"] == "active"
    after = await bp.balance(pid)
    assert (after["cash"], after["withdrawal_hold"]) == (15_000, 5000)  # the player's own money is untouched
    # the single-balance wallet of today forfeits the player's whole bonus balance; the per-grant
    # wallet only the strict grant's 1000: either way the forfeited grant's money is gone
    assert after["bonus"] in (0, 700)


async def test_the_back_office_cancels_with_a_reason_and_it_is_audited(bp: BonusPlatform) -> None:
    pid = await bp.player(balance=0)
    g = (await bp.opt_in(pid, await bp.offer(amount=900)))["grant"]
    await bp.call("POST", f"/internal/bonus/grants/{g['grant_id']}/cancel", 403, headers=bp.staff("support"),
                  json={"reason": "abuse of the offer"})
    await bp.call("POST", f"/internal/bonus/grants/{g['grant_id']}/cancel", 422, json={"reason": ""})
    done = await bp.call("POST", f"/internal/bonus/grants/{g['grant_id']}/cancel",
                         json={"reason": "abuse of the offer"})
    assert (done["state"], done["reason"], done["wallet_pending"]) == ("cancelled", "abuse of the offer", None)
    assert (await bp.balance(pid))["bonus"] == 0
    again = await bp.call("POST", f"/internal/bonus/grants/{g['grant_id']}/cancel", 409, json={"reason": "twice"})
    assert again["type"].endswith("/bonus-grant-closed")
    audit = await bp.call("GET", "/internal/bonus/audit", params={"target": f"grant:{g['grant_id']}"})
    [record] = audit["records"]
    assert record["action"] == "bonus.grant_cancelled" and record["after"]["reason"] == "abuse of the offer"


async def test_a_player_forfeits_their_own_bonus_and_no_one_elses(bp: BonusPlatform) -> None:
    pid, other = await bp.player(balance=3000), await bp.player(balance=0)
    g = (await bp.opt_in(pid, await bp.offer(amount=400)))["grant"]
    refused = await bp.call("POST", f"/v1/bonus/grants/{g['grant_id']}/forfeit", 404, headers=bp.as_player(other))
    assert refused["type"].endswith("/bonus-grant-not-found")
    done = await bp.call("POST", f"/v1/bonus/grants/{g['grant_id']}/forfeit", headers=bp.as_player(pid))
    assert done["state"] == "forfeited" and done["wallet_pending"] is None
    assert (await bp.balance(pid))["cash"] == 3000 and (await bp.balance(pid))["bonus"] == 0


async def test_eligibility_country_segment_and_one_per_player(bp: BonusPlatform) -> None:
    offer = await bp.offer(amount=100, eligibility={"countries": ["MT"], "segments": ["vip"]})
    malta, britain = await bp.player(balance=0), await bp.player(country="GB", balance=0)
    refused = await bp.opt_in(britain, offer, 403)
    assert refused["reason"] == "country"
    assert (await bp.opt_in(malta, offer, 403))["reason"] == "segment"
    await bp.call("PUT", f"/internal/bonus/players/{malta}/segments", json={"segments": ["vip"]})
    offers = await bp.call("GET", "/v1/bonus/offers", headers=bp.as_player(malta))
    assert offer in [o["offer_id"] for o in offers]
    assert offer not in [o["offer_id"] for o in await bp.call("GET", "/v1/bonus/offers", headers=bp.as_player(britain))]
    assert (await bp.opt_in(malta, offer))["grant"]["state"] == "active"
    assert (await bp.opt_in(malta, offer, 403))["reason"] == "already-granted"
    manual = await bp.call("POST", "/internal/bonus/grants", 403,
                           json={"player_id": str(malta), "offer_id": offer, "reason": "goodwill gesture"})
    assert manual["reason"] == "already-granted"
    assert [g["amount"] for g in await bp.grants(malta)] == [100]


async def test_self_excluded_and_timed_out_players_are_never_granted(bp: BonusPlatform) -> None:
    offer = await bp.offer(amount=100)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=180)
    excluded = await bp.player(balance=0, self_excluded_until=until)
    timed_out = await bp.player(balance=0, timeout_until=until)
    for pid, why in ((excluded, "self-excluded"), (timed_out, "timed-out")):
        refused = await bp.opt_in(pid, offer, 403)
        assert refused["type"].endswith("/bonus-player-protected") and refused["reason"] == why
        manual = await bp.call("POST", "/internal/bonus/grants", 403,
                               json={"player_id": str(pid), "offer_id": offer, "reason": "goodwill gesture"})
        assert manual["type"].endswith("/bonus-player-protected")
        assert await bp.grants(pid) == [] and (await bp.balance(pid))["bonus"] == 0
    # a newer snapshot lifts it (e.g. the time-out ended): granted
    await bp.announce(timed_out, revision=2, timeout_until=None)
    assert (await bp.opt_in(timed_out, offer))["grant"]["state"] == "active"


async def test_a_self_excluded_player_gets_no_deposit_match(bp: BonusPlatform) -> None:
    offer = await bp.offer("deposit_match", match_pct=100, max_bonus=1000)
    pid = await bp.player(balance=0)
    await bp.opt_in(pid, offer)
    await bp.announce(pid, revision=2, self_excluded_until=datetime.now(UTC).replace(microsecond=0)
                      + timedelta(days=365))
    # the wallet takes a deposit the provider already received, even now
    await bp.wallet("/internal/wallet/deposits", {"idempotency_key": f"dep-{uuid.uuid4()}", "player_id": str(pid),
                                                  "currency": "EUR", "amount": 5000, "psp": "test", "received": True})
    await asyncio.sleep(2.0)
    assert await bp.grants(pid) == []


async def test_first_deposit_only_matches_the_first_deposit(bp: BonusPlatform) -> None:
    offer = await bp.offer("deposit_match", match_pct=100, max_bonus=1000,
                           eligibility={"first_deposit_only": True})
    pid = await bp.player(balance=2000)  # a first deposit already made
    await bp.deposits_seen(pid, 1)
    await bp.opt_in(pid, offer)
    await bp.wallet("/internal/wallet/deposits", {"idempotency_key": f"dep-{uuid.uuid4()}", "player_id": str(pid),
                                                  "currency": "EUR", "amount": 5000, "psp": "test"})
    await asyncio.sleep(2.0)
    assert await bp.grants(pid) == []
    fresh = await bp.player(balance=0)
    await bp.opt_in(fresh, offer)
    await bp.wallet("/internal/wallet/deposits", {"idempotency_key": f"dep-{uuid.uuid4()}", "player_id": str(fresh),
                                                  "currency": "EUR", "amount": 700, "psp": "test"})
    mine = await eventually(lambda: bp.grants(fresh), what="first-deposit match")
    assert [g["amount"] for g in mine] == [700]


async def test_cashback_pays_a_share_of_the_net_losses_of_its_period(bp: BonusPlatform) -> None:
    offer = await bp.offer("cashback", cashback_pct=10, period_days=7, max_bonus=5000, wagering_multiplier=0)
    pid = await bp.player(balance=50_000)
    await bp.opt_in(pid, offer)
    studio = await bp.studio(pid)
    await studio.round(4000)
    await studio.round(3000, win=1000)
    await studio.round(500, win=2500)
    # stakes 7500 - wins 3500 = 4000 lost; 10 % = 400
    await eventually(lambda: _net_loss_seen(bp, pid, 4000), what="the play reached bonus")
    bp.clock.advance(days=7, minutes=6)  # the period and its grace for late events
    await asyncio.sleep(2)
    await eventually(lambda: _swept_grants(bp, pid), what="cashback")
    [g] = await bp.grants(pid)
    assert g["amount"] == 400 and g["kind"] == "cashback"
    await bp.grant_until(g["grant_id"], "paid", state="converted")  # 0x wagering: straight to cash
    assert (await bp.balance(pid))["cash"] == 50_000 - 4000 + 400


async def _net_loss_seen(bp: BonusPlatform, pid: uuid.UUID, loss: int) -> bool:
    assert bp.bonus is not None
    async with bp.bonus.state.runtime.database.session() as s:
        got = (await s.execute(text("SELECT sum(staked - won) FROM play_days WHERE player_id = :p"), {"p": pid})
               ).scalar_one_or_none()
    return got == loss


async def _swept_grants(bp: BonusPlatform, pid: uuid.UUID) -> list[dict[str, Any]]:
    await bp.sweep()
    return await bp.grants(pid)


async def test_staff_roles_and_the_liability_report(bp: BonusPlatform) -> None:
    await bp.call("POST", "/internal/bonus/campaigns", 403, headers=bp.staff("support"), json={"name": "x"})
    no_staff = await bp.call("POST", "/internal/bonus/campaigns", 401, headers={}, json={"name": "x"})
    assert no_staff["status"] == 401
    pid = await bp.player(balance=0)
    offer = await bp.offer(amount=1234)
    await bp.call("POST", "/internal/bonus/grants", 201,
                  json={"player_id": str(pid), "offer_id": offer, "reason": "service recovery"})
    report = await bp.call("GET", "/internal/bonus/reports/liability", headers=bp.staff("support"))
    [eur] = [r for r in report["currencies"] if r["currency"] == "EUR"]
    assert eur["open_grants"] >= 1 and eur["open_granted"] >= 1234
    audit = await bp.call("GET", "/internal/bonus/audit", params={"target": f"player:{pid}"})
    assert [r["action"] for r in audit["records"]] == ["bonus.manual_grant"]
    assert audit["records"][0]["after"]["reason"] == "service recovery"


async def test_self_exclusion_forfeits_open_grants_and_a_time_out_keeps_them(bp: BonusPlatform) -> None:
    offer = await bp.offer(amount=700)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=180)
    leaving, pausing = await bp.player(balance=2_000), await bp.player(balance=2_000)
    grants = {pid: (await bp.opt_in(pid, offer))["grant"]["grant_id"] for pid in (leaving, pausing)}
    for pid in grants:
        assert await bp.balance(pid) == {"currency": "EUR", "cash": 2_000, "bonus": 700, "withdrawal_hold": 0}
    await bp.announce(pausing, revision=2, timeout_until=until)
    await bp.announce(leaving, revision=2, self_excluded_until=until)
    done = await bp.grant_until(grants[leaving], "forfeit on self-exclusion", state="forfeited",
                                reason="self-excluded", wallet_pending=None)
    assert done["closed_at"] is not None
    # the bonus money went back to the operator; the player's own cash is untouched
    assert await bp.balance(leaving) == {"currency": "EUR", "cash": 2_000, "bonus": 0, "withdrawal_hold": 0}
    # negative control: a time-out only pauses play, the grant and its money stay
    assert (await bp.grant(grants[pausing]))["state"] == "active"
    assert (await bp.balance(pausing))["bonus"] == 700
