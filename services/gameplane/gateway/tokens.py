"""Tokens on the hot path: player access tokens verified once (against players' published keys)
and remembered until they expire, and one service token per target, signed with the gateway's own
key, reused until close to its expiry."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from gameplane.gateway.problems import TOKEN_REQUIRED
from gameplane.kit.auth import SERVICE_TOKEN_TTL, issue_service_token, token_kid, verify_player_token
from gameplane.kit.jwks import KeySource
from gameplane.kit.keys import SigningKey
from gameplane.kit.problems import Problem

# The latest `exp` taken seriously (year 9999): beyond it a float cannot hold the second exactly.
_MAX_EXP = 253_402_300_799


class ServiceTokens:
    """Authorization header values (`Bearer <token>`) per target service."""

    def __init__(self, key: SigningKey, issuer: str = "gateway", *, ttl: int = SERVICE_TOKEN_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._issuer = issuer
        self._ttl = ttl
        self._now = clock
        self._cache: dict[str, tuple[str, float]] = {}

    def header(self, target: str) -> str:
        now = self._now()
        hit = self._cache.get(target)
        if hit is not None and now < hit[1]:
            return hit[0]
        token = issue_service_token(self._key, self._issuer, target, self._ttl)
        value = "Bearer " + token
        # Renew with a third of the lifetime left: clocks drift and requests take time in flight.
        self._cache[target] = (value, now + self._ttl * 2 / 3)
        return value


class PlayerTokens:
    """Verifies access tokens with the kit against players' keys (`keys`: its JWKS, fetched and
    cached) and remembers the claims of good ones until `exp`.

    A verified token stays valid until it expires whatever we do (the kit does not check
    revocation either), so remembering it changes nothing but the cost of the next request.
    Failures are never remembered. Bounded: the oldest entries go first.
    """

    def __init__(self, keys: KeySource, *, size: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._size = size
        self._now = clock
        self._cache: dict[str, tuple[dict[str, Any], float]] = {}

    async def verify(self, token: str) -> dict[str, Any]:
        hit = self._cache.get(token)
        if hit is not None:
            if self._now() < hit[1]:
                return hit[0]
            del self._cache[token]
        keys = await self._keys.keys_for(token_kid(token))
        claims = _complete(verify_player_token(keys, token))  # raises Problem 401
        if self._size:
            if len(self._cache) >= self._size:
                for stale in list(self._cache)[: max(1, self._size // 10)]:
                    del self._cache[stale]
            self._cache[token] = (claims, float(claims["exp"]))
        return claims


def _complete(claims: dict[str, Any]) -> dict[str, Any]:
    """A correctly signed token still has to carry what the gateway relies on: an integer `exp`
    and a player id in `sub` (forwarded as X-Player-Id). Anything else is a 401, never a 500."""
    exp, sub = claims.get("exp"), claims.get("sub")
    if isinstance(exp, bool) or not isinstance(exp, int) or not 0 < exp <= _MAX_EXP:
        raise _incomplete("`exp` is missing or not a time")
    if not isinstance(sub, str) or not _is_uuid(sub):
        raise _incomplete("`sub` is missing or not a player id")
    return claims


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _incomplete(detail: str) -> Problem:
    return Problem(*TOKEN_REQUIRED[:2], "Invalid access token", detail, headers={"WWW-Authenticate": "Bearer"})
