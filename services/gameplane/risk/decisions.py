"""The synchronous decision: one read (features and the rule set version), the pure engine, one
write (decision, case, buckets, links, events). Bare asyncpg on both, for the latency budget."""

from __future__ import annotations

import time
import uuid

from gameplane.contracts.risk import CaseOpened, Decided, Decision, DecisionRequest
from gameplane.kit.db import Database, utcnow
from gameplane.kit.outbox import staged
from gameplane.kit.problems import ProblemType
from gameplane.risk import engine, metrics, store
from gameplane.risk.rulesets import RuleCache

PRODUCER = "risk"
DECISION_CONFLICT = ProblemType(409, "decision-conflict",
                                "This reference was decided before for another player or amount")


async def decide(db: Database, cache: RuleCache, req: DecisionRequest) -> Decision:
    started = time.perf_counter()
    now = utcnow()
    pool = db.pool
    version, snap = await store.read_snapshot(pool, req.player_id, req.ip, req.device_id, now)
    rule_set = await cache.from_pool(pool, version)
    verdict = engine.decide(rule_set, snap, engine.Request(req.kind, req.amount, req.currency,
                                                           req.method_fingerprint))
    case_id = uuid.uuid4() if verdict.outcome == "review" else None
    decision = Decision(decision_id=uuid.uuid4(), decision=verdict.outcome, score=verdict.score,
                        rules=verdict.rule_ids, rules_version=version, case_id=case_id)
    outbox = [staged(Decided(decision=decision, request=req, decided_at=now), producer=PRODUCER)]
    if case_id is not None:
        outbox.append(staged(CaseOpened(
            case_id=case_id, decision_id=decision.decision_id, kind=req.kind, reference=req.reference,
            player_id=req.player_id, amount=req.amount, currency=req.currency, score=verdict.score,
            rules=verdict.rule_ids, opened_at=now), producer=PRODUCER))
    written = await store.write_decision(pool, store.DecisionWrite(
        decision_id=decision.decision_id, kind=req.kind, reference=req.reference, player_id=req.player_id,
        amount=req.amount, currency=req.currency, method_fingerprint=req.method_fingerprint, ip=req.ip,
        device_id=req.device_id, outcome=verdict.outcome, score=verdict.score, rules=verdict.rule_ids,
        rules_version=version, at=now, case_id=case_id, outbox=outbox))
    if not written:
        return await stored(db, req)
    metrics.DECISIONS.labels(req.kind, verdict.outcome).inc()
    for fired in verdict.fired:
        metrics.RULE_FIRES.labels(fired.rule_id, req.kind).inc()
    metrics.DECISION_LATENCY.observe(time.perf_counter() - started)
    return decision


async def stored(db: Database, req: DecisionRequest) -> Decision:
    """The decision taken before on this reference: the same answer again, or a 409 when the
    request is not the same one."""
    row = await db.pool.fetchrow(store.STORED_DECISION_SQL, req.kind, req.reference)
    assert row is not None
    if (row["player_id"], row["amount"], row["currency"]) != (req.player_id, req.amount, req.currency):
        raise DECISION_CONFLICT(f"{req.kind} {req.reference!r} was decided for another player, amount or currency")
    return Decision(decision_id=row["id"], decision=row["decision"], score=row["score"], rules=list(row["rules"]),
                    rules_version=row["rules_version"], case_id=row["case_id"])
