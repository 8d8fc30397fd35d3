"""Images tier: the images `make images` builds, built once per session and run as real containers.

hack/images.py builds everything (cached: the base rootfs by recipe, the layers by BuildKit) on a
private Docker engine that it starts and stops. The build runs before the first test, outside any
test's timeout (a cold run debootstraps two root filesystems and installs every dependency: ~6 min
on 2 cores; a warm run takes seconds). Measurements (sizes, build and stop times) are printed in a
summary at the end of the run.

Needs root and Debian's docker.io, containerd, runc, debootstrap and gcc (`make host-deps`). The tier
skips loudly where they are missing, but fails under CI=true.
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from imagelib import STATE, Docker, Session, images

HOST_TOOLS = ("dockerd", "containerd", "runc", "ctr", "debootstrap", "gcc")


def _missing_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (dockerd, debootstrap, chroot)"
    missing = [t for t in HOST_TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing host tools {', '.join(missing)} (`make host-deps` installs them)"
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # Build here, once, before any test starts: a cold build must not count against the per-test
    # timeout of whichever test happens to run first.
    if not any("images_session" in getattr(i, "fixturenames", ()) for i in items):
        return
    STATE.unavailable = _missing_reason()
    if STATE.unavailable is not None:
        return
    config.add_cleanup(STATE.stack.close)  # the Docker engine stops after the last test
    try:
        STATE.daemon = STATE.stack.enter_context(images.Daemon().session())
        start = time.monotonic()
        for b in images.build(STATE.daemon):
            STATE.built[b.image.key] = b
            STATE.report.append(f"built {b.tags[0]:<34} {b.size / images.MB:7.1f} MB in {b.seconds:5.1f}s")
        STATE.build_seconds = time.monotonic() - start
        STATE.report.insert(0, f"images built in {STATE.build_seconds:.1f}s (every cached level included)")
    except Exception:
        STATE.error = traceback.format_exc()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # The tier's tests run together: stop the engine after its last one, not at the end of `make test`.
    here = Path(__file__).parent
    if item.path.parent == here and (nextitem is None or nextitem.path.parent != here):
        STATE.stack.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if STATE.report:
        terminalreporter.section("images")
        for line in STATE.report:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def images_session() -> Session:
    if STATE.unavailable is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"images tier cannot run in CI: {STATE.unavailable}")
        pytest.skip(f"images tier skipped: {STATE.unavailable}")
    if STATE.error is not None:
        pytest.fail(f"building the images failed:\n{STATE.error}", pytrace=False)
    assert STATE.daemon is not None, "the images were not built (collection hook did not run)"
    return STATE


@pytest.fixture(scope="session")
def docker(images_session: Session) -> Docker:
    return Docker(images_session.daemon)
