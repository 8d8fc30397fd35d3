"""Pure session rules: may this player launch now, how long may the session live, and when is the
next reality check due. No I/O; the API feeds in state and a clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Protection:
    """The responsible-gaming state sessions needs, from the newest players snapshot."""

    timeout_until: datetime | None = None
    self_excluded_until: datetime | None = None
    session_limit_minutes: int | None = None
    reality_check_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Played:
    """One earlier (or still open) session of the player: `ended_at` None means still open."""

    started_at: datetime
    ended_at: datetime | None


class LaunchRefused(Exception):
    def __init__(self, slug: str, title: str, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.slug = slug
        self.title = title
        self.detail = detail
        self.extensions = extensions


def session_limit(limits: Iterable[dict[str, Any]], now: datetime) -> int | None:
    """Minutes of the player's session-time limit in force now (a pending increase waits for its
    cooling-off; the strictest session limit applies if several are listed)."""
    values = []
    for item in limits:
        if item.get("kind") != "session":
            continue
        value = int(item["value"])
        pending, at = item.get("pending_value"), item.get("pending_effective_at")
        if pending is not None and at is not None:
            when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            if when <= now:
                value = int(pending)
        values.append(value)
    return min(values) if values else None


def current_play(history: Sequence[Played], now: datetime, brk: timedelta) -> timedelta:
    """Time played in the current play session: sessions chained by pauses shorter than `brk`.

    Ending a session and launching again at once must not reset a session-time limit, so play
    counts as one session until the player actually takes a break.
    """
    spans = sorted(((p.started_at, min(p.ended_at or now, now)) for p in history), key=lambda s: s[0],
                   reverse=True)
    total = timedelta(0)
    boundary = now
    for start, end in spans:
        if boundary - end >= brk:
            break
        overlap_end = min(end, boundary)
        if overlap_end > start:
            total += overlap_end - start
        boundary = min(boundary, start)
    return total


def check_launch(protection: Protection | None, now: datetime) -> None:
    """Self-exclusion and time-out refuse a launch outright."""
    if protection is None:
        return
    if protection.self_excluded_until is not None and protection.self_excluded_until > now:
        raise LaunchRefused("self-excluded", "Player is self-excluded",
                            f"self-excluded until {protection.self_excluded_until.isoformat()}",
                            until=protection.self_excluded_until.isoformat())
    if protection.timeout_until is not None and protection.timeout_until > now:
        raise LaunchRefused("timed-out", "Player is on a time-out",
                            f"time-out until {protection.timeout_until.isoformat()}",
                            until=protection.timeout_until.isoformat())


def session_expiry(now: datetime, ttl: timedelta, protection: Protection | None,
                   history: Sequence[Played], brk: timedelta) -> tuple[datetime, bool]:
    """(expires_at, capped_by_limit). Refuses when the session-time limit is already used up."""
    expires = now + ttl
    limit = protection.session_limit_minutes if protection else None
    if limit is None:
        return expires, False
    played = current_play(history, now, brk)
    remaining = timedelta(minutes=limit) - played
    if remaining <= timedelta(0):
        raise LaunchRefused("session-limit-reached", "Session-time limit reached",
                            f"played {int(played.total_seconds() // 60)} of {limit} minutes; "
                            f"take a break of {int(brk.total_seconds() // 60)} minutes",
                            limit_minutes=limit)
    if now + remaining < expires:
        return now + remaining, True
    return expires, False


def next_reality_check(started_at: datetime, interval_minutes: int | None, sequence: int) -> datetime | None:
    """When reality check number `sequence + 1` is due (counted from the session start, so a late
    sweep does not push the schedule)."""
    if not interval_minutes:
        return None
    return started_at + timedelta(minutes=interval_minutes * (sequence + 1))
