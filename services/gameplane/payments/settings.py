"""Payments settings (env prefix GP_PAYMENTS_)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from gameplane.contracts.payments import KNOWN_DEV_PSP_SECRETS
from gameplane.kit.settings import ServiceSettings, settings_config


class PspConfig(BaseModel):
    """One connected PSP. Secrets come from the environment or mounted files, never the catalogue."""

    base_url: str = Field(min_length=1)
    secret: str = Field(min_length=16, description="HMAC key the PSP signs its webhooks with")
    api_key: str = ""


class PaymentsSettings(ServiceSettings):
    service_name: ClassVar[str] = "payments"
    model_config = settings_config("payments")

    port: int = 8005
    dev_mode: bool = Field(default=False, description="a development run: accept the published development "
                           "PSP secret. The charts never set it.")
    jurisdiction: str = Field(default="none", description="profile of gameplane.contracts.jurisdiction (age, "
                              "AML threshold)")
    psps_dir: Path = Path("/etc/gameplane/psps")
    psps: dict[str, PspConfig] = Field(
        default_factory=dict,
        description="PSP name -> {base_url, secret, api_key}, JSON in GP_PAYMENTS_PSPS; or a list of names "
                    "whose keys are files <psps_dir>/<name>/{base_url,secret,api_key} (a mounted Secret)")
    adapter_modules: list[str] = Field(default_factory=list, description="modules imported at start whose "
                                       "`ADAPTERS` ({name: factory(name, PspConfig)}) connect PSPs whose adapters "
                                       "live outside gameplane.payments.adapters (a PSP of your own)")
    public_url: str = Field(default="http://127.0.0.1:8000", description="where players come back after the "
                            "hosted payment page (the gateway's public address)")
    return_url: str | None = Field(default=None, description="the page players come back to after the hosted "
                                   "payment page, `{reference}` replaced by the payment's reference (the player "
                                   "site's, e.g. https://casino.example/cashier/return?reference={reference}); "
                                   "default <public_url>/v1/payments?reference={reference}")
    deposit_ttl_seconds: int = Field(default=1800, gt=0, le=7 * 86400,
                                     description="how long a deposit's payment session stays open")
    risk_timeout_seconds: float = Field(default=0.3, gt=0, description="a risk decision slower than this "
                                        "counts as risk being down (fail-safe applies)")
    risk_failsafe_max_deposit: int = Field(default=10_000, ge=0, description="while risk is down, deposits up "
                                           "to this many minor units go on; larger ones are refused")
    withdrawal_requires_kyc: bool = Field(default=False, description="every withdrawal needs verified KYC "
                                          "(else only past the jurisdiction's AML threshold)")
    sweep_seconds: float = Field(default=5.0, gt=0, description="how often pending credits, expiries and "
                                 "pending wallet calls are retried")
    webhook_retention_days: int = Field(default=35, ge=1, le=3650, description=(
        "how long a processed webhook's (psp, event id) is kept to answer a redelivery `duplicate`; "
        "longer than any PSP's retry horizon. Past it a redelivery meets the payment's state: "
        "`ignored`, nothing moves. Refused webhooks (webhook_rejections) are kept, as audit"))
    reconcile_every_seconds: float = Field(default=0, ge=0, description="run yesterday's reconciliation this "
                                           "often (0: only on demand, CLI or back office)")

    @field_validator("psps", mode="before")
    @classmethod
    def _from_mounted_secrets(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list):
            return value
        root = Path(info.data.get("psps_dir") or "/etc/gameplane/psps")
        out: dict[str, dict[str, str]] = {}
        for entry in value:
            name = entry["name"] if isinstance(entry, dict) else str(entry)
            folder = root / name
            keys = {f.name: f.read_text().strip() for f in folder.iterdir() if f.is_file()} if folder.is_dir() else {}
            if "secret" not in keys or "base_url" not in keys:
                raise ValueError(f"PSP {name!r}: no `secret`/`base_url` in {folder}")
            out[name] = {k: v for k, v in keys.items() if k in ("base_url", "secret", "api_key")}
        return out

    @model_validator(mode="after")
    def _no_published_secret(self) -> PaymentsSettings:
        """A deployment must never verify webhooks with a key printed in this repository."""
        if not self.dev_mode:
            for name, cfg in self.psps.items():
                if cfg.secret in KNOWN_DEV_PSP_SECRETS:
                    raise ValueError(f"PSP {name!r} is configured with the published development secret; give "
                                     "it its own secret, or set GP_PAYMENTS_DEV_MODE=true on a development machine")
        return self
