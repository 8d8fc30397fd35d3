"""The previous release's wallet (its code taken from git: gameplane.devtools.releases) on a database
migrated to this release's head: while a rolling update runs, its pods serve bets and wins on the
new schema, and not a cent may land in the wrong account. The negative control plays the code from
before migration 0004 on a database at 0004 (the redefinition this rule forbids) and sees the
reconciliation break, so a clean result above is not vacuous."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from upgradelib import Load, clean, ledger_check

from gameplane.devtools import releases
from gameplane.devtools.infra import free_port
from gameplane.kit import migrate

SECRET = "previous-release-service-secret-0123"

# CI runs from a full clone and must run this; elsewhere a checkout without the history skips, saying why
MISSING = releases.missing(releases.PREVIOUS_RELEASE, releases.BEFORE_0004)
pytestmark = pytest.mark.skipif(not os.environ.get("CI") and MISSING is not None, reason=str(MISSING))


def head() -> str:
    return str(ScriptDirectory.from_config(migrate.alembic_config("gameplane.wallet", "postgresql://x")).get_current_head())


async def play_on(code: Path, url: str, nats_url: str, log: Path, load: Load, **settings: str) -> float:
    """Deposits, then bets and wins, through one wallet process of `code`; its fast-path count."""
    wallet = releases.WalletProcess(url, nats_url, log, free_port(), secret=SECRET, pythonpath=code, **settings)
    token = releases.hs256_service_token(SECRET, "games", "wallet")
    wallet.start()
    try:
        await wallet.ready()
        async with httpx.AsyncClient(base_url=wallet.url, timeout=10.0,
                                     headers={"authorization": f"Bearer {token}"}) as client:
            await load.deposits([client])
            await load.play([client], rounds=6, tag="r")
        return await wallet.fast_path_served()
    finally:
        wallet.stop()


async def test_previous_release_plays_on_the_new_schema_and_reconciles(
        new_database: Any, nats_server: Any, tmp_path: Path) -> None:
    previous = releases.extract(releases.PREVIOUS_RELEASE, tmp_path / "previous")
    assert "wallet_fast_batch($1, $2)" in (previous / "gameplane/wallet/fastplay.py").read_text()  # really the old code
    url = new_database("wallet_prev")
    await migrate.upgrade_async("gameplane.wallet", url)
    assert await migrate.current_revision(url) == head() not in ("0004", None)  # past the previous release's
    load = Load(players=24)
    served = await play_on(previous, url, nats_server.url, tmp_path / "wallet.log", load)
    bets = sum(1 for d in load.acked.values() if d["kind"] == "bet")
    assert bets >= 24 * 5 and served >= bets, "the old code's bets did not take its SQL fast path"
    report = await ledger_check(url, load)
    assert clean(report), report


async def test_negative_control_code_before_0004_on_a_database_at_0004_misposts(
        new_database: Any, nats_server: Any, tmp_path: Path) -> None:
    before = releases.extract(releases.BEFORE_0004, tmp_path / "before-0004")
    url = new_database("wallet_pre4")
    await asyncio.to_thread(migrate.upgrade, "gameplane.wallet", url, "0004")
    load = Load(players=24)
    # its bets hand a shard number where 0004's wallet_fast_bet takes an account id; 500 when no
    # account has that id, a misposting when one does
    load_statuses = (200, 402, 404, 409, 500)
    original = load.send

    async def send(clients: Any, path: str, body: dict[str, Any], allowed: tuple[int, ...] = load_statuses) -> None:
        await original(clients, path, body, load_statuses if path != "/deposits" else allowed)

    load.send = send  # type: ignore[method-assign]
    await play_on(before, url, nats_server.url, tmp_path / "wallet.log", load, house_shards="4")
    report = await ledger_check(url, load)
    assert not report["ok"], report
    assert any(b["invariant"] in (3, 4) for b in report["breaches"]), report["breaches"]
