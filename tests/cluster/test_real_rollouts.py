"""Changes to a running platform on the real node: a new image for one service rolls only that
service; a gateway roll under steady traffic loses no request; the wallet killed under load is
replaced while clients retry their idempotency keys, and the ledger reconciles; CPU load makes
the HPA add replicas through metrics-server.

The test process reaches Services by their ClusterIP (kube-proxy's rules serve the node itself)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from clusterlib import Run, wait_for
from realnode import container_pid, get_json, pod_ready, pods, secret_value, service_url, wait_ready

from gameplane.contracts import wallet as wallet_api
from gameplane.kit.auth import issue_service_token
from gameplane.kit.keys import SigningKey

pytestmark = pytest.mark.cluster
HOTFIX = "0.1.0-hotfix"


@pytest.fixture(scope="module")
def hotfix_image(real_node: Any) -> str:
    """The service image under a second tag, in the node's containerd: what a CI pipeline would push."""
    from hack import images as images_module

    source = images_module.BY_KEY["service"].tag
    target = f"{source.rsplit(':', 1)[0]}:{HOTFIX}"
    daemon = images_module.Daemon()
    with daemon.session():
        daemon.docker("tag", source, target)
        images_module.load_into_containerd(str(real_node.containerd_socket), [target], daemon=daemon)
    return target


def _services_patch(kubectl: Run, ns: str, name: str, services: list[dict[str, Any]] | None) -> int:
    kubectl("patch", "gamingplatform", name, "-n", ns, "--type=merge",
            "-p", json.dumps({"spec": {"services": services}}))  # fmt: skip
    return int(get_json(kubectl, "gamingplatform", name, "-n", ns)["metadata"]["generation"])


def _deployments(kubectl: Run, ns: str) -> dict[str, dict[str, Any]]:
    items = get_json(kubectl, "deployments", "-n", ns)["items"]
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in items}


def _rolled_out(kubectl: Run, ns: str, component: str, image: str) -> bool:
    d = _deployments(kubectl, ns)[component]
    st = d["status"]
    running = [p for p in pods(kubectl, ns, f"app.kubernetes.io/component={component}")]
    return (st.get("observedGeneration") == d["metadata"]["generation"]
            and st.get("updatedReplicas") == st.get("replicas") == st.get("readyReplicas")
            and all(p["spec"]["containers"][0]["image"] == image for p in running))  # fmt: skip


@contextlib.contextmanager
def steady_traffic(url: str, rate: float = 40.0) -> Iterator[Counter[str]]:
    """GETs at `rate`/s, each on a new connection (a reused one would hide a refused connect), from
    a thread; yields the outcome counts (status codes, or exception names)."""
    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            next_at = time.monotonic()
            while not stop.is_set():
                try:
                    outcomes[str(client.get(url).status_code)] += 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1
                next_at += 1 / rate
                time.sleep(max(0.0, next_at - time.monotonic()))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield outcomes
    finally:
        stop.set()
        thread.join(timeout=30)


def test_a_new_image_for_one_service_rolls_only_that_service(demo: dict[str, Any], kubectl: Run,
                                                            hotfix_image: str) -> None:  # fmt: skip
    ns, name = demo["namespace"], demo["name"]
    before = _deployments(kubectl, ns)
    pods_before = {p["metadata"]["uid"]: p["metadata"]["labels"]["app.kubernetes.io/component"]
                   for p in pods(kubectl, ns)}
    generation = _services_patch(kubectl, ns, name, [{"name": "wallet", "image": {"tag": HOTFIX}}])
    try:
        wait_ready(kubectl, ns, name, timeout=180, generation=generation)
        wait_for("the wallet on the new image", lambda: _rolled_out(kubectl, ns, "wallet", hotfix_image), 120)
        after = _deployments(kubectl, ns)
        assert after["wallet"]["metadata"]["generation"] == before["wallet"]["metadata"]["generation"] + 1
        unchanged = {c: d["metadata"]["generation"] for c, d in after.items() if c != "wallet"}
        assert unchanged == {c: d["metadata"]["generation"] for c, d in before.items() if c != "wallet"}
        now = {p["metadata"]["uid"] for p in pods(kubectl, ns)}
        replaced = {component for uid, component in pods_before.items() if uid not in now}
        assert replaced == {"wallet"}, replaced  # every other Pod, PostgreSQL and NATS included, kept running
    finally:
        wait_ready(kubectl, ns, name, timeout=180, generation=_services_patch(kubectl, ns, name, None))


def test_a_gateway_roll_under_steady_traffic_loses_no_request(demo: dict[str, Any], kubectl: Run,
                                                             hotfix_image: str) -> None:  # fmt: skip
    ns, name = demo["namespace"], demo["name"]
    url = service_url(kubectl, ns, f"{name}-gateway") + "/v1/games"
    with steady_traffic(url) as outcomes:
        time.sleep(3)
        warm = sum(outcomes.values())
        generation = _services_patch(kubectl, ns, name, [{"name": "gateway", "image": {"tag": HOTFIX}}])
        try:
            wait_for("the gateway on the new image",
                     lambda: _rolled_out(kubectl, ns, "gateway", hotfix_image), timeout=180)  # fmt: skip
            wait_ready(kubectl, ns, name, timeout=120, generation=generation)
            time.sleep(8)  # the old Pod's preStop sleep and shutdown happen after the rollout reports done
        finally:
            rolled = dict(outcomes)
    wait_ready(kubectl, ns, name, timeout=180, generation=_services_patch(kubectl, ns, name, None))
    total = sum(rolled.values())
    print(f"\ngateway roll under {total} requests: {rolled}")
    assert warm > 50 and total > warm + 200, rolled  # traffic really flowed before and during the roll
    assert rolled == {"200": total}, rolled


def _wallet_pod(kubectl: Run, ns: str) -> dict[str, Any]:
    live = [p for p in pods(kubectl, ns, "app.kubernetes.io/component=wallet") if pod_ready(p)]
    assert len(live) == 1, [p["metadata"]["name"] for p in live]
    return live[0]


def test_the_wallet_killed_under_load_loses_and_doubles_nothing(demo: dict[str, Any], kubectl: Run,
                                                                real_node: Any) -> None:  # fmt: skip
    ns, name = demo["namespace"], demo["name"]
    wallet = service_url(kubectl, ns, f"{name}-wallet")
    # games' own key (its identity Secret) for bets and wins; the test callers' for deposits and audits
    games = SigningKey.from_pem(secret_value(kubectl, ns, f"{name}-games-identity", "key.pem"))
    payments = SigningKey.from_pem(secret_value(kubectl, ns, "test-callers", "payments.pem"))
    backoffice_key = SigningKey.from_pem(secret_value(kubectl, ns, "test-callers", "backoffice.pem"))
    victim = _wallet_pod(kubectl, ns)
    players = [uuid.uuid4() for _ in range(12)]
    deposit, stake = 100_000, 100
    settled: dict[str, dict[str, Any]] = {}  # idempotency key -> (player, kind, amount)
    retries: Counter[str] = Counter()

    async def call(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One money movement, retried with its key until the wallet answers (bounded)."""
        deadline = time.monotonic() + 120
        while True:
            signer, caller = (payments, "payments") if path == wallet_api.PATH_DEPOSITS else (games, "games")
            headers = {"authorization": "Bearer " + issue_service_token(signer, caller, "wallet")}
            try:
                r = await client.post(wallet + path, json=body, headers=headers)
                if r.status_code < 500:
                    assert r.status_code in (200, 201), (path, r.status_code, r.text, dict(r.headers), str(r.url))
                    return r.json()  # type: ignore[no-any-return]
                retries[f"http {r.status_code}"] += 1
            except httpx.HTTPError as exc:
                retries[type(exc).__name__] += 1
            assert time.monotonic() < deadline, f"{path} {body['idempotency_key']} never succeeded: {retries}"
            await asyncio.sleep(0.2)

    async def player_loop(client: httpx.AsyncClient, player: uuid.UUID, stop: asyncio.Event) -> None:
        while not stop.is_set():
            rnd = uuid.uuid4().hex
            for kind, path, body in (
                ("bet", wallet_api.PATH_BETS, {"amount": stake, "round_id": rnd, "game_id": "fruit-fives",
                                               "provider": "rgs"}),
                ("win", wallet_api.PATH_WINS, {"amount": stake * 2 if rnd[0] in "01234" else 0, "round_id": rnd,
                                               "game_id": "fruit-fives", "provider": "rgs", "close_round": True}),
            ):  # fmt: skip
                key = f"kill-test:{kind}:{rnd}"
                body |= {"idempotency_key": key, "player_id": str(player), "currency": "EUR"}
                await call(client, path, body)
                settled[key] = {"player": player, "kind": kind, "amount": body["amount"], "path": path, "body": body}

    def crash() -> None:
        """Not a shutdown: SIGKILL the wallet's process mid-request, and the Pod object goes too."""
        os.kill(container_pid(real_node, victim["status"]["containerStatuses"][0]["containerID"]), signal.SIGKILL)
        kubectl("delete", "pod", victim["metadata"]["name"], "-n", ns, "--grace-period=0", "--force")

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            for p in players:
                await call(client, wallet_api.PATH_DEPOSITS, {"idempotency_key": f"kill-test:dep:{p}",
                                                              "player_id": str(p), "currency": "EUR",
                                                              "amount": deposit, "psp": "test"})  # fmt: skip
            stop = asyncio.Event()
            loops = [asyncio.create_task(player_loop(client, p, stop)) for p in players]
            await asyncio.sleep(4)
            before_kill = len(settled)
            await asyncio.to_thread(crash)
            await asyncio.to_thread(wait_for, "a replacement wallet Pod", lambda: _wallet_pod(kubectl, ns), 120)
            await asyncio.sleep(4)
            stop.set()
            await asyncio.gather(*loops)
            assert len(settled) > before_kill + 20, "no load after the replacement"
            # Every key again: an idempotent replay answers, and moves nothing a second time.
            for entry in list(settled.values())[::7]:
                await call(client, entry["path"], entry["body"])

    asyncio.run(scenario())
    replacement = _wallet_pod(kubectl, ns)
    assert replacement["metadata"]["uid"] != victim["metadata"]["uid"]
    assert sum(retries.values()) > 0, "the kill never hit a request: the test proved nothing"
    token = "Bearer " + issue_service_token(games, "games", "wallet")
    with httpx.Client(base_url=wallet, timeout=30, headers={"authorization": token}) as client:
        for p in players:
            mine = [e for e in settled.values() if e["player"] == p]
            expected = deposit - sum(e["amount"] for e in mine if e["kind"] == "bet") + sum(
                e["amount"] for e in mine if e["kind"] == "win")
            bal = client.get(wallet_api.PATH_BALANCE.format(player_id=p, currency="EUR")).json()
            assert bal["cash"] + bal["bonus"] == expected, (p, bal, expected)
        backoffice = "Bearer " + issue_service_token(backoffice_key, "backoffice", "wallet")
        report = client.get("/internal/wallet/reconciliation", headers={"authorization": backoffice}).json()
    assert report["ok"], report["breaches"]
    print(f"\nwallet killed under load: {len(settled)} keyed operations settled, client retries {dict(retries)}")


def test_cpu_load_makes_the_autoscaler_add_gateway_replicas(demo: dict[str, Any], kubectl: Run) -> None:
    ns, name = demo["namespace"], demo["name"]
    auto = {"enabled": True, "minReplicas": 1, "maxReplicas": 3, "cpuTargetPercent": 50}
    generation = _services_patch(kubectl, ns, name, [{"name": "gateway", "autoscaling": auto}])
    try:
        wait_ready(kubectl, ns, name, timeout=180, generation=generation)
        hpa_name = f"{name}-gateway"

        def measured() -> dict[str, Any] | None:
            hpa = get_json(kubectl, "hpa", hpa_name, "-n", ns)
            metrics = hpa["status"].get("currentMetrics") or []
            return hpa if any(m.get("resource", {}).get("current", {}).get("averageUtilization") is not None
                              for m in metrics) else None  # fmt: skip

        wait_for("the HPA to read CPU from metrics-server", measured, timeout=120, interval=2)
        url = service_url(kubectl, ns, f"{name}-gateway") + "/v1/games"
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    with contextlib.suppress(httpx.HTTPError):
                        client.get(url)

        workers = [threading.Thread(target=hammer, daemon=True) for _ in range(6)]
        started = time.monotonic()
        for w in workers:
            w.start()
        try:
            def scaled() -> dict[str, Any] | None:
                hpa = get_json(kubectl, "hpa", hpa_name, "-n", ns)
                return hpa if hpa["status"].get("desiredReplicas", 1) > 1 else None

            hpa = wait_for("the HPA to want more than one gateway", scaled, timeout=180, interval=2)
            took = time.monotonic() - started
            wait_for("a second gateway replica", lambda: _deployments(kubectl, ns)["gateway"]["status"].get(
                "readyReplicas", 0) >= 2, timeout=120, interval=2)  # fmt: skip
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=15)
        cpu = next(m["resource"]["current"]["averageUtilization"] for m in hpa["status"]["currentMetrics"])
        print(f"\nHPA: {hpa['status']['desiredReplicas']} gateway replicas wanted {took:.0f}s into the load "
              f"(CPU {cpu}% of request, target 50%)")
        assert cpu > 50
        gp = get_json(kubectl, "gamingplatform", name, "-n", ns)
        row = next(r for r in gp["status"]["services"] if r["name"] == "gateway")
        assert row["autoscaler"]["desiredReplicas"] >= 2  # the platform's status shows the autoscaler too
    finally:
        wait_ready(kubectl, ns, name, timeout=240, generation=_services_patch(kubectl, ns, name, None))
