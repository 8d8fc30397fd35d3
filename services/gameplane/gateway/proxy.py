"""The hot path: a pure-ASGI reverse proxy in front of the services.

Per request: resolve the route, charge the client IP's bucket, verify the player token (cached),
charge the player's bucket, then forward over a pooled keep-alive connection with the client's
Authorization and X-Player-Id replaced by the gateway's own. Paths the gateway does not proxy
(its health, metrics and OpenAPI endpoints) fall through to the FastAPI app it wraps.

Object-level access: services scope every player route by X-Player-Id (`player_context` in the
kit), so a player reaches only their own resources as long as nobody but the gateway can set that
header. The gateway always drops a client-supplied X-Player-Id and sets it from the verified
token's `sub` alone; `/internal/...` is never proxied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from typing import Any

import aiohttp
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send
from yarl import URL

from gameplane.gateway.problems import (
    BAD_CONTENT_LENGTH,
    BAD_PATH,
    NOT_ROUTED,
    PAYLOAD_TOO_LARGE,
    PLAY_BLOCKED,
    SERVICE_UNAVAILABLE,
    TOKEN_REQUIRED,
)
from gameplane.gateway.problems import RATE_LIMITED as RATE_LIMITED_PROBLEM
from gameplane.gateway.ratelimit import TokenBuckets, replica_share, retry_after
from gameplane.gateway.routes import Access, BadPath, Blocked, NotRunning, Route, RouteTable, client_ip
from gameplane.gateway.settings import GatewaySettings
from gameplane.gateway.tokens import PlayerTokens, ServiceTokens
from gameplane.kit import metrics, telemetry
from gameplane.kit.app import load_identity
from gameplane.kit.auth import CLIENT_IP_HEADER, PLAYERS
from gameplane.kit.breaker import CircuitBreaker, CircuitOpen
from gameplane.kit.jwks import RemoteKeys
from gameplane.kit.problems import PROBLEM_JSON, Problem

log = logging.getLogger("gameplane.gateway")

UPSTREAM_ERRORS = Counter("gameplane_gateway_upstream_errors_total", "Upstream calls that gave no answer",
                          ["target", "reason"])
RATE_LIMITED = Counter("gameplane_gateway_rate_limited_total", "Requests refused by a rate limit", ["limit"])

# RFC 9110 §7.6.1 hop-by-hop fields, never forwarded in either direction.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"proxy-connection"})
# Set by the gateway itself (or by the HTTP client from the URL and body).
# Expect: the body is read before forwarding, so a 100-continue round trip upstream buys nothing.
REQUEST_DROP = HOP_BY_HOP | {b"host", b"authorization", b"x-player-id", b"content-length", b"x-request-id",
                             b"x-forwarded-for", b"x-forwarded-proto", b"forwarded", b"expect",
                             CLIENT_IP_HEADER.lower().encode()}
# uvicorn adds its own date/server; the upstream's request id is ours anyway.
RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server", b"x-request-id"}
BODY_IN_ONE_SEND = 256 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class Gateway:
    """State shared by every request: routes, limits, token caches, breakers, the upstream pool."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.upstreams: dict[str, str] = {}
        self.table = RouteTable((), known=settings.routed_services)
        self.breakers: dict[str, CircuitBreaker] = {}
        self.timeouts: dict[str, aiohttp.ClientTimeout] = {}
        self.refresh_endpoints()
        n, keys = settings.rate_limit_replicas, settings.rate_limit_max_keys
        self.ip_limits = TokenBuckets(*replica_share(settings.rate_limit_ip_rate, settings.rate_limit_ip_burst, n),
                                      max_keys=keys)
        self.player_limits = TokenBuckets(
            *replica_share(settings.rate_limit_player_rate, settings.rate_limit_player_burst, n), max_keys=keys)
        self.partner_limits = TokenBuckets(
            *replica_share(settings.rate_limit_partner_rate, settings.rate_limit_partner_burst, n), max_keys=keys)
        self.service_tokens = ServiceTokens(load_identity("gateway", settings))
        self.players_keys = RemoteKeys(PLAYERS, lambda: settings.endpoint(PLAYERS),
                                       min_interval=settings.jwks_min_refresh_seconds,
                                       max_age=settings.jwks_max_age_seconds)
        self.player_tokens = PlayerTokens(self.players_keys, size=settings.player_token_cache)
        self.tracing = bool(settings.otlp_endpoint) and settings.trace_sampling_ratio > 0
        self.tracer = telemetry.tracer("gameplane.gateway")
        self._session: aiohttp.ClientSession | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._warming: asyncio.Task[None] | None = None
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def refresh_endpoints(self) -> bool:
        """Re-read the endpoint map (the discovery ConfigMap changes when services are enabled or
        disabled). Returns whether the routed set changed. Breakers survive for kept services."""
        settings = self.settings
        upstreams: dict[str, str] = {}
        for name in settings.routed_services:
            try:
                upstreams[name] = settings.endpoint(name)
            except (LookupError, OSError, ValueError):
                continue  # not part of this platform (not built, or disabled in the CR)
        if upstreams == self.upstreams:
            return False
        for name in upstreams:
            self.breakers.setdefault(name, CircuitBreaker(name, failure_threshold=settings.breaker_failure_threshold,
                                                          reset_timeout=settings.breaker_reset_timeout,
                                                          caller="gateway"))
            self.timeouts[name] = aiohttp.ClientTimeout(
                total=settings.upstream_timeouts.get(name, settings.upstream_timeout),
                sock_connect=settings.upstream_connect_timeout)
        # Swap the map first: a request resolved against the new table must find its upstream.
        self.upstreams = upstreams
        self.table.services = frozenset(upstreams)
        log.info("routing to %s", ", ".join(f"{k}={v}" for k, v in sorted(upstreams.items())) or "nothing")
        return True

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.endpoints_refresh_seconds)
            try:
                self.refresh_endpoints()
            except Exception:
                log.exception("could not refresh the endpoint map")

    async def start(self) -> None:
        # Idle connections are dropped before uvicorn's own 5 s keep-alive timeout closes them
        # under us (a POST sent just then could not be retried safely).
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.settings.upstream_connections,
                                         keepalive_timeout=4, ttl_dns_cache=30)
        # No cookie jar: a shared jar would hand one player's upstream cookies to the next player.
        # No decompression and no auto headers: bytes and fields pass through as the client sent them.
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
        if self.settings.endpoints_file is not None:
            self._refresher = asyncio.create_task(self._refresh_loop(), name="gateway-endpoints")
        self._warming = asyncio.create_task(self.players_keys.warm(), name="gateway-players-keys")

    async def stop(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warming
            self._warming = None
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def started(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("gateway not started")
        return self._session

    async def fetch_openapi(self, service: str) -> dict[str, Any] | None:
        """A service's own OpenAPI document, or None when it cannot be had right now."""
        base = self.upstreams.get(service)
        if base is None or self.breakers[service].state == "open":
            return None
        try:
            async with self.session.get(base + "/openapi.json",
                                        timeout=aiohttp.ClientTimeout(
                                            total=self.settings.openapi_fetch_timeout)) as resp:
                if resp.status != 200:
                    return None
                doc = await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.info("openapi of %s unavailable: %r", service, exc)
            return None
        return doc if isinstance(doc, dict) else None

    def _observe(self, method: str, label: str, status: int, elapsed: float) -> None:
        key = (method, label, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.HTTP_REQUESTS.labels("gateway", method, label, str(status))
        counter.inc()
        hkey = (method, label)
        hist = self._histograms.get(hkey)
        if hist is None:
            hist = self._histograms[hkey] = metrics.HTTP_LATENCY.labels("gateway", method, label)
        hist.observe(elapsed)


class GatewayMiddleware:
    """Wraps the gateway's FastAPI app; everything routable is proxied without touching it."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gw = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            route = self.gw.table.resolve(scope["method"], scope["path"])
        except Blocked:
            await _send_problem(send, scope, NOT_ROUTED("internal routes are not reachable from outside"),
                                uuid.uuid4().hex)
            return
        except BadPath:
            await _send_problem(send, scope, BAD_PATH("dot segments are not allowed"), uuid.uuid4().hex)
            return
        except NotRunning as absent:
            await _send_problem(send, scope, _unavailable(absent.service, "is not running in this platform",
                                                          self.gw.settings.endpoints_refresh_seconds),
                                uuid.uuid4().hex)
            return
        if route is None:
            await self.app(scope, receive, send)
            return
        await self._proxy(scope, receive, send, route)

    async def _proxy(self, scope: Scope, receive: Receive, send: Send, route: Route) -> None:
        gw = self.gw
        start = time.perf_counter()
        status = 502
        # One pass over the client's headers: pick out what we need, keep what we forward.
        forward: list[tuple[str, str]] = []
        auth = rid = xff = None
        content_length: int | None = None
        chunked = False
        hop_extra: set[bytes] = set()
        for name, value in scope["headers"]:
            if name in REQUEST_DROP:
                if name == b"authorization":
                    auth = value
                elif name == b"x-request-id":
                    rid = value.decode("latin-1")
                elif name == b"x-forwarded-for":
                    xff = value.decode("latin-1")
                elif name == b"content-length":
                    try:
                        content_length = int(value)
                    except ValueError:
                        content_length = -1
                elif name == b"transfer-encoding":
                    chunked = True
                elif name == b"connection":
                    hop_extra.update(t.strip().lower() for t in value.split(b","))
                continue
            if b"_" in name and name.replace(b"_", b"-") in REQUEST_DROP:
                continue  # X_Player_Id: servers that map headers to CGI-style names would merge it
            forward.append((name.decode("latin-1"), value.decode("latin-1")))
        if hop_extra:  # fields the client declared hop-by-hop in Connection
            forward = [(k, v) for k, v in forward if k.encode("latin-1") not in hop_extra]
        if rid is None or not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex
        try:
            try:
                status = await self._forward(scope, receive, send, route, forward, auth, rid, xff,
                                             content_length, chunked)
            except Problem as problem:
                status = problem.status
                await _send_problem(send, scope, problem, rid)
            except Exception:
                # Proxied requests bypass Starlette's error middleware; _exchange handles every
                # failure after the response started, so nothing has been sent yet here.
                log.exception("gateway error on %s %s", scope["method"], scope["path"])
                status = 500
                await _send_problem(send, scope, Problem(500, "internal-error", "Internal error"), rid)
        finally:
            gw._observe(scope["method"], route.label, status, time.perf_counter() - start)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, route: Route,
                       forward: list[tuple[str, str]], auth: bytes | None, rid: str, xff: str | None,
                       content_length: int | None, chunked: bool) -> int:
        gw = self.gw
        settings = gw.settings
        now = time.monotonic()
        peer = scope["client"][0] if scope.get("client") else None
        ip = client_ip(peer, xff, settings.forwarded_for_hops)
        # A game studio's RGS calls from a few addresses at hundreds of calls per second: partner
        # routes get a bucket of their own (per prefix and address), sized for that.
        limit, buckets, key = ("partner", gw.partner_limits, route.label + " " + ip) if route.partner \
            else ("ip", gw.ip_limits, ip)
        wait = buckets.take(key, now)
        if wait:
            RATE_LIMITED.labels(limit).inc()
            raise RATE_LIMITED_PROBLEM("per-address rate limit exceeded",
                          headers={"Retry-After": retry_after(wait)}, limit=limit)

        player_id: str | None = None
        if route.access is Access.PLAYER:
            claims = await gw.player_tokens.verify(_bearer(auth))
            player_id = str(claims["sub"])
            if route.play and claims.get("play") is False:
                raise PLAY_BLOCKED("this account may not start games right now (self-exclusion or time-out)")
            wait = gw.player_limits.take(player_id, now)
            if wait:
                RATE_LIMITED.labels("player").inc()
                raise RATE_LIMITED_PROBLEM("per-player rate limit exceeded",
                              headers={"Retry-After": retry_after(wait)}, limit="player")

        body: bytes | None = None
        if chunked or (content_length is not None and content_length != 0):
            if content_length is not None and content_length < 0:
                raise BAD_CONTENT_LENGTH()
            if content_length is not None and content_length > settings.max_body_bytes:
                raise PAYLOAD_TOO_LARGE(f"at most {settings.max_body_bytes} bytes")
            try:
                body = await _read_body(receive, settings.max_body_bytes)
            except _TooLarge:
                raise PAYLOAD_TOO_LARGE(f"at most {settings.max_body_bytes} bytes")
            except _ClientGone:
                return 499  # nobody to answer; nginx's code for "client closed request"

        forward.append(("authorization", gw.service_tokens.header(route.target)))
        forward.append(("x-request-id", rid))
        if peer:
            forward.append(("x-forwarded-for", f"{xff}, {peer}" if xff else peer))
        forward.append(("x-forwarded-proto", scope.get("scheme", "http")))
        # Services read the client's address from this one header (players' login event, for risk)
        # rather than judge X-Forwarded-For again without the gateway's trusted hops.
        forward.append((CLIENT_IP_HEADER.lower(), ip))
        if player_id is not None:
            forward.append(("x-player-id", player_id))

        breaker = gw.breakers[route.target]
        try:
            breaker.before_call()
        except CircuitOpen as exc:
            UPSTREAM_ERRORS.labels(route.target, "circuit-open").inc()
            raise _unavailable(route.target, "circuit open after repeated failures", exc.retry_in)

        base = gw.upstreams.get(route.target)
        if base is None:  # dropped from the endpoint map while this request was being read
            raise _unavailable(route.target, "is no longer routed", 5.0)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        qs = scope.get("query_string")
        target = base + raw_path.decode("latin-1")
        if qs:
            target += "?" + qs.decode("latin-1")
        if gw.tracing:
            return await self._traced_exchange(scope, send, route, URL(target, encoded=True), forward, body,
                                               breaker, rid)
        return await self._exchange(scope, send, route, URL(target, encoded=True), forward, body, breaker, rid)

    async def _traced_exchange(self, scope: Scope, send: Send, route: Route, url: URL,
                               forward: list[tuple[str, str]], body: bytes | None,
                               breaker: CircuitBreaker, rid: str) -> int:
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        carrier = {k: v for k, v in forward if k in ("traceparent", "tracestate")}
        token = otel_context.attach(telemetry.extract(carrier))
        try:
            with self.gw.tracer.start_as_current_span(f"{scope['method']} {route.label}",
                                                      kind=trace.SpanKind.SERVER) as span:
                out = [(k, v) for k, v in forward if k not in ("traceparent", "tracestate")]
                injected: dict[str, str] = {}
                telemetry.inject(injected)
                out.extend(injected.items())
                status = await self._exchange(scope, send, route, url, out, body, breaker, rid)
                span.set_attribute("http.status_code", status)
                span.set_attribute("gameplane.target", route.target)
                return status
        finally:
            otel_context.detach(token)

    async def _exchange(self, scope: Scope, send: Send, route: Route, url: URL, forward: list[tuple[str, str]],
                        body: bytes | None, breaker: CircuitBreaker, rid: str) -> int:
        target = route.target
        try:
            resp = await self.gw.session.request(scope["method"], url, headers=forward, data=body,
                                                 allow_redirects=False, timeout=self.gw.timeouts[target])
        except TimeoutError:
            breaker.failure()
            UPSTREAM_ERRORS.labels(target, "timeout").inc()
            log.warning("%s timed out on %s %s", target, scope["method"], scope["path"])
            raise _unavailable(target, "timed out", 1.0)
        except (aiohttp.ClientError, OSError) as exc:
            breaker.failure()
            UPSTREAM_ERRORS.labels(target, "unreachable").inc()
            log.warning("%s unreachable on %s %s: %r", target, scope["method"], scope["path"], exc)
            raise _unavailable(target, "unreachable", 1.0)
        except BaseException:
            breaker.failure()  # cancelled mid-call: never leave a half-open probe outstanding
            raise
        # Any answer, even a 5xx, means the service is up: a 500 of one route must not cut
        # every route of that service off.
        breaker.success()
        try:
            headers = [(k.lower(), v) for k, v in resp.raw_headers if k.lower() not in RESPONSE_DROP]
            headers.append((b"x-request-id", rid.encode("latin-1")))
            await send({"type": "http.response.start", "status": resp.status, "headers": headers})
            length = resp.content_length
            if length is not None and length <= BODY_IN_ONE_SEND:
                await send({"type": "http.response.body", "body": await resp.read()})
            else:
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Too late for a problem answer: returning with the body incomplete makes the server
            # close the connection, which is how a client learns that a response was cut short.
            UPSTREAM_ERRORS.labels(target, "truncated").inc()
            log.warning("%s response cut short on %s %s: %r", target, scope["method"], scope["path"], exc)
        finally:
            resp.release()
        return resp.status


def _bearer(auth: bytes | None) -> str:
    if auth is not None:
        scheme, _, token = auth.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            return token
    raise TOKEN_REQUIRED("send Authorization: Bearer <access token>", headers={"WWW-Authenticate": "Bearer"})


def _unavailable(target: str, reason: str, retry_in: float) -> Problem:
    return Problem(*SERVICE_UNAVAILABLE[:2], f"Service {target} is unavailable", f"{target} {reason}",
                   headers={"Retry-After": retry_after(retry_in)}, service=target)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_problem(send: Send, scope: Scope, problem: Problem, rid: str) -> None:
    body = json.dumps(problem.body(scope.get("path"))).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode()),
               (b"x-request-id", rid.encode())]
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in problem.headers.items())
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

