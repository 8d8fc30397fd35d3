"""The one table of the back office's screens and of the actions on them: which roles may use
each. The navigation shows a person only the screens of their roles and every route checks the
same table (a direct URL to another screen answers the 403 page). The services behind enforce
their own rules again with the staff token; this table never grants more than they do."""

from __future__ import annotations

from dataclasses import dataclass

from gameplane.kit.staff import Role, StaffContext

EVERYONE: tuple[Role, ...] = ("support", "risk", "finance", "admin")


@dataclass(frozen=True)
class Screen:
    name: str
    path: str
    title: str
    roles: tuple[Role, ...]
    services: tuple[str, ...]  # what it reads; one of them not running: "unavailable right now"
    finance: bool = False  # money screens, never support's

    def allows(self, who: StaffContext) -> bool:
        return any(r in self.roles for r in who.roles)


SCREENS: tuple[Screen, ...] = (
    Screen("players", "/players", "Players", EVERYONE, ("players", "wallet")),
    Screen("withdrawals", "/withdrawals", "Held withdrawals", ("risk", "finance", "admin"), ("payments",),
           finance=True),
    Screen("cases", "/cases", "Risk cases", ("risk", "admin"), ("risk",)),
    Screen("kpis", "/kpis", "KPIs", ("finance", "admin"), ("analytics",), finance=True),
    Screen("bonus", "/bonus", "Bonus campaigns", ("finance", "admin"), ("bonus",), finance=True),
    Screen("affiliates", "/affiliates", "Affiliate statements", ("finance", "admin"), ("affiliates",),
           finance=True),
    Screen("audit", "/audit", "Audit log", ("admin",), ("players", "wallet", "payments", "risk", "bonus",
                                                         "affiliates")),
    # Roles and deactivation only: enrolment shows a new TOTP secret, which stays out of browsers
    # (the CLI and the staff API hand it to the person it belongs to).
    Screen("staff", "/staff", "Staff accounts", ("admin",), ("players",)),
)  # fmt: skip

BY_NAME: dict[str, Screen] = {s.name: s for s in SCREENS}

# Actions inside a screen that fewer roles may take than may look (the services' own rules).
ACTIONS: dict[str, tuple[Role, ...]] = {
    "risk.view": ("risk", "admin"),  # a player's risk features and harm markers on the profile
    "kyc.decide": ("risk", "admin"),
    "withdrawal.decide": ("risk", "admin"),
    "case.decide": ("risk", "admin"),
    "bonus.write": ("finance", "admin"),
    "affiliates.close": ("finance", "admin"),
}


def visible(who: StaffContext) -> list[Screen]:
    return [s for s in SCREENS if s.allows(who)]


def may(who: StaffContext, action: str) -> bool:
    return any(r in ACTIONS[action] for r in who.roles)
