"""The canonical dialect: gameplane's own provider API, spoken natively by the core.

POST /providers/<provider>/<operation> with a JSON body, `X-Gameplane-Timestamp: <Unix seconds>` and
`X-Gameplane-Signature: <hex HMAC-SHA256 of signing_string(method, path, timestamp, body)>`. The
signature and the timestamp window are checked before the body is even parsed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

from gameplane.contracts.games import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AuthenticateCall,
    BalanceCall,
    BetCall,
    ProviderAnswer,
    ProviderRequest,
    RollbackCall,
    WinCall,
    signature_valid,
    unix_timestamp,
)
from gameplane.games.rules import TITLES, ProviderError, check_clock
from gameplane.games.seamless import Seamless
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

    def verify(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Signature over method, path, timestamp and body; then the timestamp's window."""
        stamp = headers.get(TIMESTAMP_HEADER) or ""
        if not signature_valid(self._secret, method, path, stamp, body, headers.get(SIGNATURE_HEADER)):
            raise ProviderError("invalid-signature", f"{SIGNATURE_HEADER} does not match the request "
                                                     f"(method, path, {TIMESTAMP_HEADER} and body)")
        check_clock(unix_timestamp(stamp), time.time(), self.clock_skew, TIMESTAMP_HEADER)

    async def handle(self, core: Seamless, operation: str, body: bytes, headers: Mapping[str, str],
                     path: str, method: str = "POST") -> JSONResponse:
        request_id: str | None = None
        instance = path
        try:
            self.verify(method, path, body, headers)
            call = parse(operation, body)
            request_id = call.request_id
            answer: ProviderAnswer = await core.execute(self.name, operation, call)
        except ProviderError as exc:
            return error_response(exc, request_id, instance)
        return JSONResponse(answer.model_dump(mode="json"))
