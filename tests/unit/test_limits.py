"""The per-user message limiter: its answers, and that it forgets idle users as it goes."""

from __future__ import annotations

from bot.limits import MessageLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limit_per_window_and_one_warning_per_window() -> None:
    clock = Clock()
    limiter = MessageLimiter(3, window=60.0, clock=clock)
    assert [limiter.allow(1) for _ in range(4)] == [True, True, True, False]
    assert limiter.should_warn(1) is True
    assert limiter.allow(1) is False
    assert limiter.should_warn(1) is False  # told once
    assert limiter.allow(2) is True  # another user is not held back
    clock.now += 60.0
    assert limiter.allow(1) is True  # the window moved on
    assert [limiter.allow(1) for _ in range(3)] == [True, True, False]
    assert limiter.should_warn(1) is True  # a new window, one new warning


def test_sliding_window_counts_only_the_last_window() -> None:
    clock = Clock()
    limiter = MessageLimiter(2, window=10.0, clock=clock)
    assert limiter.allow(7) is True
    clock.now += 6
    assert limiter.allow(7) is True
    clock.now += 3
    assert limiter.allow(7) is False  # two within the last 10 s
    clock.now += 1.5  # the first one is now 10.5 s old
    assert limiter.allow(7) is True
    assert limiter.allow(7) is False


def test_staff_are_trusted_until_revoked() -> None:
    limiter = MessageLimiter(1, clock=Clock())
    limiter.trust(5)
    assert all(limiter.allow(5) for _ in range(100))
    limiter.trust(5, False)
    assert limiter.allow(5) is True
    assert limiter.allow(5) is False


def test_idle_users_are_forgotten_as_others_arrive() -> None:
    """Memory is the users seen within one window, whatever the total: 50,000 users in one
    minute, then one user a minute later, leaves one tracked."""
    clock = Clock()
    limiter = MessageLimiter(20, window=60.0, clock=clock)
    for user in range(50_000):
        assert limiter.allow(user)
        clock.now += 0.001
    assert limiter.tracked() == 50_000
    clock.now += 60.0
    assert limiter.allow(999_999)
    assert limiter.tracked() == 1


def test_a_forgotten_user_starts_afresh_and_is_warned_again() -> None:
    clock = Clock()
    limiter = MessageLimiter(1, window=60.0, clock=clock)
    assert limiter.allow(1) is True
    assert limiter.allow(1) is False
    assert limiter.should_warn(1) is True
    clock.now += 61
    assert limiter.allow(2) is True  # user 1 leaves the front
    assert limiter.tracked() == 1
    assert limiter.allow(1) is True
    assert limiter.allow(1) is False
    assert limiter.should_warn(1) is True


def test_a_busy_user_in_front_keeps_their_history() -> None:
    """Cleanup stops at the first user seen within the window: nobody active is forgotten."""
    clock = Clock()
    limiter = MessageLimiter(2, window=60.0, clock=clock)
    limiter.allow(1)
    limiter.allow(1)
    clock.now += 30
    limiter.allow(2)
    clock.now += 20
    assert limiter.allow(1) is False  # still two within the window
    assert limiter.tracked() == 2
