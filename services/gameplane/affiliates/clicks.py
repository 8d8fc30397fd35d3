"""The public click: bot and duplicate filtering, the click id, the redirect.

A flagged click (bot, duplicate) is recorded and still redirected (the visitor sees no
difference) but can never be attributed. A duplicate is a click on the same link from the same
address and user agent within `duplicate_click_seconds` of an earlier one (flagged or not).
Addresses and user agents are kept only as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts.affiliates import MAX_SUB_IDS, ClickFlag

# Crawlers, link previews, monitors and HTTP libraries: none of them is a person who could register.
BOT_AGENTS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|mediapartners|facebookexternalhit|embedly|preview|monitor|pingdom|"
    r"headless|phantomjs|curl/|wget/|python-requests|python-urllib|httpx|aiohttp|go-http-client|java/|okhttp",
    re.IGNORECASE)
SUB_ID_MAX = 100


def is_bot(user_agent: str | None) -> bool:
    return not user_agent or not user_agent.strip() or BOT_AGENTS.search(user_agent) is not None


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def sub_ids(query: Mapping[str, str]) -> list[str]:
    """sub1..sub5 in order (a missing one in between is ''; trailing empties dropped), each cut to
    100 characters."""
    subs = [query.get(f"sub{i}", "")[:SUB_ID_MAX] for i in range(1, MAX_SUB_IDS + 1)]
    while subs and not subs[-1]:
        subs.pop()
    return subs


def landing(url: str, click_id: str) -> str:
    """The landing URL with `click_id` set (replacing one the URL carried already)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "click_id"]
    query.append(("click_id", click_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


async def record(s: AsyncSession, link_id: uuid.UUID, affiliate_id: uuid.UUID, ip: str, user_agent: str | None,
                 subs: list[str], now: datetime, window_seconds: float) -> tuple[str, ClickFlag | None]:
    """Record a click; (click id, flag)."""
    ip_hash, ua_hash = digest(ip), digest(user_agent or "")
    flag: ClickFlag | None = None
    if is_bot(user_agent):
        flag = "bot"
    else:
        # the same visitor clicking twice at once must still yield one valid click
        await s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 11))"),
                        {"k": f"{link_id}:{ip_hash}:{ua_hash}"})
        seen = (await s.execute(text(
            "SELECT 1 FROM clicks WHERE link_id = :l AND ip_hash = :i AND ua_hash = :u AND clicked_at > :since "
            "AND clicked_at <= :now LIMIT 1"),
            {"l": link_id, "i": ip_hash, "u": ua_hash, "since": now - timedelta(seconds=window_seconds),
             "now": now})).first()
        if seen is not None:
            flag = "duplicate"
    click_id = secrets.token_hex(16)
    await s.execute(text(
        "INSERT INTO clicks (click_id, link_id, affiliate_id, sub_ids, ip_hash, ua_hash, flag, clicked_at) "
        "VALUES (:c, :l, :a, CAST(:s AS jsonb), :i, :u, :f, :now)"),
        {"c": click_id, "l": link_id, "a": affiliate_id, "s": json.dumps(subs), "i": ip_hash, "u": ua_hash,
         "f": flag, "now": now})
    return click_id, flag
