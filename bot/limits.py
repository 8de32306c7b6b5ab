"""Per-user message limits, kept in memory: a flood is a moment, not a record worth storing."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


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
        self._seen: dict[int, deque[float]] = {}
        self._warned_at: dict[int, float] = {}
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
        seen = self._seen.setdefault(user_id, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        if len(self._seen) > 10_000:
            self._forget_idle(now)
        return True

    def should_warn(self, user_id: int) -> bool:
        """True for the first refused update of a window, so the user is told once, calmly."""
        now = self._clock()
        last = self._warned_at.get(user_id)
        if last is not None and now - last < self.window:
            return False
        self._warned_at[user_id] = now
        return True

    def _forget_idle(self, now: float) -> None:
        for user_id in [u for u, s in self._seen.items() if not s or s[-1] <= now - self.window]:
            del self._seen[user_id]
            self._warned_at.pop(user_id, None)
