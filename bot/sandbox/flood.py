"""Telegram-like flood limits: sliding windows over recent sends.

Kept pure (the caller passes the clock) so the window logic is tested without sleeping.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


class SlidingWindow:
    """At most `limit` events in any `window` seconds."""

    def __init__(self, limit: float, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._events: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._events and self._events[0] <= now - self.window:
            self._events.popleft()

    def wait_time(self, now: float) -> float:
        """Seconds until one more event fits; 0.0 when it fits now."""
        self._expire(now)
        if len(self._events) < self.limit:
            return 0.0
        index = len(self._events) - int(self.limit)
        return max(0.0, self._events[max(index, 0)] + self.window - now)

    def record(self, now: float) -> None:
        self._events.append(now)

    def __len__(self) -> int:
        return len(self._events)


def retry_after_seconds(wait: float) -> int:
    """Telegram's `retry_after` is a whole number of seconds, at least 1."""
    return max(1, math.ceil(wait))


@dataclass
class FloodLimiter:
    """Overall, per-chat and per-group windows; `None` switches a limit off."""

    overall_per_second: float | None = None
    per_chat_per_second: float | None = None
    group_per_minute: float | None = None
    _overall: SlidingWindow | None = None
    _chats: dict[int, SlidingWindow] = field(default_factory=dict)
    _groups: dict[int, SlidingWindow] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.overall_per_second is not None:
            self._overall = SlidingWindow(self.overall_per_second, 1.0)

    @property
    def enabled(self) -> bool:
        return (
            self.overall_per_second is not None
            or self.per_chat_per_second is not None
            or self.group_per_minute is not None
        )

    def _windows(self, chat_id: int | None) -> list[SlidingWindow]:
        windows: list[SlidingWindow] = []
        if self._overall is not None:
            windows.append(self._overall)
        if chat_id is not None and self.per_chat_per_second is not None:
            windows.append(
                self._chats.setdefault(chat_id, SlidingWindow(self.per_chat_per_second, 1.0))
            )
        if chat_id is not None and chat_id < 0 and self.group_per_minute is not None:
            windows.append(
                self._groups.setdefault(chat_id, SlidingWindow(self.group_per_minute, 60.0))
            )
        return windows

    def check(self, chat_id: int | None, now: float) -> int | None:
        """Record a send and return None, or return `retry_after` when it must be refused."""
        windows = self._windows(chat_id)
        wait = max((window.wait_time(now) for window in windows), default=0.0)
        if wait > 0:
            return retry_after_seconds(wait)
        for window in windows:
            window.record(now)
        return None
