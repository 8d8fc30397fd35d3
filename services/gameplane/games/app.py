"""The games service: catalog, provider registry and the seamless-wallet API providers call."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import FastAPI

from gameplane.games import catalog
from gameplane.games.aggregator import AggregatorAdapter
from gameplane.games.api import Adapter, fast_routes, internal, providers, public
from gameplane.games.canonical import CanonicalAdapter
from gameplane.games.seamless import Seamless
from gameplane.games.settings import GamesSettings
from gameplane.kit import fastroutes
from gameplane.kit.app import Runtime, create_app

log = logging.getLogger("gameplane.games")


def adapters(settings: GamesSettings) -> dict[str, Adapter]:
    out: dict[str, Adapter] = {}
    for name, cfg in settings.providers.items():
        if cfg.dialect == "canonical":
            assert cfg.secret is not None
            out[name] = CanonicalAdapter(name, cfg.secret, timedelta(seconds=settings.clock_skew_seconds))
        else:
            assert cfg.public_key_pem is not None
            out[name] = AggregatorAdapter(name, cfg.public_key_pem)
    return out


def build_app(settings: GamesSettings | None = None) -> FastAPI:
    settings = settings or GamesSettings()

    async def start(rt: Runtime) -> None:
        assert settings.database_url, "games needs GP_GAMES_DATABASE_URL"
        rt.state["seamless"] = Seamless(rt)
        if settings.seed_catalog:
            added = await catalog.seed(rt.database)
            if added:
                log.info("catalog seeded with %d bundled games", added)

    async def stop(rt: Runtime) -> None:
        client = rt.state.pop("wallet_client", None)
        if client is not None:
            await client.aclose()

    runtime = Runtime("games", settings, migrations="gameplane.games", hot_pool=True, on_start=[start],
                      on_stop=[stop])
    runtime.state["adapters"] = adapters(settings)
    app = create_app(runtime, [public, internal, providers], title="gameplane games",
                     app_class=fastroutes.FastRoutesApp,
                     description="Game catalog, provider registry and the seamless-wallet provider API.")
    fastroutes.install(app, runtime, fast_routes(runtime))
    return app
