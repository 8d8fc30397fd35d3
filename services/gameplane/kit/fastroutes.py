"""Fast routes: a few hot endpoints answered as pure ASGI, in front of the service's FastAPI app.

FastAPI spends a fifth of a busy service's CPU per request on its middleware chain, router and
dependency solving. A service lists its hottest routes here (method, exact path or a Starlette
style template, handler) and they are answered before FastAPI sees the request, with the same
observable behaviour as the FastAPI route they shadow:

- request id header, server span and RED metrics labelled with the route template, as
  `gameplane.kit.app.ObservabilityMiddleware` does;
- service-token auth and the route's accepted callers as `gameplane.kit.auth.callers`, checked at
  the same point FastAPI checks it (after the JSON decode, before body validation);
- the same 422 `validation-error` problem as FastAPI + `gameplane.kit.problems`, and the same
  problem+json answers for a raised Problem, DependencyError, HTTPException or unexpected error.

The FastAPI route definitions stay where they are (OpenAPI, and the reference behaviour the
tests compare with); everything not in the table goes on into FastAPI untouched.

    app = create_app(runtime, routers, title=..., app_class=FastRoutesApp)
    install(app, runtime, [FastRoute("POST", "/internal/x/bets", handler, model=BetRequest,
                                     callers=frozenset({"games"}))])
"""

from __future__ import annotations

import email.message
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gameplane.kit import logs, metrics, problems, telemetry
from gameplane.kit.app import FrontedApp, Runtime
from gameplane.kit.auth import bearer_token, check_caller, verify_service_token
from gameplane.kit.http import DependencyError
from gameplane.kit.problems import Problem

# The same logger and message as the FastAPI handler of unexpected errors (problems.install).
log = logging.getLogger("gameplane.problems")

_UNSET: Any = object()
_TEMPLATE_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(:path)?}")


class Reply(NamedTuple):
    """A complete answer: status, body, raw headers (content-type and content-length included)."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


def json_reply(body: bytes, status: int = 200, media_type: str = "application/json",
               headers: Mapping[str, str] | None = None) -> Reply:
    """The headers Starlette's Response(body, media_type=...) would send, without building one."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    raw.append((b"content-length", str(len(body)).encode()))
    raw.append((b"content-type", media_type.encode("latin-1")))
    return Reply(status, body, raw)


def response_reply(response: Response) -> Reply:
    """A Starlette response built by shared domain code (e.g. a provider adapter), sent as is."""
    return Reply(response.status_code, bytes(response.body), response.raw_headers)


@dataclass(slots=True)
class FastRequest:
    method: str
    path: str  # what FastAPI's `request.url.path` would be: the `instance` of problems
    headers: Headers  # case-insensitive, like `request.headers`
    params: dict[str, str]
    body: bytes
    data: Any = None  # the validated `model` instance, when the route has one
    caller: str | None = None  # the verified service token's issuer, when the route needs one


Handler = Callable[[FastRequest], Awaitable[Reply]]


@dataclass(frozen=True)
class FastRoute:
    """`template` is spelled as in the FastAPI route it shadows ("/x/{id}", "/x/{rest:path}"): it is
    the metrics label too. `model`: the JSON body model (FastAPI's single, non-embedded body
    parameter). `callers`: the services the route accepts, as its FastAPI twin's `callers(...)`
    dependency says (empty: no service auth)."""

    method: str
    template: str
    handler: Handler
    model: type[BaseModel] | None = None
    callers: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        if _TEMPLATE_PARAM.search(self.template):
            # Starlette's own translation: {name} is one segment, {name:path} the rest.
            parts, pos = [], 0
            for m in _TEMPLATE_PARAM.finditer(self.template):
                parts += [re.escape(self.template[pos:m.start()]),
                          f"(?P<{m.group(1)}>{'.*' if m.group(2) else '[^/]+'})"]
                pos = m.end()
            parts.append(re.escape(self.template[pos:]))
            object.__setattr__(self, "pattern", re.compile("^" + "".join(parts) + "$"))


class FastRoutes:
    """The pure-ASGI layer; `app` is the FastAPI app itself (its own __call__, see FastRoutesApp)."""

    applies_faults = True  # fault drills are judged inside the metrics below, as FastAPI's are

    def __init__(self, app: ASGIApp, runtime: Runtime, routes: Sequence[FastRoute]) -> None:
        self.app = app
        self.runtime = runtime
        self.service = runtime.name
        self.tracer = telemetry.tracer(f"gameplane.{runtime.name}")
        self.exact: dict[tuple[str, str], FastRoute] = {}
        self.templated: dict[str, list[FastRoute]] = {}
        for route in routes:
            if route.pattern is None:
                self.exact[(route.method, route.template)] = route
            else:
                self.templated.setdefault(route.method, []).append(route)
        # Label children cached: prometheus' labels() costs a lock and a tuple per call.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def match(self, method: str, path: str) -> tuple[FastRoute, dict[str, str]] | None:
        route = self.exact.get((method, path))
        if route is not None:
            return route, {}
        for route in self.templated.get(method, ()):
            assert route.pattern is not None
            m = route.pattern.match(path)
            if m is not None:
                return route, m.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A mounted app (root_path) would need Starlette's path rewriting: leave that to FastAPI.
        found = self.match(scope["method"], scope["path"]) \
            if scope["type"] == "http" and not scope.get("root_path") else None
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        # ObservabilityMiddleware, inlined: request id, trace context, span, RED metrics.
        raw_headers = scope["headers"]
        plain = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers}
        rid = plain.get("x-request-id") or uuid.uuid4().hex
        rid_token = logs.request_id_var.set(rid)
        ctx_token = otel_context.attach(telemetry.extract(plain))
        method = scope["method"]
        status = 500
        start = time.perf_counter()
        try:
            with self.tracer.start_as_current_span(f"{method} {scope['path']}", kind=trace.SpanKind.SERVER) as span:
                request = FastRequest(method, scope["path"], Headers(raw=raw_headers), params, b"")
                drill = await self.runtime.faults.before(scope) if self.runtime.faults.active else None
                if drill is not None:
                    status, body, headers = _problem(drill, request.path)
                else:
                    status, body, headers = await self._answer(route, request, receive)
                await send({"type": "http.response.start", "status": status,
                            "headers": [*headers, (b"x-request-id", rid.encode())]})
                await send({"type": "http.response.body", "body": body})
                span.set_attribute("http.status_code", status)
        finally:
            self._observe(method, route.template, status, time.perf_counter() - start)
            otel_context.detach(ctx_token)
            logs.request_id_var.reset(rid_token)

    async def _answer(self, route: FastRoute, request: FastRequest, receive: Receive) -> Reply:
        try:
            try:
                request.body = await _read_body(receive)
            except ClientDisconnect:
                # FastAPI answers 400 when it reads a body parameter; a route without one reads the
                # body itself, and the error goes on to the 500 handler.
                if route.model is None:
                    raise
                raise _unparsable()
            if route.callers:
                try:
                    request.caller = self._caller(request.headers, route)
                except Problem:
                    # FastAPI decodes the JSON body before it solves dependencies: a body that is
                    # not JSON at all is a 422 even without a valid token.
                    if route.model is not None:
                        _decode_like_fastapi(request.body, request.headers.get("content-type"))
                    raise
            if route.model is not None:
                request.data = _validate(route.model, request.body, request.headers.get("content-type"))
            return await route.handler(request)
        except _RequestInvalid as exc:
            return _problem(problems.validation_problem(exc.errors), request.path)
        except Problem as exc:
            return _problem(exc, request.path)
        except DependencyError as exc:
            return _problem(exc.problem(), request.path)
        except StarletteHTTPException as exc:
            return _problem(problems.http_problem(exc.status_code, exc.detail, exc.headers), request.path)
        except Exception as exc:
            refused = problems.known_problem(exc)
            if refused is not None:
                if refused.status >= 500:
                    log.warning("%s %s: %s", request.method, request.path, refused.detail, exc_info=exc)
                return _problem(refused, request.path)
            log.exception("unhandled error on %s %s", request.method, request.path)
            return _problem(Problem(500, "internal-error", "Internal error"), request.path)

    def _caller(self, headers: Headers, route: FastRoute) -> str:
        # gameplane.kit.auth.Callers, on raw headers instead of a Starlette Request.
        token = bearer_token(headers.get("authorization", ""))
        rt = self.runtime
        claims = verify_service_token(rt.trusted_keys, token, rt.name)
        return check_caller(claims, route.callers, f"{route.method} {route.template}")

    def _observe(self, method: str, template: str, status: int, elapsed: float) -> None:
        key = (method, template, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.HTTP_REQUESTS.labels(self.service, method, template, str(status))
        counter.inc()
        hkey = (method, template)
        hist = self._histograms.get(hkey)
        if hist is None:
            hist = self._histograms[hkey] = metrics.HTTP_LATENCY.labels(self.service, method, template)
        hist.observe(elapsed)


class FastRoutesApp(FrontedApp):
    """A FastAPI app whose HTTP requests meet its fast routes first.
    Pass as `create_app(..., app_class=FastRoutesApp)`, then `install` the table."""


def install(app: FastAPI, runtime: Runtime, routes: Sequence[FastRoute]) -> FastRoutes:
    if not isinstance(app, FastRoutesApp):
        raise TypeError("fast routes need create_app(..., app_class=FastRoutesApp)")
    fast = FastRoutes(app.inner, runtime, routes)
    app.front = fast
    return fast


# ---- FastAPI's body handling, reproduced -------------------------------------------------------

def _unparsable() -> StarletteHTTPException:
    return StarletteHTTPException(400, "There was an error parsing the body")


class _RequestInvalid(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("request validation failed")
        self.errors = errors


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _is_json(content_type: str) -> bool:
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _decode_like_fastapi(body: bytes, content_type: str | None) -> Any:
    """What FastAPI hands its body validator (strict content type, as create_app leaves it):
    nothing for an empty body, parsed JSON for a JSON content type, the bytes otherwise."""
    if not body:
        return _UNSET
    if content_type and _is_json(content_type):
        try:
            return json.loads(body)
        except json.JSONDecodeError as e:
            raise _RequestInvalid([{"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error",
                                    "input": {}, "ctx": {"error": e.msg}}])
        except Exception:  # not UTF-8/16/32 at all, say: FastAPI's catch-all
            raise _unparsable()
    return body


def _validate(model: type[BaseModel], body: bytes, content_type: str | None) -> BaseModel:
    if content_type == "application/json" and body:
        try:
            # The fast way: straight from the bytes, no intermediate dict.
            return model.model_validate_json(body)
        except ValidationError:
            pass  # FastAPI's way below, for its exact errors (and its verdict, should the modes differ)
    value = _decode_like_fastapi(body, content_type)
    if value is _UNSET:
        raise _RequestInvalid([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        return model.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        raise _RequestInvalid([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)])


def _problem(problem: Problem, instance: str) -> Reply:
    return response_reply(problems.problem_json(problem, instance))
