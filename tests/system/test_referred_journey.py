"""A referred player's journey on a real `gameplane up`, every step over HTTP as the outside world
makes it: a click on an affiliate's tracking link through the gateway, registration carrying the
click id, a no-deposit bonus played through the RGS simulator, a deposit on the PSP's hosted page,
more play with cash, a withdrawal, the PSP's fees booked by payments' reconciliation. Then three
books must agree to the cent — the affiliate's statement, analytics' figures for the affiliate and
the day, and the wallet's ledger (read straight from its database) — and each with the sums this
test computed from what it did; the affiliate's tracking server (the postback simulator, its own
process) received each postback exactly once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import httpx
from journeylib import Player, publish_offers, reconcile_cli, wait_for
from referrallib import BackOffice, analytics_row, click, ledger, make_referrer, money, statement

from gameplane.devtools import localsecrets

GAME = "fruit-fives"
CHIP, CHIP_X = 1_000, 10  # a no-deposit chip of EUR 10.00, 10x: it cannot complete in this journey
BONUS_SPINS = 5  # played on the chip alone: the player has no cash yet
DEPOSIT = 5_000
CASH_SPINS, STAKE = 8, 100
WITHDRAWAL = 2_000
FEE_BPS = 150  # the PSP simulator's documented fee per settled deposit
DEAL = {"currency": "EUR", "cpa_amount": 2_500, "cpa_min_first_deposit": 2_000, "cpa_min_stakes": 1_000,
        "revshare": [{"from_ngr": 0, "basis_points": 2_500}, {"from_ngr": 1_000_000, "basis_points": 3_500}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_referred_player_statement_analytics_and_ledger_agree(platform: Any) -> None:
    for service in ("affiliates", "analytics", "bonus", "payments", "rgs", "psp"):
        platform.url(service)
    ids = platform.identities()
    secrets = localsecrets.read(platform.data_dir)
    rgs_url = platform.url("rgs")
    office = BackOffice(platform)

    port = _free_port()
    receiver = subprocess.Popen([sys.executable, "-m", "gameplane.simulators.postbacks"],
                                env={**os.environ, "GP_POSTBACKS_PORT": str(port)})
    tracker = f"http://127.0.0.1:{port}"
    try:
        wait_for("the postback simulator listens", lambda: _up(tracker), timeout=30)
        with httpx.Client(base_url=platform.gateway, timeout=30) as gateway, httpx.Client(timeout=30) as browser, \
                office.client("affiliates", "finance") as affiliates:
            affiliate = make_referrer(affiliates, DEAL, postback_url=f"{tracker}/postbacks")
            aid = affiliate["affiliate_id"]
            r = browser.put(f"{tracker}/control/affiliates/{aid}", json={"secret": affiliate["postback_secret"]})
            assert r.status_code == 200, r.text
            click_id = click(browser, platform.gateway, affiliate["link_code"], sub1="spring", sub2="banner-a")

            p = Player.register(gateway, browser, prefix="referred", affiliate_click_id=click_id)
            attribution = wait_for("attribution", lambda: (a := affiliates.get(
                f"/internal/affiliates/players/{p.player_id}")).status_code == 200 and a.json())
            assert attribution["affiliate_id"] == aid and attribution["click_id"] == click_id, attribution

            # A no-deposit chip, played before any cash exists: those stakes are bonus money.
            with office.client("bonus", "finance") as bo:
                offers = publish_offers(bo, {"name": "referral chip", "kind": "no_deposit", "currency": "EUR",
                                             "amount": CHIP, "wagering_multiplier": CHIP_X,
                                             "contributions": {"slots": 100}})
            p.opt_in(offers["no_deposit"])
            wait_for("chip credited", lambda: p.balance()["bonus"] == CHIP)
            on_bonus = p.spin(rgs_url, GAME, BONUS_SPINS, STAKE)
            assert on_bonus["settled"] == BONUS_SPINS, on_bonus
            after_bonus = p.balance()
            assert after_bonus["cash"] == 0 and after_bonus["bonus"] == CHIP - BONUS_SPINS * STAKE + on_bonus["won"]

            deposit = p.deposit("simpsp", DEPOSIT)
            on_cash = p.spin(rgs_url, GAME, CASH_SPINS, STAKE)  # cash first: the chip is not touched
            assert on_cash["settled"] == CASH_SPINS, on_cash
            assert p.balance()["cash"] == DEPOSIT - CASH_SPINS * STAKE + on_cash["won"]

            # Risk learns of deposit methods from payments' events; a withdrawal before it has would
            # (rightly) go to review as one to a method never deposited with.
            wait_for("risk saw the deposit method", lambda: httpx.get(
                f"{platform.url('risk')}/internal/risk/players/{p.player_id}", timeout=10,
                headers=office.headers("risk", "risk")).json()["deposit_methods"] == 1)
            p.withdraw(WITHDRAWAL, deposit["method_fingerprint"])

            day = datetime.now(UTC).date()
            run = reconcile_cli(platform, secrets, ids, day)
            assert run.stdout.startswith("{"), run.stdout + run.stderr
            assert json.loads(run.stdout)["fees"] >= 1  # this journey's deposit fee among them

            # What this test did, summed by hand.
            stakes = (BONUS_SPINS + CASH_SPINS) * STAKE
            wins = on_bonus["won"] + on_cash["won"]
            bonus_stakes, bonus_wins = BONUS_SPINS * STAKE, on_bonus["won"]
            fee = DEPOSIT * FEE_BPS // 10_000
            ggr = stakes - wins
            ngr = ggr - (bonus_stakes - bonus_wins) - fee  # no conversion; the platform's jurisdiction: none

            # 1. The ledger, straight from the wallet's database.
            book = ledger(platform, [p.player_id], day)
            assert money(book) == (stakes, wins, bonus_stakes, bonus_wins, 0, fee, DEPOSIT, WITHDRAWAL)

            # 2. Analytics, for this affiliate and the day (its events arrive asynchronously).
            with office.client("analytics", "finance") as analytics:
                row = analytics_row(analytics, day, aid, ready=lambda r: r["payment_fees"] == fee and r["withdrawals"])
            assert money(row) == money(book)
            assert (row["ggr"], row["ngr"], row["gaming_tax"]) == (ggr, ngr, 0)
            assert (row["registrations"], row["ftd"], row["active_players"]) == (1, 1, 1)

            # 3. The affiliate's statement of the month (open: computed now).
            st = statement(affiliates, aid, day, ready=lambda s: s["payment_fees"] == fee)
            assert (st["stakes"], st["wins"], st["ggr"], st["bonus_cost"], st["payment_fees"], st["ngr"]) == (
                stakes, wins, ggr, bonus_stakes - bonus_wins, fee, ngr)
            (line,) = st["lines"]
            assert (line["stakes"], line["ggr"], line["ngr_before_tax"], line["cpa"]) == (
                stakes, ggr, ngr, DEAL["cpa_amount"])  # qualified: deposit >= 2,000 and stakes >= 1,000
            assert st["revshare"] == max(ngr, 0) * 2_500 // 10_000

            # Postbacks: registration, first deposit, qualification — once each, signed correctly.
            def ours() -> list[dict[str, Any]] | None:
                got = [b for b in browser.get(f"{tracker}/control/received").json() if b["affiliate_id"] == aid]
                return got if len(got) >= 3 else None

            received = wait_for("three postbacks", ours, timeout=60)
            kinds = sorted(b["kind"] for b in received)
            assert kinds == ["first_deposit", "qualification", "registration"], received
            assert len({b["postback_id"] for b in received}) == 3
            assert all(b["click_id"] == click_id and b["sub_ids"][:2] == ["spring", "banner-a"] for b in received)
            assert browser.get(f"{tracker}/control/rejected").json() == []
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/control/stats", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
