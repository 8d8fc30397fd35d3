"""The PSP simulator as an outside party: webhooks retried with backoff until acknowledged, kept
for a receiver that is down, duplicated and reordered as its seed says; the hosted page's refusals;
no start without keys."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from psplib import Receiver, Sim, complete_page, eventually, eventually_async, running_psp

from gameplane.devtools.inprocess import served
from gameplane.payments.adapters.base import PaymentRequest, PayoutRequest, build
from gameplane.simulators.psp.app import build_app
from gameplane.simulators.psp.settings import PspSettings


def request(amount: int = 1000) -> PaymentRequest:
    return PaymentRequest(reference=str(uuid.uuid4()), player_id=str(uuid.uuid4()), amount=amount, currency="EUR",
                          return_url="https://casino.example/back", expires_at=datetime.now(UTC) + timedelta(hours=1))


async def pay(sim: Sim, dialect: str = "simpsp", amount: int = 1000, card: str = "4242424242424242") -> str:
    adapter = build(dialect, sim.connection(dialect))
    try:
        session = await adapter.create_payment(request(amount))
        async with httpx.AsyncClient(timeout=10) as browser:
            assert (await complete_page(browser, session.redirect_url, card_number=card)).status_code == 303
        return session.psp_reference
    finally:
        await adapter.aclose()


async def control(sim: Sim, method: str, path: str, **kwargs: Any) -> Any:
    async with sim.control() as http:
        resp = await http.request(method, path, **kwargs)
    assert resp.is_success, resp.text
    return resp.json()


async def test_a_webhook_is_retried_with_backoff_until_the_receiver_acknowledges_it() -> None:
    receiver = Receiver(fail_next={"simpsp": 3})
    async with running_psp(receiver) as sim:
        ref = await pay(sim)
        await eventually(lambda: receiver.acked("simpsp"), what="an acknowledged delivery")
        log = (await control(sim, "GET", "/control/deliveries"))["attempts"]
    tries = [d for d in receiver.deliveries if ref.encode() in d.body]
    assert [d.status for d in tries] == [503, 503, 503, 200]
    assert len({d.body for d in tries}) == 1  # the same event each time...
    adapter = build("simpsp", sim.connection("simpsp"))
    for d in tries:  # ...each attempt signed so that it verifies
        adapter.verify_webhook(d.headers, d.body, datetime.now(UTC))
    # Backoff doubles from GP_PSP_RETRY_INITIAL_SECONDS (0.05 here) up to the cap (0.5).
    assert [(a["attempt"], a["status"], a["retry_in"]) for a in log] == [(1, 503, 0.05), (2, 503, 0.1), (3, 503, 0.2),
                                                                        (4, 200, None)]
    await adapter.aclose()


async def test_webhooks_wait_for_a_receiver_that_is_down_and_arrive_when_it_is_back() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = sock.getsockname()[1]
    urls = {d: f"http://127.0.0.1:{port}/webhooks/payments/{d}" for d in ("simpsp", "cardgw")}
    async with running_psp(webhook_urls=urls) as sim:
        ref = await pay(sim, "cardgw")

        async def refused_thrice() -> bool:
            log = (await control(sim, "GET", "/control/deliveries"))["attempts"]
            return sum(1 for a in log if a["error"] and "Connect" in a["error"]) >= 3

        await eventually_async(refused_thrice, what="three refused connections")
        receiver = Receiver()
        sock.listen(128)
        async with served(receiver.app(), sock):  # type: ignore[arg-type]
            await eventually(lambda: receiver.acked("cardgw"), what="the delivery after the receiver came back")
        assert [ref.encode() in d.body for d in receiver.deliveries] == [True]
        assert (await control(sim, "GET", "/control/deliveries"))["pending"] == 0
    sock.close()


async def delivery_pattern(seed: int | None, duplicate: float, reorder: float, n: int = 24) -> tuple[list[int], int]:
    """Pay n sessions while delivery is paused, release them; the arrival order as creation indices."""
    receiver = Receiver()
    async with running_psp(receiver, seed=seed, duplicate_ratio=duplicate, reorder_ratio=reorder, max_copies=3,
                           reorder_delay_seconds=0.2, delivery_concurrency=1) as sim:
        await control(sim, "PATCH", "/control/delivery", json={"paused": True})
        refs = [await pay(sim) for _ in range(n)]
        await control(sim, "PATCH", "/control/delivery", json={"paused": False})

        async def drained() -> bool:
            return (await control(sim, "GET", "/control/deliveries"))["pending"] == 0

        await eventually_async(drained, what="every webhook delivered")
    index = {ref.encode(): i for i, ref in enumerate(refs)}
    arrivals = [next(i for r, i in index.items() if r in d.body) for d in receiver.acked("simpsp")]
    return arrivals, n


async def test_without_duplicates_or_reordering_each_webhook_arrives_once_in_order() -> None:
    arrivals, n = await delivery_pattern(seed=7, duplicate=0.0, reorder=0.0)
    assert arrivals == list(range(n))


async def test_the_seed_decides_which_webhooks_come_twice_and_some_come_out_of_order() -> None:
    arrivals, n = await delivery_pattern(seed=7, duplicate=0.3, reorder=0.3)
    counts = [arrivals.count(i) for i in range(n)]
    assert set(counts) <= {1, 2, 3} and min(counts) == 1  # every one at least once, at most max_copies
    assert max(counts) >= 2, "no duplicate at all"
    first_seen = list(dict.fromkeys(arrivals))
    assert first_seen != sorted(first_seen), "nothing overtaken"
    again, _ = await delivery_pattern(seed=7, duplicate=0.3, reorder=0.3)
    assert [again.count(i) for i in range(n)] == counts  # same seed, same duplicates


async def test_a_payout_is_paid_by_itself_after_the_configured_delay() -> None:
    receiver = Receiver()
    async with running_psp(receiver, payout_delay_seconds=0.1) as sim:
        await pay(sim, "simpsp")
        deposit = build("simpsp", sim.connection("simpsp"))
        event = deposit.parse_webhook((await eventually(lambda: receiver.acked("simpsp"))) [0].body)
        assert event.method is not None
        accepted = await deposit.create_payout(PayoutRequest(reference="po-1", player_id="p", amount=300,
                                                             currency="EUR", method=event.method))

        def paid() -> bool:
            return any(deposit.parse_webhook(d.body).kind == "payout.paid" and
                       deposit.parse_webhook(d.body).psp_reference == accepted.psp_reference
                       for d in receiver.acked("simpsp"))

        await eventually(paid, what="payout.paid")
        await deposit.aclose()


async def test_the_hosted_page_refuses_an_invalid_card_and_a_second_payment() -> None:
    async with running_psp() as sim:
        adapter = build("simpsp", sim.connection("simpsp"))
        session = await adapter.create_payment(request())
        async with httpx.AsyncClient(timeout=10) as browser:
            bad = await complete_page(browser, session.redirect_url, card_number="4242424242424241")  # Luhn fails
            assert bad.status_code == 422 and "not valid" in bad.text
            assert (await browser.get(session.redirect_url)).status_code == 200  # still open
            assert (await complete_page(browser, session.redirect_url, card_number="4242424242424242")).status_code \
                == 303
            again = await browser.post(session.redirect_url, data={"action": "pay", "card_number": "4242424242424242"})
            assert again.status_code == 409
            assert (await browser.get(f"{sim.url}/pay/ses_unknown")).status_code == 404
        await adapter.aclose()


async def test_the_control_api_needs_an_api_key() -> None:
    async with running_psp() as sim, httpx.AsyncClient(base_url=sim.url) as anon:
        assert (await anon.get("/control/deliveries")).status_code == 401
        wrong = await anon.get("/control/deliveries", headers={"Authorization": "Bearer nope-nope-nope"})
        assert wrong.status_code == 401
        assert (await control(sim, "GET", "/control/deliveries"))["pending"] == 0


def test_the_simulator_does_not_start_without_keys_and_reads_mounted_ones(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no default"):
        build_app(PspSettings(secrets_dir=tmp_path))
    half = PspSettings(secrets_dir=tmp_path, simpsp_secret="s" * 32)
    assert half.enabled() == ()  # a secret without an API key runs nothing
    (tmp_path / "cardgw").mkdir()
    (tmp_path / "cardgw" / "secret").write_text("c" * 32 + "\n")
    (tmp_path / "cardgw" / "api_key").write_text("cardgw-key-123\n")
    mounted = PspSettings(secrets_dir=tmp_path)
    assert mounted.enabled() == ("cardgw",)
    assert mounted.secret("cardgw") == "c" * 32 and mounted.api_key("cardgw") == "cardgw-key-123"
    build_app(mounted)  # starts with the mounted keys


def test_webhooks_go_to_the_platform_by_default() -> None:
    s = PspSettings(simpsp_secret="s" * 32, simpsp_api_key="k" * 8,
                    endpoints={"gateway": "http://gw:8000/", "payments": "http://pay:8005"})
    assert s.webhook_url("simpsp") == "http://gw:8000/webhooks/payments/simpsp"
    assert PspSettings(endpoints={"payments": "http://pay:8005"}).webhook_url("cardgw") == \
        "http://pay:8005/webhooks/payments/cardgw"
    assert PspSettings().webhook_url("cardgw") is None


async def test_the_simulator_runs_as_its_own_process_from_its_environment(tmp_path: Path) -> None:
    import asyncio
    import os
    import sys

    from gameplane.devtools.inprocess import listener

    sock = listener()
    port = sock.getsockname()[1]
    sock.close()
    base = {k: v for k, v in os.environ.items() if not k.startswith("GP_PSP_")}
    refused = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameplane.simulators.psp", env={**base, "GP_PSP_SECRETS_DIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(refused.communicate(), 60)
    assert refused.returncode != 0 and b"no default" in err
    env = {**base, "GP_PSP_PORT": str(port), "GP_PSP_SIMPSP_SECRET": "s" * 40, "GP_PSP_SIMPSP_API_KEY": "simpsp-key-1",
           "GP_PSP_PUBLIC_URL": "https://pay.example", "GP_PSP_SECRETS_DIR": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gameplane.simulators.psp", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually_async(ready, timeout=60, what="the simulator process to be ready")
            made = await http.post("/simpsp/sessions", headers={"X-Psp-Api-Key": "simpsp-key-1"}, json={
                "reference": "r-1", "player_id": "p", "amount_minor": 100, "currency": "EUR",
                "return_url": "https://casino.example"})
            assert made.status_code == 201 and made.json()["hosted_url"].startswith("https://pay.example/pay/ses_")
            cardgw = await http.post("/cardgw/v1/payment_intents", headers={"Authorization": "Bearer x" * 3})
            assert cardgw.status_code == 404  # a dialect without keys does not run
    finally:
        proc.terminate()
        await proc.wait()


async def test_cardgw_takes_json_as_well_as_forms_and_answers_errors_as_error_objects() -> None:
    async with running_psp() as sim:
        key = sim.keys["cardgw"]["api_key"]
        async with httpx.AsyncClient(base_url=f"{sim.url}/cardgw", timeout=10,
                                     headers={"Authorization": f"Bearer {key}"}) as http:
            body = {"amount": 1999, "currency": "gbp", "return_url": "https://casino.example/back",
                    "metadata": {"reference": "json-1", "player_id": "p-1"}}
            made = await http.post("/v1/payment_intents", json=body)
            assert made.status_code == 200, made.text
            intent = made.json()
            assert (intent["object"], intent["amount"], intent["currency"], intent["status"]) == \
                ("payment_intent", 1999, "gbp", "requires_payment_method")
            assert intent["next_action"]["redirect_to_url"]["url"] == f"{sim.url}/pay/{intent['id']}"
            assert (await http.get(f"/v1/payment_intents/{intent['id']}")).json()["id"] == intent["id"]
            missing = await http.post("/v1/payment_intents", data={"currency": "eur"})
            assert missing.status_code == 400
            assert missing.json()["error"]["type"] == "invalid_request_error"
            assert missing.json()["error"]["code"] == "parameter_missing"
            odd = await http.post("/v1/payment_intents", json={**body, "currency": "xxx"})
            assert odd.status_code == 400 and odd.json()["error"]["code"] == "currency_invalid"
            other_key = await http.post("/v1/payment_intents", json=body,
                                        headers={"Authorization": f"Bearer {sim.keys['simpsp']['api_key']}"})
            assert other_key.status_code == 401 and other_key.json()["error"]["type"] == "authentication_error"
        async with httpx.AsyncClient(base_url=f"{sim.url}/simpsp", timeout=10,
                                     headers={"X-Psp-Api-Key": sim.keys["simpsp"]["api_key"]}) as http:
            bad = await http.post("/sessions", json={"reference": "r", "player_id": "p", "amount_minor": 5,
                                                     "currency": "XXX", "return_url": "https://x"})
            assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
            assert bad.json()["type"].endswith("/invalid-currency")
            report = await http.get("/reports/settlement", params={"date": "yesterday"})
            assert report.status_code == 422


async def test_a_late_success_is_only_for_a_session_that_did_not_pay() -> None:
    async with running_psp() as sim:
        paid = await pay(sim)
        async with sim.control() as http:
            again = await http.post(f"/control/payments/{paid}/late-success", json={})
            assert again.status_code == 409  # paid once: no second settlement of the same money
            assert (await http.post(f"/control/payments/{paid}/expire")).status_code == 409
        rows = [r for r in (await control(sim, "GET", "/control/events")) if r["psp_reference"] == paid]
        assert [r["kind"] for r in rows] == ["payment.succeeded"]
