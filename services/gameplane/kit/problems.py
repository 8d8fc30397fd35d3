"""RFC 9457 problem details with a stable `type` per error."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    return problem_json(problem, str(request.url.path) if request is not None else None)


def problem_json(problem: Problem, instance: str | None = None) -> JSONResponse:
    """The one rendering of a problem, shared with the kit's fast routes (gameplane.kit.fastroutes)."""
    return JSONResponse(problem.body(instance), status_code=problem.status,
                        media_type=PROBLEM_JSON, headers=problem.headers)


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


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(validation_problem(exc.errors()), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(http_problem(exc.status_code, exc.detail, exc.headers), request)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem(500, "internal-error", "Internal error"), request)
