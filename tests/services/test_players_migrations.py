"""The hand-written players migration creates exactly what the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from gameplane.kit import migrate
from gameplane.players.models import Base
from gameplane.players.settings import PlayersSettings


async def test_migrations_match_the_models(service_settings):
    url = service_settings(PlayersSettings).database_url
    await migrate.upgrade_async("gameplane.players", url)
    await migrate.upgrade_async("gameplane.players", url)  # a second start finds nothing to do
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    finally:
        await engine.dispose()
    assert diff == []
