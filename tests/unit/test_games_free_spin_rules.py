"""Pure rules of free spins: which free-spin wins are refused and why, awards' identity, the
fingerprints of wins from before the award field existed, and the aggregator dialect's refusal."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gameplane.contracts.games import ERROR_CODES, FreeSpinAward, WinCall
from gameplane.games import aggregator, freespins, rules
from gameplane.games.rules import AwardState, ProviderError, RoundState
from gameplane.games.settings import GamesSettings

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
PLAYER = uuid.uuid4()


def award(**over: object) -> AwardState:
    base: dict[str, object] = {"provider": "rgs", "player_id": PLAYER, "game_id": "fruit-fives", "currency": "EUR",
                               "spins": 10, "spins_played": 3, "expires_at": NOW + timedelta(hours=1),
                               "accepted": True}
    return AwardState(**{**base, **over})  # type: ignore[arg-type]


def refusal(a: AwardState | None, **over: object) -> str | None:
    kw: dict[str, object] = {"provider": "rgs", "player_id": PLAYER, "game_id": "fruit-fives", "currency": "eur",
                             "now": NOW, **over}
    found = rules.free_spin_refusal(a, **kw)  # type: ignore[arg-type]
    return found[0] if found else None


def test_a_win_on_a_valid_award_with_spins_left_is_accepted() -> None:
    assert refusal(award()) is None
    assert refusal(award(spins_played=9)) is None  # the last spin


@pytest.mark.parametrize(("state", "over", "code"), [
    (None, {}, "free-spin-award-not-found"),
    (award(provider="acme"), {}, "free-spin-award-not-found"),  # another provider's award is not named to this one
    (award(accepted=False), {}, "free-spin-award-not-found"),  # the provider never took it
    (award(player_id=uuid.uuid4()), {}, "free-spin-award-mismatch"),
    (award(game_id="other-slot"), {}, "free-spin-award-mismatch"),
    (award(currency="GBP"), {}, "free-spin-award-mismatch"),
    (award(spins_played=10), {}, "free-spins-exhausted"),
    (award(expires_at=NOW), {}, "free-spin-award-expired"),
])
def test_a_win_on_an_award_it_may_not_use_is_refused(state: AwardState | None, over: dict[str, object],
                                                     code: str) -> None:
    assert refusal(state, **over) == code
    assert code in ERROR_CODES and 400 <= ERROR_CODES[code] < 500


def test_a_free_spin_opens_its_own_round() -> None:
    assert rules.free_spin_round_refusal(None) is None
    open_round = RoundState(PLAYER, "fruit-fives", "open", 0, bet_total=100)
    assert rules.free_spin_round_refusal(open_round) == "round-mismatch"
    assert rules.free_spin_round_refusal(RoundState(PLAYER, "fruit-fives", "closed", 1)) == "round-closed"


def test_every_free_spin_code_has_a_title_and_an_aggregator_status() -> None:
    for code in ("free-spin-award-not-found", "free-spin-award-mismatch", "free-spin-award-expired",
                 "free-spins-exhausted", "free-spin-grant-closed"):
        assert ProviderError(code).status == ERROR_CODES[code]
        assert code in aggregator.STATUS


def test_a_win_without_an_award_keeps_the_fingerprint_it_had_before_the_field() -> None:
    call = WinCall(request_id="q", token="t", transaction_id="w1", round_id="r1", game_id="fruit-fives", amount=50,
                   currency="EUR")
    before = {k: v for k, v in call.model_dump(mode="json", exclude={"timestamp", "request_id", "token"}).items()
              if k != "free_spin_award_id"}
    assert rules.transaction_fingerprint("win", PLAYER, call) == rules.fingerprint(
        "win", {"player_id": str(PLAYER), **before})
    # ... and naming an award makes it another movement
    with_award = call.model_copy(update={"free_spin_award_id": "a1"})
    assert rules.transaction_fingerprint("win", PLAYER, with_award) != \
        rules.transaction_fingerprint("win", PLAYER, call)


def test_the_same_award_spelled_differently_is_the_same_award() -> None:
    terms = {"award_id": "a1", "grant_id": "g1", "player_id": str(PLAYER), "currency": "EUR", "game_id": "fruit-fives",
             "spins": 10, "stake": 100}
    utc = FreeSpinAward.model_validate({**terms, "expires_at": "2030-01-01T10:00:00Z"})
    cet = FreeSpinAward.model_validate({**terms, "expires_at": "2030-01-01T11:00:00+01:00"})
    assert cet.expires_at.tzinfo == timezone(timedelta(hours=1))
    assert freespins.fingerprint(utc) == freespins.fingerprint(cet)
    assert freespins.fingerprint(utc) != freespins.fingerprint(utc.model_copy(update={"spins": 11}))


def test_the_aggregator_dialect_refuses_a_win_naming_a_free_round() -> None:
    body = {"user": str(PLAYER), "token": "t", "request_uuid": "q", "transaction_uuid": "w", "round": "r",
            "game_code": "fruit-fives", "currency": "EUR", "amount": 100_000}
    op, call = aggregator.parse("transaction/win", json.dumps(body).encode())
    assert isinstance(aggregator.translate(op, call), WinCall)  # a plain win goes through
    op, call = aggregator.parse("transaction/win", json.dumps({**body, "campaign_uuid": "c1"}).encode())
    with pytest.raises(ProviderError) as refused:
        aggregator.translate(op, call)
    assert refused.value.code == "validation-error" and "not supported in the aggregator dialect" in str(refused.value)
    assert aggregator.render_error(refused.value, call)["status"] == "RS_ERROR_WRONG_TYPES"


def test_the_chart_base_url_is_the_award_api_unless_the_secret_names_one(tmp_path, monkeypatch) -> None:
    for name in ("acme", "beta"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "secret").write_text(f"{name}-hmac-key-0123456789abcdef")
    (tmp_path / "beta" / "api_url").write_text("https://awards.beta.example/v2\n")
    monkeypatch.setenv("GP_GAMES_PROVIDERS_DIR", str(tmp_path))
    monkeypatch.setenv("GP_GAMES_PROVIDERS", json.dumps([
        {"name": "acme", "baseUrl": "https://rgs.acme.example/api", "secretName": "acme"},
        {"name": "beta", "baseUrl": "https://rgs.beta.example", "secretName": "beta"}]))
    providers = GamesSettings().providers
    assert providers["acme"].api_url == "https://rgs.acme.example/api"
    assert providers["beta"].api_url == "https://awards.beta.example/v2"


def test_an_api_url_with_credentials_is_refused(monkeypatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("GP_GAMES_PROVIDERS", json.dumps(
        {"rgs": {"secret": "k" * 32, "api_url": "https://user:pw@rgs.example"}}))
    with pytest.raises(ValidationError, match="api_url"):
        GamesSettings()
