"""players service, responsible-gaming side, against real Postgres and NATS: limits (decrease at
once, increase after the cooling-off, moved through with an injected clock), the sweep, time-outs,
self-exclusion blocking login-to-play, reality checks, eligibility, and the published snapshots."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from gameplane.devtools.testing import ManualClock as Clock
from gameplane.devtools.testing import as_service, running, stored_events
from gameplane.kit.auth import verify_player_token
from gameplane.players.app import build_app
from gameplane.players.safeguards import sweep
from gameplane.players.settings import PlayersSettings

PROBLEM = "https://gameplane.io/problems/"
PASSWORD = "correct horse battery staple"


class Harness:
    def __init__(self, app: Any, client: httpx.AsyncClient, clock: Clock, nats_url: str) -> None:
        self.app, self.client, self.clock, self.nats_url = app, client, clock, nats_url

    def svc(self, player_id: str | None = None, caller: str = "gateway") -> dict[str, str]:
        return as_service(self.app, caller, uuid.UUID(player_id) if player_id else None)

    async def register(self, **extra: Any) -> dict[str, Any]:
        body = {"email": f"rg-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD,
                "date_of_birth": "1985-06-15", "country": "GB", "currency": "GBP", **extra}
        r = await self.client.post("/v1/players/register", json=body, headers=self.svc())
        assert r.status_code == 201, r.text
        return r.json()

    async def protection(self, pid: str) -> dict[str, Any]:
        r = await self.client.get("/v1/players/me/protection", headers=self.svc(pid))
        assert r.status_code == 200, r.text
        return r.json()

    async def set_limit(self, pid: str, kind: str, period: str, value: int) -> httpx.Response:
        return await self.client.put("/v1/players/me/limits", headers=self.svc(pid),
                                     json={"kind": kind, "period": period, "value": value})

    async def eligibility(self, pid: str) -> dict[str, Any]:
        r = await self.client.get(f"/internal/players/{pid}/eligibility", headers=self.svc(caller="sessions"))
        assert r.status_code == 200, r.text
        return r.json()


def build(settings: PlayersSettings, clock: Clock) -> Any:
    return build_app(settings, clock=clock)


FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}


@pytest.fixture(scope="module")
async def rg(module_service_settings, nats_server):
    clock = Clock()
    settings = module_service_settings(PlayersSettings, jurisdiction="ukgc", sweep_interval_seconds=3600, **FAST_HASH)
    app = build(settings, clock)
    async with running(app) as client:
        yield Harness(app, client, clock, nats_server.url)


def problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == PROBLEM + slug, body
    return body


def limit(snapshot: dict[str, Any], kind: str, period: str) -> dict[str, Any] | None:
    return next((x for x in snapshot["limits"] if (x["kind"], x["period"]) == (kind, period)), None)


async def snapshots(nats_url: str, player_id: str, expect: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Every players.protection_changed snapshot of `player_id` in the stream, in stream order."""
    envs = await stored_events(nats_url, "gameplane.players.protection_changed", {"player_id": player_id},
                               expect, timeout)
    return [e["data"] for e in envs]


# limits ---------------------------------------------------------------------------------------


async def test_deposit_limits_prompted_at_registration_apply_at_once(rg):
    p = await rg.register(deposit_limits={"day": 5_000, "month": 50_000})
    snap = await rg.protection(p["id"])
    assert snap["revision"] == 1 and snap["currency"] == "GBP" and snap["jurisdiction"] == "ukgc"
    assert limit(snap, "deposit", "day") == {"kind": "deposit", "period": "day", "value": 5_000,
                                             "pending_value": None, "pending_removal": False,
                                             "pending_effective_at": None}
    assert limit(snap, "deposit", "month")["value"] == 50_000
    assert limit(snap, "deposit", "week") is None


async def test_decrease_is_immediate_and_increase_waits_the_cooling_off(rg):
    p = await rg.register()
    pid = p["id"]
    assert limit((await rg.set_limit(pid, "deposit", "day", 5_000)).json(), "deposit", "day")["value"] == 5_000
    assert limit((await rg.set_limit(pid, "deposit", "day", 2_000)).json(), "deposit", "day")["value"] == 2_000

    asked_at = rg.clock.now
    snap = (await rg.set_limit(pid, "deposit", "day", 9_000)).json()
    lim = limit(snap, "deposit", "day")
    assert lim["value"] == 2_000 and lim["pending_value"] == 9_000
    assert datetime.fromisoformat(lim["pending_effective_at"]) == asked_at + timedelta(hours=24)
    assert snap["cooling_off_seconds"] == 24 * 3600

    rg.clock.advance(hours=23, minutes=59)
    assert limit(await rg.protection(pid), "deposit", "day")["value"] == 2_000
    rg.clock.advance(minutes=2)
    # applied lazily on read, without waiting for the sweep
    after = await rg.protection(pid)
    assert limit(after, "deposit", "day") == {"kind": "deposit", "period": "day", "value": 9_000,
                                              "pending_value": None, "pending_removal": False,
                                              "pending_effective_at": None}

    published = await snapshots(rg.nats_url, pid, expect=5)
    assert [s["revision"] for s in published] == [1, 2, 3, 4, 5]
    assert [s["reason"] for s in published] == ["registered", "limit-set", "limit-decreased",
                                                "limit-increase-pending", "pending-limit-applied"]
    assert published[3]["limits"][0]["pending_value"] == 9_000
    assert published[-1]["limits"] == [{"kind": "deposit", "period": "day", "value": 9_000,
                                        "pending_value": None, "pending_effective_at": None}]
    assert published[-1]["revision"] == after["revision"]


async def test_loss_and_session_limits(rg):
    p = await rg.register()
    snap = (await rg.set_limit(p["id"], "loss", "week", 10_000)).json()
    assert limit(snap, "loss", "week")["value"] == 10_000
    snap = (await rg.set_limit(p["id"], "session", "session", 60)).json()
    assert limit(snap, "session", "session")["value"] == 60
    problem(await rg.set_limit(p["id"], "session", "day", 60), 422, "invalid-limit")
    problem(await rg.set_limit(p["id"], "deposit", "day", 0), 422, "validation-error")
    r = await rg.client.put("/v1/players/me/limits", headers=rg.svc(p["id"]),
                            json={"kind": "deposit", "period": "day", "value": 10.5})
    problem(r, 422, "validation-error")


async def test_removal_waits_and_the_sweep_applies_and_publishes_it(rg):
    p = await rg.register()
    pid = p["id"]
    await rg.set_limit(pid, "loss", "month", 30_000)
    r = await rg.client.delete("/v1/players/me/limits/loss/month", headers=rg.svc(pid))
    lim = limit(r.json(), "loss", "month")
    assert lim["value"] == 30_000 and lim["pending_removal"] is True and lim["pending_value"] is None

    ctx = rg.app.state.players
    await sweep(ctx)
    assert limit(await rg.protection(pid), "loss", "month")["value"] == 30_000  # not yet
    rg.clock.advance(hours=24, seconds=1)
    assert await sweep(ctx) >= 1
    assert await sweep(ctx) == 0  # nothing left to apply
    # the internal view (for the back office) shows it gone too
    r = await rg.client.get(f"/internal/players/{pid}/protection", headers=rg.svc(caller="backoffice"))
    assert limit(r.json(), "loss", "month") is None
    published = await snapshots(rg.nats_url, pid, expect=4)
    assert published[-1]["reason"] == "pending-limit-applied" and published[-1]["limits"] == []
    assert published[-2]["limits"][0]["pending_effective_at"] is not None
    assert published[-2]["limits"][0]["pending_value"] is None


# time-out and self-exclusion ------------------------------------------------------------------


async def test_self_exclusion_blocks_login_to_play_and_cannot_be_lifted_early(rg):
    p = await rg.register()
    pid = p["id"]
    login = {"email": p["email"], "password": PASSWORD}
    before = (await rg.client.post("/v1/players/login", json=login, headers=rg.svc())).json()
    assert before["play"] is True
    assert (await rg.eligibility(pid))["can_play"] is True

    r = await rg.client.post("/v1/players/me/self-exclusion", json={"months": 12}, headers=rg.svc(pid))
    assert r.status_code == 200, r.text
    until = datetime.fromisoformat(r.json()["self_excluded_until"])
    assert until > rg.clock.now + timedelta(days=364)

    elig = await rg.eligibility(pid)
    assert (elig["can_play"], elig["can_deposit"]) == (False, False)
    assert "self-excluded" in elig["reasons"]

    # still able to log in (to withdraw), but the token forbids play
    r = await rg.client.post("/v1/players/login", json=login, headers=rg.svc())
    assert r.status_code == 200 and r.json()["play"] is False
    keys = rg.app.state.runtime.trusted_keys
    assert verify_player_token(keys, r.json()["access_token"])["play"] is False
    # a refresh token from before the exclusion does not bring play back
    refreshed = await rg.client.post("/v1/players/token/refresh", json={"refresh_token": before["refresh_token"]},
                                     headers=rg.svc())
    assert refreshed.json()["play"] is False

    lifted = problem(await rg.client.delete("/v1/players/me/self-exclusion", headers=rg.svc(pid)),
                     409, "self-exclusion-cannot-be-lifted")
    assert datetime.fromisoformat(lifted["until"]) == until
    rg.clock.advance(days=30)
    problem(await rg.client.post("/v1/players/me/self-exclusion", json={"months": 6}, headers=rg.svc(pid)),
            409, "self-exclusion-cannot-be-shortened")
    problem(await rg.client.post("/v1/players/me/timeout", json={"days": 1}, headers=rg.svc(pid)),
            409, "already-self-excluded")
    assert (await rg.eligibility(pid))["can_play"] is False

    rg.clock.now = until
    assert (await rg.eligibility(pid))["can_play"] is True

    excluded = await rg.client.get("/v1/players/me/protection", headers=rg.svc(pid))
    assert datetime.fromisoformat(excluded.json()["self_excluded_until"]) == until


async def test_self_exclusion_events(rg):
    p = await rg.register()
    r = await rg.client.post("/v1/players/me/self-exclusion", json={"months": 12}, headers=rg.svc(p["id"]))
    until = r.json()["self_excluded_until"]
    nc = await nats.connect(rg.nats_url)
    try:
        sub = await nc.jetstream().subscribe("gameplane.players.self_excluded", ordered_consumer=True,
                                             config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        seen = None
        for _ in range(200):
            data = json.loads((await sub.next_msg(timeout=10)).data)["data"]
            if data["player_id"] == p["id"]:
                seen = data
                break
        assert seen is not None
        assert datetime.fromisoformat(seen["until"]) == datetime.fromisoformat(until)
    finally:
        await nc.close()
    last = (await snapshots(rg.nats_url, p["id"], expect=2))[-1]
    assert last["reason"] == "self-excluded" and last["self_excluded_until"] is not None


@pytest.mark.parametrize("months", [0, 5, 61])
async def test_self_exclusion_length_is_bounded(rg, months):
    p = await rg.register()
    r = await rg.client.post("/v1/players/me/self-exclusion", json={"months": months}, headers=rg.svc(p["id"]))
    assert r.status_code == 422


async def test_timeout_blocks_play_until_it_ends(rg):
    p = await rg.register()
    pid = p["id"]
    r = await rg.client.post("/v1/players/me/timeout", json={"days": 1}, headers=rg.svc(pid))
    assert r.status_code == 200, r.text
    elig = await rg.eligibility(pid)
    assert elig["can_play"] is False and elig["reasons"] == ["timed-out", "kyc-not-verified"]
    problem(await rg.client.delete("/v1/players/me/timeout", headers=rg.svc(pid)), 409, "timeout-cannot-be-lifted")
    problem(await rg.client.post("/v1/players/me/timeout", json={"days": 43}, headers=rg.svc(pid)),
            422, "invalid-timeout")
    # extending is fine: a stronger protection applies at once
    r = await rg.client.post("/v1/players/me/timeout", json={"days": 7}, headers=rg.svc(pid))
    assert r.status_code == 200
    published = await snapshots(rg.nats_url, pid, expect=3)
    assert [x["reason"] for x in published] == ["registered", "timed-out", "timed-out"]
    assert datetime.fromisoformat(published[-1]["timeout_until"]) == rg.clock.now + timedelta(days=7)
    rg.clock.advance(days=7, seconds=1)
    assert (await rg.eligibility(pid))["can_play"] is True
    problem(await rg.client.delete("/v1/players/me/timeout", headers=rg.svc(pid)), 422, "no-active-timeout")


# reality check and eligibility ----------------------------------------------------------------


async def test_reality_check_interval(rg):
    p = await rg.register()
    r = await rg.client.put("/v1/players/me/reality-check", json={"minutes": 30}, headers=rg.svc(p["id"]))
    assert r.json()["reality_check_minutes"] == 30
    problem(await rg.client.put("/v1/players/me/reality-check", json={"minutes": 17}, headers=rg.svc(p["id"])),
            422, "invalid-reality-check")
    r = await rg.client.put("/v1/players/me/reality-check", json={"minutes": None}, headers=rg.svc(p["id"]))
    assert r.json()["reality_check_minutes"] is None  # optional under ukgc


async def test_eligibility_is_internal_and_knows_only_real_players(rg):
    problem(await rg.client.get(f"/internal/players/{uuid.uuid4()}/eligibility"), 401, "unauthenticated")
    problem(await rg.client.get(f"/internal/players/{uuid.uuid4()}/eligibility", headers=rg.svc(caller="sessions")),
            404, "player-not-found")
    p = await rg.register()
    summary = (await rg.client.get(f"/internal/players/{p['id']}", headers=rg.svc(caller="sessions"))).json()
    assert summary["currency"] == "GBP" and summary["kyc_state"] == "unverified"


async def test_mga_profile_makes_reality_checks_mandatory(service_settings):
    settings = service_settings(PlayersSettings, jurisdiction="mga", **FAST_HASH)
    app = build(settings, Clock())
    async with running(app) as client:
        h = Harness(app, client, Clock(), settings.nats_url or "")
        p = await h.register()
        snap = await h.protection(p["id"])
        assert snap["jurisdiction"] == "mga" and snap["reality_check_minutes"] == 60
        r = await client.put("/v1/players/me/reality-check", json={"minutes": None}, headers=h.svc(p["id"]))
        problem(r, 422, "reality-check-required")
