"""What the analytics remember of a participant between events: the normalised dimensions
of its last ``*_data`` event (never its addresses), until it has been quiet for a while."""

from __future__ import annotations

from typing import NamedTuple

from zoom_qss_exporter.analytics.dimensions import UNKNOWN


class Profile(NamedTuple):
    site: str
    network_type: str
    connection_type: str
    data_center: str
    platform: str
    version: str


NO_PROFILE = Profile(*(UNKNOWN,) * 6)


class Profiles:
    """Profiles by the hash of their owner, in two generations: a profile lives between one
    and two ``window`` after it was last read or written. At most ``limit`` are held; past it
    a new participant's minutes count under ``unknown`` dimensions, and ``dropped`` counts it.
    Equal profiles are shared (most participants have one of a few)."""

    def __init__(self, window: float, limit: int) -> None:
        self.window = window
        self.limit = limit
        self._current: dict[int, Profile] = {}
        self._previous: dict[int, Profile] = {}
        self._shared: dict[Profile, Profile] = {}
        self._rotated: float | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def get(self, key: int) -> Profile:
        found = self._current.get(key)
        if found is not None:
            return found
        found = self._previous.pop(key, None)
        if found is None:
            return NO_PROFILE
        self._current[key] = found
        return found

    def put(self, key: int, profile: Profile) -> None:
        known = key in self._current or self._previous.pop(key, None) is not None
        if not known and len(self) >= self.limit:
            self.dropped += 1
            return
        self._current[key] = self._shared.setdefault(profile, profile)

    def expire(self, now: float) -> None:
        if self._rotated is None:
            self._rotated = now
        elif now - self._rotated >= self.window:
            self._previous, self._current = self._current, {}
            live = set(self._previous.values())
            self._shared = {p: p for p in self._shared if p in live}
            self._rotated = now
