"""Prometheus metrics of payments (alerts in observability/, runbooks in docs/runbooks/)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from gameplane.kit.metrics import LATENCY_BUCKETS

PAYMENTS = Counter("gameplane_payments_total", "Payment steps reached", ["kind", "step"])
WEBHOOKS = Counter("gameplane_payments_webhooks_total", "PSP webhooks accepted", ["psp", "kind", "outcome"])
WEBHOOK_REJECTIONS = Counter("gameplane_payments_webhook_rejections_total", "PSP webhooks refused",
                             ["psp", "code"])
RISK_FAILSAFE = Counter("gameplane_payments_risk_failsafe_total",
                        "Decisions taken without risk (down or slow)", ["kind"])
CREDIT_REFUSED = Counter("gameplane_payments_credit_refused_total",
                         "Confirmed deposits the wallet refused to credit (money held at the PSP)")
MISMATCHES = Gauge("gameplane_payments_reconciliation_mismatches",
                   "Mismatches found by the latest reconciliation run", ["psp"])
OWED = Gauge("gameplane_payments_wallet_calls_owed", "Payments waiting for a wallet call (sweeper backlog)")
# The deposit-credit-time SLO (observability/prometheus/rules/slo-rules.yaml: 95 % within 300 s):
# from the deposit's start, so it includes the player's time at the PSP's page.
DEPOSIT_CREDIT_SECONDS = Histogram("gameplane_payments_deposit_credit_seconds",
                                   "Time from a deposit's start to the wallet's credit",
                                   buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600))
# Every call payments makes to a PSP's API, answered or not (a timeout is observed at its length).
# `operation`: create_payment | create_payout | settlement_report, the adapter's method.
PSP_CALL_SECONDS = Histogram("gameplane_payments_psp_call_seconds", "Duration of calls to a PSP's API",
                             ["psp", "operation"], buckets=LATENCY_BUCKETS)
