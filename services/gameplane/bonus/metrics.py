"""The bonus service's own metrics (the kit's RED, outbox and consumer metrics come on top)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

GRANTS = Counter("gameplane_bonus_grants_total", "Grants made, by offer kind and source", ["kind", "source"])
CONVERSIONS = Counter("gameplane_bonus_conversions_total", "Grants converted to cash, by currency", ["currency"])
CONVERTED = Counter("gameplane_bonus_converted_minor_total", "Bonus money converted to cash, minor units",
                    ["currency"])
FORFEITS = Counter("gameplane_bonus_forfeits_total",
                   "Grants closed without conversion, by reason (forfeited, withdrawal, expired, cancelled)",
                   ["reason"])
WAGERING_APPLIED = Counter("gameplane_bonus_wagering_bets_total",
                           "Settled bets applied to a grant's wagering progress")
LIABILITY = Gauge("gameplane_bonus_liability_minor",
                  "Bonus money granted to open grants, by currency (an upper bound of their wallet balance)",
                  ["currency"])
OPEN_GRANTS = Gauge("gameplane_bonus_open_grants", "Grants issued, active or wagering, by currency", ["currency"])
WALLET_OWED = Gauge("gameplane_bonus_wallet_owed", "Grants with a wallet or games call still owed (retried)")
OLDEST_OWED = Gauge("gameplane_bonus_wallet_owed_oldest_seconds",
                    "Age of the oldest grant with a call still owed (0: none)")
CONSUMER_PENDING = Gauge("gameplane_bonus_consumer_pending",
                         "Events on the stream bonus has not processed yet, by durable consumer (wagering lags "
                         "play by this much)", ["durable"])
