"""The aggregator dialect: shaped like the wallet APIs of the large game aggregators.

Differences from the canonical dialect, all absorbed here:
* paths `user/info`, `user/balance`, `transaction/bet|win|rollback`;
* field names `user`, `request_uuid`, `transaction_uuid`, `reference_transaction_uuid`, `round`,
  `game_code`;
* amounts are integers in 1/100000 of the currency's major unit (10.00 EUR = 1000000);
* the provider's RSA key (PKCS#1 v1.5, SHA-256, base64 in `X-Aggregator-Signature`) signs the
  same string as the canonical dialect's HMAC (`gameplane.contracts.games.signing_string`: method,
  path, the `X-Aggregator-Timestamp` header and the body), so a signed body is bound to its
  endpoint and refused outside the clock-skew window;
* every answer is HTTP 200 with a `status` of `RS_OK` or an `RS_ERROR_*` code (HTTP 503 only for
  a transient failure, which the provider must retry).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from gameplane.contracts.games import (
    AMOUNT_STORABLE_MAX,
    AuthenticateCall,
    BalanceCall,
    BetCall,
    Currency,
    Ident,
    ProviderAnswer,
    ProviderRequest,
    RollbackCall,
    Token,
    WinCall,
    now_timestamp,
    signing_string,
    unix_timestamp,
)
from gameplane.games.rules import ProviderError, check_clock
from gameplane.games.seamless import Seamless
from gameplane.kit.money import CurrencyError, exponent

SIGNATURE_HEADER = "X-Aggregator-Signature"
TIMESTAMP_HEADER = "X-Aggregator-Timestamp"
SCALE = 100_000  # aggregator amount units per major unit

OPERATIONS = {"user/info": "authenticate", "user/balance": "balance", "transaction/bet": "bet",
              "transaction/win": "win", "transaction/rollback": "rollback"}

STATUS: dict[str, str] = {
    "invalid-signature": "RS_ERROR_INVALID_SIGNATURE",
    "invalid-token": "RS_ERROR_INVALID_TOKEN",
    "session-expired": "RS_ERROR_TOKEN_EXPIRED",
    "player-blocked": "RS_ERROR_USER_DISABLED",
    "insufficient-funds": "RS_ERROR_NOT_ENOUGH_MONEY",
    "duplicate-transaction": "RS_ERROR_DUPLICATE_TRANSACTION",
    "request-id-reused": "RS_ERROR_DUPLICATE_TRANSACTION",
    "bet-rolled-back": "RS_ERROR_TRANSACTION_ROLLED_BACK",
    "bet-not-found": "RS_ERROR_TRANSACTION_DOES_NOT_EXIST",
    "round-closed": "RS_ERROR_ROUND_CLOSED",
    "round-settled": "RS_ERROR_ROUND_CLOSED",
    "round-mismatch": "RS_ERROR_WRONG_TYPES",
    "currency-mismatch": "RS_ERROR_WRONG_CURRENCY",
    "game-mismatch": "RS_ERROR_WRONG_GAME",
    "stake-out-of-range": "RS_ERROR_LIMIT_REACHED",
    "bonus-max-stake": "RS_ERROR_LIMIT_REACHED",
    "amount-out-of-range": "RS_ERROR_LIMIT_REACHED",
    "max-win-exceeded": "RS_ERROR_LIMIT_REACHED",
    "validation-error": "RS_ERROR_WRONG_TYPES",
    "stale-request": "RS_ERROR_INVALID_SIGNATURE",
    "unknown-provider": "RS_ERROR_UNKNOWN",
    "dependency-unavailable": "RS_ERROR_UNKNOWN",
    # Free spins are canonical-only (never produced here; mapped so every code has a status)
    "free-spin-award-not-found": "RS_ERROR_WRONG_TYPES",
    "free-spin-award-mismatch": "RS_ERROR_WRONG_TYPES",
    "free-spin-award-expired": "RS_ERROR_WRONG_TYPES",
    "free-spins-exhausted": "RS_ERROR_WRONG_TYPES",
    "free-spin-grant-closed": "RS_ERROR_WRONG_TYPES",
}
# What aggregators call the free round behind a win: this dialect pays no free rounds, and a win
# naming one is refused rather than paid as a win without a bet.
FREE_ROUND_FIELDS = ("campaign_uuid", "freespin_id", "free_spin_award_id", "bonus_id")


class _Call(BaseModel):
    model_config = ConfigDict(extra="ignore")
    user: Ident
    token: Token
    request_uuid: Ident
    game_code: Ident | None = None


class UserCall(_Call):
    pass


class TransactionCall(_Call):
    transaction_uuid: Ident
    round: Ident
    game_code: Ident
    currency: Currency
    amount: StrictInt = Field(ge=0, le=AMOUNT_STORABLE_MAX, description="1/100000 of the major unit")


class WinTransactionCall(TransactionCall):
    reference_transaction_uuid: Ident | None = None
    round_closed: bool = True
    model_config = ConfigDict(extra="allow")

    def free_round(self) -> str | None:
        extra = self.model_extra or {}
        return next((f for f in FREE_ROUND_FIELDS if extra.get(f) is not None), None)


class RollbackTransactionCall(_Call):
    transaction_uuid: Ident
    reference_transaction_uuid: Ident
    round: Ident | None = None


class AggregatorAnswer(BaseModel):
    """What the aggregator dialect answers on success (HTTP 200)."""

    status: Literal["RS_OK"]
    request_uuid: str
    user: str
    currency: str
    balance: int = Field(description="playable balance in 1/100000 of the major unit")
    transaction_uuid: str | None = None
    reference_transaction_uuid: str | None = Field(default=None, description="the platform's transaction id")


class AggregatorError(BaseModel):
    """A refusal of the aggregator dialect (HTTP 200; 503 for a transient one)."""

    status: str = Field(description="RS_ERROR_*")
    request_uuid: str | None = None
    user: str | None = None
    balance: int | None = Field(default=None, description="playable balance whenever the player is known")
    currency: str | None = None
    message: str | None = None


MODELS: dict[str, type[_Call]] = {"authenticate": UserCall, "balance": UserCall, "bet": TransactionCall,
                                  "win": WinTransactionCall, "rollback": RollbackTransactionCall}


def to_minor(amount: int, currency: str) -> int:
    """Aggregator units -> minor units; refuses amounts finer than the currency's minor unit."""
    try:
        exp = exponent(currency.upper())
    except CurrencyError:
        raise ProviderError("currency-mismatch", f"unsupported currency {currency!r}")
    minor, rest = divmod(amount * 10 ** exp, SCALE)
    if rest:
        raise ProviderError("validation-error", f"amount {amount} is finer than one minor unit of {currency}")
    return minor


def from_minor(minor: int, currency: str) -> int:
    return minor * SCALE // 10 ** exponent(currency)


def translate(operation: str, call: _Call) -> ProviderRequest:
    """The aggregator call as a canonical call."""
    base: dict[str, Any] = {"request_id": call.request_uuid, "token": call.token}
    if operation == "authenticate":
        return AuthenticateCall(**base)
    if operation == "balance":
        return BalanceCall(**base)
    if isinstance(call, TransactionCall):
        money = {"transaction_id": call.transaction_uuid, "round_id": call.round, "game_id": call.game_code,
                 "amount": to_minor(call.amount, call.currency), "currency": call.currency.upper()}
        if isinstance(call, WinTransactionCall):
            free_round = call.free_round()
            if free_round is not None:
                raise ProviderError("validation-error", f"`{free_round}`: free rounds are not supported in the "
                                                        "aggregator dialect (canonical dialect only)")
            return WinCall(**base, **money, round_closed=call.round_closed)
        return BetCall(**base, **money)
    if isinstance(call, RollbackTransactionCall):
        return RollbackCall(**base, transaction_id=call.transaction_uuid,
                            bet_transaction_id=call.reference_transaction_uuid, round_id=call.round,
                            game_id=call.game_code)
    raise ProviderError("validation-error", f"unknown operation {operation}")


def parse(path: str, body: bytes) -> tuple[str, _Call]:
    operation = OPERATIONS.get(path)
    if operation is None:
        raise ProviderError("validation-error", f"unknown path {path!r}")
    try:
        return operation, MODELS[operation].model_validate_json(body)
    except ValidationError as exc:
        raise ProviderError("validation-error", "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))


def render_answer(answer: ProviderAnswer, call: _Call) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "RS_OK", "request_uuid": call.request_uuid, "user": call.user,
                           "currency": answer.currency, "balance": from_minor(answer.balance, answer.currency)}
    if answer.transaction_id is not None:
        out["transaction_uuid"] = answer.transaction_id
        out["reference_transaction_uuid"] = str(answer.platform_transaction_id or "")
    return out


def render_error(error: ProviderError, call: _Call | None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": STATUS.get(error.code, "RS_ERROR_UNKNOWN")}
    if call is not None:
        out["request_uuid"] = call.request_uuid
        out["user"] = call.user
    if error.balance is not None and error.currency is not None:
        out["balance"] = from_minor(error.balance, error.currency)
        out["currency"] = error.currency
    if error.detail:
        out["message"] = error.detail
    return out


# ---- RSA signatures -----------------------------------------------------------------------------

def sign(private_key_pem: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return base64.b64encode(key.sign(signing_string(method, path, timestamp, body), padding.PKCS1v15(),
                                     hashes.SHA256())).decode()


def signed_headers(private_key_pem: str, path: str, body: bytes, *, timestamp: str | None = None,
                   method: str = "POST") -> dict[str, str]:
    """The two headers of an aggregator call (what a studio sends)."""
    ts = now_timestamp() if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(private_key_pem, method, path, ts, body)}


def signature_valid(public_key: rsa.RSAPublicKey, method: str, path: str, timestamp: str, body: bytes,
                    signature: str | None) -> bool:
    if not signature:
        return False
    try:
        public_key.verify(base64.b64decode(signature, validate=True), signing_string(method, path, timestamp, body),
                          padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def new_key_pair() -> tuple[str, str]:
    """(private PEM, public PEM): for tests and for a provider's onboarding."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class AggregatorAdapter:
    dialect = "aggregator"

    def __init__(self, name: str, public_key_pem: str, clock_skew: timedelta) -> None:
        self.name = name
        key = serialization.load_pem_public_key(public_key_pem.encode())
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"provider {name}: public key is not RSA")
        self._key = key
        self.clock_skew = clock_skew

    def verify(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> None:
        stamp = headers.get(TIMESTAMP_HEADER) or ""
        if not signature_valid(self._key, method, path, stamp, body, headers.get(SIGNATURE_HEADER)):
            raise ProviderError("invalid-signature", f"{SIGNATURE_HEADER} does not verify over method, path, "
                                                     f"{TIMESTAMP_HEADER} and body")
        check_clock(unix_timestamp(stamp), time.time(), self.clock_skew, TIMESTAMP_HEADER)

    async def handle(self, core: Seamless, operation: str, body: bytes, headers: Mapping[str, str],
                     path: str, method: str = "POST") -> JSONResponse:
        call: _Call | None = None
        try:
            self.verify(method, path, body, headers)
            core_op, call = parse(operation, body)  # `operation` is this dialect's: "transaction/bet"
            canonical = translate(core_op, call)
            # The aggregator names the player as well as the token: both must agree before money moves.
            session = await core.session(self.name, call.token)
            if str(session.player_id) != call.user:
                raise ProviderError("invalid-token", "token does not belong to this user")
            answer = await core.execute(self.name, core_op, canonical)
        except ProviderError as exc:
            return JSONResponse(render_error(exc, call), status_code=503 if exc.transient else 200)
        return JSONResponse(render_answer(answer, call))
