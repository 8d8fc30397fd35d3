"""The wallet's internal API (called by games, payments, bonus) and the events it publishes.

Every money-moving call carries `idempotency_key`; the same key with the same body returns the
stored answer, with a different body a 409 problem `duplicate-transaction`.

Internal routes (service token, audience "wallet"):
  POST /internal/wallet/bets          BetRequest      -> OperationResult
  POST /internal/wallet/wins          WinRequest      -> OperationResult
  POST /internal/wallet/rollbacks     RollbackRequest -> OperationResult
  POST /internal/wallet/deposits      DepositRequest  -> OperationResult (receivable_settled: what paid
       off an outstanding receivable first; the rest is cash)
  POST /internal/wallet/chargebacks   ChargebackRequest -> OperationResult (receivable_booked: the part
       the player's cash could not cover, now owed; cash never goes negative)
  GET  /internal/wallet/players/{player_id}/balances/{currency} -> Balance
  GET  /internal/wallet/players/{player_id}/deposit-allowance/{currency}[?amount=] -> DepositAllowance
  POST /internal/wallet/withdrawals                  WithdrawalHoldRequest -> OperationResult (hold_id)
  POST /internal/wallet/withdrawals/{hold_id}/post   WithdrawalPostRequest -> OperationResult (remaining)
  POST /internal/wallet/withdrawals/{hold_id}/void   WithdrawalVoidRequest -> OperationResult
  POST /internal/wallet/bonuses                      BonusGrantRequest     -> OperationResult
  POST /internal/wallet/bonuses/{grant_id}/convert   BonusSettleRequest    -> OperationResult
  POST /internal/wallet/bonuses/{grant_id}/forfeit   BonusSettleRequest    -> OperationResult
  POST /internal/wallet/bonuses/{grant_id}/free-spin-wins FreeSpinWinRequest -> OperationResult (callers: games)
  GET  /internal/wallet/players/{player_id}/grants/{currency} -> list[GrantBalance] (open grants, oldest first)
  POST /internal/wallet/fees                         FeeRequest            -> OperationResult (callers: payments;
       a payment provider's fee from its settlement report: payment_fees expense -> psp_clearing)
  POST /internal/wallet/adjustments                  AdjustmentRequest     -> OperationResult
       (a back-office route: also a staff token with the role finance or admin, see gameplane.kit.staff)
Refusals are problems with these slugs: insufficient-funds (402; carries `balance`), duplicate-transaction
(409), bet-rolled-back (409; a tombstone refuses a late bet), round-closed (409), round-settled (409;
rollback after payout), bet-not-found (404), player-blocked (403; limits / time-out / self-exclusion;
carries `reason`), currency-mismatch (409), hold-not-found (404), hold-closed (409; posted, voided or
expired), hold-exceeded (409), grant-not-found (404), grant-closed (409), grant-exists (409),
bonus-max-stake (403; a stake above the smallest `max_stake` of the player's open grants in that
currency while they hold bonus money; carries `max_stake` and `grant_id`);
each is a ProblemType below. An amount beyond its currency's bound (gameplane.kit.money.max_amount,
docs/api/limits.md) is a 422 validation-error.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, StrictInt, model_serializer, model_validator

from gameplane.kit.events import Event
from gameplane.kit.money import MAX_AMOUNT_MINOR, CurrencyError, max_amount
from gameplane.kit.problems import ProblemType

PATH_BETS = "/internal/wallet/bets"
PATH_WINS = "/internal/wallet/wins"
PATH_ROLLBACKS = "/internal/wallet/rollbacks"
PATH_DEPOSITS = "/internal/wallet/deposits"
PATH_CHARGEBACKS = "/internal/wallet/chargebacks"
PATH_BALANCE = "/internal/wallet/players/{player_id}/balances/{currency}"
PATH_DEPOSIT_ALLOWANCE = "/internal/wallet/players/{player_id}/deposit-allowance/{currency}"
PATH_WITHDRAWALS = "/internal/wallet/withdrawals"
PATH_WITHDRAWAL_POST = "/internal/wallet/withdrawals/{hold_id}/post"
PATH_WITHDRAWAL_VOID = "/internal/wallet/withdrawals/{hold_id}/void"
PATH_BONUSES = "/internal/wallet/bonuses"
PATH_BONUS_CONVERT = "/internal/wallet/bonuses/{grant_id}/convert"
PATH_BONUS_FORFEIT = "/internal/wallet/bonuses/{grant_id}/forfeit"
PATH_FREE_SPIN_WINS = "/internal/wallet/bonuses/{grant_id}/free-spin-wins"
PATH_GRANTS = "/internal/wallet/players/{player_id}/grants/{currency}"
PATH_ADJUSTMENTS = "/internal/wallet/adjustments"
PATH_FEES = "/internal/wallet/fees"

IdempotencyKey = str
Amount = Annotated[StrictInt, Field(le=MAX_AMOUNT_MINOR, description="minor units; at most the currency's bound "
                                    "(gameplane.kit.money.max_amount, docs/api/limits.md)")]

# The wallet's refusals: raised by the wallet, documented on its routes, read by its callers.
INSUFFICIENT_FUNDS = ProblemType(402, "insufficient-funds", "Insufficient funds")
DUPLICATE_TRANSACTION = ProblemType(409, "duplicate-transaction",
                                    "Idempotency key already used for a different request")
BET_ROLLED_BACK = ProblemType(409, "bet-rolled-back", "Bet was rolled back before it arrived")
ROUND_CLOSED = ProblemType(409, "round-closed", "Round is closed")
ROUND_SETTLED = ProblemType(409, "round-settled", "Round already paid out")
BET_NOT_FOUND = ProblemType(404, "bet-not-found", "Bet not found")
PLAYER_BLOCKED = ProblemType(403, "player-blocked", "Player protection refuses this operation")
CURRENCY_MISMATCH = ProblemType(409, "currency-mismatch", "Currency does not match")
UNSUPPORTED_CURRENCY = ProblemType(422, "unsupported-currency", "Unsupported currency")
HOLD_NOT_FOUND = ProblemType(404, "hold-not-found", "Withdrawal hold not found")
HOLD_CLOSED = ProblemType(409, "hold-closed", "Withdrawal hold is closed")
HOLD_EXCEEDED = ProblemType(409, "hold-exceeded", "Amount exceeds the hold")
GRANT_NOT_FOUND = ProblemType(404, "grant-not-found", "Bonus grant not found")
GRANT_CLOSED = ProblemType(409, "grant-closed", "Bonus grant is closed")
GRANT_EXISTS = ProblemType(409, "grant-exists", "Bonus grant already exists")
BONUS_MAX_STAKE = ProblemType(403, "bonus-max-stake", "Stake above the maximum allowed while wagering a bonus")
TRANSACTION_NOT_FOUND = ProblemType(404, "transaction-not-found", "Transaction not found")
INVALID_CURSOR = ProblemType(400, "invalid-cursor", "Invalid cursor")


class _Bounded(BaseModel):
    """An amount in a currency: at most that currency's bound (a 422 validation-error)."""

    @model_validator(mode="after")
    def _amount_within_bound(self) -> Any:
        amount, currency = getattr(self, "amount", None), getattr(self, "currency", None)
        if isinstance(amount, int) and isinstance(currency, str):
            try:
                bound = max_amount(currency)
            except CurrencyError:
                return self  # refused as unsupported-currency by the wallet's rules
            if abs(amount) > bound:
                raise ValueError(f"amount {amount} is beyond the bound of {bound} minor units for {currency}")
        return self


def _absent_when_null(data: Any, fields: tuple[str, ...]) -> Any:
    """Fields added after the SQL fast path's answer document was fixed (wallet_fast_answer) are
    absent, not null, unless they apply: a replay's answer, re-serialised from the stored one, stays
    byte-identical, and every player without a chargeback keeps the document they always had.
    (The serializers that call this have no return annotation on purpose: pydantic then keeps the
    model's own schema for OpenAPI.)"""
    if isinstance(data, dict):
        for name in fields:
            if data.get(name) is None:
                data.pop(name, None)
    return data


class Balance(BaseModel):
    currency: str
    cash: int
    bonus: int
    withdrawal_hold: int = 0
    receivable: int | None = Field(
        default=None, ge=0,
        description="what the player owes after a chargeback their cash could not cover (settled first from "
        "the next deposit); present once the player has had one in this currency. Absent from the answers "
        "of bets and wins (their hot path reads only what play needs): read the balance route for it")

    @model_serializer(mode="wrap")
    def _absent_unless_known(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        return _absent_when_null(handler(self), ("receivable",))

    @property
    def playable(self) -> int:
        return self.cash + self.bonus


class Split(BaseModel):
    cash: int
    bonus: int
    grants: dict[str, int] | None = Field(
        default=None, description="the bonus part per grant (grant_id -> minor units); absent when no bonus moved")

    @model_serializer(mode="wrap")
    def _absent_unless_bonus(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        return _absent_when_null(handler(self), ("grants",))


class BetRequest(_Bounded):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(ge=0)
    round_id: str = Field(min_length=1, max_length=200)
    game_id: str = Field(min_length=1, max_length=200)
    provider: str = Field(min_length=1, max_length=100)
    session_id: uuid.UUID | None = None


class WinRequest(_Bounded):
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


class DepositRequest(_Bounded):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(gt=0)
    psp: str = "manual"
    psp_reference: str | None = None
    received: bool = Field(default=False, description=(
        "true when the provider has already taken the money (a confirmed payment): the wallet credits it even "
        "where player protection would refuse a new deposit now (the caller asked deposit-allowance before the "
        "payment session); refusing it would drop money received"))


class FeeRequest(_Bounded):
    """A fee the payment provider charged for one of the player's payments (its settlement report's
    fee row). Booked on the platform's `payment_fees` expense account, not on the house: GGR stays
    the house's net movement. Key: `fee:<psp>:<psp_reference>` (the report row's reference)."""

    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID = Field(description="the player whose payment the fee was charged for")
    currency: str
    amount: Amount = Field(gt=0)
    psp: str = Field(min_length=1, max_length=64)
    psp_reference: str = Field(min_length=1, max_length=200, description="the fee row's reference in the report")
    payment_reference: str = Field(min_length=1, max_length=200, description="the payment the fee belongs to")


class ChargebackRequest(_Bounded):
    """The provider took a deposit back. Cash pays it up to the cash balance; the rest becomes the
    player's receivable (a debt the next deposit settles first). Never refused for lack of funds."""

    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(gt=0)
    psp: str = Field(min_length=1, max_length=100)
    psp_reference: str = Field(min_length=1, max_length=200)


class DepositAllowance(BaseModel):
    """May this player deposit now (asked before a payment session is created)?"""

    allowed: bool
    reason: Literal["self-excluded", "timed-out", "deposit-limit"] | None = None
    remaining: int | None = Field(default=None, description="minor units still allowed under the strictest "
                                  "deposit limit of the player's currency; null when no deposit limit applies")
    detail: str | None = None


class WithdrawalHoldRequest(_Bounded):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(gt=0)
    expires_in_seconds: int | None = Field(default=None, gt=0, le=366 * 86_400,
                                           description="default: the wallet's hold TTL; at most a year")


class WithdrawalPostRequest(BaseModel):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    amount: Amount | None = Field(default=None, gt=0, description="default: everything still held")


class WithdrawalVoidRequest(BaseModel):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)


class BonusGrantRequest(_Bounded):
    """Bonus money for one grant: bonus liability -> the grant's sub-ledger of the player's bonus
    account. A free-spins grant starts at 0 and receives its wins (FreeSpinWinRequest)."""

    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    grant_id: str = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(ge=0)
    max_stake: Amount | None = Field(default=None, gt=0, description=(
        "the largest stake the wallet accepts from this player, in this currency, while the grant is open and "
        "the player holds bonus money (the wallet's own copy: no call to bonus on a bet)"))
    priority: int = Field(default=0, ge=0, le=1_000_000, description=(
        "spend order among the player's grants: lower first, then oldest first"))


class BonusSettleRequest(BaseModel):
    """Close one grant. Convert moves min(amount, the grant's balance) to cash (amount: the offer's
    cash-out cap, default everything) and returns any rest to the bonus liability; forfeit returns the
    whole grant balance to the liability. Only that grant's money moves."""

    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    amount: Amount | None = Field(default=None, gt=0, description="convert: the cap; default the whole grant balance")
    reason: Literal["completed", "forfeited", "expired", "cancelled", "withdrawal"] | None = Field(
        default=None, description="why (recorded on the transaction and the event); default: the route's verb")


class GrantBalance(BaseModel):
    grant_id: str
    currency: str
    balance: int
    max_stake: int | None
    priority: int
    state: Literal["open", "converted", "forfeited"]
    created_at: datetime


class FreeSpinWinRequest(_Bounded):
    """A provider reported the win of a free spin it was awarded: no stake, the money goes to the grant."""

    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(ge=0)
    award_id: str = Field(min_length=1, max_length=200)
    round_id: str = Field(min_length=1, max_length=200)
    game_id: str = Field(min_length=1, max_length=200)
    provider: str = Field(min_length=1, max_length=100)


class AdjustmentRequest(_Bounded):
    idempotency_key: IdempotencyKey = Field(min_length=1, max_length=200)
    player_id: uuid.UUID
    currency: str
    amount: Amount = Field(ge=-MAX_AMOUNT_MINOR, description="signed: > 0 credits cash, < 0 debits it")
    reason: str = Field(min_length=3, max_length=500)
    # No `actor`: the staff token (X-Staff-Token) says who adjusts; a body cannot.


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
    hold_id: uuid.UUID | None = None
    remaining: int | None = Field(default=None, description="withdrawals: amount still held after this call")
    grant_id: str | None = None
    receivable_settled: int | None = Field(default=None, description="deposits: the part that paid off the "
                                           "player's receivable first (the rest went to cash)")
    receivable_booked: int | None = Field(default=None, description="chargebacks: the part the cash could not "
                                          "cover, now owed by the player (the rest came out of cash)")

    @model_serializer(mode="wrap")
    def _absent_unless_they_apply(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        return _absent_when_null(handler(self), ("receivable_settled", "receivable_booked"))


# ---- events (subject gameplane.wallet.<name>) -------------------------------------------------

class _MoneyEvent(Event):
    transaction_id: uuid.UUID
    player_id: uuid.UUID
    currency: str
    amount: int
    cash: int
    bonus: int
    occurred_at: datetime


class _Play(_MoneyEvent):
    grants: dict[str, int] = Field(default_factory=dict, description="the bonus part per grant (grant_id -> amount)")


class BetPlaced(_Play):
    event_type = "wallet.bet_placed"
    round_id: str
    game_id: str
    provider: str


class WinSettled(_Play):
    event_type = "wallet.win_settled"
    round_id: str
    game_id: str
    provider: str
    round_closed: bool


class RolledBack(_Play):
    event_type = "wallet.rolled_back"
    bet_transaction_id: uuid.UUID | None
    round_id: str | None
    game_id: str | None
    provider: str


class DepositCredited(_MoneyEvent):
    """`cash` is what reached the player's cash; `receivable_settled` what paid off their debt first."""

    event_type = "wallet.deposit_credited"
    psp: str
    first_deposit: bool
    receivable_settled: int = 0


class ChargedBack(_MoneyEvent):
    """A chargeback: `cash` came out of the player's cash, `receivable` (the rest) is now owed;
    `outstanding` is the player's whole receivable after it."""

    event_type = "wallet.charged_back"
    psp: str
    psp_reference: str
    receivable: int
    outstanding: int


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
    """`cash`: what reached the player's cash; `forfeited`: the rest of the grant above the cap."""

    event_type = "wallet.bonus_converted"
    forfeited: int = 0


class BonusForfeited(BonusEvent):
    event_type = "wallet.bonus_forfeited"
    reason: str = "forfeited"


class FreeSpinWon(BonusEvent):
    event_type = "wallet.free_spin_won"
    award_id: str
    round_id: str
    game_id: str
    provider: str


class FeeCharged(_MoneyEvent):
    """A payment provider's fee (`amount`; `cash` and `bonus` are 0: no player balance moves)."""

    event_type = "wallet.fee_charged"
    psp: str
    psp_reference: str
    payment_reference: str


class Adjusted(_MoneyEvent):
    event_type = "wallet.adjusted"
    reason: str
    actor: str
