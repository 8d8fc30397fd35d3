"""Wallet settings (env prefix GP_WALLET_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameplane.kit.settings import ServiceSettings, settings_config


class WalletSettings(ServiceSettings):
    service_name: ClassVar[str] = "wallet"
    model_config = settings_config("wallet")

    port: int = 8002
    house_shards: int = Field(default=16, ge=1, le=1024,
                              description="sub-accounts of the house per currency: a fast-path batch "
                              "slot posts to one of its own, the Python path picks one by key hash")
    hold_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0, description="default withdrawal hold expiry")
    sql_fast_path: bool = Field(default=True, description="answer bets and wins in one SQL round trip when "
                                "nothing needs the Python path (sql/0002_fast_play.sql)")
    fast_batch_slots: int = Field(default=2, ge=1, le=64, description="fast-path transactions in flight at once; "
                                  "what arrives meanwhile goes out as one batch (sql/0004_fast_batch.sql)")
    fast_batch_max: int = Field(default=32, ge=1, le=500, description="most bets and wins in one fast-path batch")
    hold_sweep_seconds: float = Field(default=30.0, gt=0, description="how often expired holds are voided")
    reconcile_every_seconds: float = Field(
        default=900.0, ge=0, description="how often one replica checks every ledger invariant (0: only on demand); "
        "each run reads the whole ledger")
