"""The build recipe: Dockerfile defaults, tags the charts name, layer caching, and the private engine."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import yaml
from imagelib import Docker, Session, images, note

DOCKERFILES = ("service.Dockerfile", "operator.Dockerfile")


def test_base_image_argument_defaults_to_the_public_python_image() -> None:
    for name in DOCKERFILES:
        text = (images.REPO / "images" / name).read_text()
        args = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
        assert args == ["python:3.11-slim-bookworm"], name
        froms = re.findall(r"^FROM (\S+)", text, re.M)
        assert froms and all(f == "${BASE_IMAGE}" for f in froms), (name, froms)  # no other image is pulled


def test_local_builds_use_the_local_base(docker: Docker, images_session: Session) -> None:
    for key in ("service", "operator"):
        labels = docker.inspect(images_session.built[key].tags[0])["Config"]["Labels"]
        assert labels["org.opencontainers.image.base.name"] == images.BASE.tag
    assert images.BASE.tag.startswith("gameplane/base:bookworm-")
    assert images.BASE.tarball.exists()  # the cached rootfs


def _rendered_images(chart: str) -> set[str]:
    helm = images._load_controlplane().tool("helm")
    out = subprocess.run([str(helm), "template", "t", str(images.REPO / "charts" / chart)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return {
        c["image"]
        for d in yaml.safe_load_all(out)
        if d and d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }


def test_tags_are_what_the_charts_deploy_by_default(docker: Docker, images_session: Session) -> None:
    assert images_session.built["service"].tags == [images.service_tag()]
    assert images_session.built["operator"].tags == [images.operator_tag()]
    assert images.service_tag() in _rendered_images("gameplane")
    assert _rendered_images("gameplane-operator") == {images.operator_tag()}


def test_a_source_edit_reuses_the_dependency_layer(docker: Docker, tmp_path: Path) -> None:
    """Rebuild the service image from a copy of the sources with one edit: the dependency layers
    come from the cache, only the package's own layer runs again."""
    ctx = tmp_path / "ctx"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for part in ("services", "images"):
        shutil.copytree(images.REPO / part, ctx / part, ignore=ignore)
    for f in ("pyproject.toml", "README.md", ".dockerignore"):
        shutil.copy2(images.REPO / f, ctx / f)
    target = ctx / "services" / "gameplane" / "gateway" / "__init__.py"
    token = uuid.uuid4().hex  # a new edit each run: the previous run's is in the cache
    target.write_text(target.read_text() + f"\nGP_LAYER_TEST = {token!r}\n")
    tag = "gameplane/layer-test:edit"
    args = ["build", "--progress", "plain", "--network", "host", "--file", str(ctx / "images" / "service.Dockerfile"),
            "--build-arg", f"BASE_IMAGE={images.BASE.tag}", "--tag", tag]  # fmt: skip
    if (ca := images.ca_bundle()) is not None:
        args += ["--secret", f"id=ca,src={ca}"]
    try:
        out = docker(*args, str(ctx), timeout=600)
        log = out.stdout + out.stderr

        def status(command: str) -> str:
            step = re.search(r"^#(\d+) \[build[^\]]*\] RUN .*" + re.escape(command), log, re.M)
            assert step, f"no step running {command!r} in:\n{log}"
            return "CACHED" if re.search(rf"^#{step.group(1)} CACHED$", log, re.M) else "RAN"

        assert status("pip install --quiet -r /tmp/requirements.txt") == "CACHED"
        assert status("pip install --quiet -r /tmp/build-requirements.txt") == "CACHED"
        assert status("pip wheel --quiet --no-deps") == "RAN"  # control: the edit did rebuild the package
        edited = docker.run(tag, "-c", "import gameplane.gateway as g; print(g.GP_LAYER_TEST)",
                            opts=("--entrypoint", "python")).stdout  # fmt: skip
        assert edited.strip() == token
    finally:
        docker("rmi", "--force", tag, check=False)


def test_warm_rebuild_is_a_cache_hit(docker: Docker, images_session: Session) -> None:
    """Building again changes nothing: same image ids (the session build above was itself warm or cold)."""
    for key in ("service", "operator"):
        before = images_session.built[key]
        again = images.build_image(images_session.daemon, images.BY_KEY[key], images.BASE.tag)
        assert again.id == before.id, key
        note(f"warm rebuild of {before.tags[0]}: {again.seconds:.1f}s")


def test_engine_leaves_the_host_network_alone(images_session: Session) -> None:
    info = images_session.daemon.out("info", "--format", "{{json .}}")
    assert '"Name":"bridge"' not in images_session.daemon.out("network", "ls", "--format", "{{json .}}")
    assert str(images_session.daemon.data_root) in info
    assert "docker0" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def test_stale_daemon_is_cleaned_up_and_sessions_share_one_daemon(images_session: Session, tmp_path: Path) -> None:
    """A second, throwaway engine (own paths, own cgroup): killed with a container running, as when a
    run is killed, then cleaned up by the next session; nested sessions keep it until the last ends."""
    main = images_session.daemon
    # The engine's sockets live under run_dir and a unix socket path has at most 104 bytes: a short
    # directory of its own, not the (long) pytest temporary path.
    run_dir = Path(tempfile.mkdtemp(prefix="gpd-"))
    d = images.Daemon(run_dir=run_dir, data_root=tmp_path / "data", cgroup_parent="/gameplane-docker-test")
    archive = tmp_path / "pause.tar"
    images.save(main, ["gameplane/pause:3.10"], archive)
    d.up()
    try:
        d.docker("load", "--input", str(archive))
        cid = d.out("run", "--detach", "--network", "none", "gameplane/pause:3.10")
        container_pid = int(d.out("inspect", "--format", "{{.State.Pid}}", cid))
        dockerd_pid = d.pid()
        assert dockerd_pid and container_pid
        os.kill(dockerd_pid, signal.SIGKILL)  # the killed run
        d.keep(False)
        assert not d.ping()
        assert images._alive(container_pid)  # the container outlived its engine

        with d.session():
            assert d.ping() and d.pid() != dockerd_pid  # a fresh engine
            assert not images._alive(container_pid)  # ... and the orphan is gone
            with d.session():
                assert d.ping()
            assert d.ping()  # the inner session's end did not stop the outer one's engine
        assert not d.ping() and d.pid() is None
        assert d._leftover_pids() == []
        assert images._mounts_under(d.run_dir, d.data_root) == []
        assert not list(Path("/sys/fs/cgroup").glob("*/gameplane-docker-test"))
    finally:
        d.down()
        d.cleanup()
        shutil.rmtree(run_dir, ignore_errors=True)
    assert main.ping()  # the tier's own engine was never touched
