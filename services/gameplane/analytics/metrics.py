"""The analytics service's metrics (the kit's RED and consumer metrics come on top).

The money counters are the inputs of contracts.kpis, in minor units, that its PromQL forms (the
business dashboard's recording rules) read: gameplane_analytics_<input>_minor_total{currency,game,
provider}, and the rolled-back stakes beside them. Every series of a label set is created together
(at 0), so that a KPI subtracting one input from another never meets a missing series. They follow
ingestion (a fact counts when it is first stored, inside its transaction: a batch that fails and is
retried event by event can count twice, and a restart resets them); the KPI API, not Prometheus,
is exact.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

from prometheus_client import Counter, Gauge

from gameplane.contracts.kpis import INPUTS, METRIC, METRIC_ROLLED_BACK, ROLLED_BACK

_LABELS = ["currency", "game", "provider"]
MONEY = {n: Counter(METRIC.format(n).removesuffix("_total"), f"KPI input {n} (contracts.kpis), minor units",
                    _LABELS) for n in INPUTS}
ROLLED = {n: Counter(METRIC_ROLLED_BACK.format(n).removesuffix("_total"), f"{n} rolled back, minor units",
                     _LABELS) for n in ROLLED_BACK}
FACTS = Counter("gameplane_analytics_facts_total", "Facts stored (first arrival of an event)", ["table"])
DUPLICATES = Counter("gameplane_analytics_duplicate_facts_total",
                     "Money events that arrived again and were not stored twice")
LAST_EVENT_AT = Gauge("gameplane_analytics_last_event_timestamp_seconds",
                      "occurred_at of the newest money event ingested (unix seconds)")
LAST_INGEST_AT = Gauge("gameplane_analytics_last_ingest_timestamp_seconds",
                       "When a money event was last ingested (unix seconds)")
INGEST_LAG = Gauge("gameplane_analytics_ingest_lag_seconds",
                   "Delay between a money event's occurred_at and its ingestion, newest batch")
CONSUMER_PENDING = Gauge("gameplane_analytics_consumer_pending",
                         "Events waiting on one of analytics' durable consumers (JetStream pending + unacked)",
                         ["durable"])
FTD = Counter("gameplane_analytics_ftd_total", "First-time deposits (a player's first deposit in a currency)",
              ["currency"])
_GAME = ["currency", "game", "provider"]
RTP_OBSERVED = Gauge("gameplane_analytics_rtp_observed", "Observed RTP over the RTP window's settled rounds", _GAME)
RTP_CERTIFIED = Gauge("gameplane_analytics_rtp_certified", "The game's certified RTP (games' catalogue)", _GAME)
RTP_BAND = Gauge("gameplane_analytics_rtp_band", "Half-width of the drift band around the certified RTP", _GAME)
RTP_DRIFT = Gauge("gameplane_analytics_rtp_drift", "1 when observed RTP lies outside the band (contracts.kpis)",
                  _GAME)
PARTITIONS = Gauge("gameplane_analytics_partitions", "Daily partitions of each fact table", ["table"])

_seen: set[tuple[str, str, str]] = set()
_newest = [0.0]


def count(currency: str, game: str, provider: str, add: Mapping[str, int]) -> None:
    labels = (currency, game, provider)
    if labels not in _seen:
        _seen.add(labels)
        for c in (*MONEY.values(), *ROLLED.values()):
            c.labels(*labels).inc(0)
    if add.get("ftd"):
        FTD.labels(currency).inc(add["ftd"])
    for name, value in add.items():
        if value > 0 and name in MONEY:
            MONEY[name].labels(*labels).inc(value)
        elif value < 0 and name in ROLLED:
            ROLLED[name].labels(*labels).inc(-value)


def note_lag(newest: datetime) -> None:
    now = time.time()
    ts = newest.timestamp()
    if ts > _newest[0]:
        _newest[0] = ts
        LAST_EVENT_AT.set(ts)
    LAST_INGEST_AT.set(now)
    INGEST_LAG.set(max(now - ts, 0.0))
