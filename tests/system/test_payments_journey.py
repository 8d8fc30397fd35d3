"""A player's money journey on a real `gameplane up`, every step over HTTP as the outside world makes it:
register through the gateway, deposit twice (once per PSP dialect) by completing the PSP simulator's
hosted page as a browser would, play a few rounds through the RGS simulator, withdraw to the card
deposited with, let the simulator pay it out, and then prove the books: the balance is the sum the
test computed, the PSP's settlement reports carry those amounts to the cent, payments' reconciliation
(CLI and back office) finds nothing and books the PSP's fees once, the wallet's invariants hold. A
negative control runs the same reconciliation against a payments database that never saw these
payments: it must fail, naming them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from journeylib import Form, Player, bearer, pay_by_card, reconcile_cli, wait_for

from gameplane.devtools import localsecrets
from gameplane.kit.staff import STAFF_HEADER, issue_staff_token

DECLINED_CARD = "4000 0000 0000 0002"  # the simulator's documented `card-declined` card
SIMPSP_DEPOSIT, CARDGW_DEPOSIT = 5_000, 3_000  # EUR 50.00 and EUR 30.00
FEE_BPS = 150  # the simulator's documented fee per settled deposit (docs/integration/payments.md)
SPINS, STAKE = 5, 100
WITHDRAWAL = 4_000


def webhook_requests_through_gateway(gateway: httpx.Client) -> float:
    """What the gateway itself counts: POSTs on its /webhooks partner route that payments acknowledged."""
    total = 0.0
    for line in gateway.get("/metrics").text.splitlines():
        if (line.startswith("gameplane_http_requests_total{") and 'route="/webhooks"' in line
                and 'method="POST"' in line and 'status="200"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def settled_rows(psp_url: str, keys: dict[str, dict[str, str]], day: date) -> dict[str, list[tuple[str, int]]]:
    """Each of our references in the PSP's own settlement CSVs, as (kind, signed minor units), read
    from the two wire formats directly (not through payments' adapters, which the test checks)."""
    out: dict[str, list[tuple[str, int]]] = {}
    simpsp = httpx.get(f"{psp_url}/simpsp/reports/settlement", params={"date": day.isoformat()},
                       headers={"X-Psp-Api-Key": keys["simpsp"]["api_key"]}, timeout=30)
    assert simpsp.status_code == 200, simpsp.text
    for row in csv.DictReader(io.StringIO(simpsp.text)):  # major units, "50.00"
        out.setdefault(row["reference"], []).append(
            ("simpsp:" + row["type"].lower(), int(Decimal(row["amount"]) * 100)))
    cardgw = httpx.get(f"{psp_url}/cardgw/v1/reports/settlement", params={"date": day.isoformat()},
                       headers=bearer(keys["cardgw"]["api_key"]), timeout=30)
    assert cardgw.status_code == 200, cardgw.text
    for row in csv.DictReader(io.StringIO(cardgw.text)):  # minor units, fees negative
        out.setdefault(row["metadata_reference"], []).append(
            ("cardgw:" + row["reporting_category"], int(row["gross"])))
    return out


def test_register_deposit_with_both_psps_play_withdraw_and_the_books_reconcile(platform: Any) -> None:
    for service in ("players", "wallet", "games", "sessions", "payments", "risk", "rgs", "psp"):
        platform.url(service)
    secrets = localsecrets.read(platform.data_dir)
    ids = platform.identities()
    psp_url, rgs_url = platform.url("psp"), platform.url("rgs")
    control = bearer(secrets["psps"]["simpsp"]["api_key"])
    printed = platform.info["psp"]
    hosted_pages = printed["hosted_pages"]
    assert hosted_pages == psp_url + "/pay/{psp_reference}" and "psp hosted pages" in platform.stdout()
    assert printed["webhooks"] == {d: f"{platform.gateway}/webhooks/payments/{d}" for d in ("simpsp", "cardgw")}
    staff_id = uuid.uuid4()

    def staff(*roles: str) -> dict[str, str]:
        # a back-office person's token, signed with players' key of this run as players' staff login does
        token = issue_staff_token(ids.keys["players"], staff_id, "journey-staff", list(roles))  # type: ignore[arg-type]
        return {STAFF_HEADER: token}

    with httpx.Client(base_url=platform.gateway, timeout=30) as gateway, httpx.Client(timeout=30) as browser:
        gateway_webhooks_before = webhook_requests_through_gateway(gateway)
        acked_before = sum(1 for a in browser.get(f"{psp_url}/control/deliveries", headers=control).json()["attempts"]
                           if a["ok"])

        p = Player.register(gateway, browser)
        player, auth, email = p.player_id, p.auth, p.email

        def deposit(psp: str, amount: int, choose: Callable[[Form], dict[str, str]],
                    outcome: str = "succeeded") -> dict[str, Any]:
            return p.deposit(psp, amount, choose, outcome, hosted_pages=hosted_pages)

        def pay_by_ewallet(form: Form) -> dict[str, str]:
            assert "ewallet" in form.radios["method"] and "wallet_account" in form.fields
            return {"method": "ewallet", "wallet_account": email, form.buttons["pay"]: "pay"}

        by_card = deposit("simpsp", SIMPSP_DEPOSIT, pay_by_card)
        by_ewallet = deposit("cardgw", CARDGW_DEPOSIT, pay_by_ewallet)
        assert by_card["method_fingerprint"] and by_ewallet["method_fingerprint"]
        assert by_card["method_fingerprint"] != by_ewallet["method_fingerprint"]
        deposited = SIMPSP_DEPOSIT + CARDGW_DEPOSIT

        eur = p.balance

        assert eur()["cash"] == deposited

        # Both webhooks rode the gateway's partner route: every delivery the simulator saw
        # acknowledged is a 200 the gateway counted on /webhooks.
        acked = sum(1 for a in browser.get(f"{psp_url}/control/deliveries", headers=control).json()["attempts"]
                    if a["ok"]) - acked_before
        assert acked >= 2
        assert webhook_requests_through_gateway(gateway) - gateway_webhooks_before == acked

        # Risk learns of deposit methods from payments' events; a withdrawal before it has would
        # (rightly) be sent to review as one to a method never deposited with.
        wait_for("risk saw both deposit methods", lambda: httpx.get(
            f"{platform.url('risk')}/internal/risk/players/{player}", timeout=10,
            headers={**ids.bearer("backoffice", "risk"), **staff("risk")}).json()["deposit_methods"] == 2)

        session = gateway.post("/v1/sessions", json={"game_id": "fruit-fives"}, headers=auth)
        assert session.status_code == 201, session.text
        launch_url = session.json()["launch_url"]
        assert launch_url.startswith(rgs_url + "/launch?")
        table = browser.get(launch_url)
        assert table.status_code == 200 and table.json()["balance"] == deposited, table.text
        played = browser.post(f"{rgs_url}/sessions/{session.json()['token']}/spins",
                              json={"count": SPINS, "stake": STAKE}, timeout=120).json()
        assert played["settled"] == SPINS and played["staked"] == SPINS * STAKE, played
        won = played["won"]  # what the studio reports it paid; the wallet must agree
        after_play = deposited - SPINS * STAKE + won
        assert played["balance"] == after_play and eur()["cash"] == after_play

        withdrawal = p.withdraw(WITHDRAWAL, by_card["method_fingerprint"])
        assert withdrawal["psp"] == "simpsp"  # back to the PSP the card was deposited with
        final = after_play - WITHDRAWAL
        assert eur() == {"currency": "EUR", "cash": final, "bonus": 0, "withdrawal_hold": 0}

        # A declined card on the hosted page ends the deposit as failed and moves nothing.
        declined = deposit("simpsp", 2_500, lambda form: pay_by_card(form, DECLINED_CARD), outcome="failed")
        assert declined["held_reason"] == "card-declined", declined
        assert eur()["cash"] == final

        history = gateway.get("/v1/wallet/transactions", params={"limit": 200}, headers=auth).json()["items"]
        sums: dict[str, int] = {}
        for item in history:
            sums[item["kind"]] = sums.get(item["kind"], 0) + item["amount"]
        assert sums["deposit"] == deposited and sums["bet"] == SPINS * STAKE and sums["withdrawal_post"] == WITHDRAWAL
        assert sums.get("win", 0) == won
        assert set(sums) <= {"deposit", "bet", "win", "withdrawal_hold", "withdrawal_post"}, sums

    # The PSP's own books for today, to the cent.
    day = datetime.now(UTC).date()
    rows = settled_rows(psp_url, secrets["psps"], day)
    assert sorted(rows[by_card["reference"]]) == sorted(
        [("simpsp:deposit", SIMPSP_DEPOSIT), ("simpsp:fee", SIMPSP_DEPOSIT * FEE_BPS // 10_000)])
    assert sorted(rows[by_ewallet["reference"]]) == sorted(
        [("cardgw:charge", CARDGW_DEPOSIT), ("cardgw:fee", -CARDGW_DEPOSIT * FEE_BPS // 10_000)])
    assert rows[withdrawal["reference"]] == [("simpsp:payout", WITHDRAWAL)]
    assert declined["reference"] not in rows  # declined: nothing settled

    run = reconcile_cli(platform, secrets, ids, day)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)
    assert result["mismatches"] == []
    assert result["report_rows"] >= 5 and result["records"] >= 3  # it compared this journey, not nothing

    office = httpx.post(f"{platform.url('payments')}/internal/payments/reconciliation", params={"day": str(day)},
                        headers={**ids.bearer("backoffice", "payments"), **staff("finance")}, timeout=120)
    assert office.status_code == 200, office.text
    # (other tests' payments may settle in between: at least what the CLI compared)
    assert office.json()["mismatches"] == [] and office.json()["report_rows"] >= result["report_rows"]

    # The PSP's fee on each deposit (1.5 %), booked on the wallet by the reconciliation, once over the
    # two runs, on this player; the house and the player's cash are not touched (the balance above)
    now = datetime.now(UTC)
    fees = httpx.get(platform.url("wallet") + "/internal/wallet/movements", timeout=60,
                     headers=ids.bearer("payments", "wallet"),
                     params={"prefix": "fee:", "since": (now - timedelta(days=1)).isoformat(),
                             "until": (now + timedelta(days=1)).isoformat()})
    assert fees.status_code == 200, fees.text
    assert sorted(m["amount"] for m in fees.json()["items"] if m["player_id"] == str(player)) == sorted(
        [SIMPSP_DEPOSIT * FEE_BPS // 10_000, CARDGW_DEPOSIT * FEE_BPS // 10_000])
    assert result["fees"] >= 2 and office.json()["fees"] >= result["fees"]

    wallet = httpx.get(platform.url("wallet") + "/internal/wallet/reconciliation", timeout=60,
                       headers=ids.bearer("backoffice", "wallet"))
    assert wallet.status_code == 200, wallet.text
    assert wallet.json()["ok"], wallet.json()["breaches"]

    # Negative control: the same report and ledger against payment records that know nothing of
    # this journey must not reconcile, and must name its payments.
    control_db = f"gp_payments_control_{uuid.uuid4().hex[:8]}"

    async def create_db() -> None:
        conn = await asyncpg.connect(str(platform.info["postgres"]))
        try:
            await conn.execute(f'CREATE DATABASE "{control_db}"')
        finally:
            await conn.close()

    asyncio.run(create_db())
    databases = platform.info["databases"]  # TCP addresses (secrets.json may name a Unix socket)
    blank = databases["payments"].removesuffix("/gp_payments") + "/" + control_db
    run = reconcile_cli(platform, secrets, ids, day, database_url=blank)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout.startswith("{"), run.stdout + run.stderr  # an answer, not a crash (also exit 1)
    named = {m["reference"] for m in json.loads(run.stdout)["mismatches"]}
    assert {by_card["reference"], by_ewallet["reference"], withdrawal["reference"]} <= named, run.stdout

