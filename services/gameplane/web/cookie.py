"""What the session cookie holds: the player's own tokens from /v1/players/login and when the
access token expires, so the site refreshes it shortly before (nothing else, no secret of the
site). The cookie is HttpOnly: scripts in the page never see the tokens."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

REFRESH_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class PlayerSession:
    access_token: str
    refresh_token: str
    expires_at: float  # Unix seconds
    player_id: str
    play: bool  # false while a time-out or self-exclusion is active

    @classmethod
    def from_login(cls, answer: dict[str, Any], now: float) -> PlayerSession:
        return cls(str(answer["access_token"]), str(answer["refresh_token"]), now + float(answer["expires_in"]),
                   str(answer["player_id"]), bool(answer.get("play", True)))

    def due_for_refresh(self, now: float) -> bool:
        return now >= self.expires_at - REFRESH_MARGIN_SECONDS

    def encode(self) -> str:
        raw = json.dumps([self.access_token, self.refresh_token, self.expires_at, self.player_id, self.play],
                         separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str | None) -> PlayerSession | None:
        """None for anything that is not a cookie this site wrote (a damaged or forged one only
        signs its sender out: the gateway checks the tokens it carries)."""
        if not value or len(value) > 3800:
            return None
        try:
            a, r, e, p, play = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            if not (isinstance(a, str) and isinstance(r, str) and isinstance(p, str)):
                return None
            return cls(a, r, float(e), p, bool(play))
        except (ValueError, TypeError, binascii.Error):
            return None
