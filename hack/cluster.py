#!/usr/bin/env python3
"""The local Kubernetes cluster of `make cluster`: the control plane, one real node, the images.

    python hack/cluster.py up       # build what is missing (cached), start everything, print how to use it
    python hack/cluster.py down     # stop everything; lists anything left on the host and exits 1 if so
    python hack/cluster.py env      # export KUBECONFIG / PATH for a running cluster
    python hack/cluster.py status
    python hack/cluster.py build    # every tool (skaffold too) and image, nothing started (make test)

Pieces: hack/controlplane.py (etcd, API server, controllers, kwok's fake nodes for scale),
hack/node.py (containerd, kubelet, kube-proxy, CoreDNS, metrics-server on this machine) and
hack/images.py (the service, operator, dev-backend and node images, built without a registry and
imported into the node's containerd). docs/cluster.md explains it all.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python hack/cluster.py`: make `hack.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hack import controlplane as cp
from hack import images
from hack import node as node_mod

# Processes that would replace a Pod the node is draining.
CONTROLLERS = ("kube-controller-manager", "kube-scheduler", "kwok")


def build(log: bool = True) -> dict[str, float]:
    """Every tool the cluster runs (not skaffold: its users build it)."""
    return cp.build_all(log=log, keys=(*cp.PLANE_BUILDS, "coredns", "kube-router", "metrics-server",
                                                "prometheus-adapter", "helm"))


def build_everything() -> None:
    """What `make test`'s cluster and images tiers need, skaffold included, as soon as possible:
    the Go tools in one thread (skaffold, needed last, built last), the images in another, each
    image once what it needs exists (the operator image carries helm, the node images carry
    metrics-server and pause.c of the Kubernetes module). Cold, the image builds (network, disk)
    hide behind the Go builds (CPU)."""
    import threading

    built: dict[str, threading.Event] = {b.key: threading.Event() for b in cp.BUILDS}
    failures: list[BaseException] = []

    def go_tools() -> None:
        order = sorted(cp.BUILDS, key=lambda b: b.key == "skaffold")
        try:
            for b in order:
                cp.build_one(b)
                built[b.key].set()
        except BaseException as exc:
            failures.append(exc)
        finally:
            for event in built.values():
                event.set()  # waiters go on; their builds fail loudly if a tool is missing

    thread = threading.Thread(target=go_tools, name="go-tools")
    thread.start()
    try:
        daemon = images.Daemon()
        with daemon.session():
            images.build(daemon, only=["service", "dev"])
            built["helm"].wait()
            images.build(daemon, only=["operator"])
            built["kubernetes"].wait()
            built["metrics-server"].wait()
            built["coredns"].wait()
            built["prometheus-adapter"].wait()
            images.build(daemon, only=["node"])
    finally:
        thread.join()
    if failures:
        raise failures[0]


def start(state: Path, metrics_server: bool = True) -> tuple[Any, Any]:
    """Control plane, then the images, then the node (with the images in its containerd)."""
    t0 = time.monotonic()
    build()
    daemon = images.Daemon()
    with daemon.session():
        built = images.build(daemon)
    plane = cp.ControlPlane(state=state).start()
    node = node_mod.Node(plane_state=state)
    try:
        node.start(images=[t for b in built for t in b.tags])
        if metrics_server:
            node.deploy_metrics_server()
    except BaseException:
        stop(plane, node)
        raise
    print(f"cluster up in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return plane, node


def stop(plane: Any, node: Any) -> list[str]:
    """Controllers first (nothing may replace a drained Pod), then the node, then the rest."""
    plane.stop(only=CONTROLLERS)
    left = node.stop()
    plane.stop()
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "env", "status", "build"])
    parser.add_argument("--state", type=Path, default=cp.STATE, help="pki, logs, kubeconfig and node state")
    args = parser.parse_args(argv)
    if args.command == "build":
        build_everything()
        return 0
    running = (args.state / "cluster.json").exists() and cp.ControlPlane.load(args.state).alive("kube-apiserver")
    if args.command == "up":
        if running:
            print(f"already running; `make cluster-down` first\n{cp.env_lines(cp.ControlPlane.load(args.state))}")
            return 1
        try:
            plane, _ = start(args.state)
        except node_mod.NodeError as exc:
            print(f"hack/cluster.py: {exc}", file=sys.stderr)
            return 1
        nodes = plane.kubectl("get", "nodes", "-o", "wide").stdout
        print(f"kube-apiserver {plane.server}  (Kubernetes {cp.K8S_VERSION})\n{nodes}")
        print(f"kubeconfig     {plane.kubeconfig}\nlogs           {plane.state / 'logs'}, "
              f"{plane.state / 'node' / 'logs'}")  # fmt: skip
        print("Use it:\n" + cp.env_lines(plane))
        # The charts default to the public postgres/nats images, which no registry here serves.
        print("Install the operator (its image is on the node already; the two values point platforms at\n"
              "the locally built development PostgreSQL and NATS):\n"
              "  helm install gameplane-operator charts/gameplane-operator -n gameplane-system --create-namespace \\\n"
              f"    --set platformDefaults.postgresImage={images.BY_KEY['dev-postgres'].tag} \\\n"
              f"    --set platformDefaults.natsImage={images.BY_KEY['dev-nats'].tag}")
        return 0
    if not (args.state / "cluster.json").exists():
        print("no cluster was started here", file=sys.stderr)
        return 0 if args.command == "down" else 1
    plane = cp.ControlPlane.load(args.state)
    node = node_mod.Node.load(args.state)
    if args.command == "down":
        left = stop(plane, node)
        for item in left:
            print(f"left behind: {item}")
        print("cluster stopped" + (" (NOT clean, see above)" if left else "; the host is as it was"))
        return 1 if left else 0
    if args.command == "env":
        print(cp.env_lines(plane))
        return 0
    for name, pid in {**plane.pids, **node.pids}.items():
        alive = plane.alive(name) if name in plane.pids else node.alive(name)
        print(f"{name:<24} pid {pid:<8} {'running' if alive else 'stopped'}")
    if running:
        subprocess.run([str(cp.tool("kubectl")), "--kubeconfig", str(plane.kubeconfig), "get", "nodes"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
