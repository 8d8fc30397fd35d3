"""Payments' pure rules (state machine, withdrawal gates, fail-safe, age) and its settings' refusal
of the published development PSP secret. Expected values come from the issue's rules, written out."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from gameplane.contracts.payments import DEV_PSP_SECRET
from gameplane.payments import rules
from gameplane.payments.settings import PaymentsSettings

AML = rules.AmlState(threshold=200_000, threshold_currency="EUR", cumulative=0)


@pytest.mark.parametrize("kind,payment,state,expected", [
    ("payment.succeeded", "deposit", "pending", "succeeded"),
    ("payment.succeeded", "deposit", "expired", "succeeded"),  # money received is never dropped
    ("payment.succeeded", "deposit", "failed", "succeeded"),
    ("payment.succeeded", "deposit", "succeeded", None),  # a repeat under another event id
    ("payment.failed", "deposit", "pending", "failed"),
    ("payment.failed", "deposit", "succeeded", None),  # a late failure does not undo a credit
    ("payment.expired", "deposit", "pending", "expired"),
    ("payment.expired", "deposit", "succeeded", None),
    ("payout.paid", "withdrawal", "processing", "paid"),
    ("payout.failed", "withdrawal", "processing", "failed"),
    ("payout.paid", "withdrawal", "cancelled", None),
    ("payout.failed", "withdrawal", "paid", None),
    ("payout.paid", "deposit", "pending", None),
    ("payment.succeeded", "withdrawal", "processing", None),
])
def test_webhook_transitions(kind: str, payment: str, state: str, expected: str | None) -> None:
    assert rules.next_state(kind, payment, state) == expected


@pytest.mark.parametrize("kyc,cumulative,always,expected", [
    ("verified", 10**9, True, "ok"),
    ("rejected", 0, False, "kyc-rejected"),
    ("unverified", 200_000, False, "ok"),  # at the threshold, not past it
    ("unverified", 200_001, False, "aml-kyc-required"),
    ("pending", 200_001, False, "aml-kyc-required"),
    ("unverified", 0, True, "kyc-required"),
])
def test_withdrawal_gate(kyc: str, cumulative: int, always: bool, expected: str) -> None:
    aml = rules.AmlState(AML.threshold, AML.threshold_currency, cumulative)
    assert rules.withdrawal_gate(kyc, aml, kyc_always=always) == expected


def test_failsafe_and_age() -> None:
    assert rules.failsafe_deposit_allowed(10_000, 10_000) and not rules.failsafe_deposit_allowed(10_001, 10_000)
    assert rules.age_on(date(2008, 6, 2), date(2026, 6, 1)) == 17
    assert rules.age_on(date(2008, 6, 2), date(2026, 6, 2)) == 18


def test_the_published_dev_secret_is_refused_outside_dev_mode(tmp_path: Path) -> None:
    psps = {"simpsp": {"base_url": "http://psp", "secret": DEV_PSP_SECRET}}
    with pytest.raises(ValidationError, match="published development secret"):
        PaymentsSettings(psps=psps)
    assert PaymentsSettings(psps=psps, dev_mode=True).psps["simpsp"].secret == DEV_PSP_SECRET
    own = {"simpsp": {"base_url": "http://psp", "secret": "x" * 32}}
    assert PaymentsSettings(psps=own).psps["simpsp"].base_url == "http://psp"  # negative control


def test_psps_from_mounted_secret_files(tmp_path: Path) -> None:
    folder = tmp_path / "cardgw"
    folder.mkdir()
    (folder / "base_url").write_text("https://gw.example\n")
    (folder / "secret").write_text("s" * 40)
    (folder / "api_key").write_text("key-1")
    s = PaymentsSettings(psps_dir=tmp_path, psps=[{"name": "cardgw"}])
    assert (s.psps["cardgw"].base_url, s.psps["cardgw"].api_key) == ("https://gw.example", "key-1")
    with pytest.raises(ValidationError, match="no `secret`"):
        PaymentsSettings(psps_dir=tmp_path, psps=[{"name": "missing"}])
