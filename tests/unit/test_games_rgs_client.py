"""The simulator's studio client: retries keep the request and transaction ids, refusals do not retry."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from gameplane.contracts.games import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from gameplane.simulators.rgs.client import PlatformClient, Refused, Unanswered

SECRET = "unit-test-provider-secret"


def answer(body: dict) -> httpx.Response:
    return httpx.Response(200, json={"request_id": body["request_id"], "player_id": str(uuid.uuid4()),
                                     "currency": "EUR", "balance": 900})


async def test_transient_answers_are_retried_with_the_same_ids_and_fresh_signatures() -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/providers/rgs/bet"
        assert request.headers[SIGNATURE_HEADER] == sign(SECRET, "POST", "/providers/rgs/bet",
                                                         request.headers[TIMESTAMP_HEADER], request.content)
        body = json.loads(request.content)
        seen.append(body)
        if len(seen) == 1:
            return httpx.Response(429, headers={"retry-after": "0"})
        if len(seen) == 2:
            raise httpx.ReadTimeout("lost", request=request)
        if len(seen) == 3:
            return httpx.Response(503)
        return answer(body)

    client = PlatformClient("http://platform", "rgs", SECRET, attempts=4, backoff=0,
                            transport=httpx.MockTransport(handler))
    ans = await client.call("bet", {"token": "t", "transaction_id": "tx-1", "amount": 100})
    await client.aclose()
    assert ans.balance == 900 and len(seen) == 4
    assert {b["request_id"] for b in seen} == {ans.request_id}
    assert {b["transaction_id"] for b in seen} == {"tx-1"}


async def test_refusals_are_not_retried_and_unanswered_calls_give_up() -> None:
    calls = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(402, json={"code": "insufficient-funds", "balance": 5})

    client = PlatformClient("http://platform", "rgs", SECRET, attempts=3, backoff=0,
                            transport=httpx.MockTransport(refuse))
    with pytest.raises(Refused) as err:
        await client.call("bet", {"token": "t"})
    assert (err.value.code, err.value.balance, calls) == ("insufficient-funds", 5, 1)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = PlatformClient("http://platform", "rgs", SECRET, attempts=3, backoff=0,
                            transport=httpx.MockTransport(down))
    with pytest.raises(Unanswered):
        await client.call("win", {"token": "t"})
    await client.aclose()


async def test_a_base_url_with_a_path_is_part_of_what_is_signed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(json.loads(request.content))

    client = PlatformClient("http://platform/casino", "rgs", SECRET, transport=httpx.MockTransport(handler))
    await client.call("balance", {"token": "t"})
    await client.aclose()
    [request] = seen
    assert request.url.path == "/casino/providers/rgs/balance"
    assert request.headers[SIGNATURE_HEADER] == sign(SECRET, "POST", "/casino/providers/rgs/balance",
                                                     request.headers[TIMESTAMP_HEADER], request.content)
