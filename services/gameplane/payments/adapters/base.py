"""The seam between payments and a payment service provider (PSP).

Payments speaks to every PSP through `PspAdapter`: create a hosted payment session, ask for a
payout, verify and parse the PSP's webhooks, and read its daily settlement report. An adapter turns
one PSP's wire dialect into these types and back; nothing PSP-specific leaks past it. Amounts are
integer minor units, always positive; the event kind says which way the money moves.

Connecting a new PSP: docs/integration/payments.md (write an adapter, register it in
`ADAPTERS`, make tests/services/test_psp_adapter_contract.py pass for it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from gameplane.kit.money import validate_currency

EventKind = Literal["payment.succeeded", "payment.failed", "payment.expired", "payout.paid", "payout.failed",
                    "chargeback", "refund"]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]
SettlementKind = Literal["deposit", "payout", "refund", "chargeback", "fee"]
SETTLEMENT_KINDS: tuple[str, ...] = SettlementKind.__args__  # type: ignore[attr-defined]
RejectCode = Literal["bad-signature", "stale-webhook", "malformed-webhook"]

# How far a webhook's signed timestamp may be from our clock, either way (replays of old
# deliveries are refused; the idempotency on the PSP reference catches replays inside it).
DEFAULT_TOLERANCE_SECONDS = 300


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Money(_Frozen):
    amount: int = Field(gt=0, description="minor units, positive")
    currency: str = Field(min_length=3, max_length=3)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        return validate_currency(v)


class _Ours(_Money):
    """Our ids: uuids are taken as their text."""

    @field_validator("reference", "player_id", mode="before", check_fields=False)
    @classmethod
    def _text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, uuid.UUID) else v


class PaymentMethod(_Frozen):
    type: Literal["card", "ewallet", "bank"]
    fingerprint: str = Field(min_length=1, description="stable per instrument: the same card gives the same value")
    label: str = Field(default="", description="for people, e.g. 'VISA ..4242'")


class PaymentRequest(_Ours):
    reference: str = Field(min_length=1, max_length=64, description="ours (a uuid); the PSP is idempotent on it")
    player_id: str
    return_url: str
    expires_at: AwareDatetime


class PaymentSession(_Frozen):
    psp_reference: str
    redirect_url: str = Field(description="the PSP's hosted payment page for the player")
    expires_at: AwareDatetime


class PayoutRequest(_Ours):
    reference: str = Field(min_length=1, max_length=64, description="ours; the PSP is idempotent on it")
    player_id: str
    method: PaymentMethod = Field(description="an instrument seen on one of the player's deposits")


class PayoutAccepted(_Frozen):
    psp_reference: str
    status: Literal["pending"] = "pending"


class WebhookEvent(_Money):
    event_id: str = Field(min_length=1, description="the PSP's, unique per event (the same on a redelivery)")
    kind: EventKind
    reference: str = Field(description="ours, as given in PaymentRequest/PayoutRequest")
    psp_reference: str
    method: PaymentMethod | None = None
    occurred_at: AwareDatetime
    reason: str | None = None


class SettlementRow(_Money):
    psp: str
    psp_reference: str
    reference: str = Field(description="ours; empty for a fee the PSP charged on no payment of ours")
    kind: SettlementKind
    settled_at: AwareDatetime


class WebhookRejected(Exception):
    """A webhook refused before anything is read from it; `code` is the problem type payments returns."""

    def __init__(self, code: RejectCode, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code: RejectCode = code
        self.detail = detail


class PspError(Exception):
    """The PSP refused or did not answer an API call (payments decides whether to retry)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class PspConnection(_Frozen):
    """How to reach one PSP: what payments' `GP_PAYMENTS_PSPS` holds per name."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    base_url: str
    secret: str = Field(min_length=16, description="HMAC key the PSP signs its webhooks with")
    api_key: str = Field(min_length=1, description="our credential on the PSP's API")
    tolerance_seconds: int = Field(default=DEFAULT_TOLERANCE_SECONDS, ge=1, le=3600)
    timeout_seconds: float = Field(default=5.0, gt=0)


@runtime_checkable
class PspAdapter(Protocol):
    name: str  # "simpsp" | "cardgw"; also the webhook path segment /webhooks/payments/{name}

    async def create_payment(self, req: PaymentRequest) -> PaymentSession: ...

    async def create_payout(self, req: PayoutRequest) -> PayoutAccepted: ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Raise WebhookRejected unless `body` carries this PSP's valid, fresh signature."""

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        """The event of a verified body; WebhookRejected("malformed-webhook") if it is not one."""
        ...

    async def settlement_report(self, day: date) -> list[SettlementRow]: ...

    async def aclose(self) -> None: ...


def _registry() -> dict[str, Callable[..., PspAdapter]]:
    # Imported here: the adapters import this module for the types.
    from gameplane.payments.adapters.cardgw import CardgwAdapter
    from gameplane.payments.adapters.simpsp import SimpspAdapter

    return {"simpsp": SimpspAdapter, "cardgw": CardgwAdapter}


def adapter_names() -> tuple[str, ...]:
    return tuple(_registry())


def build(name: str, settings: PspConnection | Mapping[str, Any] | Any, **kwargs: Any) -> PspAdapter:
    """The adapter for PSP `name` configured by `settings` (a PspConnection, a mapping with
    base_url/secret/api_key, or any object with those attributes). `kwargs` go to the adapter
    (e.g. `transport` for an httpx transport in tests)."""
    factories = _registry()
    if name not in factories:
        raise LookupError(f"no adapter for PSP {name!r}; known: {', '.join(factories)}")
    if not isinstance(settings, PspConnection):
        if isinstance(settings, Mapping):
            data = dict(settings)
        else:
            data = {k: getattr(settings, k) for k in PspConnection.model_fields if hasattr(settings, k)}
        for key, value in list(data.items()):
            if hasattr(value, "get_secret_value"):
                data[key] = value.get_secret_value()
        settings = PspConnection.model_validate(data)
    return factories[name](settings, **kwargs)
