"""Password hashing holds argon2's memory while it runs: a burst of sign-ups or logins runs at most
`concurrency` hashes at once (six at 64 MiB each got the players container OOM-killed on the real
node), the rest waiting their turn."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gameplane.players.passwords import Passwords


class CountingHasher:
    """Stands in for argon2's hasher to observe how many hashes run at the same moment."""

    def __init__(self) -> None:
        self.running = self.most = 0
        self.lock = threading.Lock()

    def _work(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._work()
        return "hash:" + password

    def verify(self, stored: str, password: str) -> bool:
        self._work()
        return stored == "hash:" + password


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_a_burst_of_hashes_and_verifications_runs_at_most_the_bound_at_once(concurrency: int) -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1, concurrency=concurrency)
    counting = CountingHasher()
    passwords._hasher = counting  # type: ignore[assignment]
    with ThreadPoolExecutor(max_workers=8) as pool:  # more threads than the bound, as asyncio's executor has
        hashed = list(pool.map(passwords.hash, [f"pw-{i}" for i in range(8)]))
        verified = list(pool.map(lambda h: passwords.verify(h, h.removeprefix("hash:")), hashed))
    assert counting.most == concurrency  # reached (a burst fills every slot), never passed
    assert verified == [True] * 8


def test_the_real_hasher_still_round_trips_under_the_bound() -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1, concurrency=1)
    stored = passwords.hash("correct horse battery")
    assert passwords.verify(stored, "correct horse battery") and not passwords.verify(stored, "wrong horse battery")
    assert not passwords.verify(None, "anything at all")  # the decoy path answers False
