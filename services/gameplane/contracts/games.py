"""The games service's contracts: the internal catalog API (used by sessions) and the canonical
seamless-wallet API that game providers call (used by the RGS simulator and the conformance kit,
documented for integrators in docs/integration/providers.md).

Internal routes (service token, audience "games"):
  GET /internal/games/{game_id}  -> GameView   (404 problem `game-not-found`)
  PUT /internal/games/{game_id}  GameUpsert -> GameView
  POST /internal/games/free-spins FreeSpinAward -> FreeSpinAwardView (callers: bonus; idempotent on
       award_id; games forwards the award to the game's provider and answers once the provider accepted it)
  GET  /internal/games/free-spins/{award_id} -> FreeSpinAwardView

Canonical provider routes (signed by the provider, no service token):
  POST /providers/{provider}/authenticate | balance | bet | win | rollback
The body is JSON. Header `X-Gameplane-Timestamp` carries the Unix time of sending (seconds) and
`X-Gameplane-Signature` the hex HMAC-SHA256 of `signing_string(method, path, timestamp, body)`:
the signature binds the body to one operation and one moment, so a signed bet body is worthless
at /win and after the clock-skew window.
Success is 200 with `ProviderAnswer`; a refusal is problem+json whose `code` member is one of
`ERROR_CODES` and which carries `balance` and `currency` whenever the player is known.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt, StringConstraints

from gameplane.contracts.jurisdiction import game_allowed
from gameplane.kit.money import CURRENCY_EXPONENTS
from gameplane.kit.problems import ProblemType

PATH_GAME = "/internal/games/{game_id}"
# Ids PATH_GAME cannot name: `/internal/games/providers` is the provider listing.
PATH_FREE_SPINS = "/internal/games/free-spins"
PATH_FREE_SPIN_AWARD = "/internal/games/free-spins/{award_id}"
RESERVED_GAME_IDS = frozenset({"providers", "free-spins"})
SIGNATURE_HEADER = "X-Gameplane-Signature"
TIMESTAMP_HEADER = "X-Gameplane-Timestamp"
PROVIDER_OPERATIONS = ("authenticate", "balance", "bet", "win", "rollback")
# Published in this repository, so known to everyone: accepted only by a games service started with
# GP_GAMES_DEV_MODE=true (tests, benches); any other games refuses to start with it.
DEV_PROVIDER_SECRET = "dev-provider-secret-change-me"
KNOWN_DEV_SECRETS = frozenset({DEV_PROVIDER_SECRET})

# ---- limits of the provider API (docs/integration/limits.md lists them for integrators) ----------
# Ids and tokens: printable ASCII without spaces. Nothing else can be a NUL (which PostgreSQL cannot
# store) or a lone surrogate, and nothing needs to be.
ID_PATTERN = r"^[\x21-\x7E]+$"
ID_MAX = 100
TOKEN_MAX = 200
Ident = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=TOKEN_MAX, pattern=ID_PATTERN)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
# Anything a bigint column can hold is a well-formed amount; above the per-currency maximum it is
# refused by rule (`amount-out-of-range`, with the balance), below zero or past 2^63 as malformed.
AMOUNT_STORABLE_MAX = 2**63 - 1
MAX_AMOUNT_MAJOR = 1_000_000_000  # one billion major units of any currency in one operation
MAX_AMOUNT_MINOR: dict[str, int] = {c: MAX_AMOUNT_MAJOR * 10**e for c, e in CURRENCY_EXPONENTS.items()}

Volatility = Literal["low", "medium", "high"]


class StakeRange(BaseModel):
    min: StrictInt = Field(ge=0)
    max: StrictInt = Field(gt=0)


class GameUpsert(BaseModel):
    provider: Ident
    title: str = Field(min_length=1, max_length=200)
    category: str = Field(default="slots", max_length=50)
    rtp_bp: int = Field(ge=0, le=10000, description="certified RTP in basis points (9640 = 96.40 %)")
    volatility: Volatility = "medium"
    wagering_contribution_pct: int = Field(default=100, ge=0, le=100)
    stakes: dict[str, StakeRange] = Field(default_factory=dict, description="currency -> min/max stake in minor units")
    jurisdictions: list[str] = Field(default_factory=list, description="jurisdiction profiles where it is enabled")
    enabled: bool = True
    max_win_multiplier: int = Field(default=5000, ge=1, le=1_000_000,
                                    description="the wins of one round may total at most the round's stakes times "
                                                "this (the game's certified maximum win)")


class GameView(GameUpsert):
    game_id: str
    updated_at: datetime

    def available_in(self, jurisdiction: str) -> bool:
        return self.enabled and game_allowed(self.jurisdictions, jurisdiction)


# ---- canonical provider API ----------------------------------------------------------------------

_UNIX_SECONDS = re.compile(r"^[0-9]{1,12}$")


def signing_string(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    """What a provider signs (both dialects): `METHOD\\nPATH\\nTIMESTAMP\\n` followed by the raw body.
    PATH is the request path as sent (`/providers/acme/bet`, no query); TIMESTAMP the value of the
    timestamp header, Unix seconds."""
    return f"{method.upper()}\n{path}\n{timestamp}\n".encode() + body


def unix_timestamp(value: str | None) -> int | None:
    """The timestamp header as an int; None when missing, empty or not plain Unix seconds."""
    if not value or not _UNIX_SECONDS.match(value):
        return None
    return int(value)


def now_timestamp() -> str:
    return str(int(time.time()))


def sign(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), signing_string(method, path, timestamp, body), hashlib.sha256).hexdigest()


def signature_valid(secret: str, method: str, path: str, timestamp: str, body: bytes,
                    signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(sign(secret, method, path, timestamp, body), signature or "")


def signed_headers(secret: str, path: str, body: bytes, *, timestamp: str | None = None,
                   method: str = "POST") -> dict[str, str]:
    """The two headers of a canonical call (what a studio sends)."""
    ts = now_timestamp() if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, method, path, ts, body)}


class ProviderRequest(BaseModel):
    request_id: Ident = Field(description="unique per request; a repeat gets the same answer")
    token: Token = Field(description="the session token given at launch")


class AuthenticateCall(ProviderRequest):
    pass


class BalanceCall(ProviderRequest):
    pass


class BetCall(ProviderRequest):
    transaction_id: Ident
    round_id: Ident
    game_id: Ident
    amount: StrictInt = Field(ge=0, le=AMOUNT_STORABLE_MAX,
                              description="minor units; at most MAX_AMOUNT_MINOR of the currency")
    currency: Currency


class WinCall(BetCall):
    round_closed: bool = True
    free_spin_award_id: Ident | None = Field(default=None, description=(
        "the win of a free spin the platform awarded (FreeSpinAward.award_id): no bet precedes it, the money "
        "is credited to the bonus grant behind the award"))


class RollbackCall(ProviderRequest):
    transaction_id: Ident
    bet_transaction_id: Ident
    round_id: Ident | None = None
    game_id: Ident | None = None


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


class ProviderProblem(BaseModel):
    """A refusal of the canonical dialect (media type application/problem+json)."""

    type: str = Field(description="https://gameplane.io/problems/<code>")
    title: str
    status: int
    code: str = Field(description="one of the documented codes (docs/integration/providers.md)")
    detail: str | None = None
    instance: str | None = Field(default=None, description="the request path")
    request_id: str | None = Field(default=None, description="the request's `request_id`, once the body parsed")
    balance: int | None = Field(default=None, description="playable balance, minor units, whenever the player is known")
    currency: str | None = None


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
    "bonus-max-stake": 403,
    "amount-out-of-range": 400,
    "max-win-exceeded": 400,
    "validation-error": 422,
    "dependency-unavailable": 503,
    # a win with `free_spin_award_id` (docs/integration/providers.md, "Free spins")
    "free-spin-award-not-found": 404,
    "free-spin-award-mismatch": 403,
    "free-spin-award-expired": 409,
    "free-spins-exhausted": 409,
    "free-spin-grant-closed": 409,
}


class FreeSpinAward(BaseModel):
    """Free spins granted to a player by a bonus grant, played at the game's provider."""

    award_id: Ident = Field(description="unique; a repeat with the same body gets the same answer")
    grant_id: str = Field(min_length=1, max_length=200, description="the wallet grant the wins are credited to")
    player_id: uuid.UUID
    currency: Currency
    game_id: Ident
    spins: int = Field(ge=1, le=1000)
    stake: StrictInt = Field(gt=0, le=AMOUNT_STORABLE_MAX, description="the stake of each spin, minor units")
    expires_at: datetime


class ProviderFreeSpinAward(BaseModel):
    """What games sends to the provider's award API: `POST <provider base URL>` + PROVIDER_AWARD_PATH,
    signed by the platform with the provider's key in the canonical scheme (the two headers over
    `signing_string(method, path as sent, timestamp, body)`). The provider answers 200 or 201 once
    it will play the spins, the same for a repeat of the same award, and 409 for another award
    under the same id. The grant behind the award stays with the platform."""

    award_id: Ident
    player_id: uuid.UUID
    currency: Currency
    game_id: Ident
    spins: int = Field(ge=1, le=1000)
    stake: StrictInt = Field(gt=0, le=AMOUNT_STORABLE_MAX)
    expires_at: datetime


PROVIDER_AWARD_PATH = "/free-spins"

AWARD_EXISTS = ProblemType(409, "free-spin-award-exists", "Award id already used for another award")
AWARD_NOT_FOUND = ProblemType(404, "free-spin-award-not-found", "No such free-spin award")
AWARD_UNSUPPORTED = ProblemType(422, "free-spins-unsupported", "The game's provider takes no free-spin awards")
AWARD_REFUSED = ProblemType(422, "free-spin-award-refused", "The provider refused the award")
AWARD_INVALID = ProblemType(422, "validation-error", "Invalid free-spin award")
PROVIDER_UNAVAILABLE = ProblemType(503, "dependency-unavailable", "The provider did not answer; repeat the award")


class FreeSpinAwardView(FreeSpinAward):
    provider: str
    state: Literal["awarded", "finished", "expired"]
    spins_played: int = 0
    won: int = Field(default=0, description="wins credited so far, minor units")
