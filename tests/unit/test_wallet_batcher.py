"""The fast path's batcher (gameplane.wallet.fastplay.Batcher): how it forms batches, bounds what is
in flight, keeps batches off each other's house rows, and hands each caller its own answer or its
batch's error. The database side (sql/0004_fast_batch.sql) is in tests/services/test_wallet_fast_path.py;
here a stand-in connection records the calls instead."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from gameplane.wallet.fastplay import Batcher


class Calls:
    """Stands where the asyncpg pool is: each call waits for `release` and answers every
    operation with its own key, or raises the next of `failures` (None: no failure), or, when
    it carries an operation whose key is in `poisoned`, what PostgreSQL raises for a NUL."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[dict[str, Any]], int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()
        self.failures: list[BaseException | None] = []
        self.poisoned: set[str] = set()

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Calls]:
        yield self

    async def fetchval(self, _sql: str, ops_json: str, shard: int) -> list[str]:
        ops = json.loads(ops_json)
        self.batches.append((ops, shard))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        if self.failures and (failure := self.failures.pop(0)) is not None:
            raise failure
        if any(op["key"] in self.poisoned for op in ops):
            raise asyncpg.exceptions.UntranslatableCharacterError("unsupported Unicode escape sequence")
        return [json.dumps({"key": op["key"]}) if op["amount"] > 0 else "!GPF01 fast path declined: zero stake"
                for op in ops]


def op(key: str, player: str = "p", currency: str = "EUR", amount: int = 1) -> dict[str, Any]:
    return {"op": "bet", "key": key, "player": player, "currency": currency, "amount": amount}


def batcher(calls: Calls, *, slots: int = 2, max_batch: int = 32, house_shards: int = 16) -> Batcher:
    return Batcher(lambda: calls, slots=slots, max_batch=max_batch,  # type: ignore[arg-type, return-value]
                   house_shards=house_shards)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_operation_goes_out_at_once_alone() -> None:
    calls = Calls()
    calls.release.set()
    answer = await batcher(calls).submit(op("k1"))
    assert json.loads(answer) == {"key": "k1"}
    assert [len(ops) for ops, _ in calls.batches] == [1]


async def test_what_arrives_while_the_slots_are_busy_goes_out_as_the_next_batches() -> None:
    calls = Calls()
    b = batcher(calls, slots=2, max_batch=4)
    futures = [b.submit(op(f"k{i}", player=f"p{i:02}")) for i in range(11)]
    await settle()
    # both slots took what was queued when they started; nothing more goes out until one is free
    assert calls.most_in_flight == 2
    calls.release.set()
    answers = await asyncio.gather(*futures)
    assert [json.loads(a)["key"] for a in answers] == [f"k{i}" for i in range(11)]  # each caller its own
    assert sorted(len(ops) for ops, _ in calls.batches) == [3, 4, 4]
    assert calls.most_in_flight == 2


async def test_a_batch_is_sorted_by_currency_and_player_and_keeps_its_slot_s_house_shard() -> None:
    calls = Calls()
    b = batcher(calls, slots=2, house_shards=16)
    first = b.submit(op("a", player="p9"))
    await settle()  # in flight, alone
    second = b.submit(op("b", player="p1"))  # the other slot takes this one, alone too
    await settle()
    rest = [b.submit(op(k, player=p, currency=c))
            for k, p, c in (("c", "p5", "USD"), ("d", "p3", "EUR"), ("e", "p1", "USD"), ("f", "p7", "EUR"))]
    await settle()
    calls.release.set()
    await asyncio.gather(first, second, *rest)
    shards = [shard for _, shard in calls.batches]
    assert len(set(shards[:2])) == 2  # the two slots in flight: two different house shards
    assert set(shards) == set(shards[:2])
    last = calls.batches[-1][0]
    assert [(o["currency"], o["player"]) for o in last] == [("EUR", "p3"), ("EUR", "p7"), ("USD", "p1"),
                                                            ("USD", "p5")]


async def test_a_declined_operation_does_not_decline_its_neighbours() -> None:
    calls = Calls()
    calls.release.set()
    b = batcher(calls, slots=1)
    answers = await asyncio.gather(*[b.submit(op(f"k{i}", player=f"p{i}", amount=i % 2)) for i in range(6)])
    assert [a.startswith("!GPF01") for a in answers] == [True, False] * 3


async def test_a_failed_call_goes_again_one_by_one_and_touches_no_other_batch() -> None:
    calls = Calls()
    calls.failures = [asyncpg.exceptions.DeadlockDetectedError("deadlock detected")]
    b = batcher(calls, slots=1)
    first = [b.submit(op("k0", player="p0")), b.submit(op("k1", player="p1"))]
    await settle()  # [k0, k1] in flight
    second = [b.submit(op("k2", player="p2")), b.submit(op("k3", player="p3"))]
    calls.release.set()
    assert [json.loads(await f)["key"] for f in first] == ["k0", "k1"]
    assert [json.loads(await f)["key"] for f in second] == ["k2", "k3"]
    assert [[o["key"] for o in ops] for ops, _ in calls.batches] == [["k0", "k1"], ["k0"], ["k1"], ["k2", "k3"]]


async def test_one_poisoned_operation_fails_only_its_own_caller() -> None:
    calls = Calls()
    calls.poisoned = {"k2"}
    calls.release.set()
    b = batcher(calls, slots=1)
    futures = [b.submit(op(f"k{i}", player=f"p{i}")) for i in range(5)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert isinstance(results[2], asyncpg.exceptions.UntranslatableCharacterError)
    assert [json.loads(r)["key"] for i, r in enumerate(results) if i != 2] == ["k0", "k1", "k3", "k4"]
    # one call with all five, then each alone: the poisoned one fails its own call only
    assert [[o["key"] for o in ops] for ops, _ in calls.batches] == [
        ["k0", "k1", "k2", "k3", "k4"], ["k0"], ["k1"], ["k2"], ["k3"], ["k4"]]


async def test_a_lone_operation_that_fails_gets_its_error() -> None:
    calls = Calls()
    calls.poisoned = {"k0"}
    calls.release.set()
    with pytest.raises(asyncpg.exceptions.UntranslatableCharacterError):
        await batcher(calls).submit(op("k0"))
    assert len(calls.batches) == 1  # not sent twice


async def test_a_caller_that_goes_away_leaves_the_rest_answered() -> None:
    calls = Calls()
    b = batcher(calls, slots=1)
    futures = [b.submit(op(f"k{i}", player=f"p{i}")) for i in range(3)]
    futures[1].cancel()
    calls.release.set()
    assert json.loads(await futures[2])["key"] == "k2"
    assert json.loads(await futures[0])["key"] == "k0"
    # its operation went out all the same: a retry of its key finds the stored answer
    assert [o["key"] for ops, _ in calls.batches for o in ops] == ["k0", "k1", "k2"]


async def test_a_player_s_second_operation_waits_for_the_next_batch() -> None:
    calls = Calls()
    calls.release.set()
    b = batcher(calls, slots=1)
    futures = [b.submit(op(k, player=p)) for k, p in (("a1", "a"), ("b1", "b"), ("a2", "a"), ("c1", "c"), ("a3", "a"))]
    await asyncio.gather(*futures)
    assert [[o["key"] for o in ops] for ops, _ in calls.batches] == [["a1", "b1", "c1"], ["a2"], ["a3"]]


class TracedCalls(Calls):
    """Also notes the span each call runs under: the parent of the asyncpg statement's span."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Any] = []

    async def fetchval(self, _sql: str, ops_json: str, shard: int) -> list[str]:
        from opentelemetry import trace

        self.spans.append(trace.get_current_span())
        return await super().fetchval(_sql, ops_json, shard)


async def test_a_batch_runs_under_its_first_request_s_trace_linked_to_the_others() -> None:
    """Not under the request that happened to start the slot's task: a batch sent later from the
    same task belongs to the requests it serves."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from gameplane.kit import telemetry

    calls = TracedCalls()
    b = batcher(calls, slots=1)
    tracer = telemetry.tracer("test")
    with telemetry.recording(InMemorySpanExporter()) as exported:
        requests = {}
        futures = []
        for key, player in (("a", "p1"), ("b", "p3"), ("c", "p2")):
            with tracer.start_as_current_span(f"request {key}") as span:
                requests[key] = span.get_span_context()
                futures.append(b.submit(op(key, player=player)))
            await settle()  # "a" goes out alone; "b" and "c" wait for the slot
        calls.release.set()
        await asyncio.gather(*futures)
    assert [[o["key"] for o in ops] for ops, _ in calls.batches] == [["a"], ["c", "b"]]  # sorted by player
    batch_spans = {s.context.span_id: s for s in exported.get_finished_spans()  # type: ignore[attr-defined]
                   if s.name == "wallet fast batch"}
    first, second = (batch_spans[s.get_span_context().span_id] for s in calls.spans)
    assert first.parent.span_id == requests["a"].span_id and first.context.trace_id == requests["a"].trace_id
    assert first.links == ()
    assert second.parent.span_id == requests["c"].span_id and second.context.trace_id == requests["c"].trace_id
    assert [link.context.span_id for link in second.links] == [requests["b"].span_id]
