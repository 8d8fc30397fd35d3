"""Pure ledger rules: who pays whom for each operation, how stakes and wins split between cash and
bonus, and the invariants of docs/reference/ledger.md over entries held in memory. No I/O here.

An account is named by a `Ref`: (owner, kind, currency, shard). Player refs use the player's UUID
as owner; platform refs use "platform". The storage layer resolves refs to rows.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PLATFORM = "platform"
# The player's debt after a chargeback their cash could not cover. An asset of the platform, so its
# balance is at most zero (entries sum to zero like everywhere); the API reports it as a positive
# amount owed. Every other player account is at least zero.
RECEIVABLE = "receivable"


@dataclass(frozen=True, slots=True, order=True)
class Ref:
    owner: str
    kind: str
    currency: str
    shard: int = 0

    @property
    def is_player(self) -> bool:
        return self.owner != PLATFORM

    @property
    def is_guarded(self) -> bool:
        """A player account that must never go below zero (all but the receivable)."""
        return self.is_player and self.kind != RECEIVABLE


@dataclass(frozen=True, slots=True)
class Posting:
    ref: Ref
    amount: int  # positive credits the account's balance, negative debits it


def needs_balance(p: Posting) -> bool:
    """A posting that only an existing balance can take: a debit of a guarded player account (it
    must not go below zero) or a credit of a receivable (it must not go above zero)."""
    return (p.ref.is_guarded and p.amount < 0) or (p.ref.is_player and p.ref.kind == RECEIVABLE and p.amount > 0)


@dataclass(frozen=True, slots=True)
class Split:
    cash: int
    bonus: int

    @property
    def total(self) -> int:
        return self.cash + self.bonus


class InsufficientFunds(Exception):
    def __init__(self, needed: int, available: int) -> None:
        super().__init__(f"needs {needed}, has {available}")
        self.needed = needed
        self.available = available


def player(player_id: object, kind: str, currency: str) -> Ref:
    return Ref(str(player_id), kind, currency)


def platform(kind: str, currency: str, shard: int = 0) -> Ref:
    return Ref(PLATFORM, kind, currency, shard)


def house_shard(key: str, shards: int) -> int:
    """The house sub-account for an operation: spread by key so no single row is every bet's lock."""
    return zlib.crc32(key.encode()) % shards


# ---- splits ---------------------------------------------------------------------------------

def split_stake(amount: int, cash: int, bonus: int) -> Split:
    """Cash first, then bonus."""
    if amount < 0:
        raise ValueError("stake must not be negative")
    if amount > cash + bonus:
        raise InsufficientFunds(amount, cash + bonus)
    from_cash = min(amount, cash)
    return Split(from_cash, amount - from_cash)


def split_win(amount: int, stake: Split) -> Split:
    """A win in the proportion of the stake. The bonus part is rounded down so the remainder
    (at most one minor unit) lands in cash, in the player's favour; the parts always sum exactly."""
    if amount < 0:
        raise ValueError("win must not be negative")
    if stake.total <= 0 or stake.bonus <= 0:
        return Split(amount, 0)
    bonus = amount * stake.bonus // stake.total
    return Split(amount - bonus, bonus)


# ---- per grant ------------------------------------------------------------------------------

def draw(amount: int, grants: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The bonus part of a stake taken from the player's open grants, (grant_id, balance) in spend
    order (priority, created_at, grant_id): each emptied before the next is touched."""
    if amount < 0:
        raise ValueError("stake must not be negative")
    out: dict[str, int] = {}
    left = amount
    for grant_id, balance in grants:
        if left == 0:
            break
        take = min(left, balance)
        if take > 0:
            out[grant_id] = take
            left -= take
    if left:
        raise InsufficientFunds(amount, amount - left)
    return out


def share(amount: int, stake: Mapping[str, int]) -> dict[str, int]:
    """`amount` (a win's bonus part, or a part of one) over the grants in proportion to their stake:
    each rounded down, the remainder (fewer units than grants) to the largest stake, ties to the
    smallest grant_id, so the result is deterministic and sums exactly."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    total = sum(stake.values())
    if amount == 0 or total <= 0:
        return {}
    parts = {g: amount * s // total for g, s in stake.items() if s > 0}
    largest = min(parts, key=lambda g: (-stake[g], g))
    parts[largest] += amount - sum(parts.values())
    return {g: v for g, v in parts.items() if v}


def added(a: Mapping[str, int], b: Mapping[str, int], sign: int = 1) -> dict[str, int]:
    """a + sign * b per grant, without the zeros."""
    out = dict(a)
    for g, v in b.items():
        out[g] = out.get(g, 0) + sign * v
    return {g: v for g, v in out.items() if v}


# ---- postings per operation -----------------------------------------------------------------

def _nonzero(postings: Iterable[Posting]) -> list[Posting]:
    return [p for p in postings if p.amount != 0]


def bet(player_id: object, currency: str, split: Split, shard: int) -> list[Posting]:
    return _nonzero([
        Posting(player(player_id, "cash", currency), -split.cash),
        Posting(player(player_id, "bonus", currency), -split.bonus),
        Posting(platform("house", currency, shard), split.total),
    ])


def win(player_id: object, currency: str, split: Split, shard: int) -> list[Posting]:
    return _nonzero([
        Posting(player(player_id, "cash", currency), split.cash),
        Posting(player(player_id, "bonus", currency), split.bonus),
        Posting(platform("house", currency, shard), -split.total),
    ])


def mirror(postings: Iterable[Posting]) -> list[Posting]:
    """The exact reversal of a transaction: every entry negated, on the same accounts."""
    return [Posting(p.ref, -p.amount) for p in postings]


def settlement(amount: int, owed: int) -> int:
    """The part of a deposit that pays off what the player owes (`owed` >= 0): all of it first."""
    if amount < 0 or owed < 0:
        raise ValueError("amounts must not be negative")
    return min(amount, owed)


def deposit(player_id: object, currency: str, amount: int, settle: int = 0) -> list[Posting]:
    """`settle` of the amount pays off the player's receivable; the rest reaches their cash."""
    if not 0 <= settle <= amount:
        raise ValueError("the settlement is part of the deposit")
    return _nonzero([Posting(platform("psp_clearing", currency), -amount),
                     Posting(player(player_id, RECEIVABLE, currency), settle),
                     Posting(player(player_id, "cash", currency), amount - settle)])


@dataclass(frozen=True, slots=True)
class Recovery:
    from_cash: int
    owed: int  # the shortfall, booked on the player's receivable


def chargeback_split(amount: int, cash: int) -> Recovery:
    """What a chargeback takes from cash (up to the cash balance) and what the player is left owing."""
    if amount < 0:
        raise ValueError("a chargeback must not be negative")
    from_cash = min(amount, max(cash, 0))
    return Recovery(from_cash, amount - from_cash)


def chargeback(player_id: object, currency: str, from_cash: int, shortfall: int) -> list[Posting]:
    """The provider takes the money back: cash pays what it can, the shortfall becomes the debt."""
    return _nonzero([Posting(player(player_id, "cash", currency), -from_cash),
                     Posting(player(player_id, RECEIVABLE, currency), -shortfall),
                     Posting(platform("psp_clearing", currency), from_cash + shortfall)])


def payment_fee(currency: str, amount: int) -> list[Posting]:
    """A payment provider's fee: an expense of the platform (payment_fees debited) paid out of what
    the provider holds for it (psp_clearing credited). No player account moves and the house is not
    touched, so GGR stays the house's net movement."""
    if amount <= 0:
        raise ValueError("a fee is positive")
    return [Posting(platform("payment_fees", currency), -amount), Posting(platform("psp_clearing", currency), amount)]


def withdrawal_hold(player_id: object, currency: str, amount: int) -> list[Posting]:
    return _nonzero([Posting(player(player_id, "cash", currency), -amount),
                     Posting(player(player_id, "withdrawal_hold", currency), amount)])


def withdrawal_post(player_id: object, currency: str, amount: int) -> list[Posting]:
    return _nonzero([Posting(player(player_id, "withdrawal_hold", currency), -amount),
                     Posting(platform("psp_clearing", currency), amount)])


def withdrawal_void(player_id: object, currency: str, amount: int) -> list[Posting]:
    return _nonzero([Posting(player(player_id, "withdrawal_hold", currency), -amount),
                     Posting(player(player_id, "cash", currency), amount)])


def bonus_grant(player_id: object, currency: str, amount: int) -> list[Posting]:
    return _nonzero([Posting(platform("bonus_liability", currency), -amount),
                     Posting(player(player_id, "bonus", currency), amount)])


def bonus_convert(player_id: object, currency: str, amount: int) -> list[Posting]:
    """Bonus becomes real money: the player's bonus moves to cash and the liability is recognised
    as a cost."""
    return _nonzero([Posting(player(player_id, "bonus", currency), -amount),
                     Posting(player(player_id, "cash", currency), amount),
                     Posting(platform("bonus_cost", currency), -amount),
                     Posting(platform("bonus_liability", currency), amount)])


def bonus_settle(player_id: object, currency: str, to_cash: int, back: int) -> list[Posting]:
    """One grant closes: `to_cash` of its balance converts, the rest (`back`) returns to the liability."""
    return _nonzero(merged([*bonus_convert(player_id, currency, to_cash), *bonus_forfeit(player_id, currency, back)]))


def free_spin_win(player_id: object, currency: str, amount: int) -> list[Posting]:
    """A free spin's win is paid by the bonus liability, like the grant it lands on."""
    return bonus_grant(player_id, currency, amount)


def merged(postings: Iterable[Posting]) -> list[Posting]:
    sums: dict[Ref, int] = defaultdict(int)
    for p in postings:
        sums[p.ref] += p.amount
    return [Posting(r, a) for r, a in sums.items()]


def bonus_forfeit(player_id: object, currency: str, amount: int) -> list[Posting]:
    return _nonzero([Posting(player(player_id, "bonus", currency), -amount),
                     Posting(platform("bonus_liability", currency), amount)])


def adjustment(player_id: object, currency: str, amount: int) -> list[Posting]:
    """A manual correction: money enters (amount > 0) or leaves (< 0) the system through `world`."""
    return _nonzero([Posting(platform("world", currency), -amount),
                     Posting(player(player_id, "cash", currency), amount)])


KIND_ORDER = {"bonus": 0, "cash": 1, RECEIVABLE: 2, "withdrawal_hold": 3}


def lock_order(postings: Iterable[Posting]) -> list[Posting]:
    """Player accounts first (bonus, cash, receivable, hold: alphabetical, as `ORDER BY kind FOR
    UPDATE` locks them), then platform accounts by name. Every operation takes its row locks in this one global
    order, so two operations cannot deadlock on accounts."""
    return sorted(postings, key=lambda p: (not p.ref.is_player, KIND_ORDER.get(p.ref.kind, 9), p.ref))


# ---- invariants over in-memory data ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Breach:
    invariant: int
    detail: str


def check_balanced(transactions: Mapping[str, Iterable[tuple[str, int]]]) -> list[Breach]:
    """Invariant 1: per transaction, entries (currency, amount) sum to zero per currency."""
    out = []
    for tx, items in transactions.items():
        sums: dict[str, int] = defaultdict(int)
        for cur, amount in items:
            sums[cur] += amount
        for cur, total in sums.items():
            if total != 0:
                out.append(Breach(1, f"transaction {tx} sums to {total} {cur}"))
    return out


def check_non_negative(balances: Mapping[Ref, int]) -> list[Breach]:
    """Invariant 2: no player balance (cash, bonus, hold) below zero; a receivable (a debt) never above."""
    return [Breach(2, f"{ref} is {bal}") for ref, bal in balances.items()
            if (ref.is_guarded and bal < 0) or (ref.is_player and ref.kind == RECEIVABLE and bal > 0)]


def check_balances_match(balances: Mapping[Ref, int], postings: Iterable[Posting]) -> list[Breach]:
    """Invariant 3: each stored balance equals the sum of its entries."""
    sums: dict[Ref, int] = defaultdict(int)
    for p in postings:
        sums[p.ref] += p.amount
    return [Breach(3, f"{ref} stores {balances.get(ref, 0)}, entries sum to {sums.get(ref, 0)}")
            for ref in set(balances) | set(sums) if balances.get(ref, 0) != sums.get(ref, 0)]


def check_conserved(balances: Mapping[Ref, int]) -> list[Breach]:
    """Invariant 4: per currency all balances sum to zero, i.e. everything outside `world` is
    exactly what entered through `world` (and the clearings): money is neither made nor lost."""
    sums: dict[str, int] = defaultdict(int)
    for ref, bal in balances.items():
        sums[ref.currency] += bal
    return [Breach(4, f"{cur} balances sum to {total}") for cur, total in sums.items() if total != 0]


def check_rollback(bet_postings: Iterable[Posting], rollback_postings: Iterable[Posting]) -> list[Breach]:
    """Invariant 6 (first half): a rollback's entries are the bet's, negated, account by account."""
    want: dict[Ref, int] = defaultdict(int)
    for p in bet_postings:
        want[p.ref] -= p.amount
    got: dict[Ref, int] = defaultdict(int)
    for p in rollback_postings:
        got[p.ref] += p.amount
    if {k: v for k, v in want.items() if v} != {k: v for k, v in got.items() if v}:
        return [Breach(6, f"rollback {dict(got)} does not mirror bet {dict(want)}")]
    return []
