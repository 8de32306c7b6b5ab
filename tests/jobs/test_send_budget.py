"""Several processes' pacers sharing one send budget (as `deliver` workers and the bot do through
storage/send_budget.py), on a fake clock with a store that behaves like the table: together they
never let more than `rate` sends ARRIVE in any second, whatever delays the requests and the
store's own round trips add."""

from __future__ import annotations

import asyncio
import itertools
import random

from jobs.pacer import Pacer
from storage.send_budget import (
    IN_USE_POLL_SECONDS,
    LEASE_SECONDS,
    RESERVE_AHEAD_SECONDS,
    Taken,
)
from tests.jobs.test_pacer import FakeTime, _busiest_window


class MemoryBudget:
    """The `send_budget` table in memory: rows of (tokens, free_at) on the fake clock; each call
    takes a random round trip, as the database does."""

    def __init__(self, time: FakeTime, rng: random.Random) -> None:
        self.time = time
        self.rng = rng
        self.rows: dict[int, tuple[int, float]] = {}
        self.ids = itertools.count(1)
        self.most_in_use = 0
        self.reserved = 0

    async def take(self, owner: str, want: int, capacity: int) -> Taken:
        await self.time.sleep(self.rng.uniform(0.0, 0.02))
        now = self.time.now
        self.rows = {key: row for key, row in self.rows.items() if row[1] > now}
        used = sum(tokens for tokens, _ in self.rows.values())
        if used >= capacity:  # reserve the group of answers that frees soonest, as the table does
            given_back = [
                (free, key)
                for key, (tokens, free) in self.rows.items()
                if tokens > 0 and free <= now + RESERVE_AHEAD_SECONDS
            ]
            if not given_back:  # only slices in use
                return Taken(None, 0, IN_USE_POLL_SECONDS)
            free, key = min(given_back)
            tokens = min(want, self.rows[key][0])
            self.rows[key] = (self.rows[key][0] - tokens, free)
            slice_id = next(self.ids)
            self.rows[slice_id] = (tokens, now + LEASE_SECONDS)
            self.reserved += 1
            await self.time.sleep(self.rng.uniform(0.0, 0.02))
            return Taken(slice_id, tokens, usable_in=free - now)
        tokens = min(want, capacity - used)
        slice_id = next(self.ids)
        self.rows[slice_id] = (tokens, now + LEASE_SECONDS)
        self.most_in_use = max(self.most_in_use, used + tokens)
        await self.time.sleep(self.rng.uniform(0.0, 0.02))  # the commit comes back later
        return Taken(slice_id, tokens)

    async def give_back(self, slice_id: int, owner: str, answered: list[tuple[float, int]]) -> None:
        await self.time.sleep(self.rng.uniform(0.0, 0.05))
        now = self.time.now
        self.rows.pop(slice_id, None)
        for after, tokens in answered:
            self.rows[next(self.ids)] = (tokens, now + after)


async def test_three_processes_sharing_a_budget_never_exceed_the_rate_together() -> None:
    time = FakeTime()
    rng = random.Random(11)
    store = MemoryBudget(time, rng)
    pacers = []
    for number in range(3):  # each would allow the whole rate on its own
        pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
        pacer.share(store, owner=f"p{number}")
        pacers.append(pacer)
    arrivals: list[float] = []
    by_pacer = [0, 0, 0]

    async def one(chat: int) -> None:
        number = chat % 3
        pacer = pacers[number]
        ticket = await pacer.wait_turn(chat)
        assert ticket is not None
        await time.sleep(rng.uniform(0.0, 0.4))  # a busy machine, a slow network
        arrivals.append(time.now)
        by_pacer[number] += 1
        pacer.finish(ticket)

    await time.run([asyncio.create_task(one(chat)) for chat in range(360)])
    assert len(arrivals) == 360 and min(by_pacer) == 120
    assert _busiest_window(sorted(arrivals), 1.0) <= 30
    assert store.most_in_use <= 30
    assert store.reserved > 0  # tokens taken ahead of their freeing were used too


async def test_a_budget_alone_still_keeps_the_pace_of_one_pacer() -> None:
    """With the budget, one process never sends more than the rate either (its own window and
    the shared one agree), and every send gets its turn."""
    time = FakeTime()
    store = MemoryBudget(time, random.Random(3))
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    pacer.share(store, owner="alone")
    arrivals: list[float] = []

    async def one(chat: int) -> None:
        ticket = await pacer.wait_turn(chat)
        assert ticket is not None
        await time.sleep(0.002)
        arrivals.append(time.now)
        pacer.finish(ticket)

    await time.run([asyncio.create_task(one(chat)) for chat in range(120)])
    assert len(arrivals) == 120
    assert _busiest_window(sorted(arrivals), 1.0) <= 30
