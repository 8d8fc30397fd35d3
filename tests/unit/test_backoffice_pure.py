"""The back office's pure parts: money written from integer minor units (no float on the way),
the KPI charts' geometry, and the role table read against the issue's rule, written out here."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplane.backoffice import charts, screens
from gameplane.backoffice.display import change, money, percent
from gameplane.kit.staff import StaffContext


def who(*roles: str) -> StaffContext:
    return StaffContext(uuid.uuid4(), "someone", roles)  # type: ignore[arg-type]


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (0, "EUR", "EUR 0.00"), (1, "EUR", "EUR 0.01"), (-1, "EUR", "EUR -0.01"), (123456789, "EUR", "EUR 1,234,567.89"),
    (-150000, "GBP", "GBP -1,500.00"), (1500, "JPY", "JPY 1,500"), (1234, "KWD", "KWD 1.234"), (None, "EUR", "—"),
])
def test_money_is_written_from_minor_units(minor: int | None, currency: str, text: str) -> None:
    assert money(minor, currency) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_money_round_trips_exactly_for_any_amount(minor: int) -> None:
    # read back the digits the page shows: the same integer, so no amount is ever rounded
    shown = money(minor, "EUR").removeprefix("EUR ").replace(",", "")
    sign = -1 if shown.startswith("-") else 1
    whole, cents = shown.lstrip("-").split(".")
    assert sign * (int(whole) * 100 + int(cents)) == minor


def test_percent_and_audit_changes_read_as_words() -> None:
    assert percent(0.9612) == "96.12 %" and percent(None) == "—"
    assert change({"state": "held", "note": "l'été"}) == '{"note": "l\'été", "state": "held"}'
    assert change(None) == "—"


def test_bars_stand_on_zero_and_scale_to_the_largest_value() -> None:
    chart = charts.grouped_bars([("05-01", [1000, 400]), ("05-02", [-500, 2000])], ("GGR", "NGR"),
                                lambda v: f"{v}")
    zero = chart.zero_y
    by = {(b.label, b.series): b for b in chart.bars}
    positive, negative = by[("05-01", 0)], by[("05-02", 0)]
    assert positive.y + positive.height == pytest.approx(zero, abs=0.2)  # rises from the zero line
    assert negative.y == pytest.approx(zero, abs=0.2) and negative.height > 0  # hangs below it
    # heights are proportional to values (rounding to 0.1 px aside)
    assert by[("05-02", 1)].height == pytest.approx(2 * positive.height, rel=0.01)
    assert by[("05-01", 1)].height == pytest.approx(0.4 * positive.height, rel=0.01)
    assert negative.height == pytest.approx(0.5 * positive.height, rel=0.01)
    # every bar says what it is in words, and ticks cover the range
    assert by[("05-02", 0)].text == "05-02 GGR: -500"
    assert min(t.value for t in chart.ticks) <= -500 and max(t.value for t in chart.ticks) >= 2000
    # bars never overlap within a group, and stay inside the drawing
    assert by[("05-01", 0)].x + by[("05-01", 0)].width <= by[("05-01", 1)].x + 0.1
    assert all(0 <= b.x and b.x + b.width <= chart.width for b in chart.bars)


def test_an_empty_period_draws_an_empty_chart_not_an_error() -> None:
    chart = charts.grouped_bars([], ("GGR", "NGR"))
    assert chart.bars == [] and chart.ticks


# the issue: support never sees the finance screens; risk decides KYC, withdrawals and cases;
# finance has the money screens; the audit log and staff accounts are the admins'
EXPECTED = {
    "support": {"players"},
    "risk": {"players", "withdrawals", "cases"},
    "finance": {"players", "withdrawals", "kpis", "bonus", "affiliates"},
    "admin": {"players", "withdrawals", "cases", "kpis", "bonus", "affiliates", "audit", "staff"},
}


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_each_role_sees_the_screens_the_issue_gives_it(role: str) -> None:
    assert {s.name for s in screens.visible(who(role))} == EXPECTED[role]


def test_support_sees_no_finance_screen_and_a_person_without_roles_sees_nothing() -> None:
    finance = {s.name for s in screens.SCREENS if s.finance}
    assert finance == {"withdrawals", "kpis", "bonus", "affiliates"}
    assert not finance & {s.name for s in screens.visible(who("support"))}
    assert screens.visible(who()) == []


def test_actions_are_narrower_than_looking() -> None:
    assert screens.may(who("risk"), "kyc.decide") and not screens.may(who("support"), "kyc.decide")
    assert not screens.may(who("finance"), "withdrawal.decide")  # finance sees held withdrawals, risk decides
    assert screens.may(who("finance"), "bonus.write") and not screens.may(who("risk"), "bonus.write")
    assert screens.may(who("support", "risk"), "case.decide")  # roles add up


def _response(status: int, body: object) -> object:
    import json

    from gameplane.kit.http import ServiceResponse

    return ServiceResponse(status, {}, json.dumps(body).encode())


@pytest.mark.parametrize(("status", "slug", "raised"), [
    (401, "staff-unauthenticated", "SessionEnded"),  # the person's token: sign in again
    (403, "staff-role-forbidden", "Forbidden"),  # the person's roles: the 403 page
    (401, "unauthenticated", "Unavailable"),  # the back office's own service token: not the person's fault
    (403, "caller-forbidden", "Unavailable"),
    (503, "dependency-unavailable", "Unavailable"),
    (500, "internal-error", "Unavailable"),
    (409, "invalid-kyc-transition", "Refused"),
    (422, "validation-failed", "Refused"),
])
def test_answers_are_sorted_into_what_the_person_is_shown(status: int, slug: str, raised: str) -> None:
    from gameplane.backoffice import upstream

    with pytest.raises(getattr(upstream, raised)):
        upstream.Office._answer("players", _response(status, {  # type: ignore[arg-type]
            "type": f"https://gameplane.io/problems/{slug}", "title": "T", "detail": "D"}))


def test_a_refusal_reads_as_its_title_and_detail() -> None:
    from gameplane.backoffice.upstream import Office, Refused, words_of

    with pytest.raises(Refused) as caught:
        Office._answer("players", _response(409, {  # type: ignore[arg-type]
            "type": "https://gameplane.io/problems/invalid-kyc-transition",
            "title": "KYC transition not allowed", "detail": "the check is verified already"}))
    assert caught.value.words == "KYC transition not allowed: the check is verified already"
    assert words_of({"title": "Request validation failed", "detail": [
        {"loc": ["body", "reason"], "msg": "String should have at least 3 characters"}]}) == \
        "Request validation failed: reason: String should have at least 3 characters"
    assert Office._answer("players", _response(200, {"ok": True})) == {"ok": True}  # type: ignore[arg-type]
