"""The operator's own Prometheus metrics (served on --metrics-port at /metrics).

Alerts on them: observability/prometheus/rules/operator-rules.yaml (runbooks in docs/runbooks/).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "gameplane_operator_reconciles_total", "Reconciles by outcome reason", ["reason"]
)
RECONCILE_SECONDS = Histogram(
    "gameplane_operator_reconcile_duration_seconds",
    "Time of one reconcile (render, compare, apply, prune)",
    # Buckets above 30 s: the slow-reconcile alert asks whether p99 exceeds 30 s, which
    # histogram_quantile can only answer with a finite bucket beyond it.
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
# Where a failed pass stopped: reading what it needs (other), `helm template` and its values
# (render), server-side apply (apply), deleting what the render dropped (prune), writing the
# platform's status (status).
STAGES = ("render", "apply", "prune", "status", "other")
RECONCILE_ERRORS = Counter(
    "gameplane_operator_reconcile_errors_total", "Failed reconciles and status refreshes by stage", ["stage"]
)
DRIFT_CORRECTIONS = Counter(
    "gameplane_operator_drift_corrections_total",
    "Objects changed or deleted by someone else and put back by the operator",
    ["kind"],
)
API_WRITES = Counter(
    "gameplane_operator_api_writes_total", "Write calls the operator made to the API server", ["verb", "kind"]
)
PLATFORMS = Gauge("gameplane_operator_platforms", "GamingPlatforms known to the operator")
PLATFORMS_READY = Gauge("gameplane_operator_platforms_ready", "GamingPlatforms whose Ready condition is True")
QUEUE_DEPTH = Gauge("gameplane_operator_pending_reconciles", "Platforms waiting for a reconcile worker")
# Labels name the platform as `platform_namespace`: `namespace` is the scrape target's (the operator's).
CERT_EXPIRY = Gauge(
    "gameplane_operator_certificate_expiry_timestamp_seconds",
    "notAfter of a certificate a GamingPlatform references (certs.py), Unix seconds",
    ["platform_namespace", "platform", "secret", "key"],
)

# Every stage exists from the start at 0: a rate() over a counter that first appears at 1 misses
# that first failure.
for _stage in STAGES:
    RECONCILE_ERRORS.labels(stage=_stage)
