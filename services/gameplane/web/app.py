"""The player site: register, sign in, lobby, game launch (the studio's page in a frame), live
balance, cashier (deposit on the PSP's hosted page, withdrawal, history), bonuses and the
safer-gambling tools, all on the platform's public API through the gateway with the player's own
token. No database: the session cookie holds the player's tokens, the platform holds the rest."""

from __future__ import annotations

from fastapi import FastAPI

from gameplane.kit.app import Runtime, create_app
from gameplane.kit.pages import ContentSecurityPolicy, Pages
from gameplane.web import site
from gameplane.web.gateway import Gateway
from gameplane.web.settings import WebSettings


def build_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()
    pages = Pages("gameplane.web", session_cookie="gp-player", session_ttl_seconds=settings.session_ttl_seconds,
                  policy=ContentSecurityPolicy(frame_src=settings.game_origins, form_action=settings.psp_origins))

    async def start(rt: Runtime) -> None:
        rt.state["gateway"] = Gateway(settings.endpoint("gateway"), timeout=settings.gateway_timeout_seconds)

    async def stop(rt: Runtime) -> None:
        gateway = rt.state.pop("gateway", None)
        if gateway is not None:
            await gateway.aclose()

    # The site publishes and consumes nothing: no NATS connection even when one is configured.
    runtime = Runtime("web", settings.model_copy(update={"nats_url": None}), on_start=[start], on_stop=[stop])
    app = create_app(runtime, [site.router], title="gameplane web",
                     description="The player site (HTML pages); it calls the platform's public API only.")
    app.state.pages = pages
    app.state.settings = settings
    app.state.catalogue = {}  # jurisdiction -> (monotonic time, games): site.catalogue
    pages.install(app)
    site.install_handlers(app)
    return app
