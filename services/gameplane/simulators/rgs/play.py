"""Playing rounds against the platform the way a studio's game server does.

A round is: bet -> spin the reels -> win (possibly zero, closing the round). A bet that never got
an answer is rolled back (its transaction id referenced, so the platform undoes it if it did
land); a win that never got an answer is kept and sent again later, because the money is owed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from gameplane.simulators.rgs import slot
from gameplane.simulators.rgs.client import PlatformClient, Refused, Unanswered, new_id

RoundStatus = Literal["settled", "refused", "rolled_back", "win_pending", "rollback_pending"]


@dataclass
class RoundRecord:
    round_id: str
    stake: int
    bet_transaction_id: str
    status: RoundStatus
    win: int = 0
    win_transaction_id: str | None = None
    stops: tuple[int, ...] = ()
    balance: int | None = None
    error: str | None = None
    award_id: str | None = None  # a free spin: no bet, `stake` is the award's
    error_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"round_id": self.round_id, "stake": self.stake, "win": self.win, "status": self.status,
                "bet_transaction_id": self.bet_transaction_id, "win_transaction_id": self.win_transaction_id,
                "stops": list(self.stops), "window": slot.window(self.stops) if self.stops else [],
                "balance": self.balance, "error": self.error, "error_code": self.error_code,
                "free_spin_award_id": self.award_id}


@dataclass
class Table:
    """One player's session on the simulator, opened by /launch."""

    token: str
    player_id: str
    currency: str
    game_id: str
    balance: int
    rng: random.Random
    rounds: list[RoundRecord] = field(default_factory=list)

    def pending(self) -> list[RoundRecord]:
        return [r for r in self.rounds if r.status in ("win_pending", "rollback_pending")]


async def _rollback(client: PlatformClient, table: Table, rec: RoundRecord) -> None:
    try:
        ans = await client.call("rollback", {"token": table.token, "transaction_id": f"rb-{rec.bet_transaction_id}",
                                             "bet_transaction_id": rec.bet_transaction_id, "round_id": rec.round_id,
                                             "game_id": table.game_id})
    except Unanswered as exc:
        rec.status, rec.error = "rollback_pending", str(exc)
        return
    except Refused as exc:
        rec.status, rec.error = "refused", str(exc)
        return
    rec.status, rec.balance = "rolled_back", ans.balance
    table.balance = ans.balance


async def _win(client: PlatformClient, table: Table, rec: RoundRecord) -> None:
    assert rec.win_transaction_id is not None
    payload: dict[str, Any] = {"token": table.token, "transaction_id": rec.win_transaction_id,
                               "round_id": rec.round_id, "game_id": table.game_id, "amount": rec.win,
                               "currency": table.currency, "round_closed": True}
    if rec.award_id is not None:
        payload["free_spin_award_id"] = rec.award_id
    try:
        ans = await client.call("win", payload)
    except Unanswered as exc:
        rec.status, rec.error = "win_pending", str(exc)
        return
    except Refused as exc:
        if rec.award_id is None:
            raise
        # only a free spin's win can be refused for good: no bet of it stands to be rolled back
        rec.status, rec.error, rec.error_code, rec.balance = "refused", str(exc), exc.code, exc.balance
        if exc.balance is not None:
            table.balance = exc.balance
        return
    rec.status, rec.balance, rec.error = "settled", ans.balance, None
    table.balance = ans.balance


async def play_round(client: PlatformClient, table: Table, stake: int) -> RoundRecord:
    rec = RoundRecord(round_id=new_id("rnd"), stake=stake, bet_transaction_id=new_id("bet"), status="refused")
    table.rounds.append(rec)
    try:
        ans = await client.call("bet", {"token": table.token, "transaction_id": rec.bet_transaction_id,
                                        "round_id": rec.round_id, "game_id": table.game_id, "amount": stake,
                                        "currency": table.currency})
    except Refused as exc:
        rec.error, rec.error_code, rec.balance = str(exc), exc.code, exc.balance
        if exc.balance is not None:
            table.balance = exc.balance
        return rec
    except Unanswered as exc:
        rec.error = str(exc)
        await _rollback(client, table, rec)
        return rec
    table.balance = ans.balance
    outcome = slot.spin(table.rng)
    rec.stops = outcome.stops
    rec.win = outcome.win_amount(stake)
    rec.win_transaction_id = f"win-{rec.bet_transaction_id}"
    await _win(client, table, rec)
    return rec


async def play_free_spin(client: PlatformClient, table: Table, award_id: str, stake: int) -> RoundRecord:
    """A spin the platform awarded: no bet; the reels pay as for `stake`, the win names the award."""
    rec = RoundRecord(round_id=new_id("frnd"), stake=stake, bet_transaction_id="", status="refused",
                      award_id=award_id)
    table.rounds.append(rec)
    outcome = slot.spin(table.rng)
    rec.stops = outcome.stops
    rec.win = outcome.win_amount(stake)
    rec.win_transaction_id = new_id("fwin")
    await _win(client, table, rec)
    return rec


async def settle_pending(client: PlatformClient, table: Table) -> None:
    for rec in table.pending():
        if rec.status == "win_pending":
            await _win(client, table, rec)
        else:
            await _rollback(client, table, rec)
