"""The rule set in force, cached in memory (one cache per running service, on its Runtime): the
decision read returns the newest version number with the features, and a number other than the
cached one loads that version, once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.risk import metrics
from gameplane.risk.rules import RuleSet


class RuleCache:
    def __init__(self) -> None:
        self.version = 0
        self.rule_set: RuleSet | None = None
        self._lock = asyncio.Lock()

    def _set(self, version: int, document: dict[str, Any]) -> RuleSet:
        rule_set = RuleSet.model_validate(document)
        if version >= self.version:
            self.version, self.rule_set = version, rule_set
            metrics.RULES_VERSION.set(version)
        return rule_set

    async def from_pool(self, pool: asyncpg.Pool, version: int) -> RuleSet:
        """The rule set of `version` (the newest, as the decision read saw it)."""
        if version == self.version and self.rule_set is not None:
            return self.rule_set
        async with self._lock:
            if version == self.version and self.rule_set is not None:
                return self.rule_set
            raw = await pool.fetchval("SELECT document::text FROM rule_sets WHERE version = $1", version)
            return self._set(version, json.loads(raw))

    async def newest(self, s: AsyncSession) -> RuleSet:
        """The rule set in force, from a consumer's or a route's session."""
        version = int((await s.execute(text("SELECT max(version) FROM rule_sets"))).scalar_one())
        if version == self.version and self.rule_set is not None:
            return self.rule_set
        document = (await s.execute(text("SELECT document FROM rule_sets WHERE version = :v"),
                                    {"v": version})).scalar_one()
        return self._set(version, document)
