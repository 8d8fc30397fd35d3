"""Requests and answers of the staff routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gameplane.kit.staff import Role


def _unique(roles: list[Role]) -> list[Role]:
    return sorted(set(roles))


Username = Annotated[str, AfterValidator(str.lower), Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{2,49}$")]
Roles = Annotated[list[Role], Field(min_length=1, max_length=4), AfterValidator(_unique)]


class StaffLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00]+$")
    password: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]+$")
    totp: str = Field(pattern=r"^[0-9]{6}$", description="the current code of the authenticator app")


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Username
    roles: Roles
    password: str = Field(min_length=10, max_length=128, pattern=r"^[^\x00]+$",
                          description="initial password, chosen by the admin and handed over out of band")


class StaffUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roles: Roles | None = None
    active: bool | None = None


class StaffView(BaseModel):
    id: uuid.UUID
    username: str
    roles: list[Role]
    active: bool
    created_at: datetime
    created_by: str
    last_login_at: datetime | None


class StaffEnrolment(BaseModel):
    """The TOTP secret is shown here once (account creation or reset) and never again."""

    staff: StaffView
    totp_secret: str
    totp_provisioning_uri: str


class StaffToken(BaseModel):
    access_token: str
    token_type: Literal["staff"] = "staff"
    expires_in: int
    staff: StaffView
