"""Pure rules of the seamless-wallet API: typed provider errors, request fingerprints, the clock-skew
window and round rules. No I/O, so each rule is unit-tested directly."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from gameplane.contracts.games import ERROR_CODES, MAX_AMOUNT_MINOR

TITLES = {
    "invalid-signature": "Invalid signature",
    "stale-request": "Request timestamp outside the accepted clock skew",
    "unknown-provider": "Unknown provider",
    "invalid-token": "Unknown session token",
    "session-expired": "Session expired",
    "player-blocked": "Player may not play",
    "insufficient-funds": "Insufficient funds",
    "duplicate-transaction": "Transaction id already used with different content",
    "request-id-reused": "Request id already used with different content",
    "round-closed": "Round is closed",
    "round-mismatch": "Round belongs to another player or game",
    "round-settled": "Round already paid out",
    "bet-rolled-back": "Bet was rolled back",
    "bet-not-found": "No such bet for this player and round",
    "currency-mismatch": "Currency differs from the session's",
    "game-mismatch": "Game differs from the session's",
    "stake-out-of-range": "Stake outside the game's limits",
    "bonus-max-stake": "Stake above the maximum while the player wagers a bonus",
    "amount-out-of-range": "Amount above the maximum for the currency",
    "max-win-exceeded": "Win above the game's maximum for the round",
    "validation-error": "Malformed request",
    "dependency-unavailable": "Temporarily unavailable, retry",
    "free-spin-award-not-found": "No such free-spin award for this provider",
    "free-spin-award-mismatch": "Free-spin award belongs to another player, game or currency",
    "free-spin-award-expired": "Free-spin award expired",
    "free-spins-exhausted": "Every spin of the award was played",
    "free-spin-grant-closed": "The bonus behind the award is closed",
}

# Problem slugs of the wallet contract -> canonical codes.
WALLET_SLUGS = {
    "insufficient-funds": "insufficient-funds",
    "duplicate-transaction": "duplicate-transaction",
    "bet-rolled-back": "bet-rolled-back",
    "bet-not-found": "bet-not-found",
    "round-closed": "round-closed",
    "round-settled": "round-settled",
    "player-blocked": "player-blocked",
    "currency-mismatch": "currency-mismatch",
    "bonus-max-stake": "bonus-max-stake",
    # free-spin wins: the grant behind the award was converted, forfeited or never existed
    "grant-closed": "free-spin-grant-closed",
    "grant-not-found": "free-spin-grant-closed",
}


class ProviderError(Exception):
    """A typed refusal. Carries the balance whenever the player is known."""

    def __init__(self, code: str, detail: str | None = None, *, balance: int | None = None,
                 currency: str | None = None) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown provider error code {code!r}")
        super().__init__(detail or TITLES[code])
        self.code = code
        self.detail = detail
        self.balance = balance
        self.currency = currency

    @property
    def status(self) -> int:
        return ERROR_CODES[self.code]

    @property
    def transient(self) -> bool:
        """Transient answers are not remembered: a retry of the same request must get a real one."""
        return self.status >= 500

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, "balance": self.balance, "currency": self.currency}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProviderError:
        return cls(data["code"], data.get("detail"), balance=data.get("balance"), currency=data.get("currency"))


def fingerprint(operation: str, fields: dict[str, Any]) -> str:
    """Stable hash of what a request asks for (sorted JSON)."""
    raw = json.dumps({"op": operation, **fields}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _fields(call: BaseModel, exclude: set[str]) -> dict[str, Any]:
    fields = call.model_dump(mode="json", exclude=exclude)
    # A win without an award hashes as it did before the field existed: its replays stay replays.
    if "free_spin_award_id" in fields and fields["free_spin_award_id"] is None:
        del fields["free_spin_award_id"]
    return fields


def request_fingerprint(operation: str, call: BaseModel) -> str:
    """Request replay compares everything but the timestamp: a provider re-sending a request id
    re-signs it with a fresh timestamp, and that is still the same request."""
    return fingerprint(operation, _fields(call, {"timestamp"}))


def transaction_fingerprint(operation: str, player_id: uuid.UUID, call: BaseModel) -> str:
    """Transaction idempotency compares the money movement only: retries may carry a new request
    id, timestamp or even a new token for the same player."""
    return fingerprint(operation, {"player_id": str(player_id),
                                   **_fields(call, {"timestamp", "request_id", "token"})})


def check_clock(sent_at: int | None, now: float, window: timedelta, header: str) -> None:
    """`sent_at`: the signed timestamp header in Unix seconds (None: missing, empty or malformed)."""
    if sent_at is None:
        raise ProviderError("invalid-signature", f"{header} must carry the Unix time (seconds) the call was signed")
    skew = sent_at - now
    if abs(skew) > window.total_seconds():
        raise ProviderError("stale-request", f"timestamp is {skew:+.0f} s from server time; "
                                             f"the window is ±{window.total_seconds():.0f} s")


def amount_refusal(amount: int, currency: str) -> str | None:
    """Amounts above the per-currency maximum (MAX_AMOUNT_MINOR) are refused before any lookup
    in the wallet; an unknown currency is left to the session check (`currency-mismatch`)."""
    limit = MAX_AMOUNT_MINOR.get(currency.upper())
    if limit is not None and amount > limit:
        return f"{amount} is above the maximum of {limit} minor units of {currency.upper()} per operation"
    return None


def win_cap_refusal(state: RoundState | None, amount: int, max_multiplier: int) -> str | None:
    """The wins of a round may total at most its stakes times the game's maximum multiplier. A win
    for a round without a bet goes on to the wallet, which refuses it (`bet-not-found`)."""
    if state is None:
        return None
    cap = state.bet_total * max_multiplier
    if state.win_total + amount > cap:
        return (f"wins of the round would total {state.win_total + amount}; the cap is the round's stakes "
                f"{state.bet_total} x {max_multiplier} = {cap}")
    return None


@dataclass(frozen=True, slots=True)
class RoundState:
    player_id: uuid.UUID
    game_id: str
    status: str  # open | closed
    wins: int
    bet_total: int = 0
    win_total: int = 0


def bet_round_refusal(state: RoundState | None, player_id: uuid.UUID, game_id: str) -> str | None:
    if state is None:
        return None
    if state.player_id != player_id or state.game_id != game_id:
        return "round-mismatch"
    if state.status == "closed":
        return "round-closed"
    return None


def win_round_refusal(state: RoundState | None, player_id: uuid.UUID) -> str | None:
    """A win may open its own round (free rounds pay without a bet); it may not reopen a closed one."""
    if state is None:
        return None
    if state.player_id != player_id:
        return "round-mismatch"
    if state.status == "closed":
        return "round-closed"
    return None


def rollback_round_refusal(state: RoundState | None) -> str | None:
    """Once a round paid out (or was closed by a win, even a zero one) its bets stand."""
    if state is not None and (state.wins > 0 or state.status == "closed"):
        return "round-settled"
    return None


@dataclass(frozen=True, slots=True)
class AwardState:
    """What a free-spin win is checked against (a row of free_spin_awards)."""

    provider: str
    player_id: uuid.UUID
    game_id: str
    currency: str
    spins: int
    spins_played: int
    expires_at: datetime
    accepted: bool


def free_spin_refusal(award: AwardState | None, *, provider: str, player_id: uuid.UUID, game_id: str,
                      currency: str, now: datetime) -> tuple[str, str] | None:
    """(code, detail) refusing a free-spin win, or None. Another provider's award is unknown to
    this one; the spins left are checked here and again, atomically, when the spin is held."""
    if award is None or award.provider != provider or not award.accepted:
        return "free-spin-award-not-found", "no such award for this provider"
    if award.player_id != player_id:
        return "free-spin-award-mismatch", "the award belongs to another player"
    if award.game_id != game_id:
        return "free-spin-award-mismatch", f"the award is for game {award.game_id}"
    if award.currency != currency.upper():
        return "free-spin-award-mismatch", f"the award is in {award.currency}"
    if award.spins_played >= award.spins:
        return "free-spins-exhausted", f"all {award.spins} spins were played"
    if now >= award.expires_at:
        return "free-spin-award-expired", f"the award expired at {award.expires_at.isoformat()}"
    return None


def free_spin_round_refusal(state: RoundState | None) -> str | None:
    """A free spin is a round of its own: no bet, one win. A round id already seen cannot be one."""
    if state is None:
        return None
    return "round-closed" if state.status == "closed" else "round-mismatch"
