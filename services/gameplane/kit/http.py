"""Internal HTTP client: service token, per-call timeout, bounded jittered retries for idempotent
calls only, and a circuit breaker per target.

Built on aiohttp rather than httpx: on the bet path (games → wallet) httpx's connection pool cost
more CPU than the wallet call itself; aiohttp's is several times cheaper.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from gameplane.kit import telemetry
from gameplane.kit.auth import SERVICE_TOKEN_TTL, issue_service_token
from gameplane.kit.breaker import CircuitBreaker, CircuitOpen
from gameplane.kit.keys import SigningKey
from gameplane.kit.logs import request_id_var
from gameplane.kit.problems import Problem

log = logging.getLogger("gameplane.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
TRANSPORT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
M = TypeVar("M", bound=BaseModel)


class DependencyError(Exception):
    """The dependency could not give an answer (down, timed out, circuit open, 5xx)."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason

    def problem(self) -> Problem:
        return Problem(503, "dependency-unavailable", f"Service {self.target} is unavailable", self.reason,
                       headers={"Retry-After": "1"}, dependency=self.target)


@dataclass(frozen=True)
class ServiceResponse:
    """A fully read answer (bodies of internal calls are small JSON documents)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def model(self, model: type[M]) -> M:
        """The body validated straight from its bytes (no intermediate dict)."""
        return model.model_validate_json(self.content)

    @property
    def text(self) -> str:
        return self.content.decode()


class _Retryable(Exception):
    def __init__(self, response: ServiceResponse) -> None:
        self.response = response


class ServiceClient:
    def __init__(self, caller: str, target: str, base_url: str, key: SigningKey, *,
                 timeout: float = 2.0, retries: int = 3, breaker: CircuitBreaker | None = None,
                 max_connections: int = 100) -> None:
        self.caller = caller
        self.target = target
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.breaker = breaker or CircuitBreaker(target, caller=caller)
        self.max_connections = max_connections
        self._key = key
        self._token: tuple[str, float] | None = None
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        # Created lazily: an aiohttp session belongs to the running event loop.
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30),
                json_serialize=lambda o: jsonlib.dumps(o, separators=(",", ":")), raise_for_status=False,
                skip_auto_headers=("User-Agent",))
        return self._http

    def _service_token(self) -> str:
        now = time.monotonic()
        if self._token is None or self._token[1] - now < SERVICE_TOKEN_TTL / 3:
            token = issue_service_token(self._key, self.caller, self.target)
            self._token = (token, now + SERVICE_TOKEN_TTL)
        return self._token[0]

    async def request(self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
                      params: Any = None, headers: dict[str, str] | None = None, idempotent: bool | None = None,
                      timeout: float | None = None) -> ServiceResponse:
        """One logical call. Retries only when the call is idempotent (by method or declared so,
        e.g. a POST carrying an idempotency key). 4xx answers are returned, not raised.
        `content`: a body already encoded as JSON (e.g. `model.model_dump_json().encode()`), sent
        as is instead of encoding `json`."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        attempts = self.retries if idempotent else 1
        url = self.base_url + path
        call_timeout = aiohttp.ClientTimeout(total=timeout or self.timeout)

        async def once() -> ServiceResponse:
            try:
                self.breaker.before_call()
            except CircuitOpen as exc:
                raise DependencyError(self.target, str(exc)) from None
            hdrs = {"authorization": f"Bearer {self._service_token()}", **(headers or {})}
            if content is not None:
                hdrs.setdefault("content-type", "application/json")
            rid = request_id_var.get()
            if rid:
                hdrs.setdefault("x-request-id", rid)
            telemetry.inject(hdrs)
            try:
                async with self._session().request(method, url, json=json, data=content, params=params,
                                                   headers=hdrs, timeout=call_timeout) as raw:
                    resp = ServiceResponse(raw.status, raw.headers, await raw.read())
            except TRANSPORT_ERRORS:
                self.breaker.failure()
                raise
            if resp.status_code >= 500:
                self.breaker.failure()
                if resp.status_code in RETRY_STATUSES:
                    raise _Retryable(resp)
                return resp
            self.breaker.success()
            return resp

        retry_on = (*TRANSPORT_ERRORS, _Retryable)
        try:
            # The first attempt outside tenacity: its per-call set-up is a measurable share of a
            # bet's CPU, and almost every call succeeds at once.
            try:
                return await once()
            except retry_on:
                if attempts <= 1:
                    raise
            await asyncio.sleep(random.uniform(0, 0.05))  # wait_random_exponential's first wait
            retrying = AsyncRetrying(
                stop=stop_after_attempt(attempts - 1),
                wait=wait_random_exponential(multiplier=0.1, max=1.0),
                retry=retry_if_exception(lambda e: isinstance(e, retry_on)),
                reraise=True)
            async for attempt in retrying:
                with attempt:
                    return await once()
        except _Retryable as exc:
            return exc.response
        except TimeoutError as exc:
            raise DependencyError(self.target, f"timed out: {exc!r}") from None
        except TRANSPORT_ERRORS as exc:
            raise DependencyError(self.target, f"unreachable: {exc!r}") from None
        raise AssertionError("unreachable")

    async def get(self, path: str, **kw: Any) -> ServiceResponse:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> ServiceResponse:
        return await self.request("POST", path, **kw)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
