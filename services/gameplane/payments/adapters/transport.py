"""The HTTP side every adapter shares: one client per PSP, and PSP answers turned into PspError."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from gameplane.payments import metrics
from gameplane.payments.adapters.base import PspConnection, PspError, WebhookRejected


class PspHttp:
    def __init__(self, name: str, conn: PspConnection, transport: httpx.AsyncBaseTransport | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.client = httpx.AsyncClient(base_url=conn.base_url.rstrip("/"), timeout=conn.timeout_seconds,
                                        transport=transport, headers=dict(headers or {}))

    async def request(self, method: str, path: str, *, operation: str, **kwargs: Any) -> httpx.Response:
        """`operation`: the adapter method making the call, the label of its latency."""
        start = time.perf_counter()
        try:
            resp = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise PspError(f"{self.name}: {method} {path} got no answer: {type(exc).__name__}: {exc}",
                           retryable=True) from exc
        finally:
            metrics.PSP_CALL_SECONDS.labels(self.name, operation).observe(time.perf_counter() - start)
        if resp.status_code >= 400:
            raise PspError(f"{self.name}: {method} {path} answered {resp.status_code}: {resp.text[:500]}",
                           status=resp.status_code, retryable=resp.status_code >= 500 or resp.status_code == 429)
        return resp

    async def aclose(self) -> None:
        await self.client.aclose()


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def check_fresh(timestamp: int, now_unix: float, tolerance: int) -> None:
    if abs(now_unix - timestamp) > tolerance:
        raise WebhookRejected("stale-webhook", f"signed at {timestamp}, {int(now_unix - timestamp)}s from now; "
                              f"accepted: {tolerance}s")
