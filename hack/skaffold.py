#!/usr/bin/env python3
"""skaffold's side of the repository: the build hooks of skaffold.yaml, and the environment that
runs skaffold against `make cluster` on this machine (docs/dev-loop.md).

    python3 hack/skaffold.py build          # skaffold itself, from its Go module (pinned, cached)
    eval "$(python3 hack/skaffold.py env)"  # KUBECONFIG, PATH (skaffold, kubectl, helm, docker), DOCKER_HOST ...
    python3 hack/skaffold.py prepare        # once before skaffold: what the builds need that git does not hold
    python3 hack/skaffold.py before-build   # hook: the same, kept fresh before each build
    python3 hack/skaffold.py after-build    # hook: the built image into the local node's containerd

`prepare` exists because skaffold computes each artifact's inputs (the files a Dockerfile COPYs,
the base image's ONBUILD triggers) before any hook runs: a missing .build/images/helm or local base
fails there, with a message that does not say why. The hooks read skaffold's SKAFFOLD_IMAGE.
Standard library only: skaffold runs them with whatever `python3` is on PATH.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The CA bundle builds hand to pip (skaffold.yaml: docker.secrets, id "ca"); empty when the host
# has none, which the Dockerfiles accept.
CA_SECRET = REPO / ".build" / "skaffold" / "ca.pem"
SERVICE, OPERATOR = "gameplane/gameplane", "gameplane/operator"


def _load(name: str) -> ModuleType:
    """hack.<name>, imported only when a command needs it (skaffold runs the hooks on every build)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(f"hack.{name}")


def log(msg: str) -> None:
    print(f"hack/skaffold.py: {msg}", file=sys.stderr, flush=True)


def repository(image: str) -> str:
    """gameplane/operator:abc -> gameplane/operator (a registry port is not a tag)."""
    name, _, tag = image.rpartition(":")
    return name if name and "/" not in tag else image


def _is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def stage_helm() -> None:
    """.build/images/helm for the operator image: built from helm's Go module (hack/controlplane.py,
    cached) where Go or the built binary is here; else a Linux `helm` from PATH (a kind user's)."""
    images, cp = _load("images"), _load("controlplane")
    staged = images.STAGE / "helm"
    # Elsewhere (macOS) Go would build a helm for the host, which cannot run in the image.
    if sys.platform == "linux" and (cp.TOOLS["helm"].built() or cp.go_binary()):
        images.stage(images.BY_KEY["operator"])
        return
    if staged.exists() and _is_elf(staged):
        return  # put there by hand
    found = shutil.which("helm")
    if found and _is_elf(Path(found)):
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(found, staged)
        log(f"staged {found} (no Go toolchain to build helm {cp.HELM_VERSION})")
        return
    raise RuntimeError(
        f"the operator image needs a Linux helm binary at {staged}: install Go (helm is then built from its "
        "module) or copy one there (the release for your engine's architecture)"
    )


def write_ca_secret() -> None:
    bundle = _load("images").ca_bundle()
    data = bundle.read_bytes() if bundle else b""
    CA_SECRET.parent.mkdir(parents=True, exist_ok=True)
    if not CA_SECRET.exists() or CA_SECRET.read_bytes() != data:
        CA_SECRET.write_bytes(data)


def _private_engine() -> Any | None:
    """hack/images.py's Docker engine when DOCKER_HOST names it (then it is the builder)."""
    images = _load("images")
    daemon = images.Daemon()
    return daemon if os.environ.get("DOCKER_HOST") == daemon.host else None


def ensure_local_base() -> None:
    """The local base image (gameplane/base:bookworm) in hack/images.py's engine: a registry-less
    machine builds on it. The engine must be up already: a session started here would stop it again
    when this hook exits, under skaffold's feet."""
    images = _load("images")
    daemon = _private_engine()
    if daemon is None:
        raise RuntimeError(f"BASE_IMAGE {images.BASE.alias} is built by hack/images.py in its own Docker engine: "
                           'eval "$(python3 hack/skaffold.py env)" first')  # fmt: skip
    if not daemon.ping():
        raise RuntimeError("hack/images.py's Docker engine is not running: python3 hack/images.py docker up")
    with daemon.session():
        took = images.BASE.load(daemon)
    if took:
        log(f"built the local base {images.BASE.alias} in {took:.0f}s")


def _wants_local_base() -> bool:
    """The build uses the local base: GAMEPLANE_BASE_IMAGE names it, or (unset: the ci profile)
    hack/images.py's engine is the builder, which has no registry to pull a public base from."""
    base = os.environ.get("GAMEPLANE_BASE_IMAGE", "")
    return base == _load("images").BASE.alias or (not base and _private_engine() is not None)


def before_build(image: str) -> None:
    write_ca_secret()
    if repository(image) == OPERATOR:
        stage_helm()
    if _wants_local_base():
        ensure_local_base()


def prepare() -> None:
    write_ca_secret()
    stage_helm()
    if _wants_local_base():
        ensure_local_base()


def node_containerd() -> str | None:
    """The containerd socket of a `make cluster` node running on this machine, or None."""
    node = _load("node")
    socket = node.RUN / "containerd" / "containerd.sock"
    if not socket.exists() or shutil.which("ctr") is None:
        return None
    r = subprocess.run(["ctr", "--address", str(socket), "version"], capture_output=True, timeout=10)
    return str(socket) if r.returncode == 0 else None


def after_build(image: str) -> None:
    """Import the image skaffold deploys into the local node. skaffold deploys a local build as
    <repository>:<image id> (it tags that after building), so that tag is the one imported; kind
    needs none of this (skaffold loads into kind itself)."""
    address = node_containerd()
    if address is None:
        return
    images = _load("images")
    daemon = _private_engine()
    if daemon is None:
        raise RuntimeError("a gameplane node runs here, but DOCKER_HOST is not hack/images.py's engine, from "
                           'which images are imported: eval "$(python3 hack/skaffold.py env)"')  # fmt: skip
    image_id = daemon.image_id(image)
    if not image_id:
        raise RuntimeError(f"{image} is not in the engine")
    deployed = f"{repository(image)}:{image_id.removeprefix('sha256:')}"
    # Streamed, not through hack/images.py's archive cache: every dev build is a new image, and its
    # ~200 MB archive would never be read again.
    start = time.monotonic()
    with daemon.session():
        save = subprocess.Popen([images.docker_cli(), "save", deployed], env=daemon.env(), stdout=subprocess.PIPE)
        assert save.stdout is not None
        load = subprocess.run(["ctr", "--address", address, "--namespace", "k8s.io", "images", "import", "-"],
                              stdin=save.stdout, capture_output=True, text=True)  # fmt: skip
        save.stdout.close()
        saved = save.wait()
    if saved != 0 or load.returncode != 0:
        raise RuntimeError(f"importing {deployed} failed: docker save exit {saved}; ctr: {load.stderr.strip()}")
    log(f"imported {deployed[:40]}... into the node's containerd in {time.monotonic() - start:.1f}s")


def bin_dir() -> Path:
    """skaffold, kubectl, helm and Debian's docker CLI side by side, for PATH. The docker CLI must
    be the engine's own (20.10, BuildKit built in): a newer CLI elsewhere on PATH without the buildx
    plugin falls back to the legacy builder, which cannot read the Dockerfiles (RUN --mount)."""
    cp = _load("controlplane")
    out = cp.CACHE / "skaffold-bin"
    out.mkdir(parents=True, exist_ok=True)
    links = {name: cp.tool(name) for name in ("skaffold", "kubectl", "helm")}
    links["docker"] = Path(_load("images").docker_cli())
    for name, target in links.items():
        link = out / name
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    return out


# No version check against the internet (it cannot get through here), no survey prompts, and no
# pruning: skaffold removes the images it built by id, with force, when `dev` stops; its build of an
# unchanged tree has the same id as `make images`' gameplane/gameplane:<version>, which went with it.
SETTINGS = {"SKAFFOLD_UPDATE_CHECK": "false", "SKAFFOLD_INTERACTIVE": "false", "SKAFFOLD_NO_PRUNE": "true"}


def env_lines() -> str:
    cp, images = _load("controlplane"), _load("images")
    lines = []
    state = cp.STATE
    if (state / "cluster.json").exists():
        lines.append(f"export KUBECONFIG={cp.ControlPlane.load(state).kubeconfig}")
    else:
        log(f"no `make cluster` at {state}: KUBECONFIG left as it is")
    if not cp.TOOLS["skaffold"].built():
        log("skaffold is not built yet: python3 hack/skaffold.py build")
    dev = {i.key: i.tag for i in images.select(["dev"])}
    lines += [
        f"export PATH={bin_dir()}:$PATH",
        f"export DOCKER_HOST={images.Daemon().host}",
        "export DOCKER_BUILDKIT=1",
        f"export GAMEPLANE_BASE_IMAGE={images.BASE.alias}",
        # The dev backends `make cluster` loads onto the node (no registry to pull the public ones).
        f"export GAMEPLANE_POSTGRES_IMAGE={dev['dev-postgres']} GAMEPLANE_NATS_IMAGE={dev['dev-nats']}",
        "export " + " ".join(f"{k}={v}" for k, v in SETTINGS.items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/skaffold.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["build", "env", "prepare", "before-build", "after-build"])
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            cp = _load("controlplane")
            cp.build_one(cp.TOOLS["skaffold"])
            print(cp.tool("skaffold"))
        elif args.command == "env":
            print(env_lines())
        elif args.command == "prepare":
            prepare()
        else:
            image = os.environ.get("SKAFFOLD_IMAGE", "")
            if not image:
                parser.error(f"{args.command} is a skaffold hook: SKAFFOLD_IMAGE is not set")
            (before_build if args.command == "before-build" else after_build)(image)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
