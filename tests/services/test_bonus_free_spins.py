"""Free spins end to end: a free-spins offer taken by the player -> bonus grants at the wallet (0)
and awards the spins through games -> the RGS simulator plays them without bets -> the wallet
credits each win to the grant -> bonus counts the spins and sets the requirement on the wins ->
paid play wagers it -> the grant converts to cash. Needs games' award route and the wallet's
per-grant free-spin wins (the `freespins` and `grants` work)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from bonuslib import BonusPlatform, bonus_platform

from gameplane.devtools.inprocess import launch


@pytest.fixture(scope="module")
async def bp(pg: Any, nats_server: Any) -> AsyncIterator[BonusPlatform]:
    async with bonus_platform(pg, nats_server.url, with_rgs=True) as p:
        yield p


async def test_free_spins_are_played_credited_to_the_grant_wagered_and_converted(bp: BonusPlatform) -> None:
    pid = await bp.player(balance=100_000)
    session = await launch(bp.local, pid)
    async with httpx.AsyncClient(timeout=60) as browser:
        assert (await browser.get(session["launch_url"])).status_code == 200
    offer = await bp.offer("free_spins", game_id="fruit-fives", spins=10, spin_stake=50, wagering_multiplier=2)
    g = (await bp.opt_in(pid, offer))["grant"]
    assert (g["state"], g["amount"], g["wallet_pending"]) == ("active", 0, None)
    async with httpx.AsyncClient(base_url=bp.local.urls["games"], timeout=20) as games:
        award = await games.get(f"/internal/games/free-spins/{g['grant_id']}",
                                headers=bp.local.headers("games", caller="bonus"))
    assert award.status_code == 200 and (award.json()["spins"], award.json()["stake"]) == (10, 50)

    async with httpx.AsyncClient(base_url=bp.local.urls["rgs"], timeout=120) as rgs:
        out = (await rgs.post(f"/sessions/{session['token']}/spins", json={"count": 10, "stake": 20})).json()
    assert (out["free_spins"], out["staked"]) == (10, 0)  # no bet for any of them
    won = out["free_spins_won"]
    assert won > 0  # a run without a win would prove nothing below
    # ten spins counted, the requirement 2 x the wins, nothing wagered yet
    g = await bp.grant_until(g["grant_id"], "the spins counted", amount=won)
    assert g["progress"] == {"required": 2 * won, "wagered": 0, "remaining": 2 * won}
    assert g["state"] == "active"
    assert (await bp.balance(pid))["bonus"] == won

    # paid spins on the slot count in full; 20 a spin, as many as 2 x won needs, and two more
    stake = 20
    paid = -(-2 * won // stake) + 2
    cash_before = (await bp.balance(pid))["cash"]
    async with httpx.AsyncClient(base_url=bp.local.urls["rgs"], timeout=300) as rgs:
        more = (await rgs.post(f"/sessions/{session['token']}/spins", json={"count": paid, "stake": stake})).json()
    assert (more["free_spins"], more["staked"]) == (0, paid * stake)
    done = await bp.grant_until(g["grant_id"], "converted", state="converted")
    # bets drew cash first (100,000 of it): the grant's money was untouched, all of it converts
    assert done["converted"] == won
    after = await bp.balance(pid)
    assert after["bonus"] == 0
    assert after["cash"] == cash_before - more["staked"] + more["won"] + won


async def test_a_free_spins_grant_for_an_unknown_game_stays_owed_and_says_so(bp: BonusPlatform) -> None:
    pid = await bp.player(balance=0)
    offer = await bp.offer("free_spins", game_id=f"no-such-game-{uuid.uuid4().hex[:6]}", spins=5, spin_stake=50)
    g = (await bp.opt_in(pid, offer))["grant"]
    # games refuses the award (404 game-not-found): the grant is not active, the call stays owed
    assert (g["state"], g["wallet_pending"]) == ("issued", "grant")
    cancelled = await bp.call("POST", f"/internal/bonus/grants/{g['grant_id']}/cancel",
                              json={"reason": "the game was withdrawn"})
    assert (cancelled["state"], cancelled["wallet_pending"]) == ("cancelled", None)
