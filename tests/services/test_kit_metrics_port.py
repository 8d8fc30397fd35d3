"""/metrics on its own port: a real service process (the RGS simulator, no database) started by
the image's launcher with GP_RGS_METRICS_PORT answers /metrics there and only there, so a
NetworkPolicy that opens the metrics port to Prometheus opens nothing of the API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from gameplane.devtools.infra import free_port

KEY = "metrics-port-test-" + "k" * 32  # the simulator refuses to start without a provider key


@pytest.fixture
def rgs_ports() -> Iterator[tuple[int, int]]:
    api, metrics = free_port(), free_port()
    while metrics == api:
        metrics = free_port()
    env = {**os.environ, "GP_RGS_HOST": "127.0.0.1", "GP_RGS_PORT": str(api), "GP_RGS_METRICS_PORT": str(metrics),
           "GP_RGS_PLATFORM_URL": "http://127.0.0.1:9", "GP_RGS_PROVIDER_SECRET": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "gameplane", "rgs"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{api}/livez", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"rgs did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.1)
        yield api, metrics
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_metrics_answer_on_the_metrics_port_only(rgs_ports: tuple[int, int]) -> None:
    api, metrics = rgs_ports
    # Traffic on the API port, so the RED metrics have a sample to show.
    assert httpx.get(f"http://127.0.0.1:{api}/livez").status_code == 200
    scraped = httpx.get(f"http://127.0.0.1:{metrics}/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "gameplane_http_requests_total" in scraped.text
    # The API port no longer serves the scrape, and the metrics port serves nothing of the API.
    assert httpx.get(f"http://127.0.0.1:{api}/metrics").status_code == 404
    assert httpx.get(f"http://127.0.0.1:{metrics}/livez").status_code == 404
    assert httpx.get(f"http://127.0.0.1:{metrics}/readyz").status_code == 404


def test_without_a_metrics_port_the_api_port_serves_metrics(tmp_path: object) -> None:
    # Local runs (`gameplane up`, the in-process tests) keep /metrics beside the API.
    from starlette.testclient import TestClient

    from gameplane.simulators.rgs.app import build_app
    from gameplane.simulators.rgs.settings import RgsSettings

    with TestClient(build_app(RgsSettings(platform_url="http://127.0.0.1:9", provider_secret=KEY))) as client:
        assert client.get("/metrics").status_code == 200
