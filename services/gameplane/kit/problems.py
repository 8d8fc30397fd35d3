"""RFC 9457 problem details with a stable `type` per error."""

from __future__ import annotations

import logging
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
    instance = str(request.url.path) if request is not None else None
    return JSONResponse(problem.body(instance), status_code=problem.status,
                        media_type=PROBLEM_JSON, headers=problem.headers)


_HTTP_SLUGS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 409: "conflict", 429: "rate-limited", 503: "unavailable"}


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return problem_response(Problem(422, "validation-error", "Request validation failed",
                                        "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors),
                                        errors=errors), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = _HTTP_SLUGS.get(exc.status_code, "http-error")
        return problem_response(Problem(exc.status_code, slug, str(exc.detail), headers=exc.headers), request)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem(500, "internal-error", "Internal error"), request)
