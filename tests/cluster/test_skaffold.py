"""skaffold.yaml against the real node: every profile renders into objects the API server accepts,
`skaffold run -p ci` builds both images, imports them into the node's containerd and deploys a
platform that goes Ready, and under `skaffold dev -p ci` an edited Python file reaches the running
service by file sync and the service reloads. docs/dev-loop.md describes the loop.

Everything runs in namespaces named skaffold-*; what skaffold deploys is removed at the end. The
measured times are printed (pytest -s shows them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from clusterlib import Run, wait_for

from hack import controlplane as cp_module
from hack import images as images_module
from hack import skaffold as skaffold_module

# Longer than the suite's 600 s: the first test may wait for skaffold's own build (Go, ~8 min cold).
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]
REPO = Path(__file__).resolve().parents[2]

CI_NAMESPACE = "skaffold-ci"  # the ci profile's namespace (skaffold.yaml)
# "dev,no-operator" is what `skaffold dev -p no-operator` applies (auto-activated profiles first).
PROFILES = ("default", "no-operator", "dev", "dev,no-operator", "ci")
SERVICES = ("gateway", "players", "wallet", "games", "sessions", "payments", "bonus", "risk", "affiliates",
            "analytics", "web", "backoffice")  # the minimal sample's
PROBE = """
import sys, urllib.error, urllib.request
try:
    r = urllib.request.urlopen("http://127.0.0.1:8000/skaffold-probe", timeout=3)
    print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
"""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"skaffold tests cannot run in CI: {reason}")
    print(f"\n*** SKAFFOLD TESTS SKIPPED: {reason} ***")
    pytest.skip(f"SKAFFOLD TESTS SKIPPED: {reason}")




@pytest.fixture(scope="module")
def skaffold_env(real_node: Any, tool_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Environment for skaffold on this cluster: what `hack/skaffold.py env` exports, with the
    tier's kubeconfig. Holds a session of hack/images.py's engine for the whole module, so the
    engine skaffold builds with stays up between its runs."""
    # Built last by `make test`'s background build, while the tests before these ran: this waits
    # for it (the build's lock) or builds it (hence the module's long timeout).
    try:
        cp_module.build_one(cp_module.TOOLS["skaffold"])
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        _skip_or_fail(f"skaffold cannot be built here: {exc}")
    daemon = images_module.Daemon()
    env = dict(tool_env)
    bin_dir = skaffold_module.bin_dir()  # skaffold, kubectl, helm and the engine's docker CLI
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}", DOCKER_HOST=daemon.host, DOCKER_BUILDKIT="1", **skaffold_module.SETTINGS,
    )  # fmt: skip
    # A shell that ran `hack/skaffold.py env` must not change what the tests see: the ci profile
    # names its images itself, the render test sets what it needs.
    for name in ("GAMEPLANE_BASE_IMAGE", "GAMEPLANE_POSTGRES_IMAGE", "GAMEPLANE_NATS_IMAGE"):
        env.pop(name, None)
    with daemon.session():
        out = subprocess.run(["python3", "hack/skaffold.py", "prepare"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=900)  # fmt: skip
        assert out.returncode == 0, out.stderr
        yield env


def skaffold(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["skaffold", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"skaffold {' '.join(args)} failed ({out.returncode}):\n{out.stdout[-4000:]}\n"
                             f"{out.stderr[-4000:]}")  # fmt: skip
    return out


def _fresh_namespace(kubectl: Run, name: str) -> None:
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", "--timeout=180s")
    kubectl("create", "namespace", name)


def _drop_namespace(kubectl: Run, name: str) -> None:
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


def _tree_state() -> str:
    """Untracked and ignored files under charts/ (where `helm dep build` would write)."""
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "--", "charts"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


# ---------------------------------------------------------------------------------------------
# render
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_renders_and_the_api_server_accepts_it(
    skaffold_env: dict[str, str], kubectl: Run, crd: None, profile: str
) -> None:
    ns = f"skaffold-render-{profile.replace(',', '-')}"
    _fresh_namespace(kubectl, ns)
    try:
        args = ["render", "--digest-source=tag", "-n", ns] + ([] if profile == "default" else ["-p", profile])
        env = dict(skaffold_env)
        if profile != "ci":  # as `hack/skaffold.py env` sets it; ci names the local base itself
            env["GAMEPLANE_BASE_IMAGE"] = images_module.BASE.alias
        before = _tree_state()
        docs = [d for d in yaml.safe_load_all(skaffold(env, *args).stdout) if d]
        assert _tree_state() == before, "skaffold render wrote into the source tree"
        kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
        deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
        if "no-operator" in profile:
            assert {f"demo-{s}" for s in SERVICES} <= set(deployments), kinds
            assert ("StatefulSet", "demo-postgres") in kinds and ("GamingPlatform", "demo") not in kinds
            pod = deployments["demo-gateway"]["spec"]["template"]["spec"]
            assert pod["containers"][0]["args"] == ["--reload", "/app/src/gameplane", "gateway"]
            # The built tag (64 hex digits) is in the image; the version label is cut to 63.
            image = pod["containers"][0]["image"]
            assert image.startswith("gameplane/gameplane:") and len(image.rsplit(":", 1)[1]) == 64
            # Without GAMEPLANE_POSTGRES_IMAGE/NATS_IMAGE: the chart's own defaults (skaffold.yaml
            # repeats them, since an empty value would blank the image).
            chart = yaml.safe_load((REPO / "charts" / "gameplane" / "values.yaml").read_text())
            rendered = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
                        for d in docs if d["kind"] in ("Deployment", "StatefulSet")}  # fmt: skip
            assert (rendered["demo-postgres"], rendered["demo-nats"]) == (chart["postgres"]["image"],
                                                                          chart["nats"]["image"])  # fmt: skip
        else:
            release = "skaffold-ci" if profile == "ci" else "dev"
            operator = deployments[f"{release}-gameplane-operator"]["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e.get("value") for e in operator["env"]}
            assert ("GamingPlatform", "demo") in kinds
            # Input-digest tags (64 hex digits): "latest" would mean the tagger failed.
            assert operator["image"].startswith("gameplane/operator:")
            assert operator["image"] != images_module.operator_tag()  # the built one, not the chart's
            assert env["GAMEPLANE_OPERATOR_IMAGE_REPOSITORY"] == "gameplane/gameplane"
            assert len(env["GAMEPLANE_OPERATOR_IMAGE_TAG"]) == 64
            assert (env.get("GAMEPLANE_OPERATOR_DEV_RELOAD") == "true") == (profile == "dev")
            # The operator watches exactly the namespace it is deployed to.
            assert f"--namespace={ns}" in operator["args"]
            if profile == "ci":
                # The dev backends hack/images.py builds: the ci profile's tags must follow them.
                local = {t for i in images_module.select(["dev"]) for t in i.tags()}
                assert {env["GAMEPLANE_OPERATOR_POSTGRES_IMAGE"], env["GAMEPLANE_OPERATOR_NATS_IMAGE"]} <= local
            else:  # unset in this environment: the platform gets the chart's public images
                assert "GAMEPLANE_OPERATOR_POSTGRES_IMAGE" not in env and "GAMEPLANE_OPERATOR_NATS_IMAGE" not in env
        manifest = "\n---\n".join(yaml.safe_dump(d) for d in docs)
        out = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=manifest, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.count("(server dry run)") == len(docs)
        if ("GamingPlatform", "demo") in kinds:
            # Negative control: the dry run does validate the custom resource against the CRD.
            bad = manifest.replace("version: 0.1.0", "version: not-a-version")
            assert bad != manifest
            rejected = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=bad, check=False)
            assert rejected.returncode != 0 and "spec.version" in rejected.stderr
    finally:
        _drop_namespace(kubectl, ns)


# ---------------------------------------------------------------------------------------------
# run and dev
# ---------------------------------------------------------------------------------------------
def _platform(kubectl: Run) -> dict[str, Any]:
    return json.loads(kubectl("-n", CI_NAMESPACE, "get", "gamingplatform", "demo", "-o", "json").stdout)


def _ready(platform: dict[str, Any]) -> bool:
    conditions = platform.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _pods(kubectl: Run, selector: str = "") -> list[dict[str, Any]]:
    args = ["-n", CI_NAMESPACE, "get", "pods", "-o", "json"] + (["-l", selector] if selector else [])
    return [p for p in json.loads(kubectl(*args).stdout)["items"] if not p["metadata"].get("deletionTimestamp")]


def _service_pods_run(kubectl: Run, image: str, reload: bool) -> bool:
    """Exactly one Ready pod per service, each running `image` (in reload mode or not)."""
    pods = _pods(kubectl, "app.kubernetes.io/part-of=gameplane,app.kubernetes.io/name in (" + ",".join(SERVICES) + ")")
    by_service = {p["metadata"]["labels"]["app.kubernetes.io/name"]: p for p in pods}
    if len(pods) != len(SERVICES) or set(by_service) != set(SERVICES):
        return False
    for p in pods:
        container = p["spec"]["containers"][0]
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        if container["image"] != image or not ready or ("--reload" in container.get("args", [])) != reload:
            return False
    return True


def _deployed_tags(kubectl: Run) -> tuple[str, str]:
    """(operator image, service image) as the skaffold release deployed them."""
    dep = json.loads(kubectl("-n", CI_NAMESPACE, "get", "deployment", "skaffold-ci-gameplane-operator",
                             "-o", "json").stdout)  # fmt: skip
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    return container["image"], f"{env['GAMEPLANE_OPERATOR_IMAGE_REPOSITORY']}:{env['GAMEPLANE_OPERATOR_IMAGE_TAG']}"


def test_skaffold_run_ci_builds_loads_and_deploys_a_ready_platform(
    skaffold_env: dict[str, str], kubectl: Run, real_node: Any
) -> None:
    kubectl("delete", "namespace", CI_NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=180s")
    start = time.monotonic()
    # The node is new for this session: skaffold's cache would skip the build, and with it the hook
    # that imports the images into the node's containerd. Layers stay cached, so this costs seconds.
    out = skaffold(skaffold_env, "run", "-p", "ci", "--cache-artifacts=false")
    took = time.monotonic() - start
    print(f"\nskaffold run -p ci: {took:.1f}s (build, import into containerd, deploy, platform Ready)")
    log = out.stdout + out.stderr
    assert "gamingplatform.gameplane.io/demo condition met" in log, log[-3000:]
    assert _ready(_platform(kubectl))

    operator_image, service_image = _deployed_tags(kubectl)
    daemon = images_module.Daemon()
    for image in (operator_image, service_image):
        # A skaffold local build: tagged with its own image id, which the engine holds ...
        repo, tag = image.rsplit(":", 1)
        assert repo in ("gameplane/gameplane", "gameplane/operator") and len(tag) == 64, image
        assert daemon.image_id(image) == f"sha256:{tag}"
        # ... and the after-build hook imported into the node (nothing is pulled here).
        ctr = ["ctr", "--address", str(real_node.containerd_socket), "--namespace", "k8s.io"]
        listed = subprocess.run([*ctr, "images", "ls", "-q", f"name==docker.io/{image}"], capture_output=True,
                                text=True, check=True).stdout.split()  # fmt: skip
        assert listed == [f"docker.io/{image}"], listed
    # The stock tag would also run (make cluster loads it): the pods must run skaffold's build.
    assert service_image != images_module.service_tag()
    wait_for("every service pod on skaffold's image", lambda: _service_pods_run(kubectl, service_image, reload=False),
             timeout=120)  # fmt: skip
    operator_pods = _pods(kubectl, "app.kubernetes.io/name=gameplane-operator")
    assert [p["spec"]["containers"][0]["image"] for p in operator_pods] == [operator_image]
    status = _platform(kubectl)["status"]
    assert status["serviceSummary"] == f"{len(SERVICES)}/{len(SERVICES)}"


class _Dev:
    """`skaffold dev` in the background: its output collected, stopped with SIGINT (Ctrl-C)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(["skaffold", "dev", "-p", "ci", "--port-forward=off", "--cache-artifacts=false"],
                                     cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"skaffold dev exited ({self.proc.returncode}):\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from skaffold dev in {timeout}s:\n{self.output()[-4000:]}")
            time.sleep(0.2)

    def stop(self, timeout: float = 120) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._reader.join(10)
        return self.proc.returncode


def _copy_of_the_repository(dest: Path) -> Path:
    """The tracked and untracked-but-not-ignored files (what a clone plus local edits holds)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")  # fmt: skip
    dest.mkdir(parents=True)
    out = subprocess.run(["cp", "--parents", "-a", "-t", str(dest), *[f for f in files if f]], cwd=REPO,
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return dest


def test_skaffold_dev_syncs_an_edit_into_the_running_service_which_reloads(
    skaffold_env: dict[str, str], kubectl: Run, tmp_path: Path
) -> None:
    # From a clean namespace, like `skaffold run` above: this test is about sync and reload, not
    # about an operator upgraded under a running platform (see docs/dev-loop.md, known issues).
    kubectl("delete", "namespace", CI_NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=180s")
    repo = _copy_of_the_repository(tmp_path / "repo")
    source = repo / "services" / "gameplane" / "gateway" / "app.py"
    marker = f"skaffold-{uuid.uuid4().hex[:12]}"
    subprocess.run(["python3", "hack/skaffold.py", "prepare"], cwd=repo, env=skaffold_env, check=True,
                   capture_output=True)  # fmt: skip
    start = time.monotonic()
    dev = _Dev(skaffold_env, repo)
    try:
        dev.wait_for("Watching for changes", timeout=420)
        _, service_image = _deployed_tags(kubectl)
        # Under `skaffold dev` the dev profile turns on reload mode: the operator re-renders the
        # platform, every service rolls to a pod that runs from /app/src.
        try:
            wait_for("every service in reload mode and Ready", lambda: _service_pods_run(kubectl, service_image, True),
                     timeout=240, interval=1)  # fmt: skip
        except AssertionError as exc:  # say which Pod is behind, and why
            state = kubectl("-n", CI_NAMESPACE, "get", "pods", "-o", "custom-columns=NAME:.metadata.name,"
                            "AGE:.metadata.creationTimestamp,IMAGE:.spec.containers[0].image,"
                            "ARGS:.spec.containers[0].args,READY:.status.containerStatuses[0].ready",
                            check=False).stdout + f"\nexpected image {service_image}"
            raise AssertionError(f"{exc}\n{state}\n{dev.output()[-3000:]}") from None
        wait_for("platform Ready", lambda: _ready(_platform(kubectl)), timeout=120)
        print(f"\nskaffold dev -p ci: watching, every service in reload mode and Ready after "
              f"{time.monotonic() - start:.1f}s")  # fmt: skip
        [pod] = _pods(kubectl, "app.kubernetes.io/name=gateway")
        name = pod["metadata"]["name"]

        def exec_(*cmd: str) -> subprocess.CompletedProcess[str]:
            return kubectl("-n", CI_NAMESPACE, "exec", name, "-c", "gateway", "--", *cmd, check=False)

        synced_path = "/app/src/gameplane/gateway/app.py"
        # Negative controls: the running copy has no marker, and the probe route does not exist.
        assert exec_("grep", "-c", marker, synced_path).stdout.strip() == "0"
        assert exec_("python", "-c", PROBE).stdout.strip() == "404"

        text = source.read_text()
        anchor = "    app.state.openapi_cache = cache\n"
        assert text.count(anchor) == 1, "the edit's anchor moved: update this test"
        route = f'    app.add_api_route("/skaffold-probe", lambda: {{"marker": "{marker}"}}, include_in_schema=False)\n'
        edited = time.monotonic()
        source.write_text(text.replace(anchor, anchor + route))

        wait_for("the edit in the pod", lambda: exec_("grep", "-c", marker, synced_path).stdout.strip() == "1",
                 timeout=60, interval=0.3)  # fmt: skip
        synced = time.monotonic() - edited
        answer = wait_for("the reloaded gateway", lambda: (o := exec_("python", "-c", PROBE).stdout).startswith("200")
                          and o, timeout=90, interval=0.5)  # fmt: skip
        reloaded = time.monotonic() - edited
        assert json.loads(answer.split(" ", 1)[1]) == {"marker": marker}
        print(f"edit -> file in the pod {synced:.1f}s, -> new behaviour over HTTP {reloaded:.1f}s")

        logs = kubectl("-n", CI_NAMESPACE, "logs", name, "-c", "gateway").stdout
        assert "(app.py): restarting gateway" in logs
        # Synced, not redeployed: the same pod, its container never restarted, Ready again.
        wait_for("the gateway Ready again", lambda: _service_pods_run(kubectl, service_image, True), timeout=60)
        [after] = _pods(kubectl, "app.kubernetes.io/name=gateway")
        assert after["metadata"]["name"] == name
        assert after["status"]["containerStatuses"][0]["restartCount"] == 0
        assert f"Syncing 1 files for {service_image}" in dev.output()
        assert "Build [gameplane/gameplane] succeeded" not in dev.output().split("Watching for changes", 1)[1]
    finally:
        stopping = time.monotonic()
        code = dev.stop()
        print(f"skaffold dev stopped (exit {code}) and cleaned up in {time.monotonic() - stopping:.1f}s")
    output = dev.output()
    assert "Cleaning up..." in output, output[-3000:]
    assert code == 0, output[-3000:]
    # Its build of this tree shares an id with `make images`' tag; stopping must not take that tag along.
    assert images_module.Daemon().image_id(images_module.service_tag()), "skaffold dev removed the stock image"
    # What it deployed is gone: the release, the platform, and (garbage-collected) its children.
    helm_list = subprocess.run(["helm", "list", "-n", CI_NAMESPACE, "-q"], env=skaffold_env, capture_output=True,
                               text=True, check=True).stdout.split()  # fmt: skip
    assert helm_list == []
    assert kubectl("-n", CI_NAMESPACE, "get", "gamingplatforms", "-o", "name").stdout.strip() == ""
    wait_for("the platform's pods gone", lambda: not _pods(kubectl), timeout=120, interval=1)


@pytest.fixture(scope="module", autouse=True)
def _remove_ci_namespace(kubectl: Run) -> Iterator[None]:
    yield
    # skaffold deletes what it deployed, but not the namespace helm created for it.
    with contextlib.suppress(Exception):
        _drop_namespace(kubectl, CI_NAMESPACE)
