"""The local platform's secrets file: readable by its user alone, replaced whole, absent means {}."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gameplane.devtools import localsecrets


def test_the_file_is_written_0600_whatever_the_umask_and_read_back(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive a shell could have
    try:
        path = localsecrets.write(tmp_path, {"service_token_secret": "s" * 32, "providers": {"rgs": {"secret": "k"}}})
    finally:
        os.umask(old)
    assert path == tmp_path / "secrets.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert localsecrets.read(tmp_path)["providers"]["rgs"]["secret"] == "k"


def test_a_readable_older_file_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    stale = tmp_path / "secrets.json"
    stale.write_text('{"service_token_secret": "old"}')
    stale.chmod(0o644)
    localsecrets.write(tmp_path, {"service_token_secret": "new"})
    assert stale.stat().st_mode & 0o777 == 0o600 and localsecrets.read(tmp_path) == {"service_token_secret": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]  # no temporary file left behind


def test_no_platform_means_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert localsecrets.read(tmp_path) == {}
    (tmp_path / "secrets.json").write_text("not json")
    assert localsecrets.read(tmp_path) == {}
    monkeypatch.setenv(localsecrets.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert localsecrets.path() == tmp_path / "elsewhere" / "secrets.json"
