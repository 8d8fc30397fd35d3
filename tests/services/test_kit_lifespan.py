"""An app that is left with an error (a failing test around it, a server stopping on a crash)
still stops what it started, and an app is never started twice: either way its consumers would
keep taking events from the shared durable consumer unseen, and a later app of the same service
would miss them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gameplane.devtools.testing import running
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings


def _wallet_tasks() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("wallet-") and not t.done()}


class _Planted(Exception):
    pass


async def test_an_app_left_with_an_error_stops_its_consumers_and_loops(service_settings: Any) -> None:
    app = build_app(service_settings(WalletSettings))
    assert _wallet_tasks() == set()
    with pytest.raises(_Planted):
        async with running(app):
            started = _wallet_tasks()
            assert "wallet-consume-players_protection_changed" in started  # a negative control: they ran
            raise _Planted
    await asyncio.sleep(0)
    assert _wallet_tasks() == set()


async def test_a_started_app_refuses_a_second_start_and_starts_again_once_stopped(service_settings: Any) -> None:
    app = build_app(service_settings(WalletSettings))
    rt = app.state.runtime
    async with running(app):
        first = _wallet_tasks()
        with pytest.raises(RuntimeError, match="already started"):
            await rt.start()
        assert _wallet_tasks() == first  # nothing more was started
    assert _wallet_tasks() == set()
    async with running(app):  # stopped: it starts again
        assert "wallet-consume-players_protection_changed" in _wallet_tasks()
    assert _wallet_tasks() == set()
