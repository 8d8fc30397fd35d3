"""The rule set document: rules as data, validated here, stored as JSON (one version per change).

    {"review_at": 300, "deny_at": 800,
     "rules": [{"id": "deposits-per-hour", "type": "velocity", "feature": "deposit_requests",
                "window": "1h", "count_gte": 5, "score": 200, "action": "review"}, ...]}

Every rule has an `id`, a `score` (0..1000) it adds when it fires, an `action` (`score`: only adds
to the score; `review`: at least a review; `deny`: a denial), the decision kinds it takes part in
(`applies_to`) and whether it is a marker of harm (`harm`: it also counts towards the player's
harm score, which bets and wins update from events). The rule types and their parameters are the
classes below; gameplane.risk.engine evaluates them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gameplane.contracts.risk import MAX_SCORE, DecisionKind

# What the feature store counts per player (count and sum of amounts, in windows):
# *_requests come from risk's own decisions (written as they are taken), the rest from events.
Feature = Literal[
    "deposit_requests",       # deposit decisions asked of risk
    "withdrawal_requests",    # withdrawal decisions asked of risk
    "deposits",               # payments.deposit_succeeded
    "failed_deposits",        # payments.deposit_failed
    "withdrawals",            # payments.withdrawal_paid
    "cancelled_withdrawals",  # payments.withdrawal_cancelled (a reversed withdrawal)
    "chargebacks",            # payments.chargeback
    "bets",                   # wallet.bet_placed
    "wins",                   # wallet.win_settled
    "night_bets",             # wallet.bet_placed between 00:00 and 06:00 UTC
    "logins",                 # players.logged_in
    "chase_deposits",         # deposits made soon after losing most of the previous one
]
Window = Literal["5m", "1h", "1d", "7d", "28d"]
# Windows of 1 day and less are counted in 5-minute buckets, longer ones in day buckets: a window
# covers at least its length and at most its length plus one bucket.
WINDOW_SECONDS: dict[str, int] = {"5m": 300, "1h": 3600, "1d": 86_400, "7d": 7 * 86_400, "28d": 28 * 86_400}
LinkWindow = Literal["1d", "7d", "28d"]
Action = Literal["score", "review", "deny"]

_Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
_Count = Annotated[int, Field(ge=1, le=1_000_000)]
_Amount = Annotated[int, Field(ge=1, le=10**15)]
_Pct = Annotated[int, Field(ge=1, le=100_000)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: _Id
    score: int = Field(ge=0, le=MAX_SCORE)
    action: Action = "review"
    applies_to: tuple[DecisionKind, ...] = Field(default=("deposit", "withdrawal"), min_length=1)
    harm: bool = False
    description: str = Field(default="", max_length=500)


class Velocity(_Rule):
    """Count (`count_gte`) or sum of amounts (`sum_gte`, minor units) of a feature in a window. A
    decision's own request counts towards `<kind>_requests`."""

    type: Literal["velocity"]
    feature: Feature
    window: Window
    count_gte: _Count | None = None
    sum_gte: _Amount | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> Velocity:
        if (self.count_gte is None) == (self.sum_gte is None):
            raise ValueError("a velocity rule needs exactly one of count_gte and sum_gte")
        return self


class LargeAmount(_Rule):
    """One amount at or above the threshold of its currency (minor units); other currencies: quiet."""

    type: Literal["large_amount"]
    amount_gte: dict[Annotated[str, Field(pattern=r"^[A-Z]{3}$")], _Amount] = Field(min_length=1)


class SharedIdentity(_Rule):
    """The address or device of the request (else the player's last login's) was used by at least
    `min_accounts` accounts, this one included, within the window."""

    type: Literal["shared_identity"]
    key: Literal["ip", "device"]
    min_accounts: int = Field(ge=2, le=1_000_000)
    window: LinkWindow = "28d"


class NewMethod(_Rule):
    """A withdrawal to a payment method the player never deposited with (a withdrawal that names no
    method does not fire it)."""

    type: Literal["new_method"]
    applies_to: tuple[DecisionKind, ...] = ("withdrawal",)


class ManyMethods(_Rule):
    """At least `min_methods` distinct deposit methods used within the window (a deposit's own new
    method included)."""

    type: Literal["many_methods"]
    min_methods: int = Field(ge=2, le=1000)
    window: LinkWindow = "28d"


class LittlePlay(_Rule):
    """A withdrawal after deposits of which less than `max_wagered_pct` % was wagered within the
    window (deposit, then cash out with little play: a sign of laundering or of a stolen card)."""

    type: Literal["little_play"]
    applies_to: tuple[DecisionKind, ...] = ("withdrawal",)
    window: Window = "7d"
    max_wagered_pct: _Pct = 100
    min_deposited: _Amount = 1


class RisingDeposits(_Rule):
    """Deposits in the last 7 days at least `factor_pct` % of the weekly average of the 3 weeks
    before (counts or amounts), with at least `min_recent` deposits recently and some before."""

    type: Literal["rising_deposits"]
    measure: Literal["count", "sum"] = "count"
    factor_pct: _Pct = 200
    min_recent: _Count = 3


class ChasingLosses(_Rule):
    """Deposits made soon after losing: a deposit is a chase when the player lost at least
    `loss_pct` % of the previous deposit since it and bet within `within_minutes` before it.
    Fires at `min_count` chases within the window (a deposit's own request counted)."""

    type: Literal["chasing_losses"]
    loss_pct: _Pct = 80
    within_minutes: int = Field(default=30, ge=1, le=24 * 60)
    min_count: _Count = 2
    window: Window = "1d"


Rule = Annotated[Velocity | LargeAmount | SharedIdentity | NewMethod | ManyMethods | LittlePlay | RisingDeposits
                 | ChasingLosses, Field(discriminator="type")]


class RuleSet(BaseModel):
    """A whole rule set. A decision's score is the sum of the scores of the rules that fired (at
    most 1000); the outcome is `deny` when a fired rule says deny or the score reaches `deny_at`,
    else `review` when a fired rule says review or the score reaches `review_at`, else `allow`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    review_at: int = Field(ge=1, le=MAX_SCORE)
    deny_at: int = Field(ge=1, le=MAX_SCORE)
    rules: tuple[Rule, ...] = Field(max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        if self.deny_at < self.review_at:
            raise ValueError("deny_at must not be below review_at")
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self

    def chasing(self) -> ChasingLosses | None:
        """The rule that defines a chase (the first chasing_losses rule), if any."""
        return next((r for r in self.rules if isinstance(r, ChasingLosses)), None)
