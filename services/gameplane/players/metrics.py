"""Prometheus metrics of players (dashboards in observability/grafana/dashboards/)."""

from __future__ import annotations

from prometheus_client import Counter

# `outcome`: `registered`, or the slug of the refusal (underage, weak-password, email-taken, ...):
# a closed set, the players service's own problem types.
REGISTRATIONS = Counter("gameplane_players_registrations_total", "Registration attempts by outcome",
                        ["jurisdiction", "outcome"])
