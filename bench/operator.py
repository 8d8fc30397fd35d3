"""Operator benchmark on the local cluster (hack/controlplane.py, hack/node.py).

On kwok's fake nodes (no container runs; what is measured is the operator and the API server),
with the operator as its own process under its ServiceAccount:
  ready_1_s            apply -> Ready for one GamingPlatform
  ready_20_s           apply -> all Ready for 20 GamingPlatforms created at once
  writes_per_platform  API write calls by the operator (audit log) per platform, for the 20
  operator_rss_mb      operator resident memory with the 20 platforms, after BENCH_SECONDS idle
On the real node (containerd, kubelet: real containers and probes), with the operator as a Pod
installed from its chart:
  real_ready_s         kubectl apply of k8s/samples/minimal.yaml -> Ready: PostgreSQL, NATS and
                       every service started and passing /readyz
  real_roll_s          a new image tag for one service (wallet) -> rolled out and Ready again
  real_pods            Pods of the minimal platform

Targets: ready_1 < 15 s, ready_20 < 120 s, RSS < 150 MB (issue 5); real_ready < 60 s (issue 12).
BENCH_SECONDS (default 10) is the idle time before RSS is read; writes during it are reported too.
BENCH_REAL=0 skips the real node (needs root and Debian's containerd: `make host-deps`).
The last line is `RESULT operator ready_1_s=... ready_20_s=... writes_per_platform=...
operator_rss_mb=... real_ready_s=... real_roll_s=... real_pods=...`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # hack.* (the local cluster's tooling)
GROUP, VERSION, PLURAL = "gameplane.io", "v1alpha1", "gamingplatforms"
OPERATOR_USER = "system:serviceaccount:gameplane-system:gameplane-operator"
WRITE_VERBS = {"create", "update", "patch", "delete"}
# kwok's fake nodes are tainted (real workloads belong on a real node): the bench's Pods go there.
KWOK_SCHEDULING = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"}],
}
SPEC = {"version": "0.1.0", "services": [{"name": "wallet", "replicas": 2}], "scheduling": KWOK_SCHEDULING}


def load_controlplane() -> Any:
    from hack import controlplane

    return controlplane


def utcnow() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e6) % 1_000_000:06d}Z"


def operator_writes(audit_log: Path, since: str, until: str = "~") -> int:
    n = 0
    with audit_log.open() as fh:
        for line in fh:
            e = json.loads(line)
            if e["user"]["username"] == OPERATOR_USER and e["verb"] in WRITE_VERBS:
                n += since <= e["requestReceivedTimestamp"] <= until
    return n


def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
    return conds.get("Ready") == "True" and status.get("observedGeneration") == obj["metadata"]["generation"]


def create_and_wait(custom: Any, core: Any, names: list[tuple[str, str]], timeout: float = 600) -> float:
    for ns, _ in {(ns, None) for ns, _ in names}:
        core.create_namespace({"metadata": {"name": ns}})
    started = time.monotonic()
    for ns, name in names:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GamingPlatform", "metadata": {"name": name}, "spec": SPEC}
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
    pending = set(names)
    while pending and time.monotonic() - started < timeout:
        for ns, name in list(pending):
            if is_ready(custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)):
                pending.discard((ns, name))
        time.sleep(0.2)
    if pending:
        raise TimeoutError(f"not Ready after {timeout}s: {sorted(pending)}")
    return time.monotonic() - started


def real_node_phase(cp: Any, custom: Any, core: Any) -> dict[str, float]:
    """The minimal sample on the real node, the operator a Pod: apply -> Ready, then one roll."""
    from hack import cluster

    images, node_mod, cpm = cluster.images, cluster.node_mod, cluster.cp
    daemon = images.Daemon()
    with daemon.session():
        tags = [t for b in images.build(daemon) for t in b.tags]
        hotfix = images.BY_KEY["service"].tag.rsplit(":", 1)[0] + ":0.1.0-bench"
        daemon.docker("tag", images.BY_KEY["service"].tag, hotfix)
    node = node_mod.Node(plane_state=cp.state)
    try:
        node.start(images=[*tags, hotfix])
        helm = [str(cpm.tool("helm")), "--kubeconfig", str(cp.kubeconfig)]
        subprocess.run([*helm, "install", "gp-bench", str(REPO / "charts" / "gameplane-operator"), "-n",
                        "gameplane-bench", "--create-namespace", "--set-json", 'watchNamespaces=["real-bench"]',
                        "--set", f"platformDefaults.postgresImage={images.BY_KEY['dev-postgres'].tag}",
                        "--set", f"platformDefaults.natsImage={images.BY_KEY['dev-nats'].tag}",
                        "--wait", "--timeout", "180s"], check=True, capture_output=True)  # fmt: skip
        ns = "real-bench"
        core.create_namespace({"metadata": {"name": ns}})
        started = time.monotonic()
        cp.kubectl("apply", "-n", ns, "-f", str(REPO / "k8s" / "samples" / "minimal.yaml"))
        wait_ready(custom, ns, "demo", 300)
        ready = time.monotonic() - started
        pods = core.list_namespaced_pod(ns).items
        print(f"real node: minimal platform Ready in {ready:.1f}s ({len(pods)} Pods)", flush=True)
        started = time.monotonic()
        patched = custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "demo", {"spec": {
            "services": [{"name": "wallet", "image": {"tag": hotfix.rsplit(":", 1)[1]}}]}})
        wait_ready(custom, ns, "demo", 300, generation=patched["metadata"]["generation"], rolled=(core, hotfix))
        roll = time.monotonic() - started
        print(f"real node: wallet rolled to a new image and Ready in {roll:.1f}s", flush=True)
        return {"real_ready_s": ready, "real_roll_s": roll, "real_pods": float(len(pods))}
    finally:
        cp.stop(only=cluster.CONTROLLERS)
        left = node.stop()
        if left:
            print(f"the node left this on the host: {left}", flush=True)


def wait_ready(custom: Any, ns: str, name: str, timeout: float, generation: int | None = None,
               rolled: tuple[Any, str] | None = None) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        done = is_ready(obj) and (generation is None or obj["metadata"]["generation"] == generation)
        if done and rolled is not None:
            core, image = rolled
            wallet = core.list_namespaced_pod(ns, label_selector="app.kubernetes.io/component=wallet").items
            done = bool(wallet) and all(p.spec.containers[0].image == image and p.metadata.deletion_timestamp is None
                                        for p in wallet)  # fmt: skip
        if done:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{ns}/{name} not Ready after {timeout}s")


def main() -> None:
    idle = float(os.environ.get("BENCH_SECONDS", "10"))
    cpm = load_controlplane()
    state = Path(tempfile.mkdtemp(prefix="gameplane-bench-"))
    cp = cpm.ControlPlane(state=state)
    operator: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.monotonic()
        cp.start()
        print(f"control plane up in {time.monotonic() - t0:.1f}s", flush=True)
        cp.kubectl("apply", "--server-side", "-f", str(REPO / "k8s" / "crds"))
        cp.kubectl("wait", "--for=condition=Established", "crd/gamingplatforms.gameplane.io")
        env = dict(os.environ)
        env.update(
            KUBECONFIG=str(cpm.operator_identity(cp)),
            GAMEPLANE_OPERATOR_HELM=str(cpm.tool("helm")),
            GAMEPLANE_OPERATOR_LOG_LEVEL="WARNING",
        )
        health = cpm.free_port()
        operator = subprocess.Popen(
            [sys.executable, "-m", "gameplane_operator", "--health-port", str(health), "--metrics-port", "0",
             "--bind", "127.0.0.1"],
            env=env, stdout=(state / "operator.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or operator.poll() is not None:
                    raise RuntimeError((state / "operator.log").read_text()[-3000:]) from None
                time.sleep(0.2)

        cfg = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=cfg)
        api = kubernetes.client.ApiClient(cfg)
        custom, core = kubernetes.client.CustomObjectsApi(api), kubernetes.client.CoreV1Api(api)

        ready_1 = create_and_wait(custom, core, [("bench-one", "solo")])
        print(f"1 platform Ready in {ready_1:.1f}s", flush=True)

        since = utcnow()
        many = [(f"bench-{i:02d}", f"p{i:02d}") for i in range(20)]
        ready_20 = create_and_wait(custom, core, many)
        print(f"20 platforms Ready in {ready_20:.1f}s", flush=True)
        time.sleep(3)  # the last Pods' readiness reaching status
        writes = operator_writes(cp.audit_log, since)
        idle_since = utcnow()
        time.sleep(idle)
        idle_writes = operator_writes(cp.audit_log, idle_since)
        rss = psutil.Process(operator.pid).memory_info().rss / 2**20
        print(f"operator writes: {writes} for 20 platforms; {idle_writes} during {idle:.0f}s idle", flush=True)
        # The in-process operator watches every namespace: it stops before the operator Pod starts.
        operator.send_signal(signal.SIGTERM)
        operator.wait(30)
        real = {"real_ready_s": float("nan"), "real_roll_s": float("nan"), "real_pods": float("nan")}
        if os.environ.get("BENCH_REAL", "1") != "0":
            real = real_node_phase(cp, custom, core)
        api.close()
        print(
            f"RESULT operator ready_1_s={ready_1:.1f} ready_20_s={ready_20:.1f} "
            f"writes_per_platform={writes / 20:.1f} operator_rss_mb={rss:.0f} "
            f"real_ready_s={real['real_ready_s']:.1f} real_roll_s={real['real_roll_s']:.1f} "
            f"real_pods={real['real_pods']:.0f}"
        )
    finally:
        if operator and operator.poll() is None:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(20)
            except subprocess.TimeoutExpired:
                operator.kill()
        cp.stop()
    shutil.rmtree(state, ignore_errors=True)  # only reached on success: failures keep their logs


if __name__ == "__main__":
    main()
