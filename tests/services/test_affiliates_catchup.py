"""Affiliates stopped while the platform plays: the events published meanwhile wait on the stream
(nothing upstream waits for affiliates), and once it runs again it catches up from its durable
consumers: the statement holds every event once, replays included."""

from __future__ import annotations

from typing import Any

from affiliateslib import Money, affiliates_app, eventually, utc

from gameplane.affiliates.settings import AffiliatesSettings
from gameplane.devtools.testing import ManualClock


async def test_a_stopped_service_catches_up_and_its_statement_counts_each_event_once(
        service_settings: Any, nats_server: Any) -> None:
    settings = service_settings(AffiliatesSettings, jurisdiction="none")
    clock = ManualClock(utc(2026, 11, 1, 8))
    async with affiliates_app(service_settings, nats_server.url, clock, settings=settings) as aff:
        a = await aff.create({"currency": "EUR", "revshare": [{"from_ngr": 0, "basis_points": 3000}]})
        code = await aff.link(a["affiliate_id"])
        player = await aff.register(await aff.click_id(code, ip="203.0.113.99"), utc(2026, 11, 1, 9))
        assert (await aff.attribution(player))["affiliate_id"] == a["affiliate_id"]
        m = Money(player)
        await aff.emit(m.deposit(50_000, utc(2026, 11, 1, 10)), m.bet(10_000, utc(2026, 11, 1, 11)))

        async def first_bet() -> bool:
            return bool((await aff.statement(a["affiliate_id"], "2026-11"))["stakes"] == 10_000)
        await eventually(first_bet, what="the bet before the stop")
        emit = aff.emit

    # affiliates is down: play goes on and its events wait on the stream
    bet = m.bet(30_000, utc(2026, 11, 2))
    envs = await emit(bet, m.win(12_000, utc(2026, 11, 2)), m.fee(300, utc(2026, 11, 2)))
    await emit(envelopes=envs, redeliver=True)  # and the same events delivered again

    async with affiliates_app(service_settings, nats_server.url, clock, settings=settings) as aff:
        # stakes 10 000 + 30 000, wins 12 000: GGR 28 000; fees 300; NGR 27 700; 30 % = 8 310
        async def caught_up() -> dict[str, Any] | None:
            st = await aff.statement(a["affiliate_id"], "2026-11")
            return st if st["stakes"] == 40_000 and st["wins"] == 12_000 and st["payment_fees"] == 300 else None
        st = await eventually(caught_up, what="caught up after the restart")
        assert (st["ggr"], st["ngr"], st["revshare"], st["commission"]) == (28_000, 27_700, 8_310, 8_310)

        # the lag the alert watches is exported per durable consumer, and is nothing once caught up
        async def lag_zero() -> bool:
            text = (await aff.http.get("/metrics")).text
            line = 'gameplane_affiliates_consumer_pending{durable="affiliates-wallet_bet_placed"}'
            return any(ln.startswith(line) and float(ln.split()[-1]) == 0.0 for ln in text.splitlines())
        await eventually(lag_zero, what="the consumer lag gauge at 0")
