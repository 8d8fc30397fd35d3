"""Service tokens (east-west) and player access tokens (north-south), both short-lived JWTs."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Request

from gameplane.kit.problems import Problem

SERVICE_TOKEN_TTL = 60
PLAYER_HEADER = "X-Player-Id"


def issue_service_token(secret: str, issuer: str, audience: str, ttl: int = SERVICE_TOKEN_TTL) -> str:
    now = int(time.time())
    return jwt.encode({"iss": issuer, "aud": audience, "iat": now, "exp": now + ttl, "typ": "service"},
                      secret, algorithm="HS256")


# A caller reuses one token for most of its life, so verified claims are kept until they expire:
# the HMAC and JSON work then happens once per token instead of once per request.
_VERIFIED: dict[tuple[str, str], dict[str, Any]] = {}
_VERIFIED_MAX = 4096


def verify_service_token(secret: str, token: str, audience: str) -> dict[str, Any]:
    cached = _VERIFIED.get((secret, token))
    if cached is not None and cached["exp"] > time.time():
        return _check_service_claims(cached, audience)
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False},
                            leeway=5, required=["iss", "aud", "exp"])
    except jwt.ExpiredSignatureError:
        raise Problem(401, "unauthenticated", "Service token expired")
    except jwt.PyJWTError as exc:
        raise Problem(401, "unauthenticated", "Invalid service token", str(exc))
    if claims.get("typ") != "service":
        raise Problem(401, "unauthenticated", "Not a service token")
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(secret, token)] = claims
    return _check_service_claims(claims, audience)


def _check_service_claims(claims: dict[str, Any], audience: str) -> dict[str, Any]:
    if claims.get("aud") != audience:
        raise Problem(403, "forbidden", "Service token not meant for this service",
                      f"audience {claims.get('aud')!r} is not {audience!r}")
    return claims


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header value, or a 401 problem."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "unauthenticated", "Service token required",
                      headers={"WWW-Authenticate": "Bearer"})
    return token


def _bearer(request: Request) -> str:
    return bearer_token(request.headers.get("authorization", ""))


async def service_caller(request: Request) -> str:
    """Dependency for every internal route: the calling service's name, from a verified token."""
    rt = request.app.state.runtime
    claims = verify_service_token(rt.settings.service_token_secret, _bearer(request), rt.name)
    return str(claims["iss"])


@dataclass(frozen=True)
class PlayerContext:
    player_id: uuid.UUID
    caller: str


async def player_context(request: Request) -> PlayerContext:
    """Dependency for player-facing routes: the gateway verified the player JWT and says who it is."""
    caller = await service_caller(request)
    raw = request.headers.get(PLAYER_HEADER)
    if not raw:
        raise Problem(401, "unauthenticated", "Player authentication required")
    try:
        return PlayerContext(uuid.UUID(raw), caller)
    except ValueError:
        raise Problem(401, "unauthenticated", "Malformed player id")


def issue_player_token(secret: str, player_id: uuid.UUID, ttl: int = 900, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": str(player_id), "iat": now, "exp": now + ttl, "typ": "access", "iss": "players",
               "jti": uuid.uuid4().hex, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def verify_player_token(secret: str, token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=5, required=["sub", "exp"],
                            issuer="players")
    except jwt.ExpiredSignatureError:
        raise Problem(401, "token-expired", "Access token expired", headers={"WWW-Authenticate": "Bearer"})
    except jwt.PyJWTError:
        raise Problem(401, "unauthenticated", "Invalid access token", headers={"WWW-Authenticate": "Bearer"})
    if claims.get("typ") != "access":
        raise Problem(401, "unauthenticated", "Not an access token")
    return claims
