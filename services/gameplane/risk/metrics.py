"""The risk service's own metrics (the kit's RED and outbox metrics come on top)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DECISIONS = Counter("gameplane_risk_decisions_total", "Decisions taken, by kind and outcome", ["kind", "decision"])
RULE_FIRES = Counter("gameplane_risk_rule_fires_total",
                     "Rules that fired, by rule id and where (deposit, withdrawal decisions; harm scoring)",
                     ["rule", "kind"])
DECISION_LATENCY = Histogram("gameplane_risk_decision_seconds", "Time to take a decision (read, evaluate, write)",
                             buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25))
OPEN_CASES = Gauge("gameplane_risk_open_cases", "Review cases not decided yet")
OLDEST_OPEN_CASE = Gauge("gameplane_risk_oldest_open_case_seconds", "Age of the oldest open review case (0: none)")
HARM_PLAYERS = Gauge("gameplane_risk_harm_players", "Players by harm level (low, medium, high)", ["level"])
RULES_VERSION = Gauge("gameplane_risk_rules_version", "Version of the rule set this process applies")
