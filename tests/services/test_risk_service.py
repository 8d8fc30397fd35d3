"""The risk service on real PostgreSQL and NATS: features fed by the events other services publish
(players, payments, wallet), decisions through the route payments calls, review cases through the
back office, and rule set versions with their audit trail.

The rule set under test is published by the test itself (RULES below), and every scenario is
built from its thresholds as written here: n events, then one more request, and what must fire.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI

from gameplane.contracts.payments import DepositFailed, DepositSucceeded, WithdrawalCancelled
from gameplane.contracts.players import LoggedIn
from gameplane.contracts.wallet import BetPlaced, WinSettled
from gameplane.devtools.testing import as_service, as_staff, running, stored_events
from gameplane.kit.events import Envelope, Event
from gameplane.risk.app import build_app
from gameplane.risk.settings import RiskSettings

PROBLEM = "https://gameplane.io/problems/"

RULES: dict[str, Any] = {"review_at": 500, "deny_at": 1000, "rules": [
    {"id": "deposit-burst", "type": "velocity", "feature": "deposit_requests", "window": "5m", "count_gte": 4,
     "score": 100, "action": "review", "applies_to": ["deposit"]},
    {"id": "large-deposit", "type": "large_amount", "amount_gte": {"EUR": 100_000}, "score": 100,
     "action": "review", "applies_to": ["deposit"]},
    {"id": "huge-withdrawal", "type": "large_amount", "amount_gte": {"EUR": 10_000_000}, "score": 100,
     "action": "deny", "applies_to": ["withdrawal"]},
    {"id": "shared-device", "type": "shared_identity", "key": "device", "min_accounts": 3, "window": "1d",
     "score": 100, "action": "review"},
    {"id": "new-method", "type": "new_method", "score": 100, "action": "review"},
    {"id": "little-play", "type": "little_play", "window": "7d", "max_wagered_pct": 100, "min_deposited": 1_000,
     "score": 100, "action": "review"},
    {"id": "failed-deposits", "type": "velocity", "feature": "failed_deposits", "window": "1h", "count_gte": 3,
     "score": 150, "action": "score", "harm": True},
    {"id": "reversed-withdrawals", "type": "velocity", "feature": "cancelled_withdrawals", "window": "7d",
     "count_gte": 2, "score": 200, "action": "score", "harm": True},
    {"id": "night-play", "type": "velocity", "feature": "night_bets", "window": "7d", "count_gte": 3, "score": 50,
     "action": "score", "harm": True},
    {"id": "rising-deposits", "type": "rising_deposits", "measure": "count", "factor_pct": 200, "min_recent": 3,
     "score": 100, "action": "score", "harm": True, "applies_to": ["deposit"]},
    {"id": "chasing", "type": "chasing_losses", "loss_pct": 80, "within_minutes": 30, "min_count": 1,
     "window": "1d", "score": 100, "action": "review", "harm": True, "applies_to": ["deposit"]},
    {"id": "logins-hour", "type": "velocity", "feature": "logins", "window": "1h", "count_gte": 5, "score": 100,
     "action": "score"},
    {"id": "many-methods", "type": "many_methods", "min_methods": 3, "window": "7d", "score": 100,
     "action": "review", "applies_to": ["deposit"]},
    {"id": "shared-ip", "type": "shared_identity", "key": "ip", "min_accounts": 4, "window": "1d", "score": 50,
     "action": "score"},
]}


@dataclass
class Risk:
    app: FastAPI
    http: httpx.AsyncClient
    nats_url: str
    version: int

    async def decide(self, player: uuid.UUID, kind: str = "deposit", amount: int = 2_000,
                     **extra: Any) -> dict[str, Any]:
        body = {"kind": kind, "player_id": str(player), "amount": amount, "currency": "EUR",
                "reference": extra.pop("reference", f"ref-{uuid.uuid4().hex}"), **extra}
        r = await self.http.post("/internal/risk/decisions", json=body, headers=as_service(self.app, "payments"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def player(self, player: uuid.UUID) -> dict[str, Any]:
        r = await self.http.get(f"/internal/risk/players/{player}", headers=as_staff(self.app, "risk"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def emit(self, *events: Event, producer: str = "test") -> None:
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            for event in events:
                env = Envelope.wrap(event, producer)
                await js.publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": str(env.id)})
        finally:
            await nc.close()

    async def until(self, player: uuid.UUID, check: Callable[[dict[str, Any]], bool],
                    timeout: float = 15.0) -> dict[str, Any]:
        """The player's risk view once `check` holds (events are consumed asynchronously)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            view = await self.player(player)
            if check(view) or asyncio.get_running_loop().time() > deadline:
                assert check(view), view
                return view
            await asyncio.sleep(0.1)


def count(view: dict[str, Any], feature: str, window: str) -> int:
    return next((int(w["count"]) for w in view["windows"] if (w["feature"], w["window"]) == (feature, window)), 0)


async def publish_rules(http: httpx.AsyncClient, app: FastAPI, document: dict[str, Any], reason: str,
                        **extra: Any) -> httpx.Response:
    return await http.post("/internal/risk/rule-sets", headers=as_staff(app, "risk", username="rita"),
                           json={"document": document, "reason": reason, **extra})


@pytest.fixture(scope="module")
async def risk(module_service_settings: Any, nats_server: Any) -> AsyncIterator[Risk]:
    app = build_app(module_service_settings(RiskSettings, sweep_interval_seconds=0.3))
    async with running(app) as http:
        r = await publish_rules(http, app, RULES, "rules of the services test")
        assert r.status_code == 201, r.text
        yield Risk(app, http, nats_server.url, r.json()["version"])


def now() -> datetime:
    return datetime.now(UTC)


def deposit_ok(player: uuid.UUID, amount: int, method: str | None = "card-a", at: datetime | None = None
               ) -> DepositSucceeded:
    return DepositSucceeded(payment_id=uuid.uuid4(), reference=uuid.uuid4().hex, player_id=player, amount=amount,
                            currency="EUR", psp="simpsp", method_fingerprint=method, at=at or now())


def bet(player: uuid.UUID, amount: int, at: datetime | None = None) -> BetPlaced:
    return BetPlaced(transaction_id=uuid.uuid4(), player_id=player, currency="EUR", amount=amount, cash=amount,
                     bonus=0, occurred_at=at or now(), round_id=uuid.uuid4().hex, game_id="fruit-fives",
                     provider="rgs")


def win(player: uuid.UUID, amount: int) -> WinSettled:
    return WinSettled(transaction_id=uuid.uuid4(), player_id=player, currency="EUR", amount=amount, cash=amount,
                      bonus=0, occurred_at=now(), round_id=uuid.uuid4().hex, game_id="fruit-fives",
                      provider="rgs", round_closed=True)


def problem(r: httpx.Response, status: int, slug: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == PROBLEM + slug, r.json()


# ---- the decision route ---------------------------------------------------------------------------

async def test_only_payments_may_ask_for_a_decision(risk: Risk) -> None:
    body = {"kind": "deposit", "player_id": str(uuid.uuid4()), "amount": 1_000, "currency": "EUR",
            "reference": "who-asks"}
    problem(await risk.http.post("/internal/risk/decisions", json=body), 401, "unauthenticated")
    for caller in ("games", "wallet", "backoffice", "gateway"):
        r = await risk.http.post("/internal/risk/decisions", json=body, headers=as_service(risk.app, caller))
        problem(r, 403, "caller-not-allowed")
    bad = {**body, "amount": 0}
    problem(await risk.http.post("/internal/risk/decisions", json=bad, headers=as_service(risk.app, "payments")),
            422, "validation-error")
    bad = {**body, "amount": 12.5}
    problem(await risk.http.post("/internal/risk/decisions", json=bad, headers=as_service(risk.app, "payments")),
            422, "validation-error")


async def test_an_ordinary_deposit_is_allowed_stored_once_and_published(risk: Risk) -> None:
    player = uuid.uuid4()
    reference = f"ordinary-{uuid.uuid4().hex}"
    first = await risk.decide(player, amount=2_000, reference=reference, ip="198.51.100.7", device_id="dev-ordinary")
    assert first["decision"] == "allow" and first["rules"] == [] and first["score"] == 0
    assert first["case_id"] is None and first["rules_version"] == risk.version
    again = await risk.decide(player, amount=2_000, reference=reference)
    assert again == first  # the stored decision, not a second opinion
    r = await risk.http.post("/internal/risk/decisions", headers=as_service(risk.app, "payments"),
                             json={"kind": "deposit", "player_id": str(player), "amount": 9_000, "currency": "EUR",
                                   "reference": reference})
    problem(r, 409, "decision-conflict")
    events = await stored_events(risk.nats_url, "gameplane.risk.decided", {}, 1,
                                 where=lambda d: d["request"]["reference"] == reference)
    mine = [e["data"] for e in events]
    assert len(mine) == 1 and mine[0]["decision"]["decision_id"] == first["decision_id"]
    assert mine[0]["request"]["amount"] == 2_000


# ---- each rule: fires on its sequence, quiet on a benign one ---------------------------------------

async def test_deposit_burst_fires_on_the_fourth_attempt_within_five_minutes(risk: Risk) -> None:
    player = uuid.uuid4()
    for _ in range(3):
        quiet = await risk.decide(player)
        assert "deposit-burst" not in quiet["rules"]
    fourth = await risk.decide(player)
    assert "deposit-burst" in fourth["rules"] and fourth["decision"] == "review" and fourth["case_id"]
    # withdrawals do not count towards deposit attempts
    other = uuid.uuid4()
    for _ in range(4):
        w = await risk.decide(other, kind="withdrawal", amount=500)
        assert "deposit-burst" not in w["rules"]


async def test_large_amounts(risk: Risk) -> None:
    player = uuid.uuid4()
    assert "large-deposit" not in (await risk.decide(player, amount=99_999))["rules"]
    large = await risk.decide(player, amount=100_000)
    assert large["rules"] == ["large-deposit"] and large["decision"] == "review"
    huge = await risk.decide(uuid.uuid4(), kind="withdrawal", amount=10_000_000)
    assert "huge-withdrawal" in huge["rules"] and huge["decision"] == "deny" and huge["case_id"] is None


async def test_a_device_shared_by_three_accounts(risk: Risk) -> None:
    device = f"dev-{uuid.uuid4().hex[:8]}"
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await risk.emit(LoggedIn(player_id=first, ip="203.0.113.1", device_id=device, at=now()),
                    LoggedIn(player_id=second, ip="203.0.113.2", device_id=device, at=now()), producer="players")
    await risk.until(second, lambda v: v["last_device"] == device)
    await risk.until(first, lambda v: v["last_device"] == device)
    shared = await risk.decide(third, device_id=device)
    assert "shared-device" in shared["rules"] and shared["decision"] == "review"
    # the third account's own device, seen on it alone (twice), is benign
    own = f"dev-{uuid.uuid4().hex[:8]}"
    await risk.emit(LoggedIn(player_id=third, ip="203.0.113.3", device_id=own, at=now()), producer="players")
    await risk.until(third, lambda v: v["last_device"] == own)
    assert "shared-device" not in (await risk.decide(third, device_id=own))["rules"]
    # without a device in the request the last login's device counts (the third's own: quiet)
    assert "shared-device" not in (await risk.decide(third))["rules"]
    # and for the second account, whose last login was on the shared device, it fires without one
    assert "shared-device" in (await risk.decide(second))["rules"]


async def test_withdrawal_to_a_new_method_and_little_play(risk: Risk) -> None:
    player = uuid.uuid4()
    await risk.emit(deposit_ok(player, 50_000, method="card-a"), producer="payments")
    await risk.until(player, lambda v: v["deposit_methods"] == 1 and count(v, "deposits", "7d") == 1)
    to_other = await risk.decide(player, kind="withdrawal", amount=40_000, method_fingerprint="ewallet-b")
    assert "new-method" in to_other["rules"]
    assert "little-play" in to_other["rules"]  # 50,000 deposited, nothing wagered
    # played in the afternoon (late-night play would be a marker of its own)
    afternoon = (now() - timedelta(days=1)).replace(hour=15)
    await risk.emit(*(bet(player, 10_000, at=afternoon) for _ in range(6)), producer="wallet")
    await risk.until(player, lambda v: count(v, "bets", "7d") == 6)
    played = await risk.decide(player, kind="withdrawal", amount=40_000, method_fingerprint="card-a")
    assert played["rules"] == [] and played["decision"] == "allow"


async def test_repeated_failed_deposits_and_reversed_withdrawals_raise_the_harm_score(risk: Risk) -> None:
    player = uuid.uuid4()

    def failed() -> DepositFailed:
        return DepositFailed(payment_id=uuid.uuid4(), reference=uuid.uuid4().hex, player_id=player, amount=2_000,
                             currency="EUR", psp="simpsp", at=now(), reason="declined")

    await risk.emit(failed(), failed(), producer="payments")
    view = await risk.until(player, lambda v: count(v, "failed_deposits", "1h") == 2)
    assert view["harm_score"] == 0 and "failed-deposits" not in (await risk.decide(player))["rules"]
    await risk.emit(failed(), producer="payments")
    view = await risk.until(player, lambda v: v["harm_score"] > 0)
    assert view["harm_rules"] == ["failed-deposits"] and view["harm_score"] == 150
    fired = await risk.decide(player)
    assert "failed-deposits" in fired["rules"] and fired["score"] == 150 and fired["decision"] == "allow"

    def cancelled() -> WithdrawalCancelled:
        return WithdrawalCancelled(payment_id=uuid.uuid4(), reference=uuid.uuid4().hex, player_id=player,
                                   amount=5_000, currency="EUR", psp="simpsp", at=now())

    await risk.emit(cancelled(), producer="payments")
    view = await risk.until(player, lambda v: count(v, "cancelled_withdrawals", "7d") == 1)
    assert view["harm_rules"] == ["failed-deposits"]
    await risk.emit(cancelled(), producer="payments")
    view = await risk.until(player, lambda v: "reversed-withdrawals" in v["harm_rules"])
    assert view["harm_score"] == 350


async def test_bets_are_scored_from_events_late_night_play(risk: Risk) -> None:
    player, day_player = uuid.uuid4(), uuid.uuid4()
    night = (now() - timedelta(days=1)).replace(hour=2, minute=30)
    afternoon = night.replace(hour=15)
    await risk.emit(*(bet(player, 100, at=night + timedelta(minutes=i)) for i in range(3)),
                    *(bet(day_player, 100, at=afternoon + timedelta(minutes=i)) for i in range(3)), producer="wallet")
    view = await risk.until(player, lambda v: "night-play" in v["harm_rules"])
    assert view["harm_score"] == 50
    day = await risk.until(day_player, lambda v: count(v, "bets", "7d") == 3)
    assert day["harm_score"] == 0 and day["harm_rules"] == []


async def test_rising_deposit_frequency(risk: Risk) -> None:
    rising, steady = uuid.uuid4(), uuid.uuid4()
    weeks_ago = now() - timedelta(days=15)
    # one deposit in the three weeks before, then four this week: far above the weekly average
    await risk.emit(deposit_ok(rising, 2_000, at=weeks_ago),
                    *(deposit_ok(rising, 2_000, at=now() - timedelta(days=d)) for d in range(4)), producer="payments")
    # six in the weeks before (two a week) and two this week: not rising
    await risk.emit(*(deposit_ok(steady, 2_000, at=weeks_ago - timedelta(days=d)) for d in range(6)),
                    *(deposit_ok(steady, 2_000, at=now() - timedelta(days=d)) for d in range(2)), producer="payments")
    view = await risk.until(rising, lambda v: "rising-deposits" in v["harm_rules"])
    assert view["harm_score"] == 100
    assert "rising-deposits" in (await risk.decide(rising))["rules"]
    view = await risk.until(steady, lambda v: count(v, "deposits", "28d") == 8)
    assert "rising-deposits" not in view["harm_rules"]
    assert "rising-deposits" not in (await risk.decide(steady))["rules"]


async def test_chasing_losses(risk: Risk) -> None:
    chaser, winner = uuid.uuid4(), uuid.uuid4()
    for player in (chaser, winner):
        await risk.emit(deposit_ok(player, 10_000), producer="payments")
        await risk.until(player, lambda v: v["last_deposit_amount"] == 10_000)
    # the chaser loses 9,000 of the 10,000 within minutes; the winner wins more than was staked
    await risk.emit(bet(chaser, 5_000), bet(chaser, 4_000), bet(winner, 5_000), producer="wallet")
    await risk.emit(win(winner, 12_000), producer="wallet")
    await risk.until(chaser, lambda v: v["wagered_since_deposit"] == 9_000)
    await risk.until(winner, lambda v: v["won_since_deposit"] == 12_000)
    chase = await risk.decide(chaser, amount=10_000)
    assert "chasing" in chase["rules"] and chase["decision"] == "review"
    assert "chasing" not in (await risk.decide(winner, amount=10_000))["rules"]
    # once the chasing deposit succeeds it is counted, and the harm score shows it
    await risk.emit(deposit_ok(chaser, 10_000), producer="payments")
    view = await risk.until(chaser, lambda v: "chasing" in v["harm_rules"])
    assert count(view, "chase_deposits", "1d") == 1


async def test_many_deposit_methods(risk: Risk) -> None:
    player = uuid.uuid4()
    await risk.emit(deposit_ok(player, 2_000, method="card-1"), deposit_ok(player, 2_000, method="card-2"),
                    producer="payments")
    await risk.until(player, lambda v: v["deposit_methods"] == 2)
    third = await risk.decide(player, method_fingerprint="card-3")
    assert "many-methods" in third["rules"]
    assert "many-methods" not in (await risk.decide(player, method_fingerprint="card-2"))["rules"]


async def test_an_address_shared_by_four_accounts(risk: Risk) -> None:
    ip = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    others = [uuid.uuid4() for _ in range(3)]
    await risk.emit(*(LoggedIn(player_id=p, ip=ip, at=now()) for p in others[:2]), producer="players")
    for p in others[:2]:
        await risk.until(p, lambda v: v["last_ip"] == ip)
    player = uuid.uuid4()
    assert "shared-ip" not in (await risk.decide(player, ip=ip))["rules"]  # three accounts with this one
    await risk.emit(LoggedIn(player_id=others[2], ip=ip, at=now()), producer="players")
    await risk.until(others[2], lambda v: v["last_ip"] == ip)
    assert "shared-ip" in (await risk.decide(player, ip=ip))["rules"]  # four


async def test_login_velocity(risk: Risk) -> None:
    player = uuid.uuid4()
    await risk.emit(*(LoggedIn(player_id=player, ip="192.0.2.9", at=now()) for _ in range(4)), producer="players")
    await risk.until(player, lambda v: count(v, "logins", "1h") == 4)
    assert "logins-hour" not in (await risk.decide(player))["rules"]
    await risk.emit(LoggedIn(player_id=player, ip="192.0.2.9", at=now()), producer="players")
    await risk.until(player, lambda v: count(v, "logins", "1h") == 5)
    assert "logins-hour" in (await risk.decide(player))["rules"]


# ---- review cases ------------------------------------------------------------------------------------

async def test_case_lifecycle(risk: Risk) -> None:
    player = uuid.uuid4()
    reference = f"case-{uuid.uuid4().hex}"
    decision = await risk.decide(player, kind="withdrawal", amount=30_000, reference=reference,
                                 method_fingerprint="never-deposited")
    assert decision["decision"] == "review"
    case_id = decision["case_id"]
    opened = await stored_events(risk.nats_url, "gameplane.risk.case_opened", {"case_id": case_id}, 1)
    assert opened and opened[0]["data"]["reference"] == reference

    reviewer = as_staff(risk.app, "risk", username="rhea")
    r = await risk.http.get("/internal/risk/cases", params={"state": "open", "limit": 500}, headers=reviewer)
    assert r.status_code == 200 and case_id in [c["case_id"] for c in r.json()["cases"]]
    r = await risk.http.post(f"/internal/risk/cases/{case_id}/assign", json={}, headers=reviewer)
    assert r.status_code == 200 and r.json()["assignee"] == "rhea"
    r = await risk.http.get("/internal/risk/cases", params={"assignee": "rhea"}, headers=reviewer)
    assert [c["case_id"] for c in r.json()["cases"]] == [case_id]

    r = await risk.http.post(f"/internal/risk/cases/{case_id}/decision", headers=reviewer,
                             json={"outcome": "reject", "reason": "withdrawal to an unknown wallet"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "rejected" and r.json()["decided_by"] == "staff:rhea"
    decided = await stored_events(risk.nats_url, "gameplane.risk.case_decided", {"case_id": case_id}, 1)
    assert len(decided) == 1
    assert {k: decided[0]["data"][k] for k in ("reference", "kind", "outcome", "decided_by", "player_id")} == {
        "reference": reference, "kind": "withdrawal", "outcome": "reject", "decided_by": "staff:rhea",
        "player_id": str(player)}
    # decided once: a second verdict, or assigning it now, is a conflict and publishes nothing
    again = await risk.http.post(f"/internal/risk/cases/{case_id}/decision", headers=reviewer,
                                 json={"outcome": "approve", "reason": "changed my mind"})
    problem(again, 409, "case-closed")
    problem(await risk.http.post(f"/internal/risk/cases/{case_id}/assign", json={}, headers=reviewer),
            409, "case-closed")
    assert len(await stored_events(risk.nats_url, "gameplane.risk.case_decided", {"case_id": case_id}, 1,
                                   timeout=2)) == 1
    r = await risk.http.get("/internal/risk/cases", params={"state": "open", "limit": 500}, headers=reviewer)
    assert case_id not in [c["case_id"] for c in r.json()["cases"]]
    problem(await risk.http.get(f"/internal/risk/cases/{uuid.uuid4()}", headers=reviewer), 404, "case-not-found")

    audit = await risk.http.get("/internal/risk/audit", params={"target": f"case:{case_id}"},
                                headers=as_staff(risk.app, "admin"))
    actions = [(a["action"], a["actor"]) for a in audit.json()["records"]]
    assert actions == [("risk.case_decided", "rhea"), ("risk.case_assigned", "rhea")]


async def test_an_approved_case_publishes_approve(risk: Risk) -> None:
    decision = await risk.decide(uuid.uuid4(), amount=100_000)
    reviewer = as_staff(risk.app, "admin", username="ada")
    r = await risk.http.post(f"/internal/risk/cases/{decision['case_id']}/decision", headers=reviewer,
                             json={"outcome": "approve", "reason": "known high roller"})
    assert r.status_code == 200 and r.json()["state"] == "approved" and r.json()["assignee"] == "ada"
    decided = await stored_events(risk.nats_url, "gameplane.risk.case_decided",
                                  {"case_id": decision["case_id"]}, 1)
    assert decided[0]["data"]["outcome"] == "approve"


async def test_back_office_refusals(risk: Risk) -> None:
    decision = await risk.decide(uuid.uuid4(), amount=100_000)
    path = f"/internal/risk/cases/{decision['case_id']}/decision"
    body = {"outcome": "approve", "reason": "looks fine"}
    problem(await risk.http.post(path, json=body, headers=as_service(risk.app, "backoffice")),
            401, "staff-unauthenticated")
    for role in ("support", "finance"):
        problem(await risk.http.post(path, json=body, headers=as_staff(risk.app, role)), 403, "staff-role-forbidden")
    problem(await risk.http.post(path, json=body, headers=as_staff(risk.app, "risk", caller="payments")),
            403, "caller-not-allowed")
    problem(await risk.http.post(path, json={"outcome": "maybe", "reason": "x" * 5},
                                 headers=as_staff(risk.app, "risk")), 422, "validation-error")
    for route in ("/internal/risk/cases", f"/internal/risk/players/{uuid.uuid4()}", "/internal/risk/rule-sets"):
        problem(await risk.http.get(route, headers=as_staff(risk.app, "support")), 403, "staff-role-forbidden")
    problem(await risk.http.get("/internal/risk/audit", headers=as_staff(risk.app, "risk")),
            403, "staff-role-forbidden")
    # nothing was decided by any of them
    r = await risk.http.get(f"/internal/risk/cases/{decision['case_id']}", headers=as_staff(risk.app, "risk"))
    assert r.json()["state"] == "open"


# ---- rule set versions -------------------------------------------------------------------------------

async def test_rule_set_versions_are_published_validated_and_audited(service_settings: Any, nats_server: Any) -> None:
    app = build_app(service_settings(RiskSettings))
    async with running(app) as http:
        reader = as_staff(app, "risk")
        listed = (await http.get("/internal/risk/rule-sets", headers=reader)).json()
        assert [(v["version"], v["active"], v["created_by"]) for v in listed] == [(1, True, "system")]

        strict = {"review_at": 100, "deny_at": 900, "rules": [
            {"id": "any-deposit", "type": "large_amount", "amount_gte": {"EUR": 1}, "score": 100,
             "action": "review", "applies_to": ["deposit"]}]}
        published = await publish_rules(http, app, strict, "review every deposit for the drill", based_on=1)
        assert published.status_code == 201, published.text
        assert published.json()["version"] == 2 and published.json()["active"]
        # the next decision applies version 2 at once
        r = await http.post("/internal/risk/decisions", headers=as_service(app, "payments"),
                            json={"kind": "deposit", "player_id": str(uuid.uuid4()), "amount": 500,
                                  "currency": "EUR", "reference": "after-v2"})
        assert r.json()["rules_version"] == 2 and r.json()["rules"] == ["any-deposit"]
        assert r.json()["decision"] == "review"

        # a change made from version 1 while 2 is in force is refused: nothing is lost silently
        stale = await publish_rules(http, app, strict, "a stale edit", based_on=1)
        problem(stale, 409, "rule-set-conflict")
        for bad in ({"review_at": 100, "deny_at": 50, "rules": []},
                    {"review_at": 100, "deny_at": 900, "rules": [{"id": "x", "type": "velocity", "score": 1,
                                                                  "feature": "bets", "window": "1h"}]},
                    {"review_at": 100, "deny_at": 900, "rules": [{"id": "x", "type": "crystal-ball", "score": 1}]}):
            problem(await publish_rules(http, app, bad, "a bad document"), 422, "validation-error")
        problem(await publish_rules(http, app, strict, ""), 422, "validation-error")
        problem(await http.post("/internal/risk/rule-sets", json={"document": strict, "reason": "no rights"},
                                headers=as_staff(app, "support")), 403, "staff-role-forbidden")

        listed = (await http.get("/internal/risk/rule-sets", headers=reader)).json()
        assert [(v["version"], v["active"]) for v in listed] == [(2, True), (1, False)]
        v2 = (await http.get("/internal/risk/rule-sets/2", headers=reader)).json()
        assert v2["created_by"] == "staff:rita" and v2["reason"] == "review every deposit for the drill"
        assert v2["document"]["rules"][0]["id"] == "any-deposit"
        v1 = (await http.get("/internal/risk/rule-sets/1", headers=reader)).json()
        assert v1["document"]["rules"] and v1["active"] is False
        problem(await http.get("/internal/risk/rule-sets/3", headers=reader), 404, "rule-set-not-found")

        audit = (await http.get("/internal/risk/audit", params={"action": "risk.rule_set_published"},
                                headers=as_staff(app, "admin"))).json()["records"]
        assert len(audit) == 1
        assert audit[0]["actor"] == "rita" and audit[0]["target"] == "rule_set:2"
        assert audit[0]["before"]["version"] == 1 and audit[0]["before"]["document"] == v1["document"]
        assert audit[0]["after"]["version"] == 2 and audit[0]["after"]["document"] == v2["document"]


async def until_true(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


def queried_risk_metrics() -> set[str]:
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    found: set[str] = set()
    for f in (repo / "observability/grafana/dashboards/gameplane-risk.json",
              repo / "observability/prometheus/rules/risk-rules.yaml"):
        found |= set(re.findall(r"gameplane_risk_[a-z_]+", f.read_text()))
    return found


async def test_metrics_count_decisions_rule_fires_and_open_cases(risk: Risk) -> None:
    await risk.decide(uuid.uuid4(), amount=100_000)  # large-deposit: review, a case

    async def exported() -> bool:
        text = (await risk.http.get("/metrics")).text
        return ('gameplane_risk_decisions_total{decision="review",kind="deposit"}' in text
                and 'gameplane_risk_rule_fires_total{kind="deposit",rule="large-deposit"}' in text
                and any(line.startswith("gameplane_risk_open_cases ") and float(line.split()[1]) >= 1
                        for line in text.splitlines()))

    assert await until_true(exported)
    # what the dashboard and the alerts query is what the service exports (no typo, no dead panel)
    queried = queried_risk_metrics()
    text = (await risk.http.get("/metrics")).text
    assert len(queried) >= 6 and not {m for m in queried if m not in text}, queried


async def test_the_same_reference_asked_at_once_is_decided_once(risk: Risk) -> None:
    player, reference = uuid.uuid4(), f"race-{uuid.uuid4().hex}"
    answers = await asyncio.gather(*(risk.decide(player, amount=100_000, reference=reference) for _ in range(6)))
    assert len({a["decision_id"] for a in answers}) == 1 and answers[0]["decision"] == "review"
    assert len({a["case_id"] for a in answers}) == 1
    r = await risk.http.get("/internal/risk/cases", params={"state": "open", "limit": 500},
                            headers=as_staff(risk.app, "risk"))
    assert [c["reference"] for c in r.json()["cases"]].count(reference) == 1
    view = await risk.player(player)
    assert count(view, "deposit_requests", "5m") == 1  # one request counted, not six


async def test_windows_follow_event_time_and_expired_buckets_are_deleted(risk: Risk) -> None:
    from sqlalchemy import text

    from gameplane.risk.sweeper import sweep_once

    player = uuid.uuid4()
    t = now()
    await risk.emit(LoggedIn(player_id=player, at=t - timedelta(minutes=20)),
                    LoggedIn(player_id=player, at=t - timedelta(hours=3)),
                    LoggedIn(player_id=player, at=t - timedelta(days=3)),
                    LoggedIn(player_id=player, at=t - timedelta(days=40)), producer="players")
    view = await risk.until(player, lambda v: count(v, "logins", "28d") == 3)
    # 20 minutes ago: not in the last 5 minutes (a window covers at most one bucket more), in the hour
    assert [count(view, "logins", w) for w in ("5m", "1h", "1d", "7d", "28d")] == [0, 1, 2, 3, 3]
    # 40 days ago is in no window, and its buckets are deleted (the module's app sweeps every 0.3 s;
    # one more sweep here makes sure): what stays is a 5-minute bucket for each event of the last
    # day and a day bucket for each day with an event in the last four weeks
    db = risk.app.state.runtime.database
    await sweep_once(db, (1, 300, 600))
    async with db.session() as s:
        kept = (await s.execute(text("SELECT span, start FROM feature_buckets WHERE player_id = :p AND "
                                     "feature = 'logins'"), {"p": player})).all()
    days = {(t - ago).date() for ago in (timedelta(minutes=20), timedelta(hours=3), timedelta(days=3))}
    def five_minutes(at: datetime) -> datetime:
        return at.replace(minute=at.minute - at.minute % 5, second=0, microsecond=0)

    assert sorted(start for span, start in kept if span == 300) == sorted(
        five_minutes(t - ago) for ago in (timedelta(hours=3), timedelta(minutes=20)))
    assert sorted(start.date() for span, start in kept if span == 86_400) == sorted(days)


async def test_a_version_published_at_one_replica_applies_at_the_next_decision_of_another(
        service_settings: Any, nats_server: Any) -> None:
    settings = service_settings(RiskSettings)
    first, second = build_app(settings), build_app(settings.model_copy())
    async with running(first) as a, running(second) as b:
        async def decide(http: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
            r = await http.post("/internal/risk/decisions", headers=as_service(app, "payments"),
                                json={"kind": "deposit", "player_id": str(uuid.uuid4()), "amount": 700,
                                      "currency": "EUR", "reference": uuid.uuid4().hex})
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        before = await decide(b, second)
        assert (before["rules_version"], before["decision"]) == (1, "allow")  # b has cached version 1
        doc = {"review_at": 100, "deny_at": 200, "rules": [
            {"id": "no-deposits", "type": "large_amount", "amount_gte": {"EUR": 1}, "score": 0, "action": "deny",
             "applies_to": ["deposit"]}]}
        assert (await publish_rules(a, first, doc, "stop deposits for the drill")).status_code == 201
        after = await decide(b, second)
        assert (after["rules_version"], after["decision"], after["rules"]) == (2, "deny", ["no-deposits"])
