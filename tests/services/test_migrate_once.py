"""Migrations once per release (docs/upgrades.md): `python -m gameplane migrate <service>` (the
chart's migration Job) brings a database to the code's head, and a pod started with
migrate_on_start false never migrates: it waits for its head, refuses an older schema, and serves
on a newer one (a later release's expand)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gameplane.devtools.testing import running
from gameplane.kit import migrate
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings

HEAD = str(ScriptDirectory.from_config(migrate.alembic_config("gameplane.wallet", "postgresql://x")).get_current_head())


def launcher(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gameplane", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)


async def set_revision(url: str, revision: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        await engine.dispose()


async def test_the_migrate_command_brings_the_database_to_head_once(service_settings: Any) -> None:
    url = service_settings(WalletSettings).database_url
    assert await migrate.current_revision(url) is None
    env = {"GP_WALLET_DATABASE_URL": url}
    first = await asyncio.to_thread(launcher, "migrate", "wallet", env=env)
    assert first.returncode == 0, first.stderr
    assert f"wallet is at revision {HEAD}" in first.stderr
    assert await migrate.current_revision(url) == HEAD
    again = await asyncio.to_thread(launcher, "migrate", "wallet", env=env)  # a re-run Job: nothing to do
    assert again.returncode == 0 and await migrate.current_revision(url) == HEAD


@pytest.mark.parametrize(("service", "env", "error"), [
    ("gateway", {}, "owns no database"),
    ("wallet", {"GP_WALLET_DATABASE_URL": ""}, "GP_WALLET_DATABASE_URL is not set"),
    ("nope", {}, "unknown service"),
])
def test_the_migrate_command_refuses_what_it_cannot_do(service: str, env: dict[str, str], error: str) -> None:
    out = launcher("migrate", service, env=env)
    assert out.returncode == 2 and error in out.stderr, out.stderr


async def test_a_pod_that_does_not_migrate_refuses_an_unmigrated_database(service_settings: Any) -> None:
    settings = service_settings(WalletSettings, migrate_on_start=False, db_wait_seconds=0.5)
    with pytest.raises(migrate.SchemaBehind, match=f"revision None, this code needs {HEAD}"):
        async with running(build_app(settings)):
            pass
    assert await migrate.current_revision(settings.database_url) is None  # it did not migrate


async def test_a_pod_that_does_not_migrate_refuses_an_older_schema_and_serves_a_newer_one(
        service_settings: Any) -> None:
    settings = service_settings(WalletSettings, migrate_on_start=False, db_wait_seconds=0.5)
    url = settings.database_url
    await asyncio.to_thread(migrate.upgrade, "gameplane.wallet", url, "0004")  # the previous release's schema
    with pytest.raises(migrate.SchemaBehind, match="revision 0004"):
        async with running(build_app(settings)):
            pass
    await migrate.upgrade_async("gameplane.wallet", url)  # the migration Job ran
    async with running(build_app(settings)) as client:
        assert (await client.get("/livez")).status_code == 200  # started: it did not refuse the schema
    await set_revision(url, "0099")  # a later release's expand, which this code does not know
    async with running(build_app(settings)) as client:
        assert (await client.get("/livez")).status_code == 200  # started: it did not refuse the schema


async def test_a_pod_waits_for_the_migration_job(service_settings: Any) -> None:
    url = service_settings(WalletSettings).database_url
    # the pod's start-up, started first: it polls while the database is not at its head
    pod = asyncio.create_task(migrate.wait_for_schema("gameplane.wallet", url, timeout=120, interval=0.05))
    for _ in range(3):
        await asyncio.sleep(0.2)
        assert not pod.done()
    await migrate.upgrade_async("gameplane.wallet", url)  # the Job
    await pod  # returns: the pod goes on starting
