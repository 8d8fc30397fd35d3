"""Helpers for service-tier tests: run a service app in process (lifespan included) and call it
as another service or as a player would arrive through the gateway."""

from __future__ import annotations

import asyncio
import gc
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import httpx
from fastapi import FastAPI

from gameplane.devtools.identities import dev_identities
from gameplane.kit.auth import PLAYER_HEADER
from gameplane.kit.staff import STAFF_HEADER, Role, issue_staff_token

# A start (migrations, pools, NATS) takes seconds even on a loaded two-core box; far past that it is
# stuck, and pytest-timeout's stack of the main thread shows only the event loop waiting.
START_SECONDS = 120.0


def _awaited_frames(obj: Any) -> Iterator[FrameType]:
    """The frames of a suspended coroutine and of everything it awaits, outermost first (a task's
    own stack stops at its first frame). An async generator's `asend` hides its generator; the
    garbage collector's referents still name it."""
    seen: set[int] = set()
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None) or getattr(obj, "gi_frame", None)
        if frame is not None:
            yield frame
        nxt = getattr(obj, "cr_await", None) or getattr(obj, "ag_await", None) or getattr(obj, "gi_yieldfrom", None)
        if nxt is None and frame is None:
            nxt = next((r for r in gc.get_referents(obj) if hasattr(r, "ag_frame") or hasattr(r, "cr_frame")), None)
        obj = nxt


def _task_stacks() -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=out)
        for frame in _awaited_frames(task.get_coro()):
            print(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}", file=out)
    return out.getvalue()


@asynccontextmanager
async def running(app: FastAPI, base_url: str = "http://service",
                  start_seconds: float = START_SECONDS) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app's lifespan (migrations, NATS, relay, consumers) and yield a client for it.

    A start that has not finished after `start_seconds` fails with where every task was waiting."""
    me = asyncio.current_task()
    assert me is not None
    stuck: list[str] = []

    def give_up() -> None:
        stuck.append(_task_stacks())
        me.cancel()

    async with AsyncExitStack() as stack:
        timer = asyncio.get_running_loop().call_later(start_seconds, give_up)
        try:
            await stack.enter_async_context(app.router.lifespan_context(app))
        except asyncio.CancelledError:
            if not stuck:
                raise
            me.uncancel()
            name = getattr(app.state, "runtime", None) and app.state.runtime.name
            raise AssertionError(f"{name or app.title} did not start in {start_seconds:.0f} s; "
                                 f"where each task waited:\n{stuck[0]}") from None
        finally:
            timer.cancel()
        yield await stack.enter_async_context(httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                                base_url=base_url))


def as_service(app: FastAPI, caller: str = "gateway", player_id: uuid.UUID | None = None) -> dict[str, str]:
    """Headers of an internal call from `caller`, signed with its key of the test identities (the
    service trusts them when its settings came from `dev_identities`, as tests/conftest.py wires
    them), and, for player routes, the player it vouches for."""
    rt = app.state.runtime
    headers = dev_identities().bearer(caller, rt.name)
    if player_id is not None:
        headers[PLAYER_HEADER] = str(player_id)
    return headers


def as_staff(app: FastAPI, *roles: Role, username: str = "ops", staff_id: uuid.UUID | None = None,
             caller: str = "backoffice") -> dict[str, str]:
    """Headers of a back-office call: the back office's service token plus a staff token minted with
    players' key of the test identities, as players issues one after a login (for tests about what
    a staff member does, not about how they log in)."""
    token = issue_staff_token(dev_identities().key("players"),
                              staff_id or uuid.uuid5(uuid.NAMESPACE_URL, username), username, list(roles))
    return {**as_service(app, caller), STAFF_HEADER: token}


class ManualClock:
    """A wall clock that moves only when told: inject it where a service takes `clock`, then
    `advance(hours=24)` to cross a cooling-off period without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def stored_events(nats_url: str, subject: str, match: dict[str, Any], expect: int,
                        timeout: float = 15.0,
                        where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """The envelopes JetStream stored on `subject` whose data has the `match` items (and passes
    `where`, for what `match` cannot say, e.g. a nested field), in stream order. Reads until
    `expect` were found and the stream went quiet, or `timeout` passed."""
    import json

    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().subscribe(subject, ordered_consumer=True,
                                             config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        found: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except TimeoutError:
                if len(found) >= expect:
                    break
                continue
            env = json.loads(msg.data)
            if all(env["data"].get(k) == v for k, v in match.items()) and (where is None or where(env["data"])):
                found.append(env)
        return found
    finally:
        await nc.close()
