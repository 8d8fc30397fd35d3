"""Through the real gateway (both served by uvicorn on loopback ports): a click on a tracking link
and the affiliate API need no player token, the click is redirected with its click id and dated
by the client's address the gateway vouches for; other affiliates paths still need a player."""

from __future__ import annotations

from typing import Any

import httpx

from gameplane.affiliates.app import build_app
from gameplane.affiliates.settings import AffiliatesSettings
from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.testing import as_staff
from gameplane.gateway.app import build_app as build_gateway
from gameplane.gateway.settings import GatewaySettings

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/121.0"


async def test_clicks_and_the_affiliate_api_cross_the_gateway_without_a_player_token(service_settings: Any) -> None:
    app = build_app(service_settings(AffiliatesSettings))
    sock = listener()
    async with served(app, sock) as aff_url, httpx.AsyncClient(base_url=aff_url) as direct:
        created = await direct.post("/internal/affiliates/affiliates", headers=as_staff(app, "finance"),
                                    json={"name": "through", "deal": {"currency": "EUR"}})
        assert created.status_code == 201, created.text
        a = created.json()
        link = await direct.post(f"/internal/affiliates/affiliates/{a['affiliate_id']}/links",
                                 headers=as_staff(app, "finance"),
                                 json={"landing_url": "https://casino.example/", "code": "through-gw"})
        assert link.status_code == 201, link.text
        gateway = build_gateway(GatewaySettings(endpoints={"affiliates": aff_url}, log_json=False,
                                                rate_limit_ip_rate=0, rate_limit_player_rate=0))
        async with served(gateway, listener()) as gw_url, httpx.AsyncClient(base_url=gw_url) as gw:
            r = await gw.get("/v1/affiliates/track/through-gw", params={"sub1": "x"},
                             headers={"User-Agent": BROWSER})
            assert r.status_code == 302, r.text
            assert httpx.URL(r.headers["location"]).params["click_id"]
            again = await gw.get("/v1/affiliates/track/through-gw", headers={"User-Agent": BROWSER})
            assert again.status_code == 302  # the same address and agent: recorded as a duplicate
            me = await gw.get("/v1/affiliates/me/links", headers={"X-Api-Key": a["api_key"]})
            assert me.status_code == 200, me.text
            assert [(x["code"], x["clicks"], x["flagged_clicks"]) for x in me.json()] == [("through-gw", 1, 1)]
            # negative control: a path of affiliates outside those two still wants a player
            other = await gw.get("/v1/affiliates/anything-else")
            assert other.status_code == 401
