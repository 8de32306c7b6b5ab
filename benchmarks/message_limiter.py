"""Benchmark: the per-user message limiter's cost per call with many users in one window.

The limiter runs on the event loop before every update. It is called here for 1,000 users and
for 50,000 users (each seen once a window, as a busy day looks), on a clock that moves 1 ms a
call, and the cost per call is compared: flat is a ratio near 1.

    python -m benchmarks.message_limiter [--users 50000] [--calls 200000]
"""

from __future__ import annotations

import argparse
import time

from bot.limits import MessageLimiter


def per_call(users: int, calls: int) -> float:
    """Seconds per `allow` call, users taking turns, the window a minute."""
    now = [0.0]

    def clock() -> float:
        return now[0]

    limiter = MessageLimiter(20, window=60.0, clock=clock)
    step = 60.0 / users  # every user once a minute: all of them inside the window
    for user in range(users):  # warm: every user known
        limiter.allow(user)
        now[0] += step
    started = time.perf_counter()
    for call in range(calls):
        limiter.allow(call % users)
        now[0] += step
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    small = per_call(1_000, args.calls)
    large = per_call(args.users, args.calls)
    print(f"1,000 users:   {small * 1e6:6.2f} µs per call")
    print(f"{args.users:,} users: {large * 1e6:6.2f} µs per call")
    print(f"ratio large/small: {large / small:.2f} (flat = 1)")


if __name__ == "__main__":
    main()
