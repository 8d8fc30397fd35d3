"""Settings of the PSP simulator (GP_PSP_*). An outside party: no database, no NATS, no identity.

It speaks two dialects, `simpsp` and `cardgw`; a dialect runs when it has both its webhook secret
and its API key (from GP_PSP_<DIALECT>_SECRET / _API_KEY, or files <secrets_dir>/<dialect>/secret
and api_key, a mounted Secret). There is no default key: a simulator with neither refuses to start.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from gameplane.kit.settings import ServiceSettings, settings_config

Dialect = Literal["simpsp", "cardgw"]
DIALECTS: tuple[Dialect, ...] = ("simpsp", "cardgw")
# Where the platform listens for each PSP's webhooks (payments, behind the gateway's /webhooks).
WEBHOOK_PATH = "/webhooks/payments/{dialect}"


class PspSettings(ServiceSettings):
    service_name: ClassVar[str] = "psp"
    model_config = settings_config("psp")

    port: int = 8101
    nats_url: str | None = None
    public_url: str | None = Field(default=None, description="base URL players' browsers reach the hosted page "
                                   "at; default http://<host>:<port>")
    secrets_dir: Path = Field(default=Path("/etc/gameplane/psps"), description="<dir>/<dialect>/{secret,api_key}")
    simpsp_secret: str | None = Field(default=None, min_length=16, description="HMAC key of simpsp webhooks")
    simpsp_api_key: str | None = Field(default=None, min_length=8, description="the merchant's simpsp API key")
    simpsp_webhook_url: str | None = Field(default=None, description="default: <gateway or payments>"
                                           "/webhooks/payments/simpsp")
    cardgw_secret: str | None = Field(default=None, min_length=16, description="HMAC key of cardgw webhooks")
    cardgw_api_key: str | None = Field(default=None, min_length=8, description="the merchant's cardgw API key")
    cardgw_webhook_url: str | None = Field(default=None, description="default: <gateway or payments>"
                                           "/webhooks/payments/cardgw")
    seed: int | None = Field(default=None, description="seed of the delivery RNG (duplicates, reordering)")
    duplicate_ratio: float = Field(default=0.0, ge=0, le=1, description="chance of one more copy of a webhook")
    max_copies: int = Field(default=2, ge=1, le=10, description="at most this many copies of one webhook")
    reorder_ratio: float = Field(default=0.0, ge=0, le=1, description="chance a webhook is held back so later "
                                 "ones overtake it")
    reorder_delay_seconds: float = Field(default=0.5, ge=0, description="how long a held-back webhook waits (1-2x)")
    retry_initial_seconds: float = Field(default=0.5, gt=0, description="first retry delay; doubles per attempt")
    retry_max_seconds: float = Field(default=60.0, gt=0, description="cap of the retry delay (never gives up)")
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    delivery_concurrency: int = Field(default=8, ge=1, description="webhooks in flight at once")
    session_ttl_seconds: int = Field(default=1800, ge=1, description="expiry of a session asked without one")
    payout_delay_seconds: float | None = Field(default=2.0, ge=0, description="a payout is paid this long after "
                                               "it is asked; null: payouts wait for POST /control/payouts/{id}")
    fee_basis_points: int = Field(default=150, ge=0, le=10_000, description="fee per settled deposit (report row)")
    tick_seconds: float = Field(default=0.2, gt=0, description="how often expiries and payouts are checked")

    def _from_dir(self, dialect: str, name: str) -> str | None:
        path = self.secrets_dir / dialect / name
        return path.read_text().strip() if path.is_file() else None

    def secret(self, dialect: str) -> str | None:
        value: str | None = getattr(self, f"{dialect}_secret")
        return value or self._from_dir(dialect, "secret")

    def api_key(self, dialect: str) -> str | None:
        value: str | None = getattr(self, f"{dialect}_api_key")
        return value or self._from_dir(dialect, "api_key")

    def enabled(self) -> tuple[Dialect, ...]:
        return tuple(d for d in DIALECTS if self.secret(d) and self.api_key(d))

    def webhook_url(self, dialect: str) -> str | None:
        explicit: str | None = getattr(self, f"{dialect}_webhook_url")
        if explicit:
            return explicit
        for target in ("gateway", "payments"):
            try:
                return self.endpoint(target) + WEBHOOK_PATH.format(dialect=dialect)
            except LookupError:
                continue
        return None

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
