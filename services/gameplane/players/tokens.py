"""Refresh tokens: opaque, stored only as a hash, rotated on every use, grouped in families.

A family starts at login. Each refresh spends the presented token and issues its successor in
the same family. A spent token presented again means two parties hold the family (a stolen
token, or a replay), so the whole family is revoked and both must log in again.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Literal

TOKEN_BYTES = 32

RefreshVerdict = Literal["rotate", "reused", "revoked", "expired"]


def new_refresh_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    # 256 random bits need no salt or slow hash: there is nothing to guess from the digest.
    return hashlib.sha256(token.encode()).hexdigest()


def judge_refresh(*, rotated_at: datetime | None, revoked_at: datetime | None, expires_at: datetime,
                  now: datetime) -> RefreshVerdict:
    """What presenting a known refresh token means. Revocation wins over everything, reuse over
    expiry: a spent token is evidence of theft even when it has also expired."""
    if revoked_at is not None:
        return "revoked"
    if rotated_at is not None:
        return "reused"
    if now >= expires_at:
        return "expired"
    return "rotate"
