"""Gateway settings (GP_GATEWAY_*). The gateway owns no data: no database, no NATS."""

from __future__ import annotations

from pydantic import Field

from gameplane import catalog
from gameplane.kit.settings import ServiceSettings, settings_config

# Services a player may reach through the gateway. Simulators (rgs, psp) are external parties
# and are never exposed even when they appear in the endpoint map.
PLATFORM_SERVICES = [s.name for s in catalog.SERVICES if s.kind == "service" and s.name != "gateway" and s.routed]


class GatewaySettings(ServiceSettings):
    service_name = "gateway"
    model_config = settings_config("gateway")

    port: int = 8000
    nats_url: str | None = None

    routed_services: list[str] = Field(default_factory=lambda: list(PLATFORM_SERVICES),
                                       description="services routed when they have an endpoint")

    upstream_timeout: float = Field(default=10.0, gt=0, description="seconds for a whole upstream exchange")
    upstream_timeouts: dict[str, float] = Field(default_factory=dict, description="per-service overrides")
    upstream_connect_timeout: float = Field(default=1.0, gt=0)
    upstream_connections: int = Field(default=256, ge=1, description="pooled connections per service")
    endpoints_refresh_seconds: float = Field(default=10.0, gt=0, description="re-read of endpoints_file")
    max_body_bytes: int = Field(default=1_048_576, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_timeout: float = Field(default=5.0, gt=0)

    # Token buckets: rate = tokens per second, burst = bucket size. A rate of 0 disables the limit.
    rate_limit_ip_rate: float = Field(default=50.0, ge=0)
    rate_limit_ip_burst: int = Field(default=100, ge=1)
    rate_limit_player_rate: float = Field(default=20.0, ge=0)
    rate_limit_player_burst: int = Field(default=40, ge=1)
    rate_limit_partner_rate: float = Field(default=1000.0, ge=0, description="/providers and /webhooks, per address")
    rate_limit_partner_burst: int = Field(default=2000, ge=1)
    rate_limit_max_keys: int = Field(default=100_000, ge=100)
    # The limits above are the platform's; each replica enforces its share (ratelimit.replica_share).
    # The chart sets this to the gateway's minimum replica count (fixed replicas or the HPA minimum).
    rate_limit_replicas: int = Field(default=1, ge=1, description="gateway replicas sharing the limits")
    # Reverse proxies in front of the gateway that append to X-Forwarded-For (0: trust nobody,
    # the client is the peer address). Trusting more hops than exist lets clients pick their IP.
    forwarded_for_hops: int = Field(default=0, ge=0)

    cors_origins: list[str] = Field(default_factory=list, description='e.g. ["https://casino.example"]')
    cors_origin_regex: str | None = None
    cors_max_age: int = 600

    openapi_ttl: float = Field(default=30.0, gt=0, description="seconds the merged OpenAPI is cached")
    openapi_fetch_timeout: float = Field(default=2.0, gt=0)
    player_token_cache: int = Field(default=10_000, ge=0, description="verified access tokens kept")
    jwks_min_refresh_seconds: float = Field(default=10.0, ge=0, description="least time between two fetches of "
                                            "players' JWKS (a token with an unknown kid asks for one)")
    jwks_max_age_seconds: float = Field(default=300.0, gt=0, description="players' JWKS is fetched again after this")
