"""Service tokens (east-west) and players-signed tokens (north-south), short-lived EdDSA JWTs.

A service token is signed with the calling service's own key (`iss` = caller, `aud` = callee,
`kid` = the key's thumbprint); the callee checks it against the public keys it trusts, where
each key is bound to the one service that owns it, so no service can speak for another. Every
internal route then names the callers it accepts (`callers("games")`); anyone else gets 403
`caller-not-allowed`. Tokens signed by players (player access tokens, and any other `typ` the
players service issues) are checked against players' published keys only.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Request

from gameplane.kit.keys import ALGORITHM, KeySet, SigningKey
from gameplane.kit.problems import CALLER_NOT_ALLOWED, FORBIDDEN, UNAUTHENTICATED, Problem

SERVICE_TOKEN_TTL = 60
PLAYER_HEADER = "X-Player-Id"
# The client's address as the gateway judged it (trusted proxy hops applied); only the gateway's
# word for it counts, like X-Player-Id (the gateway drops a client's own).
CLIENT_IP_HEADER = "X-Client-Ip"
PLAYERS = "players"  # the service that signs player (and staff) tokens
# Who may vouch for a player with X-Player-Id: the edge that verified the player's token.
PLAYER_VOUCHERS: frozenset[str] = frozenset({"gateway"})
LEEWAY = 5
_VERIFIED_MAX = 4096


def issue_service_token(key: SigningKey, issuer: str, audience: str, ttl: int = SERVICE_TOKEN_TTL) -> str:
    now = int(time.time())
    return jwt.encode({"iss": issuer, "aud": audience, "iat": now, "exp": now + ttl, "typ": "service"},
                      key.private, algorithm=ALGORITHM, headers={"kid": key.kid})


def token_kid(token: str) -> str | None:
    """The `kid` of a token's header, unverified (to pick the key), or None when unreadable."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    return kid if isinstance(kid, str) else None


def _unauthenticated(title: str, detail: str | None = None) -> Problem:
    return Problem(401, "unauthenticated", title, detail, headers={"WWW-Authenticate": "Bearer"})


def verify_service_token(keys: KeySet, token: str, audience: str) -> dict[str, Any]:
    """The claims of a service token meant for `audience`, signed by the key of the service it
    names as issuer. 401 for any token that is not that; 403 for one meant for another service."""
    # A caller reuses one token for most of its life, so verified claims are kept (with the key
    # set they were checked against) until they expire: the signature check then happens once
    # per token instead of once per request.
    cached = keys.verified.get(token)
    if cached is not None and cached["exp"] > time.time():
        return _check_audience(cached, audience)
    kid = token_kid(token)
    trusted = keys.keys.get(kid) if kid else None
    if trusted is None:
        raise _unauthenticated("Invalid service token", "signed with a key this service does not trust")
    try:
        claims = jwt.decode(token, trusted.public, algorithms=[ALGORITHM], leeway=LEEWAY,
                            options={"verify_aud": False, "require": ["iss", "aud", "exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise _unauthenticated("Service token expired")
    except jwt.PyJWTError as exc:
        raise _unauthenticated("Invalid service token", str(exc))
    if claims.get("typ") != "service":
        raise _unauthenticated("Not a service token")
    if claims["iss"] != trusted.owner:
        raise _unauthenticated("Invalid service token",
                               f"issuer {claims['iss']!r} signed with a key of {trusted.owner!r}")
    if len(keys.verified) >= _VERIFIED_MAX:
        keys.verified.clear()
    keys.verified[token] = claims
    return _check_audience(claims, audience)


def _check_audience(claims: dict[str, Any], audience: str) -> dict[str, Any]:
    if claims.get("aud") != audience:
        raise Problem(403, "forbidden", "Service token not meant for this service",
                      f"audience {claims.get('aud')!r} is not {audience!r}")
    return claims


def check_caller(claims: dict[str, Any], allowed: frozenset[str], route: str) -> str:
    """The caller's name when it is one of `allowed`; otherwise 403 `caller-not-allowed`."""
    caller = str(claims["iss"])
    if caller not in allowed:
        raise Problem(*CALLER_NOT_ALLOWED,
                      f"{route} accepts calls from {', '.join(sorted(allowed))} only; not from {caller!r}",
                      caller=caller, allowed=sorted(allowed))
    return caller


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header value, or a 401 problem."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "unauthenticated", "Service token required",
                      headers={"WWW-Authenticate": "Bearer"})
    return token


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', None) or request.url.path}"


class Callers:
    """Dependency of an internal route: the verified calling service, if it is one of `allowed`.
    Its value is the caller's name. Build with `callers(...)`."""

    # What it refuses, for the OpenAPI documents (gameplane.kit.apidoc).
    problem_types = (UNAUTHENTICATED, FORBIDDEN, CALLER_NOT_ALLOWED)

    def __init__(self, allowed: frozenset[str]) -> None:
        if not allowed:
            raise ValueError("a route must accept at least one caller")
        self.allowed = allowed

    async def __call__(self, request: Request) -> str:
        rt = request.app.state.runtime
        token = bearer_token(request.headers.get("authorization", ""))
        claims = verify_service_token(rt.trusted_keys, token, rt.name)
        return check_caller(claims, self.allowed, _route_name(request))

    def __repr__(self) -> str:
        return f"callers({', '.join(sorted(self.allowed))})"


def callers(*names: str) -> Callers:
    """`Depends(callers("games"))`: only the games service may call this route."""
    return Callers(frozenset(names))


@dataclass(frozen=True)
class PlayerContext:
    player_id: uuid.UUID
    caller: str


_vouchers = Callers(PLAYER_VOUCHERS)


async def player_context(request: Request) -> PlayerContext:
    """Dependency for player-facing routes: the gateway verified the player JWT and says who it is.
    Only a caller in PLAYER_VOUCHERS (the gateway) may say so."""
    caller = await _vouchers(request)
    raw = request.headers.get(PLAYER_HEADER)
    if not raw:
        raise Problem(401, "unauthenticated", "Player authentication required")
    try:
        return PlayerContext(uuid.UUID(raw), caller)
    except ValueError:
        raise Problem(401, "unauthenticated", "Malformed player id")


# ---- tokens signed by players (player access tokens; staff tokens reuse the same pair) ----------

def issue_player_token(key: SigningKey, subject: uuid.UUID | str, *, typ: str = "access", ttl: int = 900,
                       **claims: Any) -> str:
    """A token signed with players' key. `typ` names what it is ("access" for players; other
    kinds, such as staff tokens, pass their own), and `verify_player_token` checks it."""
    now = int(time.time())
    payload = {"sub": str(subject), "iat": now, "exp": now + ttl, "typ": typ, "iss": PLAYERS,
               "jti": uuid.uuid4().hex, **claims}
    return jwt.encode(payload, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})


def verify_player_token(keys: KeySet, token: str, *, typ: str = "access") -> dict[str, Any]:
    """The claims of a token of kind `typ` signed by players, or 401 (`token-expired` when it only
    expired). `keys`: players' public keys (its JWKS); a key owned by anyone else never verifies."""
    challenge = {"WWW-Authenticate": "Bearer"}
    kid = token_kid(token)
    trusted = keys.keys.get(kid) if kid else None
    if trusted is None or trusted.owner != PLAYERS:
        raise Problem(401, "unauthenticated", "Invalid access token", "not signed with a key of players",
                      headers=challenge)
    try:
        claims = jwt.decode(token, trusted.public, algorithms=[ALGORITHM], leeway=LEEWAY, issuer=PLAYERS,
                            options={"verify_aud": False, "require": ["sub", "exp", "iat", "iss", "typ"]})
    except jwt.ExpiredSignatureError:
        raise Problem(401, "token-expired", "Access token expired", headers=challenge)
    except jwt.PyJWTError as exc:
        raise Problem(401, "unauthenticated", "Invalid access token", str(exc), headers=challenge)
    if claims.get("typ") != typ:
        raise Problem(401, "unauthenticated", "Invalid access token", f"not a token of type {typ!r}",
                      headers=challenge)
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise Problem(401, "unauthenticated", "Invalid access token", "no subject", headers=challenge)
    return claims
