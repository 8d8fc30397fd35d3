"""The games service: catalog, provider registry and the seamless-wallet API providers call."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import FastAPI

from gameplane.games import catalog, records
from gameplane.games.aggregator import AggregatorAdapter
from gameplane.games.api import Adapter, fast_routes, internal, providers, public
from gameplane.games.canonical import CanonicalAdapter
from gameplane.games.seamless import Seamless
from gameplane.games.settings import GamesSettings
from gameplane.kit import fastroutes, periodic
from gameplane.kit.app import Runtime, create_app

log = logging.getLogger("gameplane.games")


def adapters(settings: GamesSettings) -> dict[str, Adapter]:
    out: dict[str, Adapter] = {}
    window = timedelta(seconds=settings.clock_skew_seconds)
    for name, cfg in settings.providers.items():
        if cfg.dialect == "canonical":
            assert cfg.secret is not None
            out[name] = CanonicalAdapter(name, cfg.secret, window)
        else:
            assert cfg.public_key_pem is not None
            out[name] = AggregatorAdapter(name, cfg.public_key_pem, window)
    return out


async def prune_requests(rt: Runtime) -> None:
    """Request-id records matter only while a signed request can still be replayed (twice the
    clock-skew window); every replica prunes, the deletes are idempotent."""
    window = rt.settings.replay_retention_seconds  # type: ignore[attr-defined]
    deleted = await records.prune_requests(rt.database.pool, window)
    if deleted:
        log.info("pruned %d request-id records older than %d s", deleted, window)


REPLAY_PRUNE = periodic.Job("replay-prune", lambda s: s.replay_prune_interval_seconds, prune_requests, at_start=True)
START_JOBS, STOP_JOBS = periodic.schedule(REPLAY_PRUNE)


def build_app(settings: GamesSettings | None = None) -> FastAPI:
    settings = settings or GamesSettings()

    async def start(rt: Runtime) -> None:
        assert settings.database_url, "games needs GP_GAMES_DATABASE_URL"
        rt.state["seamless"] = Seamless(rt)
        if not settings.providers:
            log.warning("no game provider is configured (GP_GAMES_PROVIDERS): no provider call can move money")
        if settings.seed_catalog:
            added = await catalog.seed(rt.database, providers=set(settings.providers))
            if added:
                log.info("catalog seeded with %d bundled games", added)

    async def stop(rt: Runtime) -> None:
        for name in ("wallet_client", "provider_http"):
            client = rt.state.pop(name, None)
            if client is not None:
                await client.aclose()

    runtime = Runtime("games", settings, migrations="gameplane.games", hot_pool=True,
                      on_start=[start, START_JOBS], on_stop=[STOP_JOBS, stop])
    runtime.state["adapters"] = adapters(settings)
    app = create_app(runtime, [public, internal, providers], title="gameplane games",
                     app_class=fastroutes.FastRoutesApp,
                     description="Game catalog, provider registry and the seamless-wallet provider API.")
    fastroutes.install(app, runtime, fast_routes(runtime))
    return app
