"""Server-to-server postbacks against the affiliate postback simulator on a real loopback port:
signed (the simulator checks the signature with its own code, from the documented format), sent on
registration, first deposit and qualification, received once each (replayed events too), retried
with backoff while the receiver fails or is down, until acknowledged."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from affiliateslib import Affiliates, Money, Receiver, affiliates_app, eventually, receiver, utc

from gameplane.devtools.testing import as_staff

CPA = {"currency": "EUR", "cpa_amount": 10_000, "cpa_min_first_deposit": 2_000, "cpa_min_stakes": 5_000}


@pytest.fixture(scope="module")
async def rec() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


@pytest.fixture(scope="module")
async def aff(module_service_settings: Any, nats_server: Any) -> AsyncIterator[Affiliates]:
    async with affiliates_app(module_service_settings, nats_server.url, utc(2026, 11, 1, 9),
                              postback_interval_seconds=0.1, postback_backoff_seconds=0.05,
                              postback_backoff_max_seconds=0.3) as a:
        yield a


async def _affiliate(aff: Affiliates, rec: Receiver, *, secret_known: bool = True) -> dict[str, Any]:
    a = await aff.create(CPA, postback_url=rec.url)
    await rec.control("PUT", f"affiliates/{a['affiliate_id']}",
                      {"secret": a["postback_secret"] if secret_known else "not-the-right-secret"})
    return a


async def _queue(aff: Affiliates, affiliate_id: str) -> list[dict[str, Any]]:
    r = await aff.http.get("/internal/affiliates/postbacks", params={"affiliate_id": affiliate_id},
                           headers=as_staff(aff.app, "support"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _received(rec: Receiver, affiliate_id: str) -> list[dict[str, Any]]:
    return [p for p in await rec.received() if p["affiliate_id"] == affiliate_id]


async def _referred(aff: Affiliates, affiliate_id: str, ip: str) -> tuple[uuid.UUID, str]:
    code = await aff.link(affiliate_id)
    click = await aff.click_id(code, ip=ip, sub1="spring", sub2="mail")
    return await aff.register(click, aff.clock.now + timedelta(minutes=3)), click


async def test_registration_first_deposit_and_qualification_each_arrive_once_signed(aff: Affiliates,
                                                                                   rec: Receiver) -> None:
    a = await _affiliate(aff, rec)
    player, click = await _referred(aff, a["affiliate_id"], "198.51.100.1")
    m = Money(player)
    deposit = m.deposit(2_000, utc(2026, 11, 1, 10))
    [env] = await aff.emit(deposit)
    await aff.emit(m.bet(5_000, utc(2026, 11, 1, 11)))
    await aff.emit(envelopes=[env], redeliver=True)  # the same event again (a redelivery): nothing new
    await aff.emit(m.deposit(3_000, utc(2026, 11, 2), first=True))  # another "first" deposit: still one postback

    async def all_three() -> list[dict[str, Any]] | None:
        got = await _received(rec, a["affiliate_id"])
        return got if len(got) >= 3 else None
    got = await eventually(all_three, what="three postbacks")
    await asyncio.sleep(1.0)  # long enough for a wrongly repeated postback (the sender passes every 0.1 s)
    got = await _received(rec, a["affiliate_id"])
    assert Counter(p["kind"] for p in got) == {"registration": 1, "first_deposit": 1, "qualification": 1}
    by_kind = {p["kind"]: p for p in got}
    assert {p["click_id"] for p in got} == {click} and {tuple(p["sub_ids"]) for p in got} == {("spring", "mail")}
    assert len({p["player_ref"] for p in got}) == 1 and str(player) not in str(got)
    assert (by_kind["first_deposit"]["amount"], by_kind["first_deposit"]["currency"]) == (2_000, "EUR")
    assert by_kind["qualification"]["amount"] == 10_000
    assert [p for p in await rec.rejected() if p.get("data", {}).get("affiliate_id") == a["affiliate_id"]] == []
    assert {(q["kind"], q["state"], q["attempts"]) for q in await _queue(aff, a["affiliate_id"])} == {
        ("registration", "acked", 1), ("first_deposit", "acked", 1), ("qualification", "acked", 1)}


async def test_a_wrong_signature_is_refused_by_the_receiver_and_retried_until_it_verifies(aff: Affiliates,
                                                                                         rec: Receiver) -> None:
    a = await _affiliate(aff, rec, secret_known=False)  # negative control: the receiver checks for real
    await _referred(aff, a["affiliate_id"], "198.51.100.2")

    async def refused_twice() -> bool:
        q = await _queue(aff, a["affiliate_id"])
        return bool(q) and q[0]["attempts"] >= 2
    await eventually(refused_twice, what="two refused attempts")
    [pending] = await _queue(aff, a["affiliate_id"])
    assert (pending["state"], pending["last_error"]) == ("pending", "HTTP 401")
    assert await _received(rec, a["affiliate_id"]) == []
    rejected = [p for p in await rec.rejected() if p.get("data", {}).get("affiliate_id") == a["affiliate_id"]]
    assert rejected and {p["reason"] for p in rejected} == {"bad signature"}

    await rec.control("PUT", f"affiliates/{a['affiliate_id']}", {"secret": a["postback_secret"]})

    async def acked() -> bool:
        return [q["state"] for q in await _queue(aff, a["affiliate_id"])] == ["acked"]
    await eventually(acked, what="the postback acknowledged")
    assert [p["kind"] for p in await _received(rec, a["affiliate_id"])] == ["registration"]


async def test_a_failing_receiver_gets_the_postback_once_after_retries(aff: Affiliates, rec: Receiver) -> None:
    a = await _affiliate(aff, rec)
    await rec.control("POST", "fail", {"count": 3})
    await _referred(aff, a["affiliate_id"], "198.51.100.3")

    async def acked() -> list[dict[str, Any]] | None:
        q = await _queue(aff, a["affiliate_id"])
        return q if q and q[0]["state"] == "acked" else None
    [done] = await eventually(acked, what="acknowledged after three failures")
    assert done["attempts"] == 4 and done["last_error"] is None
    assert [p["kind"] for p in await _received(rec, a["affiliate_id"])] == ["registration"]


async def test_a_receiver_that_is_down_gets_the_postback_when_it_is_back(aff: Affiliates, rec: Receiver) -> None:
    a = await _affiliate(aff, rec)
    await rec.down()
    try:
        await _referred(aff, a["affiliate_id"], "198.51.100.4")

        async def failing() -> bool:
            q = await _queue(aff, a["affiliate_id"])
            return bool(q) and q[0]["attempts"] >= 2
        await eventually(failing, what="attempts against a receiver that is down")
        [pending] = await _queue(aff, a["affiliate_id"])
        assert pending["state"] == "pending" and "ConnectError" in pending["last_error"]
    finally:
        await rec.up()

    async def acked() -> bool:
        return [q["state"] for q in await _queue(aff, a["affiliate_id"])] == ["acked"]
    await eventually(acked, what="acknowledged once the receiver is back")
    assert [p["kind"] for p in await _received(rec, a["affiliate_id"])] == ["registration"]


async def test_no_postback_is_queued_for_an_affiliate_without_a_postback_url(aff: Affiliates) -> None:
    a = await aff.create(CPA)
    player, _ = await _referred(aff, a["affiliate_id"], "198.51.100.5")
    assert (await aff.attribution(player))["affiliate_id"] == a["affiliate_id"]
    await asyncio.sleep(0.5)
    assert await _queue(aff, a["affiliate_id"]) == []
