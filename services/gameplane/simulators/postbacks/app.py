"""The affiliate postback simulator: what an affiliate's tracking server does with the platform's
server-to-server postbacks, written from the documented format (docs/integration/affiliates.md),
not from the platform's code.

  POST /postbacks              a postback: signature checked (401 when wrong or stale), recorded;
                               answered 200, or 503 while told to fail, or not at all while "down"
Control API (tests, drills):
  PUT  /control/affiliates/{affiliate_id}   {"secret": "..."}   the HMAC key of an affiliate
  POST /control/fail           {"count": N}   answer the next N postbacks 503 (recorded as failed)
  GET  /control/received       every accepted delivery, in order (a postback retried after a
                               lost answer would appear twice: tests count per postback_id)
  GET  /control/rejected       deliveries refused for their signature
  POST /control/reset
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gameplane.kit.settings import ServiceSettings, settings_config

SIGNATURE = "X-Gameplane-Signature"
TIMESTAMP = "X-Gameplane-Timestamp"


class PostbackSimSettings(ServiceSettings):
    service_name: ClassVar[str] = "postbacks"
    model_config = settings_config("postbacks")

    port: int = 8102
    nats_url: str | None = None
    tolerance_seconds: int = Field(default=300, ge=1, description="a timestamp further off than this is stale")
    secrets: dict[str, str] = Field(default_factory=dict, description="affiliate_id -> HMAC key")


class SecretBody(BaseModel):
    secret: str = Field(min_length=8)


class FailBody(BaseModel):
    count: int = Field(ge=0)


def _valid(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def build_app(settings: PostbackSimSettings | None = None) -> FastAPI:
    settings = settings or PostbackSimSettings()
    app = FastAPI(title="affiliate postback simulator")
    state: dict[str, Any] = {"secrets": dict(settings.secrets), "fail": 0, "received": [], "rejected": [],
                             "failed": 0}

    @app.post("/postbacks")
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        ts, sig = request.headers.get(TIMESTAMP, ""), request.headers.get(SIGNATURE, "")
        try:
            data = json.loads(body)
            secret = state["secrets"][str(data["affiliate_id"])]
            fresh = abs(time.time() - int(ts)) <= settings.tolerance_seconds
        except (ValueError, KeyError, TypeError):
            state["rejected"].append({"reason": "unreadable or unknown affiliate",
                                      "body": body.decode(errors="replace")[:2000]})
            return JSONResponse({"error": "unknown affiliate or malformed postback"}, status_code=401)
        if not fresh or not _valid(secret, ts, body, sig):
            state["rejected"].append({"reason": "stale" if not fresh else "bad signature", "data": data})
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if state["fail"] > 0:
            state["fail"] -= 1
            state["failed"] += 1
            return JSONResponse({"error": "told to fail"}, status_code=503)
        state["received"].append(data)
        return JSONResponse({"ok": True})

    @app.put("/control/affiliates/{affiliate_id}")
    async def set_secret(affiliate_id: str, body: SecretBody) -> dict[str, str]:
        state["secrets"][affiliate_id] = body.secret
        return {"affiliate_id": affiliate_id}

    @app.post("/control/fail")
    async def fail(body: FailBody) -> dict[str, int]:
        state["fail"] = body.count
        return {"fail": body.count}

    @app.get("/control/received")
    async def received() -> list[dict[str, Any]]:
        return list(state["received"])

    @app.get("/control/rejected")
    async def rejected() -> list[dict[str, Any]]:
        return list(state["rejected"])

    @app.get("/control/stats")
    async def stats() -> dict[str, int]:
        return {"received": len(state["received"]), "rejected": len(state["rejected"]), "failed": state["failed"]}

    @app.post("/control/reset")
    async def reset() -> dict[str, bool]:
        state.update(fail=0, received=[], rejected=[], failed=0)
        return {"ok": True}

    return app
