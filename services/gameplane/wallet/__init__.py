"""wallet: the ledger, and the only writer of money (docs/reference/ledger.md).

Modules: `ledger` (pure posting rules, splits, in-memory invariants), `protection` (pure
responsible-gaming rules), `store` (Core SQL: idempotency claim, guarded balance moves, the
one-statement commit), `play` (bet, win, rollback), `cashier` (deposit, withdrawal holds,
adjustments), `bonuses` (grant, convert, forfeit, free-spin wins: one grant at a time), `grants`
(per-grant balances and their sub-ledger), `queries` (reads), `reconcile` (the invariants over the database),
`events` (consumed players events), `api`, `app`, `cli` (`gameplane wallet reconcile`).
"""
