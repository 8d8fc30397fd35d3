"""Affiliates and analytics stopped in turn during play, on a real `gameplane up`: a referred player
registers, logs in, deposits and bets while the service is down (neither is on any of those paths);
the gateway answers 503 only for the stopped service's own routes. After the restart the service
catches up from the stream, and the affiliate's statement and analytics' figures for the affiliate
agree exactly with the wallet's ledger and with what the test did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from journeylib import Player
from referrallib import BackOffice, analytics_row, click, ledger, make_referrer, money, statement

GAME = "fruit-fives"
DEPOSIT, SPINS, STAKE = 3_000, 6, 100
DEAL = {"currency": "EUR", "revshare": [{"from_ngr": 0, "basis_points": 3_000}]}


@pytest.mark.parametrize("down", ["affiliates", "analytics"])
def test_play_goes_on_while_it_is_down_and_the_books_agree_after_it_catches_up(platform: Any, down: str) -> None:
    office = BackOffice(platform)
    rgs_url = platform.url("rgs")
    with httpx.Client(base_url=platform.gateway, timeout=30) as gateway, httpx.Client(timeout=30) as browser, \
            office.client("affiliates", "finance") as affiliates, office.client("analytics", "finance") as analytics:
        affiliate = make_referrer(affiliates, DEAL)
        aid = affiliate["affiliate_id"]
        click_id = click(browser, platform.gateway, affiliate["link_code"])

        platform.stop_service(down)
        try:
            if down == "affiliates":  # its own public route says so; nothing else is affected
                r = browser.get(f"{platform.gateway}/v1/affiliates/track/{affiliate['link_code']}")
                assert r.status_code == 503, r.text
                assert r.headers["content-type"].startswith("application/problem+json")
            p = Player.register(gateway, browser, prefix=f"{down}-down", affiliate_click_id=click_id)
            p.login()
            p.deposit("simpsp", DEPOSIT)
            played = p.spin(rgs_url, GAME, SPINS, STAKE)
            assert played["settled"] == SPINS and played["staked"] == SPINS * STAKE, played
            assert p.balance()["cash"] == DEPOSIT - SPINS * STAKE + played["won"]
        finally:
            platform.start_service(down)

        day = datetime.now(UTC).date()
        book = ledger(platform, [p.player_id], day)
        # the ledger holds what the test did (a PSP fee appears only once a reconciliation books it)
        assert (book.stakes, book.wins, book.deposits, book.bonus_stakes) == (SPINS * STAKE, played["won"], DEPOSIT, 0)

        row = analytics_row(analytics, day, aid, ready=lambda r: money(r) == money(book))
        assert (row["ggr"], row["registrations"], row["ftd"], row["active_players"]) == (
            book.stakes - book.wins, 1, 1, 1)
        st = statement(affiliates, aid, day, ready=lambda s: (s["stakes"], s["wins"]) == (book.stakes, book.wins))
        assert (st["ggr"], st["bonus_cost"], st["payment_fees"]) == (book.stakes - book.wins, 0, book.payment_fees)
        assert st["ngr"] == row["ngr"] == book.stakes - book.wins - book.payment_fees  # jurisdiction none: no duty
        assert [line["stakes"] for line in st["lines"]] == [SPINS * STAKE]  # the one player, attributed late
