"""Calls to the services behind the screens, on behalf of the signed-in staff member: the back
office's own service token (`Authorization`) plus the person's staff token (`X-Staff-Token`), so
every service checks the person's roles itself and audits the person, not the back office.

What can go wrong is sorted here once, for every screen: a service that is not running or not
answering -> `Unavailable` (the page says the feature is unavailable right now); the staff token
refused -> `SessionEnded` (sign in again); a role refused -> `Forbidden` (the 403 page); any other
refusal -> `Refused`, whose words (the problem's title and detail) are shown on the form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gameplane.kit.app import Runtime
from gameplane.kit.http import DependencyError, ServiceResponse
from gameplane.kit.staff import STAFF_HEADER


class Unavailable(Exception):
    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service


class SessionEnded(Exception):
    pass


class Forbidden(Exception):
    pass


class Refused(Exception):
    def __init__(self, status: int, slug: str, words: str) -> None:
        super().__init__(words)
        self.status = status
        self.slug = slug
        self.words = words


def slug_of(problem: dict[str, Any]) -> str:
    return str(problem.get("type", "")).rstrip("/").rsplit("/", 1)[-1]


def words_of(problem: dict[str, Any]) -> str:
    """A problem as a sentence for a person: its title, then its detail when it says more."""
    title = str(problem.get("title") or "The request was refused")
    detail = problem.get("detail")
    if isinstance(detail, list):  # validation errors: field and message
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
                           for d in detail if isinstance(d, dict))
    return f"{title}: {detail}" if detail and detail != title else title


@dataclass
class Office:
    """One staff member's calls (`token` is their staff token)."""

    rt: Runtime
    token: str
    timeout: float = 5.0

    async def call(self, service: str, method: str, path: str, *, json: Any = None,
                   params: dict[str, Any] | None = None) -> Any:
        try:
            client = self.rt.client(service, timeout=self.timeout)
        except LookupError:
            raise Unavailable(service, "not running in this platform") from None
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            r = await client.request(method, path, json=json, params=clean or None,
                                     headers={STAFF_HEADER: self.token})
        except DependencyError as exc:
            raise Unavailable(service, exc.reason) from None
        return self._answer(service, r)

    async def get(self, service: str, path: str, **params: Any) -> Any:
        return await self.call(service, "GET", path, params=params)

    async def post(self, service: str, path: str, body: Any) -> Any:
        return await self.call(service, "POST", path, json=body)

    @staticmethod
    def _answer(service: str, r: ServiceResponse) -> Any:
        if r.status_code < 300:
            return r.json() if r.content else None
        if r.status_code >= 500:
            raise Unavailable(service, f"answered {r.status_code}")
        try:
            problem = r.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        slug = slug_of(problem)
        if r.status_code == 401 and slug == "staff-unauthenticated":
            raise SessionEnded()
        if r.status_code == 403 and slug == "staff-role-forbidden":
            raise Forbidden()
        if r.status_code in (401, 403):
            # the back office itself refused (its service token): a deployment fault, not the person's
            raise Unavailable(service, f"refused the back office ({slug or r.status_code})")
        raise Refused(r.status_code, slug, words_of(problem))
