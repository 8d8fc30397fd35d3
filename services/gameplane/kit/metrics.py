"""Prometheus metrics shared by every service (RED per route, database pool and queries, outbox
and consumer health). The kit feeds them all; a service adds only its own business metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("gameplane_http_requests_total", "HTTP requests served",
                        ["service", "method", "route", "status"])
# one set of latency buckets, so HTTP and database latencies read on the same scale
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
HTTP_LATENCY = Histogram("gameplane_http_request_duration_seconds", "HTTP request latency",
                         ["service", "method", "route"], buckets=LATENCY_BUCKETS)
# Pool use is read when scraped (Database.observe_pool), not tracked per checkout.
DB_POOL_CONNECTIONS = Gauge("gameplane_db_pool_connections",
                            "Database connections of the service's pools, by state (in_use, idle)",
                            ["service", "state"])
DB_POOL_SIZE = Gauge("gameplane_db_pool_size", "Most connections the service's pools may open", ["service"])
# Labelled by service only: a label per statement would multiply the series by every query text.
DB_QUERY_DURATION = Histogram("gameplane_db_query_duration_seconds", "Database statement duration",
                              ["service"], buckets=LATENCY_BUCKETS)
OUTBOX_PENDING = Gauge("gameplane_outbox_pending", "Outbox events not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge("gameplane_outbox_oldest_age_seconds",
                          "Age of the oldest outbox event not yet acknowledged by JetStream (0: none)", ["service"])
OUTBOX_PUBLISHED = Counter("gameplane_outbox_published_total", "Outbox events published", ["service"])
EVENTS_CONSUMED = Counter("gameplane_events_consumed_total", "Events handled by consumers",
                          ["service", "type", "outcome"])
CONSUMER_PENDING = Gauge("gameplane_consumer_pending",
                         "Events a durable consumer has not yet acknowledged (not delivered + delivered, unacked)",
                         ["service", "stream", "consumer"])
CIRCUIT_STATE = Gauge("gameplane_circuit_open", "1 when the circuit to a dependency is open",
                      ["service", "target"])
FAULT_ACTIVE = Gauge("gameplane_fault_active", "1 while a fault drill scenario is applied by this process",
                     ["service", "scenario"])
FAULT_INJECTED = Counter("gameplane_fault_injected_total", "Requests or events a fault drill affected",
                         ["service", "scenario"])
