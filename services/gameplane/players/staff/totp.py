"""TOTP (RFC 6238, 30 s steps, 6 digits) via pyotp, with replay protection by time step.

A code is accepted for the current step and one step either side (clock drift between the
staff member's authenticator and the server), and only if its step is newer than the last step
the account logged in with: a code seen once, or any older one, cannot log in again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pyotp
from pyotp.utils import strings_equal

DRIFT_STEPS = 1

Verdict = Literal["ok", "wrong", "replayed"]


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if strings_equal(totp.generate_otp(step), code):
            return step
    return None


def check(secret: str, code: str, now: datetime, last_step: int | None) -> tuple[Verdict, int | None]:
    step = matching_step(secret, code, now)
    if step is None:
        return "wrong", None
    if last_step is not None and step <= last_step:
        return "replayed", step
    return "ok", step
