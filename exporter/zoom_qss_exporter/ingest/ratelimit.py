"""A rate limit on requests that fail the signature check.

It counts only *failures*, per client address, so Zoom's genuine deliveries are never refused
because of someone else's guesses: a request over the limit is still verified and, when its
signature holds, handled as usual.
"""

from __future__ import annotations

MAX_CLIENTS = 65_536  # buckets kept at once; past it full ones go, then all (memory first)
KEY_LENGTH = 64  # characters of a client address kept: X-Forwarded-For may hold any text


class RateLimiter:
    """A token bucket per client address: ``rate`` failures per second, ``burst`` at once."""

    __slots__ = ("_buckets", "burst", "max_clients", "rate")

    def __init__(self, rate: float, burst: float = 0.0, max_clients: int = MAX_CLIENTS) -> None:
        self.rate = rate
        self.burst = burst or max(1.0, 2.0 * rate)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def _tokens(self, client: str, now: float) -> float:
        bucket = self._buckets.get(client)
        if bucket is None:
            return self.burst
        tokens, when = bucket
        return min(self.burst, tokens + max(0.0, now - when) * self.rate)

    def exhausted(self, client: str, now: float) -> bool:
        """Whether ``client`` has used up its failures for now."""
        return self._tokens(client[:KEY_LENGTH], now) < 1.0

    def charge(self, client: str, now: float) -> None:
        """Record one failure of ``client``."""
        client = client[:KEY_LENGTH]
        tokens = max(0.0, self._tokens(client, now) - 1.0)
        bucket = self._buckets.get(client)
        if bucket is None and len(self._buckets) >= self.max_clients:
            self._prune(now)
        # a charge dated before the bucket's last one must not move its clock back: the
        # refill since then would be granted twice
        self._buckets[client] = (tokens, now if bucket is None else max(now, bucket[1]))

    def _prune(self, now: float) -> None:
        full = [c for c in self._buckets if self._tokens(c, now) >= self.burst]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) >= self.max_clients:  # addresses sprayed faster than they refill
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)
