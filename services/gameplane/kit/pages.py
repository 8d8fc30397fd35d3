"""Server-rendered pages, shared by the frontends (web, backoffice): templates and static files
from the service's package, the session cookie, CSRF protection and the headers every page carries.

The session cookie holds only the signed-in person's own token (HttpOnly, Secure, SameSite=Strict,
`__Host-` prefixed so no subdomain or path can shadow it). CSRF uses a second, random cookie that
every unsafe request must echo in a form field or header (double submit): SameSite=Strict already
stops cross-site posts in current browsers; the token also covers older ones and same-site
attackers. Chromium treats http://localhost and 127.0.0.1 as secure, so Secure cookies work in
`gameplane up` as they do behind TLS.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gameplane.kit.problems import ProblemType

CSRF_COOKIE = "__Host-gp-csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSRF_FAILED = ProblemType(403, "csrf-failed", "The form is stale or was not sent by this site; reload the page")


@dataclass(frozen=True)
class ContentSecurityPolicy:
    """A strict policy: scripts, styles and images from the site itself only (no inline script), no
    plugins, and the site never framed. `frame_src` and `form_action` name the other origins a
    frontend opens in a frame (a game) or sends a form to, including a redirect after a form post
    (a payment page): browsers apply `form-action` to those redirects too. `frame_ancestors` names
    the only sites that may frame this one (a game page inside the player site); empty: none."""

    frame_src: tuple[str, ...] = ()
    form_action: tuple[str, ...] = ()
    connect_src: tuple[str, ...] = ()
    frame_ancestors: tuple[str, ...] = ()

    def header(self) -> str:
        def sources(extra: Iterable[str]) -> str:
            return " ".join(("'self'", *extra))

        return "; ".join((
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {sources(self.connect_src)}",
            f"frame-src {sources(self.frame_src)}" if self.frame_src else "frame-src 'none'",
            f"form-action {sources(self.form_action)}",
            f"frame-ancestors {' '.join(self.frame_ancestors)}" if self.frame_ancestors else "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        ))


class SecurityHeaders:
    """Adds the policy and the usual hardening headers to every response; HTML is never cached
    (pages show balances and personal data)."""

    def __init__(self, app: ASGIApp, policy: ContentSecurityPolicy) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", policy.header().encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if not policy.frame_ancestors:
            # X-Frame-Options cannot name several origins: a page framed by some sites relies on CSP alone.
            self.headers.append((b"x-frame-options", b"DENY"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in self.headers if h[0] not in names]
                if any(n == b"content-type" and v.startswith(b"text/html") for n, v in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Pages:
    """Templates (`<package>/templates`), static files (`<package>/static` at /static) and the
    session of one frontend. `install` adds the headers and the static mount to the app."""

    def __init__(self, package: str, *, session_cookie: str, session_ttl_seconds: int,
                 policy: ContentSecurityPolicy | None = None) -> None:
        self.package = package
        self.session_cookie = f"__Host-{session_cookie}"
        self.session_ttl_seconds = session_ttl_seconds
        self.policy = policy or ContentSecurityPolicy()
        self.templates = Jinja2Templates(directory=str(files(package) / "templates"))

    def install(self, app: FastAPI) -> None:
        app.add_middleware(SecurityHeaders, policy=self.policy)
        app.mount("/static", StaticFiles(packages=[(self.package, "static")]), name="static")

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = self.templates.TemplateResponse(
            request, template, {**context, CSRF_FIELD: token}, status_code=status_code)
        if request.cookies.get(CSRF_COOKIE) != token:
            set_cookie(response, CSRF_COOKIE, token, max_age=None)
        return response

    def session(self, request: Request) -> str | None:
        return request.cookies.get(self.session_cookie) or None

    def start_session(self, response: Response, token: str) -> None:
        set_cookie(response, self.session_cookie, token, max_age=self.session_ttl_seconds)
        # A new session gets a new CSRF token: a token planted before sign-in must not survive it.
        set_cookie(response, CSRF_COOKIE, secrets.token_urlsafe(32), max_age=None)

    def end_session(self, response: Response) -> None:
        response.delete_cookie(self.session_cookie, path="/", secure=True, httponly=True, samesite="strict")


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None) -> None:
    # HttpOnly for the CSRF cookie too: scripts read the token from the page (a meta tag), not the cookie.
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


async def verify_csrf(request: Request) -> None:
    """Dependency for every unsafe route of a frontend: the request echoes the CSRF cookie."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = str((await request.form()).get(CSRF_FIELD) or "")
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        raise CSRF_FAILED("the CSRF token is missing or does not match")
