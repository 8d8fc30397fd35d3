"""The gateway application: the kit's FastAPI app (health, metrics, docs, the merged OpenAPI)
wrapped by the proxy middleware and CORS."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware

from gameplane.gateway.openapi import OpenApiCache
from gameplane.gateway.proxy import Gateway, GatewayMiddleware
from gameplane.gateway.settings import GatewaySettings
from gameplane.kit.app import FrontedApp, Runtime, create_app

VERSION = "0.1.0"
# uvicorn would rewrite the client address from X-Forwarded-For whenever the peer is loopback,
# letting any local client pick the address its rate limit is charged to; the gateway decides
# that itself (settings.forwarded_for_hops).
UVICORN_OPTIONS = {"proxy_headers": False}


class GatewayRuntime(Runtime):
    """No database, no NATS: ready means started with a route table to serve."""

    def __init__(self, settings: GatewaySettings, gateway: Gateway) -> None:
        # The platform-wide environment hands every service a NATS URL; the gateway has nothing to
        # publish or consume, and must not turn unready (and drop every route) when NATS is down.
        settings = settings.model_copy(update={"nats_url": None, "database_url": None})
        super().__init__("gateway", settings, publishes=False,
                         on_start=[lambda _rt: gateway.start()], on_stop=[lambda _rt: gateway.stop()])
        self.gateway = gateway

    async def readiness(self) -> dict[str, str]:
        checks = await super().readiness()
        gw = self.gateway
        if not gw.started:
            checks["routes"] = "failing: not started"
        elif not gw.upstreams:
            checks["routes"] = "failing: no service endpoints configured"
        else:
            checks["routes"] = "ok"
        return checks


def _openapi_router(cache: OpenApiCache) -> APIRouter:
    router = APIRouter()

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(await cache.get())

    return router


class GatewayApp(FrontedApp):
    """The kit's FastAPI app with the gateway's edge in front of it: every HTTP request meets
    CORS and the proxy first, and only what the proxy does not route (health, metrics, docs,
    /openapi.json) goes on into FastAPI. Proxied requests thus skip Starlette's middleware stack
    and router; the proxy keeps its own request ids, metrics and error answers, more cheaply."""


def build_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    gateway = Gateway(settings)
    runtime = GatewayRuntime(settings, gateway)
    cache = OpenApiCache(gateway.table, gateway.fetch_openapi, settings.openapi_ttl, version=VERSION)
    app = create_app(runtime, [], title="gameplane gateway", version=VERSION, app_class=GatewayApp,
                     description="Single entry point of the platform; see /openapi.json for every route.")
    assert isinstance(app, GatewayApp)
    # FastAPI's own /openapi.json would describe only the gateway's health routes: serve the
    # merged document there instead (Swagger UI at /docs then shows the whole platform).
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) != "/openapi.json"]
    app.include_router(_openapi_router(cache))
    app.state.gateway = gateway
    app.state.openapi_cache = cache
    # CORS outermost, so preflights are answered before any limit or token check and every
    # answer, problems included, carries the CORS headers a browser needs to read it.
    # No credentials mode: players authenticate with a bearer header, never with cookies, so a
    # misconfigured "*" origin cannot turn into cross-site requests carrying cookies.
    app.front = CORSMiddleware(
        GatewayMiddleware(app.inner, gateway), allow_origins=settings.cors_origins,
        allow_origin_regex=settings.cors_origin_regex, allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id", "traceparent",
                       "tracestate"],
        expose_headers=["Retry-After", "X-Request-Id", "Location"], max_age=settings.cors_max_age)
    return app
