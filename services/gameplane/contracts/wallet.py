"""The wallet's internal API (called by games, payments, bonus) and the events it publishes.

Every money-moving call carries `idempotency_key`; the same key with the same body returns the
stored answer, with a different body a 409 problem `duplicate-transaction`.

Internal routes (service token, audience "wallet"):
  POST /internal/wallet/bets          BetRequest      -> OperationResult
  POST /internal/wallet/wins          WinRequest      -> OperationResult
  POST /internal/wallet/rollbacks     RollbackRequest -> OperationResult
  POST /internal/wallet/deposits      DepositRequest  -> OperationResult
  GET  /internal/wallet/players/{player_id}/balances/{currency} -> Balance
Refusals are problems with these slugs: insufficient-funds (carries `balance`), duplicate-transaction,
bet-rolled-back (a tombstone refuses a late bet), round-closed, round-settled (rollback after payout),
bet-not-found, player-blocked (limits / time-out / self-exclusion; carries `reason`), currency-mismatch.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictInt

from gameplane.kit.events import Event

PATH_BETS = "/internal/wallet/bets"
PATH_WINS = "/internal/wallet/wins"
PATH_ROLLBACKS = "/internal/wallet/rollbacks"
PATH_DEPOSITS = "/internal/wallet/deposits"
PATH_BALANCE = "/internal/wallet/players/{player_id}/balances/{currency}"

IdempotencyKey = str
Amount = StrictInt


class Balance(BaseModel):
    currency: str
    cash: int
    bonus: int
    withdrawal_hold: int = 0

    @property
    def playable(self) -> int:
        return self.cash + self.bonus


class Split(BaseModel):
    cash: int
    bonus: int


class BetRequest(BaseModel):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(ge=0)
    round_id: str = Field(min_length=1, max_length=200)
    game_id: str = Field(min_length=1, max_length=200)
    provider: str = Field(min_length=1, max_length=100)
    session_id: uuid.UUID | None = None


class WinRequest(BaseModel):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(ge=0)
    round_id: str = Field(min_length=1, max_length=200)
    game_id: str = Field(min_length=1, max_length=200)
    provider: str = Field(min_length=1, max_length=100)
    close_round: bool = True


class RollbackRequest(BaseModel):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    bet_idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    round_id: str | None = None
    game_id: str | None = None
    provider: str = Field(min_length=1, max_length=100)


class DepositRequest(BaseModel):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(gt=0)
    psp: str = "manual"
    psp_reference: str | None = None


class OperationResult(BaseModel):
    """Answer of every money operation; a replay returns the identical document."""

    transaction_id: uuid.UUID
    kind: str
    idempotency_key: str
    player_id: uuid.UUID
    currency: str
    amount: int
    split: Split | None = None
    balance: Balance
    created_at: datetime
    noop: bool = Field(default=False, description="true when nothing moved (e.g. rollback of an unknown bet)")


# ---- events (subject gameplane.wallet.<name>) -------------------------------------------------

class _MoneyEvent(Event):
    transaction_id: uuid.UUID
    player_id: uuid.UUID
    currency: str
    amount: int
    cash: int
    bonus: int
    occurred_at: datetime


class BetPlaced(_MoneyEvent):
    event_type = "wallet.bet_placed"
    round_id: str
    game_id: str
    provider: str


class WinSettled(_MoneyEvent):
    event_type = "wallet.win_settled"
    round_id: str
    game_id: str
    provider: str
    round_closed: bool


class RolledBack(_MoneyEvent):
    event_type = "wallet.rolled_back"
    bet_transaction_id: uuid.UUID | None
    round_id: str | None
    game_id: str | None
    provider: str


class DepositCredited(_MoneyEvent):
    event_type = "wallet.deposit_credited"
    psp: str
    first_deposit: bool


class WithdrawalEvent(_MoneyEvent):
    hold_id: uuid.UUID


class WithdrawalHeld(WithdrawalEvent):
    event_type = "wallet.withdrawal_held"


class WithdrawalPosted(WithdrawalEvent):
    event_type = "wallet.withdrawal_posted"
    remaining: int


class WithdrawalVoided(WithdrawalEvent):
    event_type = "wallet.withdrawal_voided"
    reason: Literal["requested", "expired"]


class BonusEvent(_MoneyEvent):
    grant_id: str


class BonusGranted(BonusEvent):
    event_type = "wallet.bonus_granted"


class BonusConverted(BonusEvent):
    event_type = "wallet.bonus_converted"


class BonusForfeited(BonusEvent):
    event_type = "wallet.bonus_forfeited"


class Adjusted(_MoneyEvent):
    event_type = "wallet.adjusted"
    reason: str
    actor: str
