"""The refusals of the players domain. Each is a `Problem`, so pure rules can raise them and the
API renders them as problem+json with a stable slug, without a translation layer in between."""

from __future__ import annotations

from typing import Any

from gameplane.kit.problems import Problem, ProblemType

# Every refusal of the players service, once: the classes below raise them, the routes document them.
UNDERAGE = ProblemType(422, "underage", "Player is under the minimum age")
WEAK_PASSWORD = ProblemType(422, "weak-password", "Password too weak")
EMAIL_TAKEN = ProblemType(409, "email-taken", "Email already registered")
INVALID_KYC_TRANSITION = ProblemType(409, "invalid-kyc-transition", "KYC state cannot change this way")
INVALID_DATE_OF_BIRTH = ProblemType(422, "invalid-date-of-birth", "Date of birth is not plausible")
PLAYER_NOT_FOUND = ProblemType(404, "player-not-found", "No such player")
INVALID_CREDENTIALS = ProblemType(401, "invalid-credentials", "Email or password is wrong")
ACCOUNT_LOCKED = ProblemType(429, "account-locked", "Too many failed logins")
WRONG_PASSWORD = ProblemType(403, "wrong-password", "Current password is wrong")
REFRESH_REFUSALS = {t.slug: t for t in (
    ProblemType(401, "invalid-refresh-token", "Unknown refresh token"),
    ProblemType(401, "refresh-token-reused", "Refresh token already used; every session of this login was revoked"),
    ProblemType(401, "refresh-token-revoked", "Refresh token revoked"),
    ProblemType(401, "refresh-token-expired", "Refresh token expired"),
)}
# Responsible-gaming changes: 409 when it would weaken a protection in force, 422 when not offered.
ALREADY_SELF_EXCLUDED = ProblemType(409, "already-self-excluded", "Player is self-excluded")
TIMEOUT_CANNOT_BE_SHORTENED = ProblemType(409, "timeout-cannot-be-shortened", "Time-out cannot be shortened")
SELF_EXCLUSION_CANNOT_BE_SHORTENED = ProblemType(409, "self-exclusion-cannot-be-shortened",
                                                 "Self-exclusion cannot be shortened")
CANNOT_BE_LIFTED = {kind: ProblemType(409, f"{kind}-cannot-be-lifted", f"An active {kind} cannot be lifted early")
                    for kind in ("timeout", "self-exclusion")}
NOTHING_TO_LIFT = {kind: ProblemType(422, f"no-active-{kind}", f"No active {kind}")
                   for kind in ("timeout", "self-exclusion")}
INVALID_TIMEOUT = ProblemType(422, "invalid-timeout", "Time-out outside the allowed range")
INVALID_SELF_EXCLUSION = ProblemType(422, "invalid-self-exclusion", "Self-exclusion outside the allowed range")
INVALID_LIMIT = ProblemType(422, "invalid-limit", "Limit not allowed")
REALITY_CHECK_REQUIRED = ProblemType(422, "reality-check-required", "A reality check is mandatory")
INVALID_REALITY_CHECK = ProblemType(422, "invalid-reality-check", "Reality-check interval not offered")

PROTECTION_TYPES = {t.slug: t for t in (
    ALREADY_SELF_EXCLUDED, TIMEOUT_CANNOT_BE_SHORTENED, SELF_EXCLUSION_CANNOT_BE_SHORTENED, *CANNOT_BE_LIFTED.values(),
    *NOTHING_TO_LIFT.values(), INVALID_TIMEOUT, INVALID_SELF_EXCLUSION, INVALID_LIMIT, REALITY_CHECK_REQUIRED,
    INVALID_REALITY_CHECK)}


class Underage(Problem):
    def __init__(self, minimum_age: int) -> None:
        super().__init__(*UNDERAGE,
                         f"players must be at least {minimum_age} years old", minimum_age=minimum_age)


class WeakPassword(Problem):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(*WEAK_PASSWORD, "; ".join(reasons), reasons=reasons)


class EmailTaken(Problem):
    def __init__(self) -> None:
        super().__init__(*EMAIL_TAKEN,
                         "an account with this email address already exists")


class InvalidKycTransition(Problem):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(*INVALID_KYC_TRANSITION,
                         f"{current} -> {wanted} is not allowed", current=current, wanted=wanted)


class ProtectionRefused(Problem):
    """A responsible-gaming change that would weaken a protection the player is bound by."""

    def __init__(self, slug: str, title: str, detail: str, **extensions: Any) -> None:
        t = PROTECTION_TYPES[slug]
        assert t.status == 409, slug
        super().__init__(t.status, t.slug, title, detail, **extensions)


class InvalidProtectionSetting(Problem):
    def __init__(self, slug: str, title: str, detail: str, **extensions: Any) -> None:
        t = PROTECTION_TYPES[slug]
        assert t.status == 422, slug
        super().__init__(t.status, t.slug, title, detail, **extensions)


class InvalidDateOfBirth(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(*INVALID_DATE_OF_BIRTH, detail)


class PlayerNotFound(Problem):
    def __init__(self) -> None:
        super().__init__(*PLAYER_NOT_FOUND)


class InvalidCredentials(Problem):
    def __init__(self) -> None:
        # One answer for "no such email" and "wrong password": the difference would leak accounts.
        super().__init__(*INVALID_CREDENTIALS)


class AccountLocked(Problem):
    def __init__(self, retry_after: int) -> None:
        super().__init__(*ACCOUNT_LOCKED,
                         f"the account is locked for {retry_after} more seconds",
                         headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class RefreshRefused(Problem):
    def __init__(self, slug: str) -> None:
        t = REFRESH_REFUSALS[slug]
        super().__init__(*t, headers={"WWW-Authenticate": "Bearer"})


class WrongPassword(Problem):
    def __init__(self) -> None:
        super().__init__(*WRONG_PASSWORD)


# One answer whichever factor failed: telling "wrong code" would confirm the password.
INVALID_STAFF_CREDENTIALS = ProblemType(401, "invalid-staff-credentials", "Username, password or code is wrong")
STAFF_NOT_FOUND = ProblemType(404, "staff-not-found", "No such staff account")
USERNAME_TAKEN = ProblemType(409, "username-taken", "Username already in use")
LAST_ADMIN = ProblemType(409, "last-admin", "The last active admin cannot lose the admin role")


class InvalidStaffCredentials(Problem):
    def __init__(self) -> None:
        super().__init__(*INVALID_STAFF_CREDENTIALS)


class StaffNotFound(Problem):
    def __init__(self) -> None:
        super().__init__(*STAFF_NOT_FOUND)


class UsernameTaken(Problem):
    def __init__(self) -> None:
        super().__init__(*USERNAME_TAKEN)


class LastAdmin(Problem):
    def __init__(self) -> None:
        super().__init__(*LAST_ADMIN, "give another active account the admin role first")
