"""The site's one way to the platform: the gateway's public API, called with the player's own
access token (the site holds no key that could act for a player it has not been given).

A refusal comes back as `ApiError` carrying the problem's stable slug and its words; a service
that is not running here, or cannot answer now, as `Unavailable`, which pages show as "this
feature is unavailable right now" instead of failing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from gameplane.kit.problems import PROBLEM_BASE

# The gateway's answer for a platform service that is not running here (or not answering), and the
# kit's for a dependency that is down: the feature, not the request, is the problem. Other 503s
# with their own type (a PSP that would not open a session, say) are refusals shown in words.
UNAVAILABLE_SLUGS = frozenset({"service-unavailable", "dependency-unavailable"})


@dataclass
class ApiError(Exception):
    status: int
    slug: str
    title: str
    detail: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail or self.title

    @property
    def words(self) -> str:
        """What the person reads: the title, and the detail when it adds something."""
        if self.detail and self.detail.lower() != self.title.lower():
            return f"{self.title}: {self.detail}"
        return self.title


class Unavailable(Exception):
    """The feature's service is not running or not answering."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def problem_of(status: int, body: Any) -> ApiError:
    if not isinstance(body, dict):
        return ApiError(status, f"http-{status}", f"The platform answered {status}")
    kind = str(body.get("type") or "")
    slug = kind.removeprefix(PROBLEM_BASE) if kind else f"http-{status}"
    extensions = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail", "instance")}
    detail = body.get("detail")
    if detail is None and isinstance(body.get("errors"), list):  # validation: the fields in words
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'input'}: {e.get('msg', '')}"
                           for e in body["errors"] if isinstance(e, dict)) or None
    return ApiError(status, slug, str(body.get("title") or f"Refused ({status})"),
                    str(detail) if detail is not None else None, extensions)


class Gateway:
    def __init__(self, base_url: str, *, timeout: float) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout,
                                      limits=httpx.Limits(max_connections=200, max_keepalive_connections=100))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                   params: dict[str, Any] | None = None, client_ip: str | None = None) -> Any:
        """The JSON answer of a 2xx (None for 204); ApiError for a refusal, Unavailable when the
        service behind the path cannot answer. `client_ip`: the player's address, sent as the one
        entry of X-Forwarded-For (the site is a proxy for the player)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if client_ip:
            headers["x-forwarded-for"] = client_ip
        try:
            r = await self.http.request(method, path, headers=headers, json=json,
                                        params={k: v for k, v in (params or {}).items() if v not in (None, "")})
        except httpx.HTTPError as exc:
            raise Unavailable(f"the platform ({exc.__class__.__name__})") from None
        if r.status_code == 204:
            return None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code < 300:
            return body
        error = problem_of(r.status_code, body)
        if error.slug in UNAVAILABLE_SLUGS or (r.status_code >= 500 and body is None):
            raise Unavailable(str(error.extensions.get("service") or error.extensions.get("dependency") or path))
        raise error
