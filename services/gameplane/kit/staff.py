"""Staff (back-office) access: the staff token and the `staff(*roles)` route dependency.

A person of the operator's staff logs in at the players service (username, password, TOTP) and
gets a short-lived staff token: a JWT with `typ` "staff", `sub` the staff account's id, `name`
its username and `roles`. Back-office routes are internal routes: the calling service proves
itself with its service token (`Authorization`), the person behind the call with the staff
token in `X-Staff-Token`, and each route names the roles it accepts:

    @internal.post("/adjustments")
    async def adjust(..., who: StaffContext = Depends(staff("finance", "admin"))): ...

Missing, malformed or expired staff token: 401 `staff-unauthenticated`. A valid token without
an accepted role: 403 `staff-role-forbidden`, naming the roles the route accepts.

Staff tokens are signed with the players service's own key, exactly like player access tokens
(gameplane.kit.auth.issue_player_token with `typ` "staff"), and every service checks them against
players' public keys only: no other service can mint one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, get_args

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from gameplane.kit.auth import PLAYERS, issue_player_token, verify_player_token
from gameplane.kit.keys import KeySet, SigningKey
from gameplane.kit.problems import Problem, ProblemType

Role = Literal["support", "risk", "finance", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
STAFF_HEADER = "X-Staff-Token"
STAFF_TOKEN_TTL = 600
# Who the token is for: a staff token presented where a player access token is expected fails
# PyJWT's audience check, and `typ` tells them apart a second time.
STAFF_AUDIENCE = "backoffice"
ISSUER = "players"


@dataclass(frozen=True, slots=True)
class StaffContext:
    """Who is acting, from a verified staff token."""

    id: uuid.UUID
    username: str
    roles: tuple[Role, ...]

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


STAFF_UNAUTHENTICATED = ProblemType(401, "staff-unauthenticated", "Staff authentication required")
STAFF_ROLE_FORBIDDEN = ProblemType(403, "staff-role-forbidden", "Staff role not allowed here")


class StaffUnauthenticated(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(*STAFF_UNAUTHENTICATED, detail,
                         headers={"WWW-Authenticate": f'StaffToken header="{STAFF_HEADER}"'})


class StaffRoleForbidden(Problem):
    def __init__(self, accepted: tuple[Role, ...], held: tuple[Role, ...]) -> None:
        super().__init__(*STAFF_ROLE_FORBIDDEN,
                         f"this action needs one of the roles {', '.join(accepted)}; "
                         f"the token has {', '.join(held) or 'none'}",
                         accepted_roles=list(accepted), roles=list(held))


def issue_staff_token(key: SigningKey, staff_id: uuid.UUID, username: str, roles: tuple[Role, ...] | list[Role],
                      ttl: int = STAFF_TOKEN_TTL) -> str:
    return issue_player_token(key, staff_id, typ="staff", ttl=ttl, name=username, roles=sorted(roles),
                              aud=STAFF_AUDIENCE)


def verify_staff_token(keys: KeySet, token: str) -> StaffContext:
    try:
        claims = verify_player_token(keys, token, typ="staff")
    except Problem as exc:
        expired = exc.slug == "token-expired"
        raise StaffUnauthenticated("the staff token has expired; log in again" if expired
                                   else "the staff token is not valid") from None
    if claims.get("aud") != STAFF_AUDIENCE:
        raise StaffUnauthenticated("not a staff token")
    roles = claims.get("roles")
    if claims.get("typ") != "staff" or not isinstance(roles, list) or not isinstance(claims.get("name"), str):
        raise StaffUnauthenticated("not a staff token")
    try:
        staff_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise StaffUnauthenticated("not a staff token")
    # Unknown role names (a newer issuer) grant nothing here rather than failing the token.
    return StaffContext(staff_id, claims["name"], tuple(r for r in ROLES if r in roles))


# Declared as a security scheme so every back-office route's OpenAPI entry names the header.
_STAFF_SCHEME = APIKeyHeader(name=STAFF_HEADER, scheme_name="StaffToken", auto_error=False,
                             description="staff token from POST /internal/players/staff/login")


def staff_keys(request: Request) -> KeySet:
    """Players' public keys among the service's trusted keys (a staff token signed by any other
    key never verifies)."""
    return request.app.state.runtime.trusted_keys.owned_by(PLAYERS)


def staff(*accepted: Role) -> Callable[[Request], Awaitable[StaffContext]]:
    """Dependency of a back-office route: the staff member acting, who must hold one of `accepted`.

    The service token is checked by the route's own dependency (the caller that forwards it); this
    one checks the person."""
    if not accepted or any(r not in ROLES for r in accepted):
        raise ValueError(f"staff() needs roles among {ROLES}, got {accepted}")

    async def dependency(request: Request, token: str | None = Security(_STAFF_SCHEME)) -> StaffContext:
        token = (token or "").strip()
        if not token:
            raise StaffUnauthenticated(f"this route needs a staff token in the {STAFF_HEADER} header")
        who = verify_staff_token(staff_keys(request), token)
        if not any(r in who.roles for r in accepted):
            raise StaffRoleForbidden(accepted, who.roles)
        return who

    dependency.__name__ = f"staff_{'_'.join(accepted)}"
    dependency.problem_types = (STAFF_UNAUTHENTICATED, STAFF_ROLE_FORBIDDEN)  # type: ignore[attr-defined]
    return dependency
