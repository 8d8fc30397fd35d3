"""The back office service: staff screens by role, server-rendered, on the services' back-office
routes (its service token + the person's staff token). No database: the only state is the staff
member's session cookie, which holds their own short-lived staff token."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gameplane.backoffice import display
from gameplane.backoffice.session import NeedsSignIn, ScreenForbidden
from gameplane.backoffice.settings import BackofficeSettings
from gameplane.backoffice.upstream import Forbidden, Refused, SessionEnded, Unavailable
from gameplane.backoffice.views import render, router
from gameplane.kit.app import Runtime, create_app
from gameplane.kit.pages import CSRF_FAILED, ContentSecurityPolicy, Pages
from gameplane.kit.problems import Problem, problem_response, validation_problem

SESSION_COOKIE = "gp-staff"


def build_app(settings: BackofficeSettings | None = None) -> FastAPI:
    settings = settings or BackofficeSettings()
    # It publishes and consumes nothing: no NATS connection even where the platform hands every
    # service the broker's URL (`gameplane up`, the charts' ConfigMap).
    settings = settings.model_copy(update={"nats_url": None})
    runtime = Runtime("backoffice", settings)
    app = create_app(runtime, [router], title="gameplane back office",
                     description="Staff screens by role: players and KYC, held withdrawals, risk cases, bonus "
                                 "campaigns, affiliate statements, KPIs, the audit log.")
    pages = Pages("gameplane.backoffice", session_cookie=SESSION_COOKIE,
                  session_ttl_seconds=settings.session_ttl_seconds, policy=ContentSecurityPolicy())
    pages.templates.env.filters.update(money=display.money, percent=display.percent, when=display.when,
                                      change=display.change)
    pages.install(app)
    app.state.pages = pages

    @app.exception_handler(NeedsSignIn)
    async def _sign_in(request: Request, exc: NeedsSignIn) -> Response:
        response = RedirectResponse("/login?expired=true" if exc.expired else "/login", status_code=303)
        if exc.expired:
            pages.end_session(response)
        return response

    @app.exception_handler(SessionEnded)
    async def _ended(request: Request, exc: SessionEnded) -> Response:
        response = RedirectResponse("/login?expired=true", status_code=303)
        pages.end_session(response)
        return response

    @app.exception_handler(ScreenForbidden)
    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Exception) -> HTMLResponse:
        return render(request, "forbidden.html", status_code=403)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> HTMLResponse:
        # a refusal a page could not turn into a form message (an unknown player in the address)
        return render(request, "refused.html", status_code=exc.status, words=exc.words)

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> HTMLResponse:
        return render(request, "unavailable.html", status_code=503, service=exc.service)

    # A person's browser gets a page in words; any other client the platform's problem+json.
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if not wants_html(request):
            return problem_response(validation_problem(exc.errors()), request)
        fields = ", ".join(sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")}))
        return render(request, "invalid.html", status_code=422, fields=fields, stale=False)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        if exc.slug == CSRF_FAILED.slug and wants_html(request):
            return render(request, "invalid.html", status_code=403, fields="", stale=True)
        return problem_response(exc, request)

    return app


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")
