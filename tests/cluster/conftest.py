"""Cluster tier: one real control plane (hack/controlplane.py) for the whole session, and one
real node (hack/node.py) when a test asks for it.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are built from the Kubernetes Go
modules (cached in ~/.cache/gameplane), kwok provides fake (tainted) nodes for tests that only need
Pods to reach Running, and the real `kubectl` and `helm` binaries drive it. The real node runs
containerd, a kubelet, kube-proxy, CoreDNS and metrics-server on this machine, with the images of
hack/images.py loaded: real containers, real probes. Builds run before the first test (not inside
a test, so no per-test timeout applies); warm, the plane starts in ~10 s and the node in a few.

GAMEPLANE_TEST_CLUSTER=<state dir of a running `make cluster`> runs the tier against that cluster
instead of starting one (a fast inner loop while writing cluster tests); nothing is stopped then.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from clusterlib import OPERATOR_NS, OPERATOR_SA, Run, wait_established

from hack import cluster as cluster_module
from hack import controlplane as cp_module

REPO = Path(__file__).resolve().parents[2]

_unavailable: str | None = None
EXTERNAL = Path(os.environ["GAMEPLANE_TEST_CLUSTER"]) if os.environ.get("GAMEPLANE_TEST_CLUSTER") else None


node_module, images_module = cluster_module.node_mod, cluster_module.images


class NodeSetup:
    """What the collection hook prepared for the real node: the built images, or why not."""

    unavailable: str | None = None
    tags: list[str] = []


def _missing_reason() -> str | None:
    """Why the tier cannot run here, or None. Building needs only `go`; CI must never skip."""
    if all(b.built() for b in cp_module.BUILDS):
        return None
    if cp_module.go_binary() is None:
        return "the Go toolchain is not installed and the control plane binaries are not cached"
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # Build here, once, before any test starts: a cold build (~15 min) must not count against the
    # per-test timeout of whichever cluster test happens to run first.
    global _unavailable
    if not any("controlplane" in getattr(i, "fixturenames", ()) for i in items):
        return  # e.g. only the pure operator tests were selected
    _unavailable = _missing_reason()
    if _unavailable is None:
        started = time.monotonic()
        try:
            # skaffold (the longest build) is built by its own tests' fixture, which runs last.
            took = cp_module.build_all(log=True, keys=tuple(b.key for b in cp_module.BUILDS if b.key != "skaffold"))
        except (subprocess.CalledProcessError, RuntimeError) as exc:
            # Reported by the `controlplane` fixture: a failure under CI, a loud skip elsewhere.
            _unavailable = f"building the control plane failed: {exc}"
            return
        if any(took.values()):
            print(f"\ncluster tier: built {took} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    if _unavailable is None and EXTERNAL is None and any("real_node" in getattr(i, "fixturenames", ()) for i in items):
        _prepare_node()


def _prepare_node() -> None:
    """Build every image the node runs (cached: seconds when warm), before any test starts."""
    missing = node_module.missing_prerequisites()
    if missing:
        NodeSetup.unavailable = "no real node on this machine: missing " + "; ".join(missing)
        return
    started = time.monotonic()
    try:
        daemon = images_module.Daemon()
        with daemon.session():
            NodeSetup.tags = [t for b in images_module.build(daemon) for t in b.tags]
    except Exception as exc:  # reported by the real_node fixture: a failure in CI, a loud skip elsewhere
        NodeSetup.unavailable = f"building the images failed: {exc}"
        return
    print(f"\ncluster tier: images ready in {time.monotonic() - started:.0f}s", file=sys.stderr)


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"cluster tier cannot run in CI: {reason}")
    print(f"\n*** CLUSTER TIER SKIPPED: {reason} ***", file=sys.stderr)
    pytest.skip(f"CLUSTER TIER SKIPPED: {reason}")


@pytest.fixture(scope="session")
def controlplane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if _unavailable:
        _skip_or_fail(_unavailable)
    if EXTERNAL is not None:
        yield cp_module.ControlPlane.load(EXTERNAL)
        return
    cp = cp_module.ControlPlane(state=tmp_path_factory.mktemp("controlplane"))
    try:
        cp.start()
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def real_node(controlplane: Any) -> Iterator[Any]:
    """The real node (containerd, kubelet, kube-proxy, CoreDNS, metrics-server) with every image of
    hack/images.py in its containerd. At the end the controllers stop first, the node drains and
    stops, and the host must be exactly as before: anything left fails the session."""
    if EXTERNAL is not None:
        yield node_module.Node.load(EXTERNAL)
        return
    if NodeSetup.unavailable:
        _skip_or_fail(NodeSetup.unavailable)
    node = node_module.Node(plane_state=controlplane.state)
    try:
        node.start(images=NodeSetup.tags)
        node.deploy_metrics_server()
    except node_module.NodeError as exc:
        left = node.stop()
        pytest.fail(f"the real node did not start: {exc}" + (f"\nleft behind: {left}" if left else ""))
    yield node
    controlplane.stop(only=cluster_module.CONTROLLERS)
    left = node.stop()
    assert not left, f"the node left this behind on the host: {left}"


@pytest.fixture(scope="session")
def kubeconfig(controlplane: Any) -> Path:
    return Path(controlplane.kubeconfig)


@pytest.fixture(scope="session")
def tool_env(controlplane: Any) -> dict[str, str]:
    """Environment for kubectl/helm (and an operator process) against the admin kubeconfig."""
    env = dict(os.environ)
    env["KUBECONFIG"] = str(controlplane.kubeconfig)
    env["PATH"] = f"{cp_module.tool('helm').parent}:{cp_module.tool('kubectl').parent}:{env['PATH']}"
    env["HELM_CACHE_HOME"] = str(controlplane.state / "helm" / "cache")
    env["HELM_CONFIG_HOME"] = str(controlplane.state / "helm" / "config")
    env["HELM_DATA_HOME"] = str(controlplane.state / "helm" / "data")
    return env





@pytest.fixture(scope="session")
def kubectl(controlplane: Any, tool_env: dict[str, str]) -> Run:
    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(cp_module.tool("kubectl")), *args], input=input, capture_output=True,
                             text=True, env=tool_env, timeout=120)  # fmt: skip
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{out.stderr}")
        return out

    return run


@pytest.fixture(scope="session")
def helm(controlplane: Any, tool_env: dict[str, str]) -> Run:
    def run(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(cp_module.tool("helm")), *args], capture_output=True, text=True,
                             env=tool_env, timeout=timeout, cwd=REPO)  # fmt: skip
        if check and out.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out

    return run


@pytest.fixture(scope="session")
def admin(kubeconfig: Path) -> Iterator[kubernetes.client.ApiClient]:
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    api = kubernetes.client.ApiClient(cfg)
    yield api
    api.close()


@pytest.fixture(scope="session")
def crd(kubectl: Run) -> None:
    kubectl("apply", "--server-side", "-f", str(REPO / "k8s" / "crds"))
    wait_established(kubectl, "crd/gamingplatforms.gameplane.io")


@pytest.fixture(scope="session")
def operator_kubeconfig(controlplane: Any, crd: None) -> Path:
    """A kubeconfig holding a token of the operator's own ServiceAccount (RBAC from its chart)."""
    return Path(cp_module.operator_identity(controlplane, OPERATOR_NS, OPERATOR_SA))


@pytest.fixture(scope="session")
def operator_env(tool_env: dict[str, str], operator_kubeconfig: Path) -> dict[str, str]:
    env = dict(tool_env)
    env["KUBECONFIG"] = str(operator_kubeconfig)
    env["GAMEPLANE_OPERATOR_HELM"] = str(cp_module.tool("helm"))
    env["GAMEPLANE_OPERATOR_DEBOUNCE_SECONDS"] = "0.2"
    return env


@pytest.fixture(scope="session")
def pod_operator(real_node: Any, crd: None, helm: Run, kubectl: Run) -> Iterator[dict[str, Any]]:
    """The operator chart installed as a DevOps engineer would, with the built operator image: the
    operator runs as a Pod with the chart's RBAC. It watches the real-* namespaces; the local dev
    backend images are the only values beyond the chart's defaults."""
    from realnode import OPERATOR_NAMESPACE, OPERATOR_RELEASE, WATCHED, local_backends

    helm("uninstall", OPERATOR_RELEASE, "-n", OPERATOR_NAMESPACE, "--ignore-not-found", "--wait")
    started = time.monotonic()
    helm("install", OPERATOR_RELEASE, "charts/gameplane-operator", "-n", OPERATOR_NAMESPACE, "--create-namespace",
         "--set-json", f'watchNamespaces=["{WATCHED}"]', *local_backends(images_module), "--wait", "--timeout", "180s")
    yield {"release": OPERATOR_RELEASE, "namespace": OPERATOR_NAMESPACE, "install_seconds": time.monotonic() - started}
    helm("uninstall", OPERATOR_RELEASE, "-n", OPERATOR_NAMESPACE, "--wait", check=False)
    kubectl("delete", "namespace", OPERATOR_NAMESPACE, "--wait=false", check=False)


TEST_CALLERS = ("payments", "backoffice")  # the tests call as them (with keys of their own the platform trusts)


def trust_test_callers(kubectl: Run, ns: str, platform: str) -> None:
    """Before the platform exists: key pairs for the callers the tests stand in for, their private
    keys in the Secret `test-callers` (for the tests and their Jobs), their public keys in the
    ConfigMap <platform>-trusted-keys, which the operator adds to the platform's trusted keys."""
    from gameplane.devtools.identities import Identities

    ids = Identities.generate(TEST_CALLERS)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "test-callers", "namespace": ns},
              "stringData": {f"{n}.pem": k.pem() for n, k in ids.keys.items()}}
    trusted = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": f"{platform}-trusted-keys", "namespace": ns},
               "data": {f"{n}.pem": k.public_pem() for n, k in ids.keys.items()}}
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [secret, trusted]}))


@pytest.fixture(scope="session")
def demo(pod_operator: dict[str, Any], kubectl: Run) -> Iterator[dict[str, Any]]:
    """k8s/samples/minimal.yaml, unchanged, in a namespace enforcing Pod Security "restricted";
    shared by the real-node modules (those that change it put it back)."""
    from realnode import restricted, wait_ready

    ns = "real-casino"
    restricted(kubectl, ns)
    trust_test_callers(kubectl, ns, "demo")
    kubectl("apply", "-n", ns, "-f", str(REPO / "k8s" / "samples" / "minimal.yaml"))
    took = wait_ready(kubectl, ns, "demo", timeout=240)
    print(f"\nreal node: minimal platform Ready {took:.1f}s after kubectl apply", file=sys.stderr)
    yield {"namespace": ns, "name": "demo", "ready_seconds": took}
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
