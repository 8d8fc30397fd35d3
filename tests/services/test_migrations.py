"""Each service's hand-written migrations create exactly what its models describe, and the kit's
outbox change (v2) upgrades a database created before it without losing an unpublished event."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gameplane.affiliates.models import Base as AffiliatesBase
from gameplane.affiliates.settings import AffiliatesSettings
from gameplane.bonus.models import Base as BonusBase
from gameplane.bonus.settings import BonusSettings
from gameplane.games.models import Base as GamesBase
from gameplane.games.settings import GamesSettings
from gameplane.kit import migrate
from gameplane.payments.models import Base as PaymentsBase
from gameplane.payments.settings import PaymentsSettings
from gameplane.players.models import Base as PlayersBase
from gameplane.players.settings import PlayersSettings
from gameplane.risk.models import Base as RiskBase
from gameplane.risk.settings import RiskSettings
from gameplane.sessions.models import Base as SessionsBase
from gameplane.sessions.settings import SessionsSettings
from gameplane.wallet.models import Base as WalletBase
from gameplane.wallet.settings import WalletSettings

SERVICES = {"players": (PlayersSettings, PlayersBase), "wallet": (WalletSettings, WalletBase),
            "games": (GamesSettings, GamesBase), "sessions": (SessionsSettings, SessionsBase),
            "risk": (RiskSettings, RiskBase),
            "payments": (PaymentsSettings, PaymentsBase), "bonus": (BonusSettings, BonusBase),
            "affiliates": (AffiliatesSettings, AffiliatesBase)}


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_models(service_settings: Any, service: str) -> None:
    settings_cls, base = SERVICES[service]
    url = service_settings(settings_cls).database_url
    await migrate.upgrade_async(f"gameplane.{service}", url)
    await migrate.upgrade_async(f"gameplane.{service}", url)  # a second start finds nothing to do
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), base.metadata))
    finally:
        await engine.dispose()
    assert diff == []


async def test_outbox_v2_keeps_what_was_not_published_and_drops_what_was(service_settings: Any) -> None:
    url = service_settings(PlayersSettings).database_url
    await asyncio.to_thread(migrate.upgrade, "gameplane.players", url, "0001")
    engine = create_async_engine(url)
    pending, sent = uuid.uuid4(), uuid.uuid4()
    try:
        async with engine.begin() as conn:  # the outbox as databases created before v2 have it
            await conn.execute(text("ALTER TABLE outbox ADD COLUMN published_at timestamptz"))
            await conn.execute(text("ALTER TABLE outbox ADD CONSTRAINT uq_outbox_id UNIQUE (id)"))
            await conn.execute(text("CREATE INDEX ix_outbox_unpublished ON outbox (seq) WHERE published_at IS NULL"))
            await conn.execute(text(
                "INSERT INTO outbox (id, subject, payload, published_at) VALUES "
                "(:p, 'gameplane.players.x', '{}', NULL), (:s, 'gameplane.players.x', '{}', now())"),
                {"p": pending, "s": sent})
        await migrate.upgrade_async("gameplane.players", url)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT id FROM outbox"))).scalars().all() == [pending]
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), PlayersBase.metadata))
        assert diff == []
    finally:
        await engine.dispose()
