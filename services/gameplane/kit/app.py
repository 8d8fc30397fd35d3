"""The service runtime (database, NATS, outbox relay, consumers, clients) and the FastAPI factory
every service uses: health, metrics, request ids, tracing, problem+json."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gameplane.kit import apidoc, logs, metrics, migrate, problems, telemetry
from gameplane.kit.bus import Bus
from gameplane.kit.consumer import Consumers, Running
from gameplane.kit.db import Database
from gameplane.kit.faults import FaultMiddleware, Faults, parse
from gameplane.kit.http import DependencyError, ServiceClient
from gameplane.kit.keys import InvalidKey, KeySet, SigningKey, TrustedKey, read_key_set
from gameplane.kit.outbox import OutboxRelay
from gameplane.kit.settings import ServiceSettings

log = logging.getLogger("gameplane.app")

Hook = Callable[["Runtime"], Awaitable[None]]


class Runtime:
    """Everything a running service holds. Routes reach it as `request.app.state.runtime`."""

    def __init__(self, name: str, settings: ServiceSettings, *, migrations: str | None = None,
                 consumers: Consumers | None = None, publishes: bool = True, hot_pool: bool = False,
                 on_start: Sequence[Hook] = (), on_stop: Sequence[Hook] = (), identity: bool = True) -> None:
        self.name = name
        self.settings = settings
        # Read at once: a service without its key, or with a key set it cannot read, never starts.
        self.signing_key: SigningKey | None = load_identity(name, settings) if identity else None
        self.trusted_keys: KeySet = load_trusted_keys(name, settings)
        if self.signing_key is not None:
            # A service always trusts its own key (players checks the tokens it signed itself).
            own = self.trusted_keys.keys.setdefault(self.signing_key.kid, TrustedKey(name, self.signing_key.public))
            if own.owner != name:
                raise MissingIdentity(f"{name}: its key is listed as {own.owner!r}'s in the public key set")
        self.migrations = migrations
        self.consumers = consumers or Consumers()
        self.consuming: Running | None = None
        self.publishes = publishes
        self.hot_pool = hot_pool  # also open Database.pool (bare asyncpg) at start
        self.on_start = list(on_start)
        self.on_stop = list(on_stop)
        self.db: Database | None = Database(settings.database_url, pool_size=settings.db_pool_size,
                                            service=name) if settings.database_url else None
        self.bus: Bus | None = Bus(settings.nats_url, name) if settings.nats_url else None
        self.relay: OutboxRelay | None = None
        self.faults = Faults(name, parse(settings.faults), settings.faults_file)
        self._clients: dict[str, ServiceClient] = {}
        self.state: dict[str, Any] = {}
        self._started = False

    @property
    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError(f"{self.name} has no database configured")
        return self.db

    @property
    def identity(self) -> SigningKey:
        if self.signing_key is None:
            raise RuntimeError(f"{self.name} has no service identity")
        return self.signing_key

    def client(self, target: str, *, timeout: float = 2.0) -> ServiceClient:
        if target not in self._clients:
            self._clients[target] = ServiceClient(self.name, target, self.settings.endpoint(target),
                                                  self.identity, timeout=timeout)
        return self._clients[target]

    async def start(self) -> None:
        # A second start would orphan the first's consumers and relay (still pulling from the shared
        # durable consumers, never stopped): an app both served and entered by a test did that.
        if self._started:
            raise RuntimeError(f"{self.name} is already started: stop it first")
        self._started = True
        try:
            await self._start()
        except BaseException:
            self._started = False  # a failed start may be tried again
            raise

    async def _start(self) -> None:
        self.faults.start()
        if self.db is not None and self.settings.db_wait_seconds > 0:
            await self.db.wait_reachable(self.settings.db_wait_seconds)
        if self.db is not None and self.migrations and self.settings.migrate_on_start:
            await migrate.upgrade_async(self.migrations, self.db.url)
        elif self.db is not None and self.migrations:  # the release's migration job migrates (docs/upgrades.md)
            await migrate.wait_for_schema(self.migrations, self.db.url, self.settings.db_wait_seconds)
        if self.db is not None and self.hot_pool:
            await self.db.open_pool(self.settings.db_hot_pool_size)
        if self.bus is not None:
            self.bus.start()
            if self.db is not None and self.publishes:
                self.relay = OutboxRelay(self.name, self.db, self.bus, batch=self.settings.relay_batch)
                self.relay.start()
            if self.db is not None and self.consumers:
                self.consuming = self.consumers.start(self.name, self.db, self.bus, self.faults)
            # Usually NATS answers at once and the stream exists before the first request; if it is
            # down, start anyway after a short wait: the outbox holds events until it is back.
            try:
                await asyncio.wait_for(self.bus.ready.wait(), self.settings.nats_wait_seconds)
            except TimeoutError:
                log.warning("%s starts without NATS (%s); events wait in the outbox", self.name, self.bus.url)
        for hook in self.on_start:
            await hook(self)
        # Everything alive now (imported modules, models, routes) lives as long as the process:
        # moved out of the collector's generations, a full collection no longer walks it, which on
        # a 2-core box was a 100-300 ms pause of the whole service every few seconds under load.
        gc.freeze()

    async def stop(self) -> None:
        self._started = False
        for hook in self.on_stop:
            await hook(self)
        await self.faults.stop()
        if self.consuming is not None:
            await self.consuming.stop()
            self.consuming = None
        if self.relay is not None:
            await self.relay.stop()
        for c in self._clients.values():
            await c.aclose()
        if self.bus is not None:
            await self.bus.close()
        if self.db is not None:
            await self.db.dispose()

    async def readiness(self) -> dict[str, str]:
        """What must hold for the Pod to take traffic: its own database, and no `unavailable` drill.
        A broker outage is not on the list: the outbox keeps events until NATS is back, so a NATS
        blip must not take every endpoint of the platform away (see `notes`)."""
        checks: dict[str, str] = {}
        if self.db is not None:
            try:
                await self.db.ping()
                checks["database"] = "ok"
            except Exception as exc:
                checks["database"] = f"failing: {exc.__class__.__name__}"
        if self.faults.unavailable:
            checks["faults"] = "failing: an `unavailable` fault drill is active"
        return checks

    def notes(self) -> dict[str, str]:
        """Conditions worth showing on /readyz that do not make the Pod unready."""
        out: dict[str, str] = {}
        if self.bus is not None:
            if self.bus.connected and self.bus.ready.is_set():
                out["nats"] = "ok"
            else:
                out["nats"] = "not connected: events wait in the outbox, consumers resume on reconnect"
        return out


class MissingIdentity(RuntimeError):
    """The service's key is missing or unusable: it must not start."""


def load_identity(name: str, settings: ServiceSettings) -> SigningKey:
    prefix = f"GP_{name.upper()}_"
    try:
        pem = settings.signing_key_pem()
    except OSError as exc:
        raise MissingIdentity(f"{name}: cannot read its service key file: {exc}") from None
    if not pem:
        raise MissingIdentity(f"{name} has no service key: set {prefix}SERVICE_KEY (an Ed25519 private key, "
                              f"PKCS#8 PEM) or {prefix}SERVICE_KEY_FILE; it refuses to start without one")
    try:
        return SigningKey.from_pem(pem)
    except InvalidKey as exc:
        raise MissingIdentity(f"{name}: unusable service key ({prefix}SERVICE_KEY): {exc}") from None


def load_trusted_keys(name: str, settings: ServiceSettings) -> KeySet:
    try:
        return read_key_set(settings.public_keys, settings.public_keys_file)
    except InvalidKey as exc:
        raise MissingIdentity(f"{name}: unusable public key set: {exc}") from None


class ObservabilityMiddleware:
    """Pure ASGI (cheap on the hot path): request id, server span, RED metrics by route template."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self.tracer = telemetry.tracer(f"gameplane.{service}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id") or uuid.uuid4().hex
        rid_token = logs.request_id_var.set(rid)
        ctx_token = otel_context.attach(telemetry.extract(headers))
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        method = scope["method"]
        try:
            with self.tracer.start_as_current_span(f"{method} {scope['path']}",
                                                   kind=trace.SpanKind.SERVER) as span:
                await self.app(scope, receive, send_wrapper)
                span.set_attribute("http.status_code", status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template not in ("/metrics", "/livez", "/readyz"):
                metrics.HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
                metrics.HTTP_LATENCY.labels(self.service, method, template).observe(time.perf_counter() - start)
            otel_context.detach(ctx_token)
            logs.request_id_var.reset(rid_token)


class FrontedApp(FastAPI):
    """A FastAPI app whose HTTP requests meet `front`, a pure-ASGI layer, first (the gateway's
    edge, a service's fast routes); what the front does not answer it passes to `inner`, the
    FastAPI app itself. Pass a subclass as `create_app(..., app_class=...)`, then set `front`."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and scope["type"] == "http":
            if getattr(self.front, "applies_faults", False):
                await self.front(scope, receive, send)  # inside its own RED metrics (kit.fastroutes)
            else:
                # Fault drills judge a request once, here, before the front answers it.
                await self.state.runtime.faults.gate(self.front, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(runtime: Runtime, routers: Sequence[APIRouter], *, title: str, description: str = "",
               version: str = "0.1.0", app_class: type[FastAPI] = FastAPI) -> FastAPI:
    settings = runtime.settings
    logs.configure(runtime.name, settings.log_level, settings.log_json)
    telemetry.configure(runtime.name, settings.otlp_endpoint, settings.trace_sampling_ratio)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        log.info("%s started on %s:%s", runtime.name, settings.host, settings.port)
        # What startup built (modules, routes, models, pools) lives as long as the process: moved
        # out of the collector's generations, so a full collection no longer walks it (measured:
        # ~70 ms with the event loop stopped, on the imported heap alone). Given back at stop, for
        # processes (tests) that start and stop many apps.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:  # also when the server (or a test holding the app) leaves with an error: no task outlives the app
            gc.unfreeze()
            await runtime.stop()

    # FastAPI >= 0.16x traces every request natively once a tracer provider is set (telemetry.configure
    # always sets one): a second server span next to ObservabilityMiddleware's, at a real CPU cost.
    native = {"telemetry": {"tracing": False, "metrics": False, "logs": False}} \
        if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}
    app = app_class(title=title, description=description, version=version, lifespan=lifespan, **native)
    app.state.runtime = runtime
    problems.install(app)
    apidoc.install(app)

    @app.exception_handler(DependencyError)
    async def _dependency(request: Request, exc: DependencyError) -> JSONResponse:
        return problems.problem_response(exc.problem(), request)

    health = APIRouter(tags=["health"])

    @health.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @health.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        checks = await runtime.readiness()
        ok = all(v == "ok" for v in checks.values())
        # `faults`: the drill scenarios this process applies now (the operator's FaultsActive).
        extra = {"notes": runtime.notes(), "faults": runtime.faults.report()}
        if ok:
            return JSONResponse({"status": "ok", "checks": checks, **extra})
        return problems.problem_response(problems.Problem(
            503, "not-ready", f"{runtime.name} is not ready",
            ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok"), checks=checks, **extra))

    async def metrics_endpoint(request: Request) -> Response:
        if runtime.db is not None:
            runtime.db.observe_pool()
        if runtime.relay is not None:
            try:
                await runtime.relay.pending()
            except Exception:
                pass
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if settings.metrics_port:
        # /metrics only on its own port (see `serve`): the API port never answers it.
        app.state.metrics_app = Starlette(routes=[Route("/metrics", metrics_endpoint)])
    else:
        health.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)

    app.include_router(health)
    for r in routers:
        app.include_router(r)
    app.add_middleware(FaultMiddleware, faults=runtime.faults)
    app.add_middleware(ObservabilityMiddleware, service=runtime.name)  # outermost: sees injected faults
    return app


class MetricsPort:
    """Pure ASGI: requests that arrived on the metrics port reach only the metrics app; the rest,
    and the lifespan, go to the service. One server, one event loop, one set of signal handlers."""

    def __init__(self, app: ASGIApp, metrics_app: ASGIApp, port: int) -> None:
        self.app = app
        self.metrics_app = metrics_app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or (None, None)
        if scope["type"] == "http" and server[1] == self.port:
            await self.metrics_app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def serve(app: FastAPI, settings: ServiceSettings, **uvicorn_options: Any) -> None:
    """Entry point body of every `python -m gameplane.<service>` (extra uvicorn options: the
    gateway turns off uvicorn's X-Forwarded-For handling because it applies its own).

    With settings.metrics_port the one server listens on both ports and MetricsPort routes by
    the port a request came in on."""
    import uvicorn

    options: dict[str, Any] = {"log_config": None, "access_log": False, "timeout_graceful_shutdown": 5,
                               **uvicorn_options}
    if not settings.metrics_port:
        uvicorn.run(app, host=settings.host, port=settings.port, **options)
        return
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sockets = [socket.create_server((settings.host, port), family=family, backlog=2048)
               for port in (settings.port, settings.metrics_port)]
    routed = MetricsPort(app, app.state.metrics_app, settings.metrics_port)
    uvicorn.Server(uvicorn.Config(routed, host=settings.host, port=settings.port, **options)).run(sockets=sockets)
