"""The gateway's chart settings: trusted proxy hops and the replica share of its rate limits."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.test_network_policy import helm_template

from gameplane.gateway.ratelimit import replica_share


def _gateway_config(*args: str) -> dict[str, Any]:
    docs = helm_template(*args)
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "p-gateway")
    return dict(cm["data"])


def test_the_share_is_the_minimum_replica_count() -> None:
    assert _gateway_config()["GP_GATEWAY_RATE_LIMIT_REPLICAS"] == "1"
    assert _gateway_config("--set", "gateway.replicas=3")["GP_GATEWAY_RATE_LIMIT_REPLICAS"] == "3"
    hpa = _gateway_config("--set", "gateway.replicas=5", "--set", "gateway.autoscaling.enabled=true",
                          "--set", "gateway.autoscaling.minReplicas=2", "--set", "gateway.autoscaling.maxReplicas=6")
    assert hpa["GP_GATEWAY_RATE_LIMIT_REPLICAS"] == "2"


def test_trusted_hops_come_from_the_chart_and_only_the_gateway_has_them() -> None:
    assert _gateway_config("--set", "gateway.trustedProxyHops=2")["GP_GATEWAY_FORWARDED_FOR_HOPS"] == "2"
    docs = helm_template()
    wallet = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "p-wallet")
    assert not any("FORWARDED_FOR_HOPS" in k or "RATE_LIMIT_REPLICAS" in k for k in wallet["data"])


def test_replica_share_divides_rate_and_burst() -> None:
    assert replica_share(50.0, 100, 1) == (50.0, 100)
    assert replica_share(50.0, 100, 2) == (25.0, 50)
    assert replica_share(20.0, 3, 4) == (5.0, 1)  # never a bucket that refuses everything
    with pytest.raises(ValueError):
        replica_share(1.0, 1, 0)
