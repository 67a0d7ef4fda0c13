"""A map from 64-bit keys to times that forgets keys not written for a while."""

from __future__ import annotations

from array import array

_EMPTY = 0  # a free slot; the key 0 is stored as 1 (a collision with 1 at worst)
_MIN_CAPACITY = 1 << 10
MARKS = 64  # steps a sighting remembers one by one: the newest and the 63 before it
_ALL_MARKS = (1 << MARKS) - 1


class _Table:
    """Open addressing with linear probing in flat arrays: 16 bytes a slot (24 with marks),
    at most two thirds of them used, instead of the ~100 bytes a dict entry with its int and
    float objects costs; and one allocation each, so a dropped table goes back to the
    allocator whole."""

    __slots__ = ("keys", "marks", "mask", "size", "values")

    def __init__(self, capacity: int, marked: bool = False) -> None:
        self.keys = array("q", bytes(8 * capacity))
        self.values = array("d", bytes(8 * capacity))
        self.marks = array("Q", bytes(8 * capacity)) if marked else None
        self.mask = capacity - 1
        self.size = 0

    def find(self, key: int) -> int:
        """The slot holding ``key``; if there is none, ``-1 - slot`` of the free slot where
        it would go."""
        keys, mask = self.keys, self.mask
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                return slot
            if found == _EMPTY:
                return -1 - slot
            slot = (slot + 1) & mask

    def get(self, key: int) -> float | None:
        slot = self.find(key)
        return self.values[slot] if slot >= 0 else None

    def set(self, key: int, value: float) -> None:
        slot = self.find(key)
        if slot < 0:
            slot = -1 - slot
            self.keys[slot] = key
            self.size += 1
        self.values[slot] = value

    def grown(self) -> _Table:
        bigger = _Table(2 * (self.mask + 1), self.marks is not None)
        marks, bigger_marks = self.marks, bigger.marks
        for slot, key in enumerate(self.keys):
            if key != _EMPTY:
                free = -1 - bigger.find(key)
                bigger.keys[free] = key
                bigger.values[free] = self.values[slot]
                if marks is not None and bigger_marks is not None:
                    bigger_marks[free] = marks[slot]
        bigger.size = self.size
        return bigger


class RecentMap:
    """Newest value per key, kept at least ``window`` seconds after the key's last write.

    Two generations: every ``window`` seconds (as :meth:`expire` is called) the current table
    becomes the previous one and the previous one is dropped, so a key lives between one and
    two windows after its last write. Used to remember the newest sample time per stream
    (keyed by the stream's hash) for as long as Zoom may redeliver it (about 85 minutes), which
    under meeting churn is many more streams than are live: hence the compact tables.

    With ``marked``, a key also remembers which of the ``MARKS`` steps up to its newest value
    it has seen (:meth:`sighting`)."""

    def __init__(self, window: float, marked: bool = False) -> None:
        self.window = window
        self.marked = marked
        self._current = _Table(_MIN_CAPACITY, marked)
        self._previous = _Table(_MIN_CAPACITY, marked)
        self._rotated: float | None = None

    def __len__(self) -> int:
        """Entries held: a key in both generations counts twice."""
        return self._current.size + self._previous.size

    def get(self, key: int) -> float | None:
        key = key or 1
        known = self._current.get(key)
        return self._previous.get(key) if known is None else known

    def newer(self, key: int, value: float) -> bool:
        """Set ``value`` if it is newer than the one known (or none is); whether it was.
        One probe of the current table for the common case, a stream seen this window."""
        key = key or 1
        current = self._current
        keys, mask = current.keys, current.mask
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                if value <= current.values[slot]:
                    return False
                current.values[slot] = value
                return True
            if found == _EMPTY:
                break
            slot = (slot + 1) & mask
        known = self._previous.get(key)
        if known is not None and value <= known:
            return False
        if 3 * (current.size + 1) > 2 * (mask + 1):
            self._current = current.grown()
            self._current.set(key, value)
        else:
            keys[slot] = key
            current.values[slot] = value
            current.size += 1
        return True

    def sighting(self, key: int, value: float, step: float) -> bool:
        """Whether ``value`` is new for ``key``, which then remembers it. Values are told
        apart on a grid of ``step`` back from the key's newest: one newer than the newest is
        new, as is an older one in a step not seen yet; one within a step of a value seen, or
        more than ``MARKS - 1`` steps older than the newest, is not. For a ``marked`` map."""
        key = key or 1
        table = self._current
        slot = table.find(key)
        if slot >= 0:
            newest, marks = table.values[slot], table.marks[slot]  # type: ignore[index]
        else:
            previous = self._previous
            old = previous.find(key)
            if old >= 0:
                newest, marks = previous.values[old], previous.marks[old]  # type: ignore[index]
            else:
                newest, marks = value, 0  # never seen: the step of ``value`` is unmarked
        if value > newest:
            shift = round((value - newest) / step)
            newest, marks = value, (marks << shift | 1) & _ALL_MARKS if shift < MARKS else 1
        else:
            back = round((newest - value) / step)
            if back >= MARKS or marks >> back & 1:
                return False
            marks |= 1 << back
        if slot < 0:  # a new key: the free slot found above, unless the table grows
            if 3 * (table.size + 1) > 2 * (table.mask + 1):
                table = self._current = table.grown()
                slot = table.find(key)
            slot = -1 - slot
            table.keys[slot] = key
            table.size += 1
        table.values[slot] = newest
        table.marks[slot] = marks  # type: ignore[index]
        return True

    def is_new(self, key: int, value: float, step: float) -> bool:
        """What :meth:`sighting` would answer, without remembering anything."""
        key = key or 1
        for table in (self._current, self._previous):
            slot = table.find(key)
            if slot >= 0:
                newest, marks = table.values[slot], table.marks[slot]  # type: ignore[index]
                break
        else:
            return True
        if value > newest:
            return True
        back = round((newest - value) / step)
        return back < MARKS and not marks >> back & 1

    def entries(self) -> list[tuple[int, float, int]]:
        """Every key with its newest value (and marks; 0 unmarked), the current generation's
        where a key is in both: what :meth:`load` takes to rebuild the map elsewhere."""
        found: dict[int, tuple[int, float, int]] = {}
        for table in (self._previous, self._current):
            marks = table.marks
            for slot, key in enumerate(table.keys):
                if key != _EMPTY:
                    mark = marks[slot] if marks is not None else 0
                    found[key] = (key, table.values[slot], mark)
        return list(found.values())

    def load(self, entries: list[tuple[int, float, int]]) -> None:
        """Entries of :meth:`entries` into the current generation (a new window starts)."""
        for key, value, marks in entries:
            table = self._current
            if 3 * (table.size + 1) > 2 * (table.mask + 1):
                table = self._current = table.grown()
            slot = table.find(key or 1)
            if slot < 0:
                slot = -1 - slot
                table.keys[slot] = key or 1
                table.size += 1
            table.values[slot] = value
            if table.marks is not None:
                table.marks[slot] = marks & _ALL_MARKS

    def set(self, key: int, value: float) -> None:
        current = self._current
        if 3 * (current.size + 1) > 2 * (current.mask + 1):
            current = self._current = current.grown()
        current.set(key or 1, value)

    def expire(self, now: float) -> None:
        if self._rotated is None:
            self._rotated = now
        elif now - self._rotated >= self.window:
            # The new table starts at the size the last window needed: no regrowth each window.
            capacity = max(_MIN_CAPACITY, self._current.mask + 1)
            self._previous, self._current = self._current, _Table(capacity, self.marked)
            self._rotated = now
