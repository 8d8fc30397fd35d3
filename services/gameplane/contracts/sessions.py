"""The sessions service's internal API (called by games) and the events it publishes.

Internal routes (service token, audience "sessions"):
  GET  /internal/sessions/{token}   -> SessionView   (404 problem `session-not-found`)
A session is looked up by the opaque token the provider received at launch. Ended and expired
sessions are still returned (status tells which), because wins and rollbacks must be settled for
them: the money is owed to the player.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from gameplane.kit.events import Event

PATH_SESSION = "/internal/sessions/{token}"

SessionStatus = Literal["active", "ended"]
EndReason = Literal["player", "expired", "self_excluded", "timed_out", "session_limit"]


class SessionView(BaseModel):
    session_id: uuid.UUID
    token: str
    player_id: uuid.UUID
    game_id: str
    provider: str
    currency: str
    status: SessionStatus
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    end_reason: EndReason | None = None

    def accepts_bets(self, now: datetime) -> bool:
        return self.status == "active" and now < self.expires_at


class SessionStarted(Event):
    event_type = "sessions.started"
    session_id: uuid.UUID
    player_id: uuid.UUID
    game_id: str
    provider: str
    currency: str
    started_at: datetime
    expires_at: datetime


class SessionEnded(Event):
    event_type = "sessions.ended"
    session_id: uuid.UUID
    player_id: uuid.UUID
    game_id: str
    reason: EndReason
    started_at: datetime
    ended_at: datetime
    duration_seconds: int


class RealityCheck(Event):
    """Due at the player's chosen interval while a session is open; frontends show it to the player."""

    event_type = "sessions.reality_check"
    session_id: uuid.UUID
    player_id: uuid.UUID
    game_id: str
    started_at: datetime
    elapsed_seconds: int
    interval_minutes: int
    sequence: int
    currency: str | None = None
    staked: int = 0  # minor units bet in this session so far (net of rollbacks)
    won: int = 0  # minor units won in this session so far; net position = won - staked
