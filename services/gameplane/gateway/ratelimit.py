"""Token-bucket rate limits keyed by client IP or player id.

Pure and clock-injected: the proxy passes `time.monotonic()`, the unit tests pass a fake clock.
"""

from __future__ import annotations

import math


class TokenBuckets:
    """One bucket per key, `burst` tokens deep, refilled at `rate` tokens per second.

    Memory is bounded: once more than `max_keys` buckets exist, buckets that have refilled
    completely (idle clients, indistinguishable from a fresh bucket) are dropped; if every bucket
    is busy the oldest ones go, which only ever errs in the client's favour.
    """

    __slots__ = ("_buckets", "burst", "max_keys", "rate")

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill time]

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        """Spend `cost` tokens. Returns 0.0 when allowed, otherwise the seconds until the bucket
        will hold enough (nothing is spent on a refusal)."""
        if self.rate <= 0:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            bucket = self._buckets[key] = [self.burst, now]
        else:
            tokens = bucket[0] + (now - bucket[1]) * self.rate
            bucket[0] = tokens if tokens < self.burst else self.burst
            bucket[1] = now
        if bucket[0] >= cost:
            bucket[0] -= cost
            return 0.0
        return (cost - bucket[0]) / self.rate

    def _evict(self, now: float) -> None:
        full = [k for k, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
        # Always get down to 90 % so the O(n) sweep runs at most once per max_keys/10 new keys.
        excess = len(self._buckets) - (self.max_keys * 9 // 10)
        if excess > 0:
            for k in list(self._buckets)[:excess]:
                del self._buckets[k]


def replica_share(rate: float, burst: int, replicas: int) -> tuple[float, int]:
    """One replica's part of a limit meant for the whole gateway: the rate and the burst divided by
    the replica count (the burst rounded down, at least one). N replicas then admit at most the
    configured limit between them however a load balancer spreads a client's requests; a client
    pinned to one replica (one keep-alive connection) gets 1/N of it, and while an autoscaler runs
    more replicas than `replicas` (the chart passes the minimum) the sum grows with them."""
    if replicas < 1:
        raise ValueError("replicas must be >= 1")
    return rate / replicas, max(1, burst // replicas)


def retry_after(wait: float) -> str:
    """Retry-After is whole seconds; round up so a client that obeys it is not refused again."""
    return str(max(1, math.ceil(wait)))
