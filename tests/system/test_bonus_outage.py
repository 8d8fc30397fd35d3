"""The bonus service stopped during play, on a real `gameplane up`: bets, deposits and logins go on
without it (bonus is never on the bet or deposit path); after it restarts it catches up from the
stream, and every grant's wagering progress is the same as for a player who played the same
session while it was up — and equal to the figure computed by hand from the session."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from journeylib import Player, publish_offers, wait_for

from gameplane.kit.staff import STAFF_HEADER, issue_staff_token

GAME = "fruit-fives"  # a slot: 100 % contribution by the offers' own table below
SPINS, STAKE = 8, 100
NO_DEPOSIT, NO_DEPOSIT_X = 1_000, 10  # EUR 10.00, 10x
DEPOSIT, MATCH_CAP, MATCH_X = 2_000, 1_500, 5  # EUR 20.00 matched 100 % up to EUR 15.00, 5x
# By hand: every settled stake of the session counts in full towards the oldest open grant (the
# no-deposit one); the deposit match waits its turn.
WAGERED = SPINS * STAKE


def _grants(p: Player) -> dict[str, dict[str, Any]]:
    r = p.gateway.get("/v1/bonus/grants", headers=p.auth)
    assert r.status_code == 200, r.text
    return {g["kind"]: g for g in r.json()}


def _progress(p: Player) -> dict[str, tuple[str, int, int]]:
    return {k: (g["state"], g["progress"]["wagered"], g["progress"]["required"]) for k, g in _grants(p).items()}


def test_bonus_down_during_play_catches_up_to_the_same_progress(platform: Any) -> None:
    ids = platform.identities()
    bonus_url, rgs_url = platform.url("bonus"), platform.url("rgs")
    staff = {**ids.bearer("backoffice", "bonus"), STAFF_HEADER: issue_staff_token(
        ids.keys["players"], uuid.uuid4(), "bonus-outage-staff", ["finance"])}  # type: ignore[arg-type]

    with httpx.Client(base_url=platform.gateway, timeout=30) as gateway, httpx.Client(timeout=30) as browser, \
            httpx.Client(base_url=bonus_url, headers=staff, timeout=30) as office:
        offers = publish_offers(
            office,
            {"name": "welcome chip", "kind": "no_deposit", "currency": "EUR", "amount": NO_DEPOSIT,
             "wagering_multiplier": NO_DEPOSIT_X, "contributions": {"slots": 100}},
            {"name": "first deposit", "kind": "deposit_match", "currency": "EUR", "match_pct": 100,
             "max_bonus": MATCH_CAP, "wagering_multiplier": MATCH_X, "contributions": {"slots": 100}})

        up, down = (Player.register(gateway, browser, prefix=f"bonus-{n}") for n in ("up", "down"))
        for p in (up, down):
            for offer_id in offers.values():
                p.opt_in(offer_id)
            assert _progress(p) == {"no_deposit": ("active", 0, NO_DEPOSIT * NO_DEPOSIT_X)}

        def session(p: Player) -> int:
            p.deposit("simpsp", DEPOSIT)
            played = p.spin(rgs_url, GAME, SPINS, STAKE)
            assert played["settled"] == SPINS and played["staked"] == SPINS * STAKE, played
            return int(played["won"])

        # The control: the same session with bonus up.
        won = {"up": session(up)}
        expected = {"no_deposit": ("wagering", WAGERED, NO_DEPOSIT * NO_DEPOSIT_X),
                    "deposit_match": ("active", 0, MATCH_CAP * MATCH_X)}
        wait_for("the control's progress", lambda: _progress(up) == expected, timeout=60)

        platform.stop_service("bonus")
        try:
            # The player API says bonus is unavailable; it does not hang or pretend.
            r = gateway.get("/v1/bonus/grants", headers=down.auth)
            assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json"), r.text
            down.login()  # logins,
            won["down"] = session(down)  # deposits and bets go on without bonus
            assert down.balance()["bonus"] == NO_DEPOSIT  # the deposit is not matched yet
        finally:
            platform.start_service("bonus")

        # It catches up from the stream: the deposit it missed is matched, the stakes are counted.
        wait_for("bonus caught up", lambda: _progress(down) == expected, timeout=90)
        assert _progress(down) == _progress(up)
        # negative control of the comparison itself: the session moved progress at all
        assert expected["no_deposit"][1] > 0
        # Stakes came out of cash first, so wins went to cash; the bonus money is the two grants,
        # the deposit matched 100 % and capped at EUR 15.00.
        for name, p in (("up", up), ("down", down)):
            assert _grants(p)["deposit_match"]["amount"] == MATCH_CAP
            bal = wait_for(f"{name}'s match credited", lambda p=p: (b := p.balance())["bonus"] == NO_DEPOSIT + MATCH_CAP
                           and b)
            assert bal["cash"] == DEPOSIT - SPINS * STAKE + won[name], (name, bal, won)
