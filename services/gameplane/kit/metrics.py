"""Prometheus metrics shared by every service (RED per route, outbox and consumer health)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("gameplane_http_requests_total", "HTTP requests served",
                        ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram("gameplane_http_request_duration_seconds", "HTTP request latency",
                         ["service", "method", "route"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
OUTBOX_PENDING = Gauge("gameplane_outbox_pending", "Outbox events not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge("gameplane_outbox_oldest_age_seconds",
                          "Age of the oldest outbox event not yet acknowledged by JetStream (0: none)", ["service"])
OUTBOX_PUBLISHED = Counter("gameplane_outbox_published_total", "Outbox events published", ["service"])
EVENTS_CONSUMED = Counter("gameplane_events_consumed_total", "Events handled by consumers",
                          ["service", "type", "outcome"])
CIRCUIT_STATE = Gauge("gameplane_circuit_open", "1 when the circuit to a dependency is open",
                      ["service", "target"])
FAULT_ACTIVE = Gauge("gameplane_fault_active", "1 while a fault drill scenario is applied by this process",
                     ["service", "scenario"])
FAULT_INJECTED = Counter("gameplane_fault_injected_total", "Requests or events a fault drill affected",
                         ["service", "scenario"])
