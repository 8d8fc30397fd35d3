"""Service settings from the environment: one prefix per service (GP_<SERVICE>_)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def settings_config(service: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"GP_{service.upper()}_", extra="ignore")


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclass with `model_config = settings_config("wallet")`."""

    service_name: ClassVar[str] = "service"
    model_config = settings_config("service")

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = Field(default=None, description="postgresql+asyncpg DSN of the own DB")
    nats_url: str | None = "nats://127.0.0.1:4222"
    # The service's identity (gameplane.kit.keys): its own Ed25519 private key, and the public keys
    # of the services it trusts. No default: a service without its key refuses to start.
    service_key: SecretStr | None = Field(default=None, description="own Ed25519 private key, PKCS#8 PEM")
    service_key_file: Path | None = Field(default=None, description="file holding service_key (a mounted Secret)")
    public_keys: dict[str, list[str]] = Field(default_factory=dict, description="trusted public keys: "
                                              "{service: [SPKI or certificate PEM, ...]}")
    public_keys_file: Path | None = Field(default=None, description="JSON file of public_keys (a mounted "
                                          "ConfigMap); inline public_keys add to it")
    endpoints: dict[str, str] = Field(default_factory=dict)
    endpoints_file: Path | None = None
    otlp_endpoint: str | None = Field(default=None, description="OTLP/HTTP collector base URL (spans go to "
                                      "<it>/v1/traces); none: no spans are recorded, trace ids still flow")
    trace_sampling_ratio: float = Field(default=0.01, ge=0, le=1, description="share of the traces that start "
                                        "here which are recorded (1 % by default); a call from a traced "
                                        "caller follows the caller's decision")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="serve /metrics on this port only, "
                              "apart from the API (the charts: NetworkPolicies open it to Prometheus "
                              "alone); 0: /metrics on the API port (local runs)")
    log_level: str = "INFO"
    log_json: bool = False
    db_pool_size: int = Field(default=20, ge=1, description="SQLAlchemy pool (fixed size, opened on demand)")
    db_hot_pool_size: int = Field(default=20, ge=1, description="bare asyncpg pool of the hot statements, in "
                                  "services that have one (wallet bets/wins, games provider calls); a "
                                  "process may hold db_pool_size + db_hot_pool_size connections")
    relay_batch: int = 200
    db_wait_seconds: float = Field(default=40.0, ge=0, description="how long start-up waits for the database "
                                   "to answer (under the charts' 60 s start-up probe budget); 0: fail at once")
    migrate_on_start: bool = Field(default=True, description="apply the migrations at start (`gameplane up`, "
                                   "tests); false in Kubernetes, where the release's migration Job runs them "
                                   "once and pods wait until their database is at their code's head")
    nats_wait_seconds: float = Field(default=5.0, ge=0, description="how long start-up waits for NATS before "
                                     "going on without it (readiness never waits for NATS)")
    faults: list[dict[str, Any]] = Field(default_factory=list, description="fault drill scenarios "
                                         "(gameplane.kit.faults), e.g. [{'scenario': 'latency', 'ratio': '0.5'}]")
    faults_file: Path | None = Field(default=None, description="a JSON file of fault scenarios, re-read every "
                                     "2 s; in Kubernetes the service's faults ConfigMap")

    def signing_key_pem(self) -> str | None:
        if self.service_key is not None:
            return self.service_key.get_secret_value()
        if self.service_key_file is not None:
            return self.service_key_file.read_text()
        return None

    def endpoint(self, service: str) -> str:
        """Base URL of another service: env map first, then the discovery file."""
        if service in self.endpoints:
            return self.endpoints[service].rstrip("/")
        if self.endpoints_file and self.endpoints_file.exists():
            data: dict[str, Any] = json.loads(self.endpoints_file.read_text())
            if service in data:
                return str(data[service]).rstrip("/")
        raise LookupError(f"no endpoint configured for service {service!r}")
