"""A map that forgets keys not written for a while, without a timestamp per key."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class RecentMap(Generic[K]):
    """Newest value per key, kept at least ``window`` seconds after the key's last write.

    Two generations: every ``window`` seconds (as :meth:`expire` is called) the current dict
    becomes the previous one and the previous one is dropped, so a key lives between one and
    two windows after its last write. Used to remember the newest sample time per stream for
    as long as Zoom may redeliver it (about 85 minutes)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._current: dict[K, float] = {}
        self._previous: dict[K, float] = {}
        self._rotated: float | None = None

    def __len__(self) -> int:
        """Entries held: a key in both generations counts twice."""
        return len(self._current) + len(self._previous)

    def get(self, key: K) -> float | None:
        known = self._current.get(key)
        return self._previous.get(key) if known is None else known

    def set(self, key: K, value: float) -> None:
        self._current[key] = value

    def expire(self, now: float) -> None:
        if self._rotated is None:
            self._rotated = now
        elif now - self._rotated >= self.window:
            self._previous, self._current = self._current, {}
            self._rotated = now
