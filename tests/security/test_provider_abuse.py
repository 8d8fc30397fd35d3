"""Abuse of the game-provider edge: what a player (who holds a session token) or anyone who captured
a signed request can do against the seamless-wallet API.

The subject of the first tests is the games service exactly as a deployment starts it: its
environment is taken from the Deployment that the real `helm` renders from charts/gameplane, with
only the database, NATS and the Secret values swapped for this machine's. The negative control is
the configuration the issue found in deployments (games holding the published development secret),
against which the same player-signed bet does move money.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chartlib import container_env, helm
from pydantic import ValidationError

from gameplane.contracts.games import DEV_PROVIDER_SECRET, MAX_AMOUNT_MINOR, signed_headers
from gameplane.devtools.identities import dev_identities
from gameplane.devtools.inprocess import LocalPlatform, launch, local_platform, new_player
from gameplane.devtools.testing import running

REPO = Path(__file__).resolve().parents[2]
BET_PATH = "/providers/rgs/bet"


def render(*set_args: str) -> tuple[str, list[dict[str, Any]]]:
    """`helm template p charts/gameplane --set ...`: the text and its documents."""
    args = [str(helm()), "template", "p", str(REPO / "charts" / "gameplane")]
    for item in set_args:
        args += ["--set", item]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    return out.stdout, [d for d in yaml.safe_load_all(out.stdout) if d]


def games_env(docs: list[dict[str, Any]], deployment: str = "p-games") -> dict[str, str]:
    """The games container's environment as the kubelet would build it (ConfigMap envFrom, literal
    values with $(VAR) expansion), Secret references as stand-in values."""
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    [dep] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == deployment]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return container_env(container, configmaps, lambda _key: f"stand-in-{uuid.uuid4().hex}-{uuid.uuid4().hex}")


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Exactly `env` as the GP_* environment (nothing of this machine's leaks in)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("GP_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(env)
    try:
        yield
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)


def on_this_machine(env: dict[str, str], database_url: str, nats_url: str, providers_dir: Path) -> dict[str, str]:
    """The chart's environment with what points into the cluster pointed at this machine instead
    (the mounted identity files: the test identities of games, given inline)."""
    env = {k: v for k, v in env.items() if k not in ("GP_GAMES_SERVICE_KEY_FILE", "GP_GAMES_PUBLIC_KEYS_FILE")}
    return {**env, **dev_identities().env("games"), "GP_GAMES_DATABASE_URL": database_url,
            "GP_GAMES_NATS_URL": nats_url,
            "GP_GAMES_PROVIDERS_DIR": str(providers_dir), "GP_GAMES_ENDPOINTS": "{}",
            "GP_GAMES_LOG_LEVEL": "WARNING", "GP_GAMES_DB_WAIT_SECONDS": "5",
            # the release's migration Job runs before the pods in a cluster; here the pod does it
            "GP_GAMES_MIGRATE_ON_START": "true"}


def player_signed_bet(token: str, amount: int = 100, round_id: str = "R1") -> tuple[bytes, dict[str, str]]:
    """A bet as the player builds it: their own token, signed with the secret printed in the repository."""
    body = json.dumps({"request_id": uuid.uuid4().hex, "token": token, "transaction_id": uuid.uuid4().hex,
                       "round_id": round_id, "game_id": "fruit-fives", "amount": amount,
                       "currency": "EUR"}).encode()
    return body, signed_headers(DEV_PROVIDER_SECRET, BET_PATH, body)


# ---- the platform whose players attack ------------------------------------------------------------

@pytest.fixture(scope="module")
async def control(pg: Any, nats_server: Any) -> AsyncIterator[LocalPlatform]:
    """wallet, sessions and a games configured as deployments were before: the published secret."""
    dbs = {}
    for name in ("wallet", "sessions", "games"):
        db = f"abuse_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    async with local_platform(dbs, nats_server.url, provider_secret=DEV_PROVIDER_SECRET,
                              games_overrides={"dev_mode": True}) as p:
        p.extras["nats"] = nats_server.url
        yield p


async def cash(platform: LocalPlatform, player: uuid.UUID) -> int:
    async with httpx.AsyncClient(base_url=platform.urls["wallet"], timeout=10) as http:
        r = await http.get(f"/internal/wallet/players/{player}/balances/EUR",
                           headers=platform.headers("wallet", "backoffice"))
    assert r.status_code == 200, r.text
    return int(r.json()["cash"])


async def player_with_session(platform: LocalPlatform, balance: int, **kw: Any) -> tuple[uuid.UUID, str]:
    player = await new_player(platform, platform.extras["nats"], balance)
    return player, str((await launch(platform, player, **kw))["token"])


# ---- a chart-rendered games holds no key a player knows ------------------------------------------------

def test_the_rendered_charts_carry_no_provider_and_no_published_secret() -> None:
    for extra in ((), ("rgs.enabled=true",)):
        text, docs = render(*extra)
        assert DEV_PROVIDER_SECRET not in text
        env = games_env(docs)
        assert not any(k.endswith(("_PROVIDERS", "_DEV_MODE")) for k in env), env
        assert DEV_PROVIDER_SECRET not in json.dumps(env)
    # Negative control: a configured provider does show up in the rendered environment.
    _, docs = render("games.providers[0].name=acme", "games.providers[0].baseUrl=https://acme.example",
                     "games.providers[0].secretName=acme-credentials")
    assert "acme" in games_env(docs)["GP_GAMES_PROVIDERS"]


async def test_a_player_cannot_sign_provider_calls_against_a_chart_rendered_games(
        control: LocalPlatform, new_database: Any, nats_server: Any, tmp_path: Path) -> None:
    player, token = await player_with_session(control, 1000)
    before = await cash(control, player)

    # The attack works against the old configuration: the player signs their own bet and is paid back.
    body, headers = player_signed_bet(token)
    async with httpx.AsyncClient(base_url=control.urls["games"], timeout=10) as old:
        assert (await old.post(BET_PATH, content=body, headers=headers)).status_code == 200
        win = json.dumps({"request_id": uuid.uuid4().hex, "token": token, "transaction_id": uuid.uuid4().hex,
                          "round_id": "R1", "game_id": "fruit-fives", "amount": 5000, "currency": "EUR"}).encode()
        r = await old.post("/providers/rgs/win", content=win,
                           headers=signed_headers(DEV_PROVIDER_SECRET, "/providers/rgs/win", win))
        assert r.status_code == 200
    assert await cash(control, player) == before - 100 + 5000

    # The same player against games started from what the chart renders.
    _, docs = render()
    env = on_this_machine(games_env(docs), new_database("abuse_chart_games"), nats_server.url, tmp_path)
    from gameplane.games.app import build_app
    from gameplane.games.settings import GamesSettings

    with environment(env):
        settings = GamesSettings()
    assert settings.providers == {} and settings.dev_mode is False
    app = build_app(settings)
    async with running(app) as chart_games:
        listed = (await chart_games.get("/v1/games")).json()
        assert listed == [], listed                          # no provider, no game to launch
        before = await cash(control, player)
        for op in ("bet", "win", "rollback"):
            body, _ = player_signed_bet(token)
            path = f"/providers/rgs/{op}"
            headers = signed_headers(DEV_PROVIDER_SECRET, path, body)
            r = await chart_games.post(path, content=body, headers=headers)
            assert r.status_code == 404 and r.json()["code"] == "unknown-provider", r.text
        pool = app.state.runtime.database.pool
        assert await pool.fetchval("SELECT count(*) FROM provider_transactions") == 0
        assert await pool.fetchval("SELECT count(*) FROM provider_requests") == 0
    assert await cash(control, player) == before


def test_games_from_a_chart_refuses_to_start_with_the_published_or_a_missing_secret(
        new_database: Any, nats_server: Any, tmp_path: Path) -> None:
    from gameplane.games.settings import GamesSettings

    _, docs = render("games.providers[0].name=rgs", "games.providers[0].baseUrl=http://p-rgs",
                     "games.providers[0].secretName=rgs-credentials")
    env = on_this_machine(games_env(docs), new_database("abuse_refuse"), nats_server.url, tmp_path)
    with environment(env), pytest.raises(ValidationError, match=r"no `secret` or `public_key_pem`"):
        GamesSettings()                                      # the Secret is not mounted
    (tmp_path / "rgs").mkdir()
    (tmp_path / "rgs" / "secret").write_text(DEV_PROVIDER_SECRET)
    with environment(env), pytest.raises(ValidationError, match="published development secret"):
        GamesSettings()
    (tmp_path / "rgs" / "secret").write_text(os.urandom(32).hex())
    with environment(env):
        assert GamesSettings().providers["rgs"].secret != DEV_PROVIDER_SECRET   # negative control: it starts


async def test_with_its_own_secret_a_chart_games_refuses_the_players_signature(
        control: LocalPlatform, new_database: Any, nats_server: Any, tmp_path: Path) -> None:
    from gameplane.games.app import build_app
    from gameplane.games.settings import GamesSettings

    player, token = await player_with_session(control, 1000)
    _, docs = render("games.providers[0].name=rgs", "games.providers[0].baseUrl=http://p-rgs",
                     "games.providers[0].secretName=rgs-credentials")
    (tmp_path / "rgs").mkdir()
    (tmp_path / "rgs" / "secret").write_text(os.urandom(32).hex())
    env = on_this_machine(games_env(docs), new_database("abuse_own"), nats_server.url, tmp_path)
    with environment(env):
        settings = GamesSettings()
    before = await cash(control, player)
    app = build_app(settings)
    async with running(app) as chart_games:
        assert [g["game_id"] for g in (await chart_games.get("/v1/games")).json()] == ["fruit-fives"]
        body, headers = player_signed_bet(token)
        r = await chart_games.post(BET_PATH, content=body, headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "invalid-signature", r.text
        pool = app.state.runtime.database.pool
        assert await pool.fetchval("SELECT count(*) FROM provider_requests") == 0
    assert await cash(control, player) == before


def test_the_simulated_studio_from_a_chart_has_no_key_but_the_secret_it_is_given(tmp_path: Path) -> None:
    from gameplane.simulators.rgs.app import build_app
    from gameplane.simulators.rgs.settings import RgsSettings

    _, docs = render("rgs.enabled=true")
    env = {**games_env(docs, "p-rgs"), "GP_RGS_PROVIDERS_DIR": str(tmp_path)}
    with environment(env), pytest.raises(RuntimeError, match="no key for provider 'rgs'"):
        build_app(RgsSettings())
    _, docs = render("rgs.enabled=true", "rgs.providers[0].name=rgs", "rgs.providers[0].baseUrl=http://p-rgs",
                     "rgs.providers[0].secretName=rgs-credentials")
    [dep] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "p-rgs"]
    mounts = {m["mountPath"] for m in dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert "/etc/gameplane/providers/rgs" in mounts
    (tmp_path / "rgs").mkdir()
    key = os.urandom(32).hex()
    (tmp_path / "rgs" / "secret").write_text(key + "\n")
    with environment({**games_env(docs, "p-rgs"), "GP_RGS_PROVIDERS_DIR": str(tmp_path)}):
        assert RgsSettings().secret() == key


# ---- a captured signed request is worth nothing elsewhere or later ------------------------------------

async def test_a_signed_bet_body_replayed_at_win_is_refused_and_moves_nothing(control: LocalPlatform) -> None:
    player, token = await player_with_session(control, 1000)
    body, headers = player_signed_bet(token, round_id="RW")   # the control platform knows this secret
    async with httpx.AsyncClient(base_url=control.urls["games"], timeout=10) as games:
        assert (await games.post(BET_PATH, content=body, headers=headers)).status_code == 200
        after_bet = await cash(control, player)
        for op in ("win", "rollback"):
            r = await games.post(f"/providers/rgs/{op}", content=body, headers=headers)
            assert r.status_code == 401 and r.json()["code"] == "invalid-signature", r.text
    assert after_bet == 900 and await cash(control, player) == after_bet


@pytest.mark.parametrize("stamp", ["stale", "future", "empty", "missing", "iso"])
async def test_stale_and_missing_timestamps_are_refused_and_move_nothing(control: LocalPlatform, stamp: str) -> None:
    player, token = await player_with_session(control, 1000)
    body, _ = player_signed_bet(token)
    value = {"stale": str(int(time.time()) - 301), "future": str(int(time.time()) + 301), "empty": "",
             "missing": "", "iso": "2026-12-02T00:00:00+00:00"}[stamp]
    headers = signed_headers(DEV_PROVIDER_SECRET, BET_PATH, body, timestamp=value)
    if stamp == "missing":
        del headers["X-Gameplane-Timestamp"]
    async with httpx.AsyncClient(base_url=control.urls["games"], timeout=10) as games:
        r = await games.post(BET_PATH, content=body, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == ("stale-request" if stamp in ("stale", "future") else "invalid-signature")
        # Negative control: the same bytes stamped now are accepted.
        fresh = await games.post(BET_PATH, content=body, headers=signed_headers(DEV_PROVIDER_SECRET, BET_PATH, body))
        assert fresh.status_code == 200, fresh.text
    assert await cash(control, player) == 900


async def test_a_win_above_the_cap_is_refused_and_moves_nothing(control: LocalPlatform) -> None:
    player, token = await player_with_session(control, 1000)
    async with httpx.AsyncClient(base_url=control.urls["games"], timeout=10) as games:
        body, headers = player_signed_bet(token, amount=10, round_id="CAP")
        assert (await games.post(BET_PATH, content=body, headers=headers)).status_code == 200
        for amount in (10 * 500 + 1, MAX_AMOUNT_MINOR["EUR"] + 1, 2**63 - 1):
            win = json.dumps({"request_id": uuid.uuid4().hex, "token": token, "transaction_id": uuid.uuid4().hex,
                              "round_id": "CAP", "game_id": "fruit-fives", "amount": amount,
                              "currency": "EUR"}).encode()
            r = await games.post("/providers/rgs/win", content=win,
                                 headers=signed_headers(DEV_PROVIDER_SECRET, "/providers/rgs/win", win))
            assert r.status_code == 400, r.text
            assert r.json()["code"] in ("max-win-exceeded", "amount-out-of-range") and r.json()["balance"] == 990
        win = json.dumps({"request_id": uuid.uuid4().hex, "token": token, "transaction_id": uuid.uuid4().hex,
                          "round_id": "CAP", "game_id": "fruit-fives", "amount": 2**63, "currency": "EUR"}).encode()
        r = await games.post("/providers/rgs/win", content=win,
                             headers=signed_headers(DEV_PROVIDER_SECRET, "/providers/rgs/win", win))
        assert r.status_code == 422 and r.json()["code"] == "validation-error"
    assert await cash(control, player) == 990


async def test_replay_records_are_pruned_after_the_window(control: LocalPlatform) -> None:
    from gameplane.games import records

    rt = control.apps["games"].state.runtime
    player, token = await player_with_session(control, 1000)
    body, headers = player_signed_bet(token, round_id="PRUNE")
    async with httpx.AsyncClient(base_url=control.urls["games"], timeout=10) as games:
        assert (await games.post(BET_PATH, content=body, headers=headers)).status_code == 200
    request_id = json.loads(body)["request_id"]
    pool = rt.database.pool
    window = rt.settings.replay_retention_seconds
    await pool.execute("UPDATE provider_requests SET created_at = now() - make_interval(secs => $2) "
                       "WHERE request_id = $1", request_id, window - 5)
    await records.prune_requests(pool, window)
    assert await pool.fetchval("SELECT count(*) FROM provider_requests WHERE request_id = $1", request_id) == 1
    await pool.execute("UPDATE provider_requests SET created_at = now() - make_interval(secs => $2) "
                       "WHERE request_id = $1", request_id, window + 5)
    await records.prune_requests(pool, window)
    assert await pool.fetchval("SELECT count(*) FROM provider_requests WHERE request_id = $1", request_id) == 0
    # The transaction record stays: it is what keeps a later retry from moving money twice.
    assert await pool.fetchval("SELECT count(*) FROM provider_transactions WHERE transaction_id = $1",
                               json.loads(body)["transaction_id"]) == 1
    assert await cash(control, player) == 900
