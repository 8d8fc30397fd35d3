"""Reading affiliates and their deals back from the database."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.affiliates import deals
from gameplane.contracts import affiliates as c


def deal_of(raw: dict[str, Any]) -> deals.Deal:
    terms = c.DealTerms.model_validate(raw)
    return deals.Deal(terms.currency, terms.cpa_amount, terms.cpa_min_first_deposit, terms.cpa_min_stakes,
                      terms.cpa_stakes_days, tuple(deals.Tier(t.from_ngr, t.basis_points) for t in terms.revshare),
                      terms.carry_over)


_COLUMNS = "affiliate_id, name, parent_id, override_bp, postback_url, deal, active, created_at"


async def affiliate(s: AsyncSession, affiliate_id: uuid.UUID) -> c.AffiliateView:
    row = (await s.execute(text(f"SELECT {_COLUMNS} FROM affiliates WHERE affiliate_id = :a"),
                           {"a": affiliate_id})).mappings().one_or_none()
    if row is None:
        raise c.AFFILIATE_NOT_FOUND(f"no affiliate {affiliate_id}")
    return c.AffiliateView.model_validate(dict(row))


async def affiliates(s: AsyncSession, parent_id: uuid.UUID | None = None) -> list[c.AffiliateView]:
    where = "WHERE parent_id = :p" if parent_id is not None else ""
    rows = (await s.execute(text(f"SELECT {_COLUMNS} FROM affiliates {where} ORDER BY created_at, affiliate_id"),
                            {"p": parent_id})).mappings().all()
    return [c.AffiliateView.model_validate(dict(r)) for r in rows]
