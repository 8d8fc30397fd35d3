"""Wagering from the wallet's events, end to end: play through games' provider API, the wallet's
events on the stream, bonus's consumers. Expected progress figures are worked out by hand in each
test from the stakes it plays and the contribution table (slots 100 %, table 20 %)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bonuslib import TABLE_GAME, BonusPlatform, bonus_platform, eventually, publish_events

from gameplane.devtools.testing import stored_events
from gameplane.kit.events import Envelope


@pytest.fixture(scope="module")
async def bp(pg: Any, nats_server: Any) -> AsyncIterator[BonusPlatform]:
    async with bonus_platform(pg, nats_server.url) as p:
        yield p


async def granted(bp: BonusPlatform, pid: uuid.UUID, **terms: Any) -> dict[str, Any]:
    """A no-deposit grant for the player, credited at the wallet (state active)."""
    offer = await bp.offer("no_deposit", **{"amount": 1000, "wagering_multiplier": 20, **terms})
    answer = await bp.opt_in(pid, offer)
    assert answer["grant"]["state"] == "active", answer
    return answer["grant"]  # type: ignore[no-any-return]


async def settles_at(bp: BonusPlatform, grant_id: str, wagered: int) -> dict[str, Any]:
    """The grant once its progress reached `wagered`, checked again a moment later (a bet that
    should not count would arrive in that time as well)."""
    await bp.grant_until(grant_id, "progress", progress__wagered=wagered)
    await asyncio.sleep(1.0)
    g = await bp.grant(grant_id)
    assert g["progress"]["wagered"] == wagered
    return g


async def test_progress_after_a_slot_session_is_the_hand_computed_figure(bp: BonusPlatform) -> None:
    pid = await bp.player()
    g = await granted(bp, pid)
    assert g["progress"] == {"required": 20_000, "wagered": 0, "remaining": 20_000}  # 20 x 1000
    studio = await bp.studio(pid)  # fruit-fives: slots, 100 %
    await studio.round(1000)  # lost: counts 1000
    await studio.round(2500, win=3000)  # won: counts 2500
    rolled = await studio.bet(500, "r-rolled")  # rolled back: never counts
    await studio.rollback(rolled)
    await studio.bet(700, "r-rolled")
    await studio.win(0, "r-rolled")  # the round's other bet: counts 700
    await studio.bet(400, "r-open")
    await studio.win(100, "r-open", closed=False)  # round still open: does not count (yet)
    await studio.bet(300, "r-two")
    await studio.bet(200, "r-two")
    await studio.win(0, "r-two")  # two bets, one close: counts 500
    # 1000 + 2500 + 700 + 500 = 4700
    done = await settles_at(bp, g["grant_id"], 4700)
    assert done["state"] == "wagering" and done["progress"]["remaining"] == 15_300
    await studio.win(0, "r-open")  # the open round closes: its 400 counts now
    await settles_at(bp, g["grant_id"], 5100)


async def test_a_20_percent_table_game_counts_a_fifth_of_each_settled_stake(bp: BonusPlatform) -> None:
    pid = await bp.player()
    g = await granted(bp, pid)
    studio = await bp.studio(pid, TABLE_GAME)
    await studio.round(1000)  # 200
    await studio.round(2500, win=5000)  # 500
    await studio.round(1234)  # 246.8, rounded down: 246
    # 200 + 500 + 246 = 946
    await settles_at(bp, g["grant_id"], 946)


async def test_completion_converts_at_most_the_cash_out_cap(bp: BonusPlatform) -> None:
    pid = await bp.player(balance=50_000)
    g = await granted(bp, pid, amount=1000, wagering_multiplier=2, cashout_cap=600)
    assert (await bp.balance(pid))["bonus"] == 1000
    studio = await bp.studio(pid)
    await studio.round(1500)
    await studio.round(500, win=500)  # 2000 = 2 x 1000: complete
    # bets draw cash first: the bonus money is untouched, 1000; the cap lets 600 of it out
    done = await bp.grant_until(g["grant_id"], "conversion", state="converted")
    assert done["converted"] == 600 and done["wallet_pending"] is None
    after = await bp.balance(pid)
    assert after["cash"] == 50_000 - 1500 - 500 + 500 + 600
    # the 400 above the cap went back to the operator: the player holds no bonus money any more
    assert after["bonus"] == 0


async def test_a_grants_life_is_on_the_stream(bp: BonusPlatform) -> None:
    pid = await bp.player()
    g = await granted(bp, pid, amount=100, wagering_multiplier=10)  # needs 1000
    studio = await bp.studio(pid)
    for stake in (200, 300, 100, 400):
        await studio.round(stake)
    await bp.grant_until(g["grant_id"], "conversion", state="converted")
    mine = {"grant_id": g["grant_id"]}
    [granted_] = await stored_events(bp.nats_url, "gameplane.bonus.granted", mine, expect=1)
    assert (granted_["data"]["amount"], granted_["data"]["wagering_required"]) == (100, 1000)
    progressed = await stored_events(bp.nats_url, "gameplane.bonus.progressed", mine, expect=1)
    # coalesced: at most one per settled bet, the last with the total
    assert 1 <= len(progressed) <= 4 and progressed[-1]["data"]["wagered"] == 1000
    [completed] = await stored_events(bp.nats_url, "gameplane.bonus.completed", mine, expect=1)
    [converted] = await stored_events(bp.nats_url, "gameplane.bonus.converted", mine, expect=1)
    assert completed["data"]["wagered"] == 1000 and converted["data"]["cash"] == 100


async def test_stakes_count_toward_the_oldest_grant_that_still_needs_wagering(bp: BonusPlatform) -> None:
    pid = await bp.player()
    first = await granted(bp, pid, amount=100, wagering_multiplier=10)  # needs 1000
    second = await granted(bp, pid, amount=100, wagering_multiplier=10)
    studio = await bp.studio(pid)
    await studio.round(800)
    await bp.grant_until(first["grant_id"], "first grant", progress__wagered=800)
    await studio.round(300)  # 200 completes the first; its rest is not carried over
    await bp.grant_until(first["grant_id"], "first converted", state="converted")
    await studio.round(400)  # the second one now
    await settles_at(bp, second["grant_id"], 400)


async def test_replayed_events_land_once(bp: BonusPlatform) -> None:
    pid = await bp.player()
    g = await granted(bp, pid)
    studio = await bp.studio(pid)
    await studio.round(1000)
    await studio.round(600)
    await settles_at(bp, g["grant_id"], 1600)
    # The same events again, as a redelivery past the stream's duplicate window would bring them.
    again = []
    for subject in ("gameplane.wallet.bet_placed", "gameplane.wallet.win_settled"):
        found = await stored_events(bp.nats_url, subject, {"player_id": str(pid)}, expect=2)
        assert len(found) == 2
        again += [Envelope.model_validate(e) for e in found]
    nc_headers_differ = [e.model_copy() for e in again]
    await publish_redelivered(bp, nc_headers_differ)
    await asyncio.sleep(2.0)
    assert (await bp.grant(g["grant_id"]))["progress"]["wagered"] == 1600


async def publish_redelivered(bp: BonusPlatform, envs: list[Envelope]) -> None:
    """Publish envelopes under a new stream message id (so the stream keeps them) with their own
    event id (what consumers de-duplicate on)."""
    import nats

    nc = await nats.connect(bp.nats_url)
    try:
        js = nc.jetstream()
        for env in envs:
            await js.publish(env.subject, env.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": f"{env.id}-redelivery-{uuid.uuid4().hex[:6]}"})
    finally:
        await nc.close()


async def test_bonus_down_during_play_catches_up_to_the_same_progress(bp: BonusPlatform) -> None:
    pid = await bp.player()
    g = await granted(bp, pid)
    match = await bp.offer("deposit_match", match_pct=10, max_bonus=5000)
    await bp.opt_in(pid, match)
    studio = await bp.studio(pid)
    await studio.round(1000)
    await settles_at(bp, g["grant_id"], 1000)
    await bp.stop()
    try:
        # play and deposits go on without bonus: nothing on their path calls it
        await studio.round(2000, win=100)
        await studio.round(300)
        rolled = await studio.bet(900, "r-down")
        await studio.rollback(rolled)
        await studio.win(0, "r-down")
        await bp.wallet("/internal/wallet/deposits", {"idempotency_key": f"dep-{uuid.uuid4()}", "player_id": str(pid),
                                                      "currency": "EUR", "amount": 20_000, "psp": "test"})
        assert (await bp.balance(pid))["cash"] == 100_000 - 1000 - 2000 + 100 - 300 + 20_000
    finally:
        await bp.start()
    # 1000 + 2000 + 300, as with no outage
    await settles_at(bp, g["grant_id"], 3300)
    # and the deposit made meanwhile is matched: 10 % of 20,000
    mine = await eventually(lambda: _offer_grants(bp, pid, match), what="the match after the restart")
    assert [m["amount"] for m in mine] == [2000]


async def _offer_grants(bp: BonusPlatform, pid: uuid.UUID, offer_id: str) -> list[dict[str, Any]]:
    return [g for g in await bp.grants(pid) if g["offer_id"] == offer_id]


async def test_deposit_match_for_an_opted_in_player(bp: BonusPlatform) -> None:
    offer = await bp.offer("deposit_match", match_pct=100, max_bonus=2000, wagering_multiplier=5,
                           wagering_base="bonus_deposit", min_deposit=1000)
    pid = await bp.player(balance=0)
    other = await bp.player(balance=0)  # never opted in: no grant
    await bp.opt_in(pid, offer)
    for p in (pid, other):
        await bp.wallet("/internal/wallet/deposits", {"idempotency_key": f"dep-{uuid.uuid4()}", "player_id": str(p),
                                                      "currency": "EUR", "amount": 5000, "psp": "test"})
    mine = await eventually(lambda: bp.grants(pid), what="the deposit match")
    assert len(mine) == 1
    g = mine[0]
    # 100 % of 5000 capped at 2000; requirement 5 x (2000 + 5000) = 35000
    assert (g["amount"], g["progress"]["required"]) == (2000, 35_000)
    await bp.grant_until(g["grant_id"], "credited", state="active")
    assert (await bp.balance(pid))["bonus"] == 2000
    await asyncio.sleep(1.0)
    assert await bp.grants(other) == []


async def test_a_replayed_deposit_grants_once(bp: BonusPlatform) -> None:
    offer = await bp.offer("deposit_match", match_pct=50, max_bonus=10_000)
    pid = await bp.player(balance=0)
    await bp.opt_in(pid, offer)
    await bp.wallet("/internal/wallet/deposits", {"idempotency_key": f"dep-{uuid.uuid4()}", "player_id": str(pid),
                                                  "currency": "EUR", "amount": 4000, "psp": "test"})
    await eventually(lambda: bp.grants(pid), what="the deposit match")
    found = await stored_events(bp.nats_url, "gameplane.wallet.deposit_credited", {"player_id": str(pid)}, expect=1)
    await publish_redelivered(bp, [Envelope.model_validate(e) for e in found])
    await asyncio.sleep(1.5)
    mine = await bp.grants(pid)
    assert [g["amount"] for g in mine] == [2000]


__all__ = ["publish_events"]
