"""The refusals of the players domain. Each is a `Problem`, so pure rules can raise them and the
API renders them as problem+json with a stable slug, without a translation layer in between."""

from __future__ import annotations

from typing import Any

from gameplane.kit.problems import Problem


class Underage(Problem):
    def __init__(self, minimum_age: int) -> None:
        super().__init__(422, "underage", "Player is under the minimum age",
                         f"players must be at least {minimum_age} years old", minimum_age=minimum_age)


class WeakPassword(Problem):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(422, "weak-password", "Password too weak", "; ".join(reasons), reasons=reasons)


class EmailTaken(Problem):
    def __init__(self) -> None:
        super().__init__(409, "email-taken", "Email already registered",
                         "an account with this email address already exists")


class InvalidKycTransition(Problem):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(409, "invalid-kyc-transition", "KYC state cannot change this way",
                         f"{current} -> {wanted} is not allowed", current=current, wanted=wanted)


class ProtectionRefused(Problem):
    """A responsible-gaming change that would weaken a protection the player is bound by."""

    def __init__(self, slug: str, title: str, detail: str, **extensions: Any) -> None:
        super().__init__(409, slug, title, detail, **extensions)


class InvalidProtectionSetting(Problem):
    def __init__(self, slug: str, title: str, detail: str, **extensions: Any) -> None:
        super().__init__(422, slug, title, detail, **extensions)


class InvalidDateOfBirth(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(422, "invalid-date-of-birth", "Date of birth is not plausible", detail)


class PlayerNotFound(Problem):
    def __init__(self) -> None:
        super().__init__(404, "player-not-found", "No such player")


class InvalidCredentials(Problem):
    def __init__(self) -> None:
        # One answer for "no such email" and "wrong password": the difference would leak accounts.
        super().__init__(401, "invalid-credentials", "Email or password is wrong")


class AccountLocked(Problem):
    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "account-locked", "Too many failed logins",
                         f"the account is locked for {retry_after} more seconds",
                         headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class RefreshRefused(Problem):
    TITLES = {
        "invalid-refresh-token": "Unknown refresh token",
        "refresh-token-reused": "Refresh token already used; every session of this login was revoked",
        "refresh-token-revoked": "Refresh token revoked",
        "refresh-token-expired": "Refresh token expired",
    }

    def __init__(self, slug: str) -> None:
        super().__init__(401, slug, self.TITLES[slug], headers={"WWW-Authenticate": "Bearer"})


class WrongPassword(Problem):
    def __init__(self) -> None:
        super().__init__(403, "wrong-password", "Current password is wrong")


class InvalidStaffCredentials(Problem):
    def __init__(self) -> None:
        # One answer whichever factor failed: telling "wrong code" would confirm the password.
        super().__init__(401, "invalid-staff-credentials", "Username, password or code is wrong")


class StaffNotFound(Problem):
    def __init__(self) -> None:
        super().__init__(404, "staff-not-found", "No such staff account")


class UsernameTaken(Problem):
    def __init__(self) -> None:
        super().__init__(409, "username-taken", "Username already in use")


class LastAdmin(Problem):
    def __init__(self) -> None:
        super().__init__(409, "last-admin", "The last active admin cannot lose the admin role",
                         "give another active account the admin role first")
