"""The affiliates service's own metrics (the kit's RED, outbox and consumer metrics come on top)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CLICKS = Counter("gameplane_affiliates_clicks_total", "Clicks on tracking links, by result (valid, bot, duplicate)",
                 ["result"])
ATTRIBUTIONS = Counter("gameplane_affiliates_registrations_total",
                       "Registrations seen, by outcome (attributed, or why not)", ["outcome"])
QUALIFIED = Counter("gameplane_affiliates_qualified_total", "Referred players who met a CPA qualification")
POSTBACKS = Counter("gameplane_affiliates_postbacks_total", "Postback attempts, by kind and result (acked, failed)",
                    ["kind", "result"])
POSTBACK_BACKLOG = Gauge("gameplane_affiliates_postback_backlog", "Postbacks not acknowledged yet")
POSTBACK_OLDEST = Gauge("gameplane_affiliates_postback_oldest_seconds",
                        "Age of the oldest postback not acknowledged yet (0: none)")
STATEMENTS_CLOSED = Counter("gameplane_affiliates_statements_closed_total", "Monthly statements closed")
CONSUMER_PENDING = Gauge("gameplane_affiliates_consumer_pending",
                         "Events on the stream affiliates has not processed yet, by durable consumer (attribution, "
                         "figures and postbacks lag the platform by this much)", ["durable"])
