"""sessions on real Postgres and NATS, with games and wallet: launch rules, protection events,
expiry, reality checks, and the token lookup games relies on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gameplane.devtools.inprocess import LocalPlatform, announce_player, launch, local_platform, new_player
from gameplane.devtools.testing import stored_events

SECRET = "sessions-service-test-provider-secret"


@pytest.fixture(scope="module")
async def platform(pg: Any, nats_server: Any) -> AsyncIterator[LocalPlatform]:
    dbs = {}
    for name in ("wallet", "sessions", "games"):
        db = f"sessions_api_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    async with local_platform(dbs, nats_server.url, provider_secret=SECRET,
                              sessions_overrides={"sweep_interval_seconds": 0.3}) as p:
        p.extras["nats"] = nats_server.url
        yield p


@pytest.fixture
async def sessions(platform: LocalPlatform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.urls["sessions"], timeout=10) as http:
        yield http


def runtime(platform: LocalPlatform) -> Any:
    return platform.apps["sessions"].state.runtime


async def published(platform: LocalPlatform, subject: str, session_id: str, expect: int = 1) -> list[dict[str, Any]]:
    """The data of the events on `subject` about this session that JetStream stored, in order."""
    found = await stored_events(platform.extras["nats"], subject, {"session_id": session_id}, expect)
    return [e["data"] for e in found]


async def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_launch_creates_a_session_games_can_resolve(platform: LocalPlatform,
                                                          sessions: httpx.AsyncClient) -> None:
    player = await new_player(platform, platform.extras["nats"], 0)
    started = await launch(platform, player)
    assert started["status"] == "active" and started["currency"] == "EUR" and started["provider"] == "rgs"
    assert started["launch_url"] is None  # no rgs endpoint in this platform
    expires = datetime.fromisoformat(started["expires_at"]) - datetime.fromisoformat(started["started_at"])
    assert expires == timedelta(hours=4)
    r = await sessions.get(f"/internal/sessions/{started['token']}")
    assert r.status_code == 401
    r = await sessions.get(f"/internal/sessions/{started['token']}", headers=platform.headers("sessions", "games"))
    assert r.json()["player_id"] == str(player) and r.json()["session_id"] == started["session_id"]
    missing = await sessions.get("/internal/sessions/nope", headers=platform.headers("sessions", "games"))
    assert missing.status_code == 404 and missing.json()["type"].endswith("/session-not-found")
    mine = await sessions.get("/v1/sessions", headers=platform.headers("sessions", player_id=player))
    assert [s["session_id"] for s in mine.json()] == [started["session_id"]]
    other = await sessions.get(f"/v1/sessions/{started['session_id']}",
                               headers=platform.headers("sessions", player_id=uuid.uuid4()))
    assert other.status_code == 404
    events = await published(platform, "gameplane.sessions.started", started["session_id"])
    assert events and events[0]["player_id"] == str(player)


async def test_launch_refusals(platform: LocalPlatform, sessions: httpx.AsyncClient) -> None:
    nats_url = platform.extras["nats"]
    unknown_game = await sessions.post("/v1/sessions", json={"game_id": "nope"},
                                       headers=platform.headers("sessions", player_id=uuid.uuid4()))
    assert unknown_game.status_code == 404 and unknown_game.json()["type"].endswith("/game-not-found")
    # the id of the catalogue's provider listing (GET /internal/games/providers) is no game either
    # (found by the fuzzer: it was a 500)
    for game_id in ("providers", "fruit\x00fives"):
        named = await sessions.post("/v1/sessions", json={"game_id": game_id},
                                    headers=platform.headers("sessions", player_id=uuid.uuid4()))
        assert named.status_code == 404 and named.json()["type"].endswith("/game-not-found"), named.text
    # No protection state and no players service to ask: refuse rather than let an excluded player in.
    unknown_player = await sessions.post("/v1/sessions", json={"game_id": "fruit-fives"},
                                         headers=platform.headers("sessions", player_id=uuid.uuid4()))
    assert unknown_player.status_code == 503
    no_player = await sessions.post("/v1/sessions", json={"game_id": "fruit-fives"},
                                    headers=platform.headers("sessions"))
    assert no_player.status_code == 401

    excluded = uuid.uuid4()
    await announce_player(nats_url, excluded, self_excluded_until=datetime.now(UTC) + timedelta(days=183))
    timed_out = uuid.uuid4()
    await announce_player(nats_url, timed_out, timeout_until=datetime.now(UTC) + timedelta(days=1))
    for player, slug in ((excluded, "self-excluded"), (timed_out, "timed-out")):
        async def refused(player: uuid.UUID = player) -> httpx.Response | None:
            r = await sessions.post("/v1/sessions", json={"game_id": "fruit-fives"},
                                    headers=platform.headers("sessions", player_id=player))
            return r if r.status_code == 403 else None
        r = await wait_for(refused)
        assert r is not None and r.json()["type"].endswith(f"/{slug}")

    gbp = uuid.uuid4()
    await announce_player(nats_url, gbp, currency="JPY")
    async def wrong_currency() -> httpx.Response | None:
        r = await sessions.post("/v1/sessions", json={"game_id": "fruit-fives"},
                                headers=platform.headers("sessions", player_id=gbp))
        return r if r.status_code == 422 else None
    r = await wait_for(wrong_currency)
    assert r is not None and r.json()["type"].endswith("/currency-not-supported")


async def test_self_exclusion_ends_open_sessions(platform: LocalPlatform, sessions: httpx.AsyncClient) -> None:
    from gameplane.contracts.players import SelfExcluded
    from gameplane.kit.events import Envelope

    player = await new_player(platform, platform.extras["nats"], 0)
    a, b = await launch(platform, player), await launch(platform, player)
    import nats

    nc = await nats.connect(platform.extras["nats"])
    env = Envelope.wrap(SelfExcluded(player_id=player, until=datetime.now(UTC) + timedelta(days=183)), "players")
    await nc.jetstream().publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": str(env.id)})
    await nc.close()

    async def both_ended() -> bool:
        views = [(await sessions.get(f"/internal/sessions/{s['token']}",
                                     headers=platform.headers("sessions", "games"))).json() for s in (a, b)]
        return all(v["status"] == "ended" and v["end_reason"] == "self_excluded" for v in views)

    assert await wait_for(both_ended)
    ended = await published(platform, "gameplane.sessions.ended", a["session_id"])
    assert ended and ended[0]["reason"] == "self_excluded"
    again = await sessions.post("/v1/sessions", json={"game_id": "fruit-fives"},
                                headers=platform.headers("sessions", player_id=player))
    assert again.status_code == 403 and again.json()["type"].endswith("/self-excluded")


async def test_sessions_expire_and_the_session_limit_caps_them(platform: LocalPlatform,
                                                               sessions: httpx.AsyncClient) -> None:
    from gameplane.sessions import sweeper

    player = await new_player(platform, platform.extras["nats"], 0)
    short = await launch(platform, player, ttl_seconds=90)
    started, expires = (datetime.fromisoformat(short[k]) for k in ("started_at", "expires_at"))
    db = runtime(platform).database
    assert expires - started == timedelta(seconds=90)
    await sweeper.sweep_once(db, expires - timedelta(seconds=1))  # not yet

    async def status() -> tuple[str, str | None]:
        r = await sessions.get(f"/internal/sessions/{short['token']}", headers=platform.headers("sessions", "games"))
        return r.json()["status"], r.json()["end_reason"]

    assert await status() == ("active", None)
    # a sweep that runs 40 s late ends the session at its expiry, not when it noticed
    await sweeper.sweep_once(db, expires + timedelta(seconds=40))
    assert await status() == ("ended", "expired")
    ended = await published(platform, "gameplane.sessions.ended", short["session_id"])
    assert ended[0]["duration_seconds"] == 90
    assert datetime.fromisoformat(ended[0]["ended_at"]) == expires

    limited = uuid.uuid4()
    await announce_player(platform.extras["nats"], limited, limits=[
        {"kind": "session", "period": "session", "value": 30}])

    async def capped() -> dict[str, Any] | None:
        r = await sessions.post("/v1/sessions", json={"game_id": "fruit-fives"},
                                headers=platform.headers("sessions", player_id=limited))
        if r.status_code != 201:
            return None
        body: dict[str, Any] = r.json()
        span = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["started_at"])
        return body if span <= timedelta(minutes=30) else None

    body = await wait_for(capped)
    assert body is not None


async def test_reality_checks_follow_the_players_interval(platform: LocalPlatform) -> None:
    from gameplane.sessions import sweeper

    player = uuid.uuid4()
    await announce_player(platform.extras["nats"], player, reality_check_minutes=15)

    async def launched() -> dict[str, Any] | None:
        started = await launch(platform, player)
        return started if started["reality_check_minutes"] == 15 else None

    started = await wait_for(launched)
    assert started is not None
    t0 = datetime.fromisoformat(started["started_at"])
    db = runtime(platform).database
    assert await sweeper.sweep_once(db, t0 + timedelta(minutes=14)) == (0, 0)
    # A sweep that runs late sends the one check that is due, not one per missed minute.
    _, sent = await sweeper.sweep_once(db, t0 + timedelta(minutes=31))
    assert sent >= 1
    checks = await published(platform, "gameplane.sessions.reality_check", started["session_id"])
    assert [c["sequence"] for c in checks] == [1]
    assert checks[0]["interval_minutes"] == 15 and checks[0]["elapsed_seconds"] >= 31 * 60
    await sweeper.sweep_once(db, t0 + timedelta(minutes=31))
    checks = await published(platform, "gameplane.sessions.reality_check", started["session_id"], expect=2)
    assert [c["sequence"] for c in checks] == [1, 2]
