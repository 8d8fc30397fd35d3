"""System tier: `gameplane up` in a subprocess, every service a real process on a real port.

`platform` (session) is the running platform; `launch_platform` starts another one for tests
that need their own (for example with a different command line). Teardown sends SIGINT and
fails if any process of the platform survives. The machinery is `gameplane.devtools.harness`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gameplane.devtools.harness import Platform, ServiceNotBuilt, launch


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/system/" in str(item.path):
            item.add_marker(pytest.mark.system)


class SystemPlatform(Platform):
    """A Platform whose tests skip, rather than fail, when they need a service not built yet."""

    @property
    def gateway(self) -> str:
        try:
            return super().gateway
        except ServiceNotBuilt:
            pytest.skip("the gateway is not built yet")

    def url(self, service: str) -> str:
        try:
            return super().url(service)
        except ServiceNotBuilt:
            pytest.skip(f"service {service!r} is not built yet")


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemPlatform]:
    running = launch(tmp_path_factory.mktemp("platform"), cls=SystemPlatform)
    yield running
    assert running.shutdown() == 0


@pytest.fixture
def launch_platform(tmp_path: Path) -> Iterator[Callable[..., SystemPlatform]]:
    """Factory for a platform of this test alone: `launch_platform(argv=..., env=...)`.

    `argv` replaces `python -m gameplane.cli` (the arguments `up --data-dir ... --base-port ...`
    are appended); `data_dir` reuses the directory of an earlier platform.
    """
    started: list[SystemPlatform] = []

    def start(data_dir: Path | None = None, **kwargs: Any) -> SystemPlatform:
        running = launch(data_dir or tmp_path / f"platform{len(started)}", cls=SystemPlatform, **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        running.shutdown()
