"""Settings of the player site (GP_WEB_*)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from gameplane.kit.settings import ServiceSettings, settings_config


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class WebSettings(ServiceSettings):
    service_name: ClassVar[str] = "web"
    model_config = settings_config("web")

    port: int = 8010
    # Browser-facing addresses: what a player's browser opens, not in-cluster service names.
    public_url: str = Field(default="http://127.0.0.1:8010", description="the site's own address as players "
                            "reach it: the origin game pages post their round messages to")
    game_urls: dict[str, str] = Field(default_factory=lambda: {"rgs": "http://127.0.0.1:8100"}, description=(
        "each provider's browser-facing address (provider -> URL): its game pages are framed from "
        "<url>/play (CSP frame-src lists exactly these origins) and its round messages are trusted from "
        "that origin only; a game of a provider not listed is shown as unavailable"))
    psp_urls: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8101"], description="the payment "
                                "providers' hosted-page addresses a deposit form redirects to (CSP form-action)")
    session_ttl_seconds: int = Field(default=12 * 3600, gt=0, description="life of the session cookie; the "
                                     "player's refresh token ends the session earlier if it expires")
    gateway_timeout_seconds: float = Field(default=10.0, gt=0, description="one call to the gateway")
    forwarded_for_hops: int = Field(default=0, ge=0, description="how many reverse proxies in front of the site "
                                    "append to X-Forwarded-For (the ingress controller); the player's address "
                                    "found so goes to the gateway in X-Forwarded-For, where a gateway that "
                                    "trusts one hop charges rate limits and risk's address rules to the player, "
                                    "not to the site. 0: the address the connection came from")
    help_links: dict[str, str] = Field(default_factory=lambda: {
        "BeGambleAware": "https://www.begambleaware.org/",
        "GamCare (0808 8020 133)": "https://www.gamcare.org.uk/",
        "Gamblers Anonymous": "https://www.gamblersanonymous.org/",
        "GAMSTOP (self-exclusion from all UK sites)": "https://www.gamstop.co.uk/",
    }, description="the help organisations every page links to (name -> URL)")

    @property
    def game_origins(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(origin(u) for u in self.game_urls.values()))

    @property
    def psp_origins(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(origin(u) for u in self.psp_urls))
