"""Game sessions by token, kept true by `sessions.ended` events instead of asking sessions each call.

A session's expiry is fixed at launch and an ended session never reopens, so the view of an
active session stays true until its `sessions.ended` event; the expiry itself is checked against
the clock on every bet. A view is trusted for `trusted_ttl` only when it was stored while the
event listener was live (an epoch of `Bus.listening_epoch`) and that epoch still holds: after a
disconnect, events may have been missed, and views fall back to `fallback_ttl`, the old polling
behaviour. A lookup in flight when the end event arrives must not store a stale active view:
recently ended session ids are remembered and win over it.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from gameplane.contracts.sessions import SessionView

ENDED_TTL = 3600.0  # an ended view never changes; kept only to spare lookups of dead tokens


class SessionCache:
    def __init__(self, trusted_ttl: float, fallback_ttl: float, size: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.trusted_ttl = trusted_ttl
        self.fallback_ttl = fallback_ttl
        self.size = size
        self.clock = clock
        # token -> (deadline, epoch the view was stored under or None, view)
        self._views: OrderedDict[str, tuple[float, int | None, SessionView]] = OrderedDict()
        self._tokens: dict[uuid.UUID, str] = {}  # session id -> token, to evict on an end event
        self._ended: OrderedDict[uuid.UUID, float] = OrderedDict()  # session id -> when heard

    def get(self, token: str, epoch: int | None) -> SessionView | None:
        hit = self._views.get(token)
        if hit is None:
            return None
        deadline, stored_epoch, view = hit
        if deadline < self.clock() or (stored_epoch is not None and stored_epoch != epoch):
            self._drop(token)
            return None
        return view

    def trusted(self, token: str, epoch: int | None) -> bool:
        """Whether `get` would answer from a view kept true by end events (not by polling)."""
        hit = self._views.get(token)
        return self.get(token, epoch) is not None and hit is not None and hit[1] is not None

    def put(self, view: SessionView, epoch: int | None) -> None:
        if view.status == "active" and view.session_id in self._ended:
            return  # the end event overtook this lookup: the next call looks again
        if view.status != "active":
            ttl, epoch = ENDED_TTL, None
        elif epoch is not None:
            ttl = self.trusted_ttl
        else:
            ttl = self.fallback_ttl
        if ttl <= 0:
            return
        self._drop(view.token)
        while len(self._views) >= self.size:
            self._drop(next(iter(self._views)))
        self._views[view.token] = (self.clock() + ttl, epoch, view)
        self._tokens[view.session_id] = view.token

    def ended(self, session_id: uuid.UUID) -> None:
        """A `sessions.ended` event: forget the active view, and refuse a stale one arriving later."""
        token = self._tokens.get(session_id)
        hit = self._views.get(token) if token is not None else None
        if token is not None and hit is not None and hit[2].status == "active":
            self._drop(token)
        now = self.clock()
        self._ended[session_id] = now
        self._ended.move_to_end(session_id)
        # A lookup outlives no timeout of the sessions client: minutes of memory are plenty.
        while self._ended and (len(self._ended) > self.size or next(iter(self._ended.values())) < now - 600):
            self._ended.popitem(last=False)

    def _drop(self, token: str) -> None:
        hit = self._views.pop(token, None)
        if hit is not None and self._tokens.get(hit[2].session_id) == token:
            del self._tokens[hit[2].session_id]
