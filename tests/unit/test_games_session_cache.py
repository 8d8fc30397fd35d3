"""games' session cache: kept true by sessions.ended events, and distrustful when it may have missed one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from gameplane.contracts.sessions import SessionView
from gameplane.games.sessioncache import SessionCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def view(status: str = "active", token: str = "tok-1", session_id: uuid.UUID | None = None) -> SessionView:
    now = datetime.now(UTC)
    over = status != "active"
    return SessionView(session_id=session_id or uuid.uuid4(), token=token, player_id=uuid.uuid4(),
                       game_id="fruit-fives", provider="rgs", currency="EUR", status=status,  # type: ignore[arg-type]
                       started_at=now, expires_at=now + timedelta(hours=1),
                       ended_at=now if over else None, end_reason="player" if over else None)


def cache() -> tuple[SessionCache, Clock]:
    clock = Clock()
    return SessionCache(trusted_ttl=60, fallback_ttl=1, clock=clock), clock


def test_an_open_session_heard_under_a_live_listener_is_reused_for_the_trusted_time() -> None:
    c, clock = cache()
    v = view()
    c.put(v, epoch=3)
    clock.now += 59
    assert c.get("tok-1", epoch=3) == v and c.trusted("tok-1", 3)
    clock.now += 2
    assert c.get("tok-1", epoch=3) is None


def test_without_a_live_listener_an_open_session_is_reused_only_for_the_fallback_time() -> None:
    c, clock = cache()
    c.put(view(), epoch=None)
    assert c.get("tok-1", epoch=3) is not None and not c.trusted("tok-1", 3)
    clock.now += 1.5
    assert c.get("tok-1", epoch=3) is None


def test_the_end_event_evicts_the_open_session_at_once() -> None:
    c, _ = cache()
    v = view()
    c.put(v, epoch=3)
    c.ended(v.session_id)
    assert c.get("tok-1", epoch=3) is None


def test_a_lookup_overtaken_by_the_end_event_does_not_store_the_stale_open_view() -> None:
    c, _ = cache()
    v = view()
    c.ended(v.session_id)  # heard while the lookup was still on its way
    c.put(v, epoch=3)
    assert c.get("tok-1", epoch=3) is None
    ended = view("ended", session_id=v.session_id)
    c.put(ended, epoch=3)
    assert c.get("tok-1", epoch=3) == ended


def test_a_reconnect_since_the_view_was_stored_makes_it_untrusted() -> None:
    c, _ = cache()
    c.put(view(), epoch=3)
    assert c.get("tok-1", epoch=4) is None  # events may have been missed while disconnected
    c.put(view(), epoch=3)
    assert c.get("tok-1", epoch=None) is None  # not listening right now


def test_an_ended_session_is_kept_whatever_the_listener_does() -> None:
    c, clock = cache()
    ended = view("ended")
    c.put(ended, epoch=None)
    clock.now += 600
    assert c.get("tok-1", epoch=7) == ended
    c.ended(ended.session_id)  # a late duplicate of the event changes nothing
    assert c.get("tok-1", epoch=7) == ended


def test_the_cache_stays_within_its_size_dropping_the_oldest() -> None:
    c = SessionCache(trusted_ttl=60, fallback_ttl=1, size=2)
    first, second, third = view(token="a"), view(token="b"), view(token="c")
    for v in (first, second, third):
        c.put(v, epoch=1)
    assert c.get("a", 1) is None and c.get("b", 1) == second and c.get("c", 1) == third
    c.ended(first.session_id)  # its token is gone: nothing to evict, no error
