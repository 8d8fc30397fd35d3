"""Calls to wallet, players and risk. Each answers in the payments' own terms; dependency failures
surface as DependencyError (a 503 problem) except where a fail-safe applies (risk)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from gameplane.contracts import payments as c
from gameplane.contracts import wallet as w
from gameplane.kit.app import Runtime
from gameplane.kit.http import DependencyError, ServiceResponse
from gameplane.kit.problems import Problem

log = logging.getLogger("gameplane.payments")

PATH_ALLOWANCE = "/internal/wallet/players/{player_id}/deposit-allowance/{currency}"
PATH_CHARGEBACKS = "/internal/wallet/chargebacks"
PATH_MOVEMENTS = "/internal/wallet/movements"
PATH_PLAYER = "/internal/players/{player_id}"
PATH_RISK = "/internal/risk/decisions"


@dataclass(frozen=True)
class Allowance:
    allowed: bool
    reason: str | None
    remaining: int | None


async def deposit_allowance(rt: Runtime, player_id: uuid.UUID, currency: str) -> Allowance | None:
    """The wallet's verdict on a deposit now, or None when the wallet has no such route yet
    (NOT AVAILABLE: the `ledger` helper adds it; until then the wallet's own guard at credit time
    is the only protection check, see docs/architecture.md)."""
    r = await rt.client("wallet").get(PATH_ALLOWANCE.format(player_id=player_id, currency=currency))
    if r.status_code == 404 and _slug(r) == "not-found":
        log.warning("wallet has no deposit-allowance route: deposit protection checked at credit time only")
        return None
    _raise_unexpected("wallet", r)
    body = r.json()
    return Allowance(bool(body["allowed"]), body.get("reason"), body.get("remaining"))


@dataclass(frozen=True)
class Player:
    kyc_state: str
    date_of_birth: date
    country: str
    currency: str


async def player(rt: Runtime, player_id: uuid.UUID) -> Player:
    r = await rt.client("players").get(PATH_PLAYER.format(player_id=player_id))
    if r.status_code == 404:
        raise c.PLAYER_NOT_FOUND(f"no player {player_id}")
    _raise_unexpected("players", r)
    body = r.json()
    return Player(body["kyc_state"], date.fromisoformat(body["date_of_birth"]), body["country"], body["currency"])


@dataclass(frozen=True)
class Decision:
    decision: str  # allow | review | deny
    case_id: uuid.UUID | None
    rules: list[str]


async def risk_decision(rt: Runtime, body: dict[str, Any], timeout: float) -> Decision | None:
    """Risk's decision, or None when risk is down, slow or answers nonsense (the fail-safe applies)."""
    try:
        client = rt.client("risk", timeout=timeout)
    except LookupError:
        return None
    try:
        r = await client.post(PATH_RISK, json=body, timeout=timeout, idempotent=True)
    except DependencyError as exc:
        log.warning("risk unavailable: %s", exc)
        return None
    if r.status_code != 200:
        log.warning("risk answered %s: %s", r.status_code, r.text[:200])
        return None
    try:
        data = r.json()
        case = data.get("case_id")
        return Decision(str(data["decision"]), uuid.UUID(case) if case else None, list(data.get("rules", [])))
    except (ValueError, KeyError, TypeError):
        return None


async def wallet_call(rt: Runtime, path: str, body: dict[str, Any]) -> ServiceResponse:
    """A money operation carrying its idempotency key: safe to retry, so declared idempotent."""
    return await rt.client("wallet", timeout=5.0).post(path, json=body, idempotent=True)


async def movements(rt: Runtime, prefix: str, since: str, until: str) -> list[dict[str, Any]]:
    r = await rt.client("wallet", timeout=30.0).get(PATH_MOVEMENTS, params={"prefix": prefix, "since": since,
                                                                           "until": until})
    _raise_unexpected("wallet", r)
    return list(r.json()["items"])


def _slug(r: ServiceResponse) -> str:
    try:
        return str(r.json().get("type", "")).rsplit("/", 1)[-1]
    except ValueError:
        return ""


def slug(r: ServiceResponse) -> str:
    return _slug(r)


def _raise_unexpected(target: str, r: ServiceResponse) -> None:
    if r.status_code >= 500:
        raise DependencyError(target, f"answered {r.status_code}")
    if r.status_code >= 400:
        raise Problem(502, "dependency-refused", f"{target} refused the call", f"{r.status_code}: {r.text[:300]}")


__all__ = ["w"]
