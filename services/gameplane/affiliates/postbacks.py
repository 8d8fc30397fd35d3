"""Server-to-server postbacks: queued once per (affiliate, kind, player), signed, sent until a 2xx.

A postback is a row of `postbacks` written in the same transaction as what caused it (an
attribution, a first deposit, a qualification), so none is lost or sent for something that did
not happen. The sender claims due rows (a lease, so replicas do not send the same one at once),
POSTs the stored body with

    X-Gameplane-Timestamp: <unix seconds>
    X-Gameplane-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

and marks the row acked on a 2xx. Anything else (an error status, a refused connection, a
timeout) schedules the next attempt after an exponential backoff with jitter, without end: an
affiliate's receiver that comes back gets every postback, once acknowledged never again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.affiliates import metrics
from gameplane.affiliates.settings import AffiliatesSettings
from gameplane.contracts.affiliates import SIGNATURE_HEADER, TIMESTAMP_HEADER, PostbackBody
from gameplane.kit.app import Runtime
from gameplane.kit.db import utcnow
from gameplane.kit.events import STREAM_NAME

log = logging.getLogger("gameplane.affiliates.postbacks")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def backoff(attempts: int, base: float, cap: float, rand: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones; `rand` in [0, 1) spreads
    retries of many postbacks failing at once over half the delay."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + rand / 2)


async def enqueue(s: AsyncSession, body: PostbackBody, player_id: uuid.UUID) -> bool:
    """Queue a postback (due now) unless this (affiliate, kind, player) has one already. True when queued."""
    row = (await s.execute(text(
        "INSERT INTO postbacks (postback_id, affiliate_id, kind, player_id, body, state, attempts, next_at, "
        "created_at) SELECT :id, :a, :k, :p, :b, 'pending', 0, :now, :now FROM affiliates "
        "WHERE affiliate_id = :a AND postback_url IS NOT NULL "
        "ON CONFLICT (affiliate_id, kind, player_id) DO NOTHING RETURNING postback_id"),
        {"id": body.postback_id, "a": body.affiliate_id, "k": body.kind, "p": player_id,
         "b": body.model_dump_json(), "now": utcnow()})).first()
    return row is not None


_CLAIM = text(
    "UPDATE postbacks p SET next_at = :lease FROM affiliates a WHERE p.postback_id IN ("
    "  SELECT postback_id FROM postbacks WHERE state = 'pending' AND next_at <= :now ORDER BY next_at "
    "  LIMIT :n FOR UPDATE SKIP LOCKED) AND a.affiliate_id = p.affiliate_id "
    "RETURNING p.postback_id, p.kind, p.body, p.attempts, a.postback_url, a.postback_secret")


async def _post(client: httpx.AsyncClient, url: str, secret: str, body: bytes) -> str | None:
    """None on a 2xx, else what went wrong."""
    ts = int(time.time())
    try:
        r = await client.post(url, content=body, headers={"Content-Type": "application/json",
                                                          TIMESTAMP_HEADER: str(ts),
                                                          SIGNATURE_HEADER: signature(secret, ts, body)})
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"


async def send_due(rt: Runtime, client: httpx.AsyncClient, settings: AffiliatesSettings, now: datetime,
                   limit: int = 50) -> int:
    """One pass: send every due postback (up to `limit`); how many were attempted."""
    lease = now + timedelta(seconds=settings.postback_lease_seconds)
    async with rt.database.transaction() as s:
        due = (await s.execute(_CLAIM, {"now": now, "lease": lease, "n": limit})).mappings().all()
    if not due:
        return 0
    results = await asyncio.gather(*(_post(client, r["postback_url"], r["postback_secret"], r["body"].encode())
                                     for r in due))
    after = utcnow()
    async with rt.database.transaction() as s:
        for r, error in zip(due, results, strict=True):
            attempts = int(r["attempts"]) + 1
            if error is None:
                metrics.POSTBACKS.labels(r["kind"], "acked").inc()
                await s.execute(text("UPDATE postbacks SET state = 'acked', attempts = :n, acked_at = :at, "
                                     "next_at = NULL, last_error = NULL WHERE postback_id = :id"),
                                {"n": attempts, "at": after, "id": r["postback_id"]})
            else:
                metrics.POSTBACKS.labels(r["kind"], "failed").inc()
                wait = backoff(attempts, settings.postback_backoff_seconds, settings.postback_backoff_max_seconds,
                               random.random())
                await s.execute(text("UPDATE postbacks SET attempts = :n, next_at = :next, last_error = :e "
                                     "WHERE postback_id = :id"),
                                {"n": attempts, "next": after + timedelta(seconds=wait), "e": error,
                                 "id": r["postback_id"]})
    return len(due)


async def refresh_gauges(rt: Runtime, now: datetime) -> None:
    async with rt.database.session() as s:
        row = (await s.execute(text("SELECT count(*), min(created_at) FROM postbacks WHERE state = 'pending'"))).one()
    metrics.POSTBACK_BACKLOG.set(int(row[0]))
    metrics.POSTBACK_OLDEST.set(max((now - row[1]).total_seconds(), 0.0) if row[1] is not None else 0.0)
    if rt.bus is None or not rt.bus.connected:
        return
    for durable in rt.state.get("durables", ()):
        try:
            info = await rt.bus.js.consumer_info(STREAM_NAME, durable)
        except Exception:  # not created yet, or NATS away for a moment
            continue
        metrics.CONSUMER_PENDING.labels(durable).set(int(info.num_pending or 0) + int(info.num_ack_pending or 0))


def wake(rt: Runtime) -> None:
    event: asyncio.Event | None = rt.state.get("wake")
    if event is not None:
        event.set()


async def run(rt: Runtime, settings: AffiliatesSettings) -> None:
    """The sender: a pass every `postback_interval_seconds`, or at once when woken (new postbacks)."""
    wake_event: asyncio.Event = rt.state["wake"]
    async with httpx.AsyncClient(timeout=settings.postback_timeout_seconds) as client:
        while True:
            try:
                while await send_due(rt, client, settings, utcnow()) > 0:
                    pass
                await refresh_gauges(rt, utcnow())
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away for a moment must not end the sender
                log.exception("postback pass failed")
            wake_event.clear()
            try:
                await asyncio.wait_for(wake_event.wait(), settings.postback_interval_seconds)
            except TimeoutError:
                pass


def body_of(kind: Any, affiliate_id: uuid.UUID, attribution: Any, occurred_at: datetime,
            amount: int | None = None, currency: str | None = None) -> PostbackBody:
    return PostbackBody(postback_id=uuid.uuid4(), kind=kind, affiliate_id=affiliate_id,
                        click_id=attribution["click_id"], sub_ids=list(attribution["sub_ids"]),
                        player_ref=attribution["player_ref"], amount=amount, currency=currency,
                        occurred_at=occurred_at)
