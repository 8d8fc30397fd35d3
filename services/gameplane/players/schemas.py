"""Request and response bodies of the players API (those other services read live in
gameplane.contracts.players). Every request model forbids unknown fields, so
a client cannot slip a protected field (kyc_state, email, password_hash, ...) into an update."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

import pycountry
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from gameplane.contracts.players import KycDocument, KycState
from gameplane.kit.money import MAX_AMOUNT_MINOR, validate_currency
from gameplane.players.limits import LimitKind, LimitPeriod

MAX_BREAK_DAYS = 36_500  # a hundred years: far past any jurisdiction's longest break


class Request(BaseModel):
    # No whitespace stripping here: it would silently change passwords.
    model_config = ConfigDict(extra="forbid")


def normalise_email(value: str) -> str:
    """One spelling per mailbox: email-validator's normal form (IDNA domain, NFC), lower-cased whole,
    since no mainstream provider treats the local part case-sensitively."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None



class DepositLimitPrompt(Request):
    """Deposit limits offered at registration, in minor units of the chosen currency."""

    day: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR)
    week: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR)
    month: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR)


class RegisterRequest(Request):
    email: str = Field(max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    date_of_birth: date
    country: str = Field(description="ISO 3166-1 alpha-2", min_length=2, max_length=2)
    currency: str = Field(description="ISO 4217, one the platform supports", min_length=3, max_length=3)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    locale: str | None = Field(default=None, max_length=16, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    marketing_opt_in: StrictBool = False
    affiliate_click_id: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    deposit_limits: DepositLimitPrompt | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        return normalise_email(v)

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        code = v.upper()
        if pycountry.countries.get(alpha_2=code) is None:
            raise ValueError(f"{v!r} is not an ISO 3166-1 alpha-2 country code")
        return code

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        return validate_currency(v)


class PlayerOut(BaseModel):
    id: uuid.UUID
    email: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    locale: str | None
    marketing_opt_in: bool
    date_of_birth: date
    country: str
    currency: str
    kyc_state: KycState
    registered_at: datetime


class LoginRequest(Request):
    email: str = Field(max_length=320)
    password: str = Field(min_length=1, max_length=1024)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        return normalise_email(v)


class RefreshRequest(Request):
    refresh_token: str = Field(min_length=16, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    player_id: uuid.UUID
    play: bool = Field(description="false while a time-out or self-exclusion is active")


class ProfileUpdate(Request):
    """The only fields a player may change about themselves. Email, KYC state, date of birth,
    currency and protections each have their own rules and routes."""

    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164")
    locale: str | None = Field(default=None, max_length=16, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    # Only applied when sent (exclude_unset); an explicit null is refused rather than stored.
    marketing_opt_in: StrictBool = False


class PasswordChange(Request):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class KycSubmit(Request):
    document_type: KycDocument
    document_reference: str = Field(min_length=1, max_length=200,
                                    description="reference of the uploaded document at the KYC vendor")


class KycOut(BaseModel):
    state: KycState
    updated_at: datetime | None
    last_reason: str | None = None


class LimitRequest(Request):
    kind: LimitKind
    period: LimitPeriod
    value: StrictInt = Field(gt=0, le=MAX_AMOUNT_MINOR,
                             description="minor units of the player's currency; minutes for a session limit")


class TimeoutRequest(Request):
    # The schema's ceilings only keep the arithmetic in range; the jurisdiction profile decides.
    days: StrictInt = Field(gt=0, le=MAX_BREAK_DAYS,
                            description="length of the break; the jurisdiction bounds it (1 day to 6 weeks)")


class SelfExclusionRequest(Request):
    months: StrictInt = Field(gt=0, le=MAX_BREAK_DAYS // 30,
                              description="calendar months; at least the jurisdiction's minimum (6)")


class RealityCheckRequest(Request):
    minutes: StrictInt | None = Field(le=MAX_BREAK_DAYS * 24 * 60,
                                      description="interval between reality checks; null turns them off")


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]+$")


class NoteView(BaseModel):
    id: uuid.UUID
    player_id: uuid.UUID
    at: datetime
    author: str
    text: str
