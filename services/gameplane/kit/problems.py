"""RFC 9457 problem details with a stable `type` per error.

A route declares the problem types it answers once, as `ProblemType`s: the same objects raise
(`NOT_FOUND("no such hold")`) and document (`responses=problems.responses(NOT_FOUND)`); the kit's
OpenAPI pass (gameplane.kit.apidoc) adds the types every route gets from the kit itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_BASE = "https://gameplane.io/problems/"
PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("gameplane.problems")


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem+json body."""

    def __init__(self, status: int, slug: str, title: str, detail: str | None = None,
                 headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": PROBLEM_BASE + self.slug, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class ProblemType(NamedTuple):
    """One kind of refusal: its status, stable slug and title (a tuple, so a Problem subclass can
    start from one: `super().__init__(*NOT_FOUND, detail)`)."""

    status: int
    slug: str
    title: str

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def __call__(self, detail: str | None = None, *, headers: dict[str, str] | None = None,
                 **extensions: Any) -> Problem:
        return Problem(self.status, self.slug, self.title, detail, headers, **extensions)


# What the kit itself answers (request parsing, service tokens, routing).
VALIDATION = ProblemType(422, "validation-error", "Request validation failed")
BAD_REQUEST = ProblemType(400, "bad-request", "Malformed request")
UNAUTHENTICATED = ProblemType(401, "unauthenticated", "Authentication required")
FORBIDDEN = ProblemType(403, "forbidden", "Forbidden")
CALLER_NOT_ALLOWED = ProblemType(403, "caller-not-allowed", "Caller not allowed on this route")
NOT_FOUND = ProblemType(404, "not-found", "Not Found")
METHOD_NOT_ALLOWED = ProblemType(405, "method-not-allowed", "Method Not Allowed")


def responses(*types: ProblemType) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` for these problem types: one answer per status, whose schema names
    the types it may carry (merged with the kit's own by gameplane.kit.apidoc)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status, group in _by_status(types).items():
        out[status] = {"description": "; ".join(t.title for t in group),
                       "content": {PROBLEM_JSON: {"schema": problem_schema(group)}}}
    return out


def _by_status(types: Iterable[ProblemType]) -> dict[int, list[ProblemType]]:
    grouped: dict[int, list[ProblemType]] = {}
    for t in types:
        if t.slug not in {g.slug for g in grouped.get(t.status, [])}:
            grouped.setdefault(t.status, []).append(t)
    return grouped


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"


def problem_schema(types: Iterable[ProblemType]) -> dict[str, Any]:
    """The problem schema narrowed to these types (and their status)."""
    types = list(types)
    return {"allOf": [{"$ref": PROBLEM_SCHEMA_REF}],
            "properties": {"type": {"enum": sorted({t.uri for t in types})},
                           "status": {"enum": sorted({t.status for t in types})}}}


PROBLEM_COMPONENT: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `type` is stable per kind of error. Extension members "
                   "(e.g. `errors`, `balance`, `reason`) depend on the type.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    return problem_json(problem, str(request.url.path) if request is not None else None)


def problem_json(problem: Problem, instance: str | None = None) -> JSONResponse:
    """The one rendering of a problem, shared with the kit's fast routes (gameplane.kit.fastroutes)."""
    return JSONResponse(problem.body(instance), status_code=problem.status,
                        media_type=PROBLEM_JSON, headers=problem.headers)


# SQLSTATEs of text PostgreSQL cannot store (a NUL character) and of numbers out of a column's range.
_UNSTORABLE_SQLSTATES = {"22021": "text contains a character that cannot be stored (NUL)",
                         "22P05": "text contains a character that cannot be stored (NUL)",
                         "22003": "a number is out of range"}


def input_problem(exc: BaseException) -> Problem | None:
    """A request that failed in the database because of what it carried (a NUL character in a
    string, a number out of range) is the caller's fault: a 422, never a 500. None otherwise."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        state = getattr(cur, "sqlstate", None) or getattr(cur, "pgcode", None)
        if state in _UNSTORABLE_SQLSTATES:
            return VALIDATION(_UNSTORABLE_SQLSTATES[state], errors=[])
        text = str(cur)
        # asyncpg refuses an int beyond 64 bits client-side, before PostgreSQL sees it.
        if "out of int64 range" in text or "out of int32 range" in text or "out of int16 range" in text:
            return VALIDATION(_UNSTORABLE_SQLSTATES["22003"], errors=[])
        cur = getattr(cur, "orig", None) or cur.__cause__ or cur.__context__
    return None


# What the database says when it could not serve the request now but would on a second try: a
# deadlock or serialization failure that outlived the retries, a lock or statement time-out, a
# server too busy or shutting down, a lost connection. The caller repeats with the same
# idempotency key (money routes replay, never double), so this is a 503 with Retry-After, not a 500.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57014", "53300", "57P01", "57P02", "57P03"}


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = getattr(cur, "orig", None) or cur.__cause__ or cur.__context__


def transient_problem(exc: BaseException) -> Problem | None:
    """503 `dependency-unavailable` (dependency postgres, Retry-After) for a database failure that a
    repeat would not meet; None otherwise."""
    for cur in _chain(exc):
        state = getattr(cur, "sqlstate", None) or getattr(cur, "pgcode", None)
        if (isinstance(state, str) and (state in _TRANSIENT_SQLSTATES or state.startswith("08"))) \
                or isinstance(cur, (ConnectionError, SQLAlchemyTimeoutError,
                                    asyncpg.exceptions.InterfaceError)):
            return Problem(503, "dependency-unavailable", "Service postgres is unavailable",
                           f"the database could not serve the request now ({state or type(cur).__name__}); "
                           "repeat it", headers={"Retry-After": "1"}, dependency="postgres")
    return None


def known_problem(exc: BaseException) -> Problem | None:
    """The problem an unexpected exception really is (the caller's input, or a transient database
    failure), or None for a bug (a 500)."""
    return input_problem(exc) or transient_problem(exc)


def validation_problem(errors: Iterable[Mapping[str, Any]]) -> Problem:
    """422 for request validation errors (FastAPI's, or pydantic's with the same `loc` prefix):
    shared by the FastAPI handler and the fast routes so both answer byte for byte alike."""
    shown = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]
    return Problem(422, "validation-error", "Request validation failed",
                   "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in shown), errors=shown)


def http_problem(status_code: int, detail: Any, headers: Mapping[str, str] | None = None) -> Problem:
    """A Starlette HTTPException (404, 405, 400 on an unreadable body, ...) as a problem."""
    return Problem(status_code, _HTTP_SLUGS.get(status_code, "http-error"), str(detail),
                   headers=dict(headers) if headers else None)


_HTTP_SLUGS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 409: "conflict", 429: "rate-limited", 503: "unavailable"}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, scope: Mapping[str, Any]) -> list[str]:
    """Every method some route of `app` answers on this path."""
    allowed = []
    for method in _METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(validation_problem(exc.errors()), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route that matched the path; several
            # routes may share it (GET and POST /kyc are two routes): name them all.
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return problem_response(http_problem(exc.status_code, exc.detail, headers), request)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        # Registered by class (not left to the catch-all) so a refusal is answered as a 4xx
        # without Starlette re-raising it as a server error.
        refused = known_problem(exc)
        if refused is None:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            refused = Problem(500, "internal-error", "Internal error")
        elif refused.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, refused.detail, exc_info=exc)
        return problem_response(refused, request)

    app.add_exception_handler(asyncpg.PostgresError, _database)
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(Exception, _database)
