"""The sliding-window flood logic, with a fake clock."""

from __future__ import annotations

from bot.sandbox.flood import FloodLimiter, SlidingWindow, retry_after_seconds


def test_window_counts_the_last_second_only() -> None:
    window = SlidingWindow(2, 1.0)
    window.record(10.0)
    window.record(10.5)
    assert round(window.wait_time(10.6), 6) == 0.4
    assert window.wait_time(10.99) > 0
    assert window.wait_time(11.0) == 0.0


def test_retry_after_is_a_whole_second_at_least() -> None:
    assert retry_after_seconds(0.01) == 1
    assert retry_after_seconds(1.2) == 2


def test_limiter_per_chat_and_overall() -> None:
    limiter = FloodLimiter(overall_per_second=3, per_chat_per_second=1, group_per_minute=None)
    assert limiter.check(1, 0.0) is None
    assert limiter.check(1, 0.1) == 1
    assert limiter.check(2, 0.1) is None
    assert limiter.check(3, 0.2) is None
    assert limiter.check(4, 0.3) == 1  # overall 3/s reached
    assert limiter.check(4, 1.05) is None


def test_groups_per_minute() -> None:
    limiter = FloodLimiter(None, None, group_per_minute=2)
    assert limiter.check(-5, 0.0) is None
    assert limiter.check(-5, 1.0) is None
    assert limiter.check(-5, 2.0) == 58
    assert limiter.check(7, 2.0) is None  # private chats are not group-limited
