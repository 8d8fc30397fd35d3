"""The studio side of the canonical seamless-wallet API: signed calls with retries.

A call that times out (or gets a 5xx) is sent again with the same request id and transaction
id, so the platform can answer it from its records instead of moving money twice.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx

from gameplane.contracts.games import SIGNATURE_HEADER, TIMESTAMP_HEADER, ProviderAnswer, now_timestamp, sign


class Refused(Exception):
    """The platform answered with a typed refusal (4xx problem)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.code = str(body.get("code") or str(body.get("type", "")).rsplit("/", 1)[-1])
        self.balance: int | None = body.get("balance")
        super().__init__(f"{status} {self.code}: {body.get('detail') or body.get('title')}")


class Unanswered(Exception):
    """No answer after every attempt (timeouts, connection errors, 5xx)."""


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _retry_after(resp: httpx.Response) -> float:
    try:
        return min(float(resp.headers.get("retry-after", "0")), 10.0)
    except ValueError:
        return 0.0


class PlatformClient:
    def __init__(self, base_url: str, provider: str, secret: str, *, timeout: float = 3.0, attempts: int = 4,
                 backoff: float = 0.2, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.provider = provider
        self._secret = secret
        self.attempts = attempts
        self.backoff = backoff
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                      limits=httpx.Limits(max_connections=100, max_keepalive_connections=50))

    async def aclose(self) -> None:
        await self.http.aclose()

    def path(self, operation: str) -> str:
        """The path the platform sees (and the signature covers); a base URL's own path comes first."""
        return f"{self.http.base_url.raw_path.decode().rstrip('/')}/providers/{self.provider}/{operation}"

    def sign(self, operation: str, timestamp: str, body: bytes) -> str:
        return sign(self._secret, "POST", self.path(operation), timestamp, body)

    async def send_raw(self, operation: str, body: bytes, signature: str | None = None, *,
                       timestamp: str | None = None, signed_operation: str | None = None) -> httpx.Response:
        """One signed POST, no retries (the conformance kit uses it to send exactly what it wants:
        its own signature or timestamp, or a signature made for another operation)."""
        ts = now_timestamp() if timestamp is None else timestamp
        sig = self.sign(signed_operation or operation, ts, body) if signature is None else signature
        return await self.http.post(f"/providers/{self.provider}/{operation}", content=body,
                                    headers={"content-type": "application/json", TIMESTAMP_HEADER: ts,
                                             SIGNATURE_HEADER: sig})

    def body(self, payload: dict[str, Any]) -> bytes:
        return json.dumps(payload, separators=(",", ":")).encode()

    async def call(self, operation: str, payload: dict[str, Any]) -> ProviderAnswer:
        """Send with retries. The request id is fixed across attempts; each attempt is signed with a
        fresh timestamp so a long retry stays inside the platform's clock-skew window."""
        payload = {"request_id": new_id("req"), **payload}
        last: Exception | None = None
        wait = 0.0
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(max(wait, self.backoff * 2 ** (attempt - 1)))
            wait = 0.0
            try:
                resp = await self.send_raw(operation, self.body(payload))
            except httpx.TransportError as exc:  # timeouts included
                last = exc
                continue
            if resp.status_code >= 500 or resp.status_code == 429:
                # Overloaded or rate-limited: nothing happened yet, so the same call is sent again.
                last = Unanswered(f"{operation}: HTTP {resp.status_code}")
                wait = _retry_after(resp)
                continue
            data = resp.json()
            if resp.status_code != 200:
                raise Refused(resp.status_code, data)
            return ProviderAnswer.model_validate(data)
        raise Unanswered(f"{operation} unanswered after {self.attempts} attempts: {last!r}")
