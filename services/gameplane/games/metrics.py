"""Prometheus metrics of games: provider callbacks and the money they move (alerts in
observability/prometheus/rules/games-rules.yaml, dashboards in observability/grafana/)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from gameplane.kit.metrics import LATENCY_BUCKETS

# `action`: the canonical operation (bet, win, rollback, balance, authenticate) or `other`; only
# configured providers are measured, so no caller can mint label values.
CALLBACK_SECONDS = Histogram("gameplane_games_provider_callback_seconds",
                             "Time games takes to answer a provider's wallet callback",
                             ["provider", "action"], buckets=LATENCY_BUCKETS)
# Money moved by provider calls, counted once per movement (replays and no-op movements are not).
ROUNDS = Counter("gameplane_games_rounds_total", "Bets, wins and rollbacks moved by provider calls",
                 ["provider", "game", "currency", "kind"])
AMOUNT = Counter("gameplane_games_amount_minor_total", "Amount moved by provider calls, in minor units",
                 ["provider", "game", "currency", "kind"])
