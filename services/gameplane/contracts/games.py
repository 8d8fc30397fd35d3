"""The games service's contracts: the internal catalog API (used by sessions) and the canonical
seamless-wallet API that game providers call (used by the RGS simulator and the conformance kit,
documented for integrators in docs/integration/providers.md).

Internal routes (service token, audience "games"):
  GET /internal/games/{game_id}  -> GameView   (404 problem `game-not-found`)
  PUT /internal/games/{game_id}  GameUpsert -> GameView

Canonical provider routes (signed by the provider, no service token):
  POST /providers/{provider}/authenticate | balance | bet | win | rollback
The body is JSON; header `X-Gameplane-Signature` carries hex HMAC-SHA256(secret, raw body).
Success is 200 with `ProviderAnswer`; a refusal is problem+json whose `code` member is one of
`ERROR_CODES` and which carries `balance` and `currency` whenever the player is known.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictInt

from gameplane.contracts.jurisdiction import game_allowed

PATH_GAME = "/internal/games/{game_id}"
SIGNATURE_HEADER = "X-Gameplane-Signature"
PROVIDER_OPERATIONS = ("authenticate", "balance", "bet", "win", "rollback")
# Shared default of games (GP_GAMES_PROVIDERS) and the simulator (GP_RGS_PROVIDER_SECRET) for local runs only.
DEV_PROVIDER_SECRET = "dev-provider-secret-change-me"

Volatility = Literal["low", "medium", "high"]


class StakeRange(BaseModel):
    min: StrictInt = Field(ge=0)
    max: StrictInt = Field(gt=0)


class GameUpsert(BaseModel):
    provider: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=200)
    category: str = Field(default="slots", max_length=50)
    rtp_bp: int = Field(ge=0, le=10000, description="certified RTP in basis points (9640 = 96.40 %)")
    volatility: Volatility = "medium"
    wagering_contribution_pct: int = Field(default=100, ge=0, le=100)
    stakes: dict[str, StakeRange] = Field(default_factory=dict, description="currency -> min/max stake in minor units")
    jurisdictions: list[str] = Field(default_factory=list, description="jurisdiction profiles where it is enabled")
    enabled: bool = True


class GameView(GameUpsert):
    game_id: str
    updated_at: datetime

    def available_in(self, jurisdiction: str) -> bool:
        return self.enabled and game_allowed(self.jurisdictions, jurisdiction)


# ---- canonical provider API ----------------------------------------------------------------------

def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(sign(secret, body), signature or "")


class ProviderRequest(BaseModel):
    request_id: str = Field(min_length=1, max_length=100)
    timestamp: datetime = Field(description="when the provider sent it; refused outside the clock-skew window")
    token: str = Field(min_length=1, max_length=200, description="the session token given at launch")


class AuthenticateCall(ProviderRequest):
    pass


class BalanceCall(ProviderRequest):
    pass


class BetCall(ProviderRequest):
    transaction_id: str = Field(min_length=1, max_length=100)
    round_id: str = Field(min_length=1, max_length=100)
    game_id: str = Field(min_length=1, max_length=100)
    amount: StrictInt = Field(ge=0, description="minor units")
    currency: str = Field(min_length=3, max_length=3)


class WinCall(BetCall):
    round_closed: bool = True


class RollbackCall(ProviderRequest):
    transaction_id: str = Field(min_length=1, max_length=100)
    bet_transaction_id: str = Field(min_length=1, max_length=100)
    round_id: str | None = Field(default=None, max_length=100)
    game_id: str | None = Field(default=None, max_length=100)


class ProviderAnswer(BaseModel):
    request_id: str
    player_id: uuid.UUID
    currency: str
    balance: int = Field(description="playable balance after the operation, minor units")
    session_id: uuid.UUID | None = None
    game_id: str | None = None
    transaction_id: str | None = Field(default=None, description="the provider's transaction id")
    platform_transaction_id: uuid.UUID | None = None
    noop: bool = Field(default=False, description="nothing moved (rollback of a bet never seen)")


# code -> HTTP status of the canonical dialect
ERROR_CODES: dict[str, int] = {
    "invalid-signature": 401,
    "stale-request": 401,
    "unknown-provider": 404,
    "invalid-token": 401,
    "session-expired": 403,
    "player-blocked": 403,
    "insufficient-funds": 402,
    "duplicate-transaction": 409,
    "request-id-reused": 409,
    "round-closed": 409,
    "round-mismatch": 409,
    "round-settled": 409,
    "bet-rolled-back": 409,
    "bet-not-found": 404,
    "currency-mismatch": 400,
    "game-mismatch": 400,
    "stake-out-of-range": 400,
    "validation-error": 422,
    "dependency-unavailable": 503,
}
