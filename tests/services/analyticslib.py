"""Helpers of the analytics tests: the service on a NATS of its own (the session stream holds other
tests' wallet events, which would land in these facts), events put on the stream as their producers'
outbox relays put them, and the KPI API as the back office calls it."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import nats
from fastapi import FastAPI

from gameplane.devtools.testing import as_staff
from gameplane.kit.events import Envelope

PROBLEM = "https://gameplane.io/problems/"


async def publish(nats_url: str, *envs: Envelope, again: bool = False) -> None:
    """On the stream with the event id as Nats-Msg-Id, as the relay does. `again`: a redelivery the
    stream's own de-duplication window does not catch (a relay that re-sent after its window), so
    the consumer sees the same event id a second time."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for env in envs:
            msg_id = f"{env.id}:again:{uuid.uuid4().hex[:6]}" if again else str(env.id)
            await js.publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.close()


async def kpis(app: FastAPI, http: httpx.AsyncClient, day_from: date, day_to: date, **params: Any) -> Any:
    r = await http.get("/internal/analytics/kpis", headers=as_staff(app, "finance"),
                       params={"from": day_from.isoformat(), "to": day_to.isoformat(), **params})
    assert r.status_code == 200, r.text
    return r.json() if params.get("format") != "csv" else r


def by_day(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["day"], row["currency"]): row for row in report["rows"]}


def problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["type"] == PROBLEM + slug, body
    return body
