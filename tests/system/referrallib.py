"""A referred player's books on a running `gameplane up`: an affiliate with a tracking link made
through the back office, the click a browser makes through the gateway, and the three places the
player's money shows — the wallet's ledger (straight from its database), analytics' figures for the
affiliate and the affiliate's statement — read the way finance reads them."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from journeylib import wait_for

from gameplane.devtools.ledgerfigures import LedgerFigures, ledger_figures
from gameplane.kit.staff import STAFF_HEADER, issue_staff_token

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


@dataclass
class BackOffice:
    """Service token of the back office plus a staff token, as the back office sends them."""

    platform: Any
    staff_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)

    def headers(self, service: str, *roles: str) -> dict[str, str]:
        ids = self.platform.identities()
        token = issue_staff_token(ids.keys["players"], self.staff_id, "referral-staff", list(roles))  # type: ignore[arg-type]
        return {**ids.bearer("backoffice", service), STAFF_HEADER: token}

    def client(self, service: str, *roles: str) -> httpx.Client:
        return httpx.Client(base_url=self.platform.url(service), headers=self.headers(service, *roles), timeout=30)


def make_referrer(affiliates: httpx.Client, deal: dict[str, Any], postback_url: str | None = None) -> dict[str, Any]:
    """An affiliate with one tracking link; the answer carries `link_code` besides the affiliate."""
    body: dict[str, Any] = {"name": f"referrer-{uuid.uuid4().hex[:6]}", "deal": deal}
    if postback_url:
        body["postback_url"] = postback_url
    made = affiliates.post("/internal/affiliates/affiliates", json=body)
    assert made.status_code == 201, made.text
    link = affiliates.post(f"/internal/affiliates/affiliates/{made.json()['affiliate_id']}/links",
                           json={"landing_url": "https://casino.example/welcome?lang=en"})
    assert link.status_code == 201, link.text
    return {**made.json(), "link_code": link.json()["code"]}


def click(browser: httpx.Client, gateway_url: str, code: str, **subs: str) -> str:
    """Follow the tracking link through the gateway (no token); the click id the landing page gets."""
    r = browser.get(f"{gateway_url}/v1/affiliates/track/{code}", params=subs, headers={"User-Agent": BROWSER_UA})
    assert r.status_code == 302, r.text
    landing = httpx.URL(r.headers["location"])
    assert landing.host == "casino.example" and landing.params["lang"] == "en"
    return landing.params["click_id"]


def ledger(platform: Any, players: list[str], day: date) -> LedgerFigures:
    figures = asyncio.run(ledger_figures(platform.info["databases"]["wallet"], day, day,
                                         players=[uuid.UUID(p) for p in players]))
    return figures.get((day, "EUR"), LedgerFigures())


def analytics_row(analytics: httpx.Client, day: date, affiliate_id: str, *, ready: Any) -> dict[str, Any]:
    """The affiliate's figures of the day in EUR, once `ready(row)` says analytics has caught up."""
    def row() -> dict[str, Any] | None:
        r = analytics.get("/internal/analytics/kpis", params={
            "from": str(day), "to": str(day), "currency": "EUR", "affiliate": affiliate_id, "group": "range"})
        assert r.status_code == 200, r.text
        rows = r.json()["rows"]
        return rows[0] if rows and ready(rows[0]) else None

    return dict(wait_for("analytics caught up", row, timeout=90))


def statement(affiliates: httpx.Client, affiliate_id: str, day: date, *, ready: Any) -> dict[str, Any]:
    """The affiliate's open statement of the day's month, once `ready(statement)`."""
    def st() -> dict[str, Any] | None:
        r = affiliates.get(f"/internal/affiliates/affiliates/{affiliate_id}/statements/{day:%Y-%m}")
        assert r.status_code == 200, r.text
        return r.json() if ready(r.json()) else None

    return dict(wait_for("statement caught up", st, timeout=90))


def money(figures: LedgerFigures | dict[str, Any]) -> tuple[int, ...]:
    """The money figures the ledger and analytics both carry, in one order."""
    f = figures if isinstance(figures, dict) else dataclasses.asdict(figures)
    return tuple(int(f[k]) for k in ("stakes", "wins", "bonus_stakes", "bonus_wins", "bonus_converted",
                                     "payment_fees", "deposits", "withdrawals"))
