"""argon2id password hashing and the password strength rule."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from gameplane.players.errors import WeakPassword

MIN_LENGTH = 10
# argon2 costs the same for any input length, but a cap keeps request bodies and hashing bounded.
MAX_LENGTH = 128
MIN_DISTINCT = 5
# The few passwords every credential-stuffing list starts with; length alone does not stop them.
COMMON = frozenset({
    "password", "password1", "password12", "password123", "password1234", "passw0rd", "p@ssw0rd",
    "qwertyuiop", "1234567890", "0123456789", "123456789a", "iloveyou12", "letmein123", "welcome123",
    "administrator", "qwerty1234", "1q2w3e4r5t", "abcdefghij", "trustno1234", "football123",
})


def strength_problems(password: str, email: str | None = None) -> list[str]:
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters")
    if len(set(password)) < MIN_DISTINCT:
        problems.append(f"must use at least {MIN_DISTINCT} different characters")
    lowered = password.lower()
    if lowered in COMMON:
        problems.append("is a commonly used password")
    if email:
        local = email.split("@", 1)[0].lower()
        if len(local) >= 4 and local in lowered:
            problems.append("must not contain the email address")
    return problems


def check_strength(password: str, email: str | None = None) -> None:
    problems = strength_problems(password, email)
    if problems:
        raise WeakPassword(problems)


class Passwords:
    """argon2id with the service's cost settings. Hashing is CPU-bound: call it off the event loop.

    Each hash or verification holds `memory_kib` of memory while it runs, so at most `concurrency`
    run at once (the others wait their turn in their threads): six sign-ups at once, 64 MiB each,
    got the players container OOM-killed under the small profile's 256 MiB limit."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 2,
                 concurrency: int = 2) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                                      type=Type.ID)
        self._slots = threading.BoundedSemaphore(concurrency)
        # Verifying against a real hash when the email is unknown makes both answers take as long.
        self._decoy = self._hasher.hash("decoy password for unknown accounts")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            with self._slots:
                return self._hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
