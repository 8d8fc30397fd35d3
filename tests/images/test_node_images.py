"""What the real node needs: the pause, metrics-server, prometheus-adapter and Prometheus images, and
images loaded into containerd."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from imagelib import SIGTERM_BOUND_S, Docker, Session, images, note, wait_for


def test_pause_image(docker: Docker, images_session: Session) -> None:
    built = images_session.built["pause"]
    assert "gameplane/pause:3.10" in built.tags
    config = docker.inspect("gameplane/pause:3.10")["Config"]
    assert config["User"] == "65535:65535" and config["Entrypoint"] == ["/pause"]
    assert docker.run("gameplane/pause:3.10", "-v").stdout.startswith(f"pause.c v{images.pause_version()}")
    assert built.size < 2 * images.MB  # one static binary, FROM scratch
    with docker.container("gameplane/pause:3.10", opts=("--network", "none", "--read-only")) as cid:
        seconds, code = docker.stop_seconds(cid)
    assert code == 0 and seconds < SIGTERM_BOUND_S


def test_metrics_server_image(docker: Docker, images_session: Session) -> None:
    tag = images_session.built["metrics-server"].tags[0]
    assert tag == f"gameplane/metrics-server:{images._load_controlplane().METRICS_SERVER_VERSION}"
    assert docker.inspect(tag)["Config"]["User"] == "65534:65534"
    r = docker.run(tag, "--help")
    assert "--kubelet-preferred-address-types" in r.stdout + r.stderr


def test_prometheus_adapter_image(docker: Docker, images_session: Session) -> None:
    tag = images_session.built["prometheus-adapter"].tags[0]
    assert tag == "gameplane/prometheus-adapter:v0.12.0"
    config = docker.inspect(tag)["Config"]
    assert config["User"] == "65534:65534" and config["Entrypoint"] == ["/adapter"]
    r = docker.run(tag, "--help", check=False)
    assert "--prometheus-url" in r.stdout + r.stderr and "--metrics-relist-interval" in r.stdout + r.stderr


def test_prometheus_image_runs_debians_server_as_nobody(docker: Docker, images_session: Session) -> None:
    tag = images_session.built["prometheus"].tags[0]
    host = subprocess.run(["prometheus", "--version"], capture_output=True, text=True).stdout.split()[2]
    assert tag == f"gameplane/prometheus:{host.split('+')[0]}"  # the host package's own version
    assert docker.inspect(tag)["Config"]["User"] == "65534:65534"
    r = docker.run(tag, "--version")
    assert f"version {host}" in r.stdout + r.stderr  # the binary runs on the base's glibc


@contextlib.contextmanager
def private_containerd(root: Path) -> Iterator[Path]:
    """Debian's containerd with its own root, state and socket (no CRI): a stand-in for the node's."""
    sock = root / "c.sock"
    config = root / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{root / "root"}"\nstate = "{root / "state"}"\n'
        f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "{sock}"\n'
    )
    log = (root / "containerd.log").open("wb")
    proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        wait_for("containerd", lambda: subprocess.run(["ctr", "--address", str(sock), "version"],
                                                      capture_output=True).returncode == 0,
                 logs=lambda: (root / "containerd.log").read_text())  # fmt: skip
        yield sock
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_load_into_containerd(images_session: Session, tmp_path: Path) -> None:
    tags = ["gameplane/pause:3.10", images_session.built["dev-nats"].tags[0]]
    with private_containerd(tmp_path) as sock:
        start = time.monotonic()
        images.load_into_containerd(str(sock), tags, daemon=images_session.daemon)
        first = time.monotonic() - start
        start = time.monotonic()
        images.load_into_containerd(str(sock), tags, daemon=images_session.daemon)  # the archive is cached now
        again = time.monotonic() - start
        listed = subprocess.run(["ctr", "--address", str(sock), "--namespace", "k8s.io", "images", "ls", "--quiet"],
                                capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
        for tag in tags:
            assert f"docker.io/{tag}" in listed  # the name the kubelet resolves `gameplane/...` to
        # Control: only the k8s.io namespace received them.
        other = subprocess.run(["ctr", "--address", str(sock), "images", "ls", "--quiet"],
                               capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
        assert other == []
        with pytest.raises(RuntimeError, match="not built: gameplane/nothing:0"):
            images.load_into_containerd(str(sock), ["gameplane/nothing:0"], daemon=images_session.daemon)
    note(f"load into containerd ({len(tags)} images): {first:.1f}s, again {again:.1f}s")
    assert images._mounts_under(tmp_path) == []
