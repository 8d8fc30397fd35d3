"""Who is signed in: the staff token in the session cookie, checked on every request against
players' public keys (the back office can read a staff token, never mint one). An expired or
foreign token ends the session: the person signs in again."""

from __future__ import annotations

from fastapi import Request

from gameplane.backoffice import screens
from gameplane.kit.problems import Problem
from gameplane.kit.staff import StaffContext, staff_keys, verify_staff_token


class NeedsSignIn(Exception):
    def __init__(self, expired: bool = False) -> None:
        super().__init__("sign in")
        self.expired = expired


class ScreenForbidden(Exception):
    pass


def signed_in(request: Request) -> StaffContext:
    token = request.app.state.pages.session(request)
    if not token:
        raise NeedsSignIn()
    try:
        who = verify_staff_token(staff_keys(request), token)
    except Problem:
        raise NeedsSignIn(expired=True) from None
    request.state.staff = who
    request.state.staff_token = token
    return who


def screen(name: str):  # type: ignore[no-untyped-def]
    """Dependency: the person signed in, who may use screen `name` (else the 403 page)."""
    entry = screens.BY_NAME[name]

    def check(request: Request) -> StaffContext:
        who = signed_in(request)
        request.state.screen = entry
        if not entry.allows(who):
            raise ScreenForbidden()
        return who

    return check


def action(who: StaffContext, name: str) -> None:
    if not screens.may(who, name):
        raise ScreenForbidden()
