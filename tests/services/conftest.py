"""Service-tier fixtures: settings of any one service pointing at a fresh database of its own on
the session Postgres and at the session NATS.

    async def test_x(service_settings):
        settings = service_settings(WalletSettings, relay_batch=50)
        async with running(build_app(settings)) as client: ...

`module_service_settings` does the same once per test module, for modules whose tests share one
running app (each test then works with its own players/accounts so they stay independent).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from gameplane.devtools.infra import EmbeddedPostgres, NatsServer
from gameplane.kit.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
SettingsFactory = Callable[..., Any]


def _factory(pg: EmbeddedPostgres, nats_server: NatsServer) -> SettingsFactory:
    def make(settings_cls: type[S], **overrides: Any) -> S:
        service = getattr(settings_cls, "service_name", "service")
        name = f"{service}_{uuid.uuid4().hex[:12]}".lower()
        pg.create_database(name)
        fields: dict[str, Any] = {"database_url": pg.dsn(name), "nats_url": nats_server.url}
        fields.update(overrides)
        return settings_cls(**fields)

    return make


@pytest.fixture
def service_settings(pg: EmbeddedPostgres, nats_server: NatsServer) -> SettingsFactory:
    return _factory(pg, nats_server)


@pytest.fixture(scope="module")
def module_service_settings(pg: EmbeddedPostgres, nats_server: NatsServer) -> SettingsFactory:
    return _factory(pg, nats_server)
