"""Tokens on the hot path: player access tokens verified once (against players' published keys)
and remembered until they expire, and one service token per target, signed with the gateway's own
key, reused until close to its expiry."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gameplane.kit.auth import SERVICE_TOKEN_TTL, issue_service_token, token_kid, verify_player_token
from gameplane.kit.jwks import KeySource
from gameplane.kit.keys import SigningKey


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
        claims = verify_player_token(keys, token)  # raises Problem 401
        if self._size:
            if len(self._cache) >= self._size:
                for stale in list(self._cache)[: max(1, self._size // 10)]:
                    del self._cache[stale]
            self._cache[token] = (claims, float(claims["exp"]))
        return claims
