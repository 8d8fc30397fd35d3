"""The operator's own Prometheus metrics (served on --metrics-port at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "gameplane_operator_reconciles_total", "Reconciles by outcome reason", ["reason"]
)
RECONCILE_SECONDS = Histogram(
    "gameplane_operator_reconcile_duration_seconds",
    "Time of one reconcile (render, compare, apply, prune)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
API_WRITES = Counter(
    "gameplane_operator_api_writes_total", "Write calls the operator made to the API server", ["verb", "kind"]
)
PLATFORMS = Gauge("gameplane_operator_platforms", "GamingPlatforms known to the operator")
PLATFORMS_READY = Gauge("gameplane_operator_platforms_ready", "GamingPlatforms whose Ready condition is True")
QUEUE_DEPTH = Gauge("gameplane_operator_pending_reconciles", "Platforms waiting for a reconcile worker")
