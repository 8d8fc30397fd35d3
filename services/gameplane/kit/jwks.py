"""Another service's published public keys (a JWKS), fetched and cached.

The gateway checks player access tokens against players' keys this way: it holds no key of its
own that could sign one. A token naming a kid the cache lacks (players rotated its key) makes it
fetch again, at most once per `min_interval`, so a stream of made-up kids costs one request per
interval; the set is also refreshed every `max_age`. A failed fetch keeps the keys it had. While
no set was ever loaded (players starting, or busy hashing passwords) a fetch is retried after
`cold_interval` instead, and `warm()` loads the set in the background at start, so a slow first
answer does not refuse every login for `min_interval`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

import aiohttp

from gameplane.kit.keys import KeySet
from gameplane.kit.problems import Problem

log = logging.getLogger("gameplane.jwks")

JWKS_PATH = "/.well-known/jwks.json"


class KeySource(Protocol):
    async def keys_for(self, kid: str | None) -> KeySet: ...


class StaticKeys:
    """A key set known in advance (tests, tools)."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys

    async def keys_for(self, kid: str | None) -> KeySet:
        return self.keys


class RemoteKeys:
    """`owner`'s keys from the JWKS at `url()` (a callable: the endpoint map can change)."""

    def __init__(self, owner: str, url: Callable[[], str], *, min_interval: float = 10.0, max_age: float = 300.0,
                 timeout: float = 5.0, cold_interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.owner = owner
        self._url = url
        self.min_interval = min_interval
        self.cold_interval = cold_interval
        self.max_age = max_age
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._now = clock
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")  # last attempt, successful or not
        self._loaded_at = float("-inf")  # last success
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def keys_for(self, kid: str | None) -> KeySet:
        keys = self._keys
        now = self._now()
        fresh = now - self._loaded_at < self.max_age
        if keys is not None and fresh and (kid is None or kid in keys.keys):
            return keys
        if now - self._fetched_at >= self._interval():
            async with self._lock:
                if self._now() - self._fetched_at >= self._interval():
                    await self._fetch()
        if self._keys is None:
            raise Problem(503, "dependency-unavailable", f"Service {self.owner} is unavailable",
                          f"no public keys of {self.owner} could be fetched", headers={"Retry-After": "1"},
                          dependency=self.owner)
        return self._keys

    def _interval(self) -> float:
        return self.min_interval if self._keys is not None else min(self.min_interval, self.cold_interval)

    async def warm(self, attempts: int = 60) -> None:
        """Load the set ahead of the first token (a background task at start): retried every
        `cold_interval` until it loads or `attempts` are spent."""
        for _ in range(attempts):
            async with self._lock:
                if self._keys is not None:
                    return
                await self._fetch()
            if self._keys is not None:
                return
            await asyncio.sleep(self.cold_interval)

    async def _fetch(self) -> None:
        self._fetched_at = self._now()
        self.fetches += 1
        try:
            url = self._url().rstrip("/") + JWKS_PATH
            async with aiohttp.ClientSession(timeout=self._timeout) as http, http.get(url) as resp:
                resp.raise_for_status()
                document = await resp.json(content_type=None)
            keys = KeySet.from_jwks(self.owner, document)
        except (aiohttp.ClientError, TimeoutError, LookupError, ValueError, OSError) as exc:
            log.warning("could not fetch the public keys of %s: %r", self.owner, exc)
            return
        self._keys = keys
        self._loaded_at = self._fetched_at
