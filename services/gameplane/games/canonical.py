"""The canonical dialect: gameplane's own provider API, spoken natively by the core.

POST /providers/<provider>/<operation> with a JSON body and `X-Gameplane-Signature: <hex HMAC-SHA256
of the raw body>`. The signature is checked before the body is even parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

from gameplane.contracts.games import (
    SIGNATURE_HEADER,
    AuthenticateCall,
    BalanceCall,
    BetCall,
    ProviderAnswer,
    ProviderRequest,
    RollbackCall,
    WinCall,
    signature_valid,
)
from gameplane.games.rules import TITLES, ProviderError, check_clock
from gameplane.games.seamless import Seamless
from gameplane.kit.db import utcnow
from gameplane.kit.problems import PROBLEM_BASE, PROBLEM_JSON

CALLS: dict[str, type[ProviderRequest]] = {
    "authenticate": AuthenticateCall, "balance": BalanceCall, "bet": BetCall, "win": WinCall,
    "rollback": RollbackCall,
}


def parse(operation: str, body: bytes) -> ProviderRequest:
    model = CALLS.get(operation)
    if model is None:
        raise ProviderError("validation-error", f"unknown operation {operation!r}")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ProviderError("validation-error", "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))


def problem_body(error: ProviderError, request_id: str | None, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + error.code, "title": TITLES[error.code], "status": error.status,
                            "code": error.code}
    if error.detail:
        body["detail"] = error.detail
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    if error.balance is not None:
        body["balance"] = error.balance
    if error.currency is not None:
        body["currency"] = error.currency
    return body


def error_response(error: ProviderError, request_id: str | None, instance: str | None = None) -> JSONResponse:
    headers = {"Retry-After": "1"} if error.transient else None
    return JSONResponse(problem_body(error, request_id, instance), status_code=error.status,
                        media_type=PROBLEM_JSON, headers=headers)


class CanonicalAdapter:
    dialect = "canonical"

    def __init__(self, name: str, secret: str, clock_skew: timedelta) -> None:
        self.name = name
        self._secret = secret
        self.clock_skew = clock_skew

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        if not signature_valid(self._secret, body, headers.get(SIGNATURE_HEADER)):
            raise ProviderError("invalid-signature", f"{SIGNATURE_HEADER} does not match the body")

    async def handle(self, core: Seamless, operation: str, body: bytes, headers: Mapping[str, str],
                     instance: str | None = None) -> JSONResponse:
        request_id: str | None = None
        try:
            self.verify(body, headers)
            call = parse(operation, body)
            request_id = call.request_id
            check_clock(call.timestamp, utcnow(), self.clock_skew)
            answer: ProviderAnswer = await core.execute(self.name, operation, call)
        except ProviderError as exc:
            return error_response(exc, request_id, instance)
        return JSONResponse(answer.model_dump(mode="json"))
