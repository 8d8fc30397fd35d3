"""What the session cookie holds: the player's own tokens from /v1/players/login and when the
access token expires, so the site refreshes it shortly before, and the player's jurisdiction and
currency as players said at sign-in (which games the lobby lists; no secret, and a player who
edits them only changes their own listing: sessions and the wallet decide by their own records).
Nothing of the site's own. The cookie is HttpOnly: scripts in the page never see the tokens."""

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
    jurisdiction: str = ""
    currency: str = ""

    @classmethod
    def from_login(cls, answer: dict[str, Any], now: float, *, jurisdiction: str = "",
                   currency: str = "") -> PlayerSession:
        return cls(str(answer["access_token"]), str(answer["refresh_token"]), now + float(answer["expires_in"]),
                   str(answer["player_id"]), bool(answer.get("play", True)), jurisdiction, currency)

    def due_for_refresh(self, now: float) -> bool:
        return now >= self.expires_at - REFRESH_MARGIN_SECONDS

    def encode(self) -> str:
        raw = json.dumps([self.access_token, self.refresh_token, self.expires_at, self.player_id, self.play,
                          self.jurisdiction, self.currency], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str | None) -> PlayerSession | None:
        """None for anything that is not a cookie this site wrote (a damaged or forged one only
        signs its sender out: the gateway checks the tokens it carries)."""
        if not value or len(value) > 3800:
            return None
        try:
            a, r, e, p, play, j, c = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            if not all(isinstance(v, str) for v in (a, r, p, j, c)):
                return None
            return cls(a, r, float(e), p, bool(play), j, c)
        except (ValueError, TypeError, binascii.Error):
            return None
