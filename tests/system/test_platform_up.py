"""The session platform: every built service is ready on its port, with its docs, and the
infrastructure it was given is the real thing."""

from __future__ import annotations

import httpx
import psutil

from gameplane.cli import registry
from gameplane.devtools.harness import Platform


def test_every_built_service_runs_and_answers(platform: Platform) -> None:
    info = platform.info
    assert set(info["services"]) == {s.name for s in registry.available()}
    services = info["services"]
    assert isinstance(services, dict)
    for name, url in services.items():
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/livez").status_code == 200, name
            assert client.get("/readyz").status_code == 200, name
            assert client.get("/openapi.json").status_code == 200, name
        pid = platform.state()[name]["pid"]  # current: other tests crash and restart services
        assert psutil.Process(pid).cmdline()[1:3] == ["-m", next(s.module for s in registry.SERVICES if s.name == name)]


def test_infrastructure_is_real_postgres_and_nats(platform: Platform) -> None:
    info = platform.info
    assert "postgres" in " ".join(psutil.Process(info["pids"]["postgres"]).cmdline())
    assert "nats-server" in " ".join(psutil.Process(info["pids"]["nats"]).cmdline())
    varz = httpx.get(info["nats_monitor"] + "/varz", timeout=5).json()
    assert varz["jetstream"]["config"]["store_dir"].startswith(info["data_dir"])
    expected_dbs = {s.name for s in registry.available() if s.database}
    assert set(info["databases"]) == expected_dbs
