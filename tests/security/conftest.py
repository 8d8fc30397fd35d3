"""Security tier: the platform's trust boundaries attacked with real services (real Postgres and
NATS, the services' own apps and their fast routes), as a caller inside or outside would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gameplane.devtools.infra import EmbeddedPostgres, NatsServer
from gameplane.devtools.testing import running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/security/" in str(item.path):
            item.add_marker(pytest.mark.security)


def _build(name: str, pg: EmbeddedPostgres, nats_url: str) -> FastAPI:
    db = f"sec_{name}_{uuid.uuid4().hex[:10]}"
    pg.create_database(db)
    common: dict[str, Any] = {"database_url": pg.dsn(db), "nats_url": nats_url, "log_level": "WARNING"}
    if name == "wallet":
        from gameplane.wallet.app import build_app
        from gameplane.wallet.settings import WalletSettings
        return build_app(WalletSettings(**common))
    if name == "players":
        from gameplane.players.app import build_app as players_app
        from gameplane.players.settings import PlayersSettings
        return players_app(PlayersSettings(**common, argon2_time_cost=1, argon2_memory_kib=8192,
                                           argon2_parallelism=1))
    if name == "games":
        from gameplane.games.app import build_app as games_app
        from gameplane.games.settings import GamesSettings
        return games_app(GamesSettings(**common))
    if name == "sessions":
        from gameplane.sessions.app import build_app as sessions_app
        from gameplane.sessions.settings import SessionsSettings
        return sessions_app(SessionsSettings(**common))
    if name == "risk":
        from gameplane.risk.app import build_app as risk_app
        from gameplane.risk.settings import RiskSettings
        return risk_app(RiskSettings(**common))
    if name == "payments":
        from gameplane.payments.app import build_app as payments_app
        from gameplane.payments.settings import PaymentsSettings
        return payments_app(PaymentsSettings(**common))
    if name == "affiliates":
        from gameplane.affiliates.app import build_app as affiliates_app
        from gameplane.affiliates.settings import AffiliatesSettings
        return affiliates_app(AffiliatesSettings(**common))
    if name == "analytics":
        from gameplane.analytics.app import build_app as analytics_app
        from gameplane.analytics.settings import AnalyticsSettings
        return analytics_app(AnalyticsSettings(**common))
    raise LookupError(name)


@pytest.fixture(scope="module")
async def services(pg: EmbeddedPostgres,
                   nats_server: NatsServer) -> AsyncIterator[dict[str, tuple[FastAPI, httpx.AsyncClient]]]:
    """Each built service with a database, running (lifespan: migrations, NATS), with a client."""
    from contextlib import AsyncExitStack

    out: dict[str, tuple[FastAPI, httpx.AsyncClient]] = {}
    async with AsyncExitStack() as stack:
        for name in ("wallet", "players", "games", "sessions", "risk", "payments", "affiliates", "analytics"):
            app = _build(name, pg, nats_server.url)
            out[name] = (app, await stack.enter_async_context(running(app)))
        yield out
