"""Unit-tier fixtures."""

from __future__ import annotations

import dataclasses

import pytest

from gameplane import catalog


@pytest.fixture
def backoffice_unbuilt(monkeypatch: pytest.MonkeyPatch) -> str:
    """The catalogue as a release without the back office's code would have it: every service is
    built in this release, so the rules about code that does not exist are tested on a stand-in."""
    services = tuple(dataclasses.replace(s, built=False) if s.name == "backoffice" else s for s in catalog.SERVICES)
    monkeypatch.setattr(catalog, "SERVICES", services)
    monkeypatch.setattr(catalog, "BY_NAME", {s.name: s for s in services})
    return "backoffice"
