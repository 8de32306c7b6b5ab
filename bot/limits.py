"""Per-user message limits, kept in memory: a flood is a moment, not a record worth storing.

The check runs on the event loop for every update, so its cost must not grow with the number of
users: users are kept in the order they were last seen, and each call drops from the front those
not seen for a whole window (each user is dropped at most once per visit: O(1) amortised).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class _Seen:
    """One user's accepted updates within the window, when they were last seen and warned."""

    __slots__ = ("times", "touched", "warned")

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.touched = 0.0
        self.warned: float | None = None


class MessageLimiter:
    """At most `limit` updates per `window` seconds per user; warns once per window when hit.

    Staff are trusted (`trust`): keeping a prisoner's record current is many presses a minute,
    and their accounts are granted by admins, not opened by strangers."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._seen: OrderedDict[int, _Seen] = OrderedDict()  # least recently seen first
        self._trusted: set[int] = set()

    def trust(self, user_id: int, trusted: bool = True) -> None:
        """Exempt a staff member (or, with False, no longer: a revoked role)."""
        if trusted:
            self._trusted.add(user_id)
        else:
            self._trusted.discard(user_id)

    def allow(self, user_id: int) -> bool:
        if user_id in self._trusted:
            return True
        now = self._clock()
        seen = self._touch(user_id, now)
        times = seen.times
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def should_warn(self, user_id: int) -> bool:
        """True for the first refused update of a window, so the user is told once, calmly."""
        now = self._clock()
        seen = self._touch(user_id, now)
        if seen.warned is not None and now - seen.warned < self.window:
            return False
        seen.warned = now
        return True

    def tracked(self) -> int:
        """How many users are held in memory (those seen within about one window)."""
        return len(self._seen)

    def _touch(self, user_id: int, now: float) -> _Seen:
        """The user's entry, moved to the back; users idle for a window leave from the front.

        An idle user's accepted updates and last warning are all older than the window, so
        forgetting them changes no answer."""
        seen = self._seen.get(user_id)
        if seen is None:
            seen = self._seen[user_id] = _Seen()
        else:
            self._seen.move_to_end(user_id)
        seen.touched = now
        cutoff = now - self.window
        while True:
            oldest_id, oldest = next(iter(self._seen.items()))
            if oldest.touched > cutoff or oldest_id == user_id:
                break
            del self._seen[oldest_id]
        return seen
