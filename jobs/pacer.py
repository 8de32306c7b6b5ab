"""The pacer: when each outgoing message may start, so that Telegram's limits are never exceeded.

Telegram counts every message a bot sends against the same limits: about 30 a second overall,
one a second per chat, 20 a minute per group. One `Pacer` per process is shared by the delivery
job (jobs/delivery.py) and the Application's rate limiter (bot/pacing.py), which takes urgent
turns for the replies people are waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from storage.send_budget import Taken

log = logging.getLogger(__name__)

PER_CHAT_INTERVAL = 1.0
GROUP_INTERVAL = 3.0
"""Telegram lets a bot send about 20 messages a minute to one group."""
WINDOW_MARGIN = 0.005
"""Seconds added to each window beyond the second. A send's answer proves it arrived, so a send
started a second after another's answer arrives more than a second after it, however late
either ran: the margin only keeps the two off the window's exact edge. Every send of the process
goes through the pacer (replies too), so none needs headroom; each millisecond here is a
millisecond of every token's cycle (30 ms cost 3% of the rate at 30/s)."""
MAX_NAP = 1.0
"""A waiter re-checks at least this often (seconds): a pause that was lifted, or a send that is
no longer wanted (`give_up`), is noticed without waiting out the whole pause."""


class SendTicket:
    """One send's place in the pacer: `finish` it when the request returned (or failed)."""

    __slots__ = ("_done", "chat_id", "done_at", "slice")

    def __init__(self, chat_id: int) -> None:
        self.chat_id = chat_id
        self.done_at: float | None = None
        self._done: asyncio.Future[None] | None = None
        self.slice: BudgetSlice | None = None

    async def finished(self) -> None:
        if self.done_at is None:
            if self._done is None:
                self._done = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._done)  # a cancelled waiter must not cancel the others

    def _mark(self, now: float) -> None:
        self.done_at = now
        if self._done is not None and not self._done.done():
            self._done.set_result(None)


SLICE_SECONDS = 0.05
"""A slice of a shared budget is at most this many seconds' worth of sends: small enough that a
process holds little of the rate others could use, large enough that taking slices costs a few
statements a second."""
SLICE_HOLD = 0.25
"""Tokens of a slice not used within this many seconds go back unused."""
ANSWER_GRANULE = 0.005
"""Answers are given back in groups this many seconds wide (each group dated by its latest)."""


class BudgetStore(Protocol):
    """Where a budget shared by several processes lives (storage/send_budget.py on PostgreSQL)."""

    async def take(self, owner: str, want: int, capacity: int) -> Taken: ...

    async def give_back(
        self, slice_id: int, owner: str, answered: list[tuple[float, int]]
    ) -> None: ...


class BudgetSlice:
    """Tokens this process took from the shared budget: each starts one send."""

    __slots__ = ("answers", "closed", "id", "open", "returned", "taken_at", "tokens", "used")

    def __init__(self, slice_id: int, tokens: int, taken_at: float) -> None:
        self.id = slice_id
        self.tokens = tokens
        self.taken_at = taken_at
        self.used = 0
        self.open = 0
        self.answers: list[float] = []
        self.closed = False
        self.returned = False


class SharedBudget:
    """This process's side of a rate shared with other processes (the bot and its `deliver`
    workers): a send starts only on a token of a slice taken from the store; the slice goes
    back once its sends were answered, each token dated by its own answer, and the store frees
    it `span` (a second and the margin) later. So two sends on one token arrive at least a
    second apart, whichever processes made them and however late they ran: no one-second
    window holds more than `capacity` sends of all processes together."""

    def __init__(
        self,
        store: BudgetStore,
        *,
        capacity: int,
        rate: float,
        span: float,
        owner: str,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.capacity = capacity
        self.span = span
        self.owner = owner
        self.max_slice = max(1, min(capacity, round(rate * SLICE_SECONDS)))
        self._clock = clock
        self._sleep = sleep
        self._current: BudgetSlice | None = None
        self._refilling: asyncio.Future[float] | None = None
        self._wait_until = 0.0
        self._tasks: set[asyncio.Future[None]] = set()
        self._closers: set[asyncio.Future[None]] = set()
        self.slices = 0
        self.failures = 0

    def take(self) -> BudgetSlice | None:
        """A token of the slice in hand, if it has one left and is still fresh."""
        current = self._current
        if current is None:
            return None
        if current.used >= current.tokens or self._clock() >= current.taken_at + SLICE_HOLD:
            self._close(current)
            return None
        current.used += 1
        current.open += 1
        if current.used == current.tokens and self._refilling is None:
            # The next slice is taken while this one's last send waits its spacing: a round
            # trip to the database before each slice would add up to a twentieth of the rate.
            self._spawn(self._prefetch())
        return current

    async def _prefetch(self) -> None:
        await self.refill(self.max_slice)

    async def refill(self, demand: int) -> float:
        """Take a new slice (one taker at a time; the others wait for its result); returns 0
        when there are tokens to take, else how long until the store frees some."""
        now = self._clock()
        if self._wait_until > now:
            return self._wait_until - now
        if self._refilling is not None:
            return await asyncio.shield(self._refilling)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._refilling = future
        wait = 0.0
        try:
            want = self.max_slice if demand > 1 else 1  # one reply alone: hold back no more
            try:
                taken = await self.store.take(self.owner, want, self.capacity)
            except Exception as error:  # the database is away: nothing is sent meanwhile
                self.failures += 1
                log.warning("send budget: no slice taken (%s); trying again", type(error).__name__)
                taken = Taken(None, 0, 0.2)
            if taken.tokens > 0 and taken.slice_id is not None:
                if taken.usable_in > 0:  # reserved: its tokens free then (the others wait too)
                    await self._sleep(taken.usable_in)
                if self._current is not None:
                    self._close(self._current)
                fresh = BudgetSlice(taken.slice_id, taken.tokens, self._clock())
                self._current = fresh
                self.slices += 1
                self._closers.add(self._spawn(self._close_later(fresh)))
            else:
                wait = max(taken.wait, 0.001)
                self._wait_until = self._clock() + wait
        finally:
            self._refilling = None
            future.set_result(wait)
        return wait

    def answered(self, held: BudgetSlice, at: float) -> None:
        """A send on a token of `held` came back (sent, refused or failed) at `at`."""
        held.open -= 1
        held.answers.append(at)
        if held.used >= held.tokens:
            self._close(held)
        else:
            self._give_back_if_done(held)

    def _close(self, held: BudgetSlice) -> None:
        if self._current is held:
            self._current = None
        held.closed = True
        self._give_back_if_done(held)

    async def _close_later(self, held: BudgetSlice) -> None:
        await self._sleep(SLICE_HOLD)
        if not held.closed:
            self._close(held)

    def _give_back_if_done(self, held: BudgetSlice) -> None:
        if not held.closed or held.open > 0 or held.returned:
            return
        held.returned = True
        now = self._clock()
        groups = Counter(
            math.ceil((self.span - (now - at)) / ANSWER_GRANULE) for at in held.answers
        )
        answered = [(group * ANSWER_GRANULE, count) for group, count in groups.items() if group > 0]
        self._spawn(self._give_back(held.id, answered))

    async def _give_back(self, slice_id: int, answered: list[tuple[float, int]]) -> None:
        for attempt in range(3):
            try:
                await self.store.give_back(slice_id, self.owner, answered)
                return
            except Exception as error:  # the slice's lease frees its tokens anyway
                self.failures += 1
                log.warning("send budget: slice not given back (%s)", type(error).__name__)
                await asyncio.sleep(0.1 * (attempt + 1))

    def _spawn(self, work: Awaitable[None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._closers.discard)
        return task

    async def aclose(self) -> None:
        """At a clean stop: the slice in hand goes back (its unused tokens at once)."""
        if self._current is not None:
            self._close(self._current)
        for closer in self._closers:
            closer.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Pacer:
    """At most `rate` sends in any window of one second, one send per chat per second (one per
    GROUP_INTERVAL to a group), and pauses after a RetryAfter. Single-threaded asyncio: no lock.

    Telegram (and the sandbox) count a send when it ARRIVES, which no sender can see, and a
    busy machine can delay a request by any amount between the decision and the wire. So the
    pacer reasons about what it can see: a request arrived no later than its answer came back.
    The k-th send may start only once the (k - rate)-th has been answered and a second (plus
    WINDOW_MARGIN) has passed since: then it arrives at least a second after the other did,
    however late either was scheduled; likewise a chat's next send starts a second after its
    previous one was answered. A late sleeper re-checks everything when it wakes. Sends are also
    spaced 1/rate apart, so a window fills smoothly rather than in a burst.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.interval = 1.0 / rate
        self.capacity = max(1, int(rate))
        self.span = self.capacity / rate + WINDOW_MARGIN
        self._recent: deque[SendTicket] = deque(maxlen=self.capacity)
        self._last_start = -math.inf
        self._chat_next: dict[int, float] = {}
        self._chat_sending: dict[int, SendTicket] = {}
        self._ready: Counter[int] = Counter()  # sends whose chat is ready, by priority
        self.paused_until = 0.0
        self.budget: SharedBudget | None = None

    def share(self, store: BudgetStore, owner: str) -> SharedBudget:
        """From now on every send also takes a token of the budget in `store`, shared with the
        other processes on the same database (the `deliver` workers)."""
        self.budget = SharedBudget(
            store,
            capacity=self.capacity,
            rate=1.0 / self.interval,
            span=self.span,
            owner=owner,
            clock=self._now,
            sleep=self._sleep,
        )
        return self.budget

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    def pause(self, seconds: float) -> None:
        """Everything waits (a RetryAfter for the bot as a whole)."""
        self.paused_until = max(self.paused_until, self._now() + seconds)

    def pause_chat(self, chat_id: int, seconds: float) -> None:
        """Only this chat waits (a group's own limit), the others go on."""
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), self._now() + seconds)

    async def _nap(self, seconds: float) -> None:
        await self._sleep(min(seconds, MAX_NAP))

    async def wait_turn(
        self,
        chat_id: int,
        *,
        urgent: bool = False,
        priority: int = 0,
        give_up: Callable[[], bool] | None = None,
    ) -> SendTicket | None:
        """Sleep until this send may start; the caller sends, then calls `finish(ticket)`.
        Returns None, without a turn, once `give_up()` is true (checked at least every MAX_NAP
        seconds): the sender stopped, or the row is no longer its to send.

        Among sends whose chat is ready, a lower `priority` goes first (the outbox's row
        priority: case alerts before staff notices before broadcasts). An `urgent` send (a reply
        in the conversation a person is having) goes before all of them and keeps to the overall
        window and the pauses but not to its chat's spacing: Telegram allows short bursts in a
        chat, and a conversation must not feel slow. The outbox's next send to that chat still
        waits its second after it."""
        rank = -1 if urgent else priority
        counted = False
        try:
            while True:
                if give_up is not None and give_up():
                    return None
                sending = None if urgent else self._chat_sending.get(chat_id)
                now = self._now()
                chat_ready = 0.0 if urgent else self._chat_next.get(chat_id, 0.0)
                if sending is not None or chat_ready > now:
                    if counted:
                        self._ready[rank] -= 1
                        counted = False
                    if sending is not None:
                        await self._wait_for(sending, bounded=give_up is not None)
                    else:
                        await self._nap(chat_ready - now)
                    continue
                if not counted:
                    self._ready[rank] += 1
                    counted = True
                oldest = self._recent[0] if len(self._recent) == self.capacity else None
                if oldest is not None and oldest.done_at is None:
                    await self._wait_for(oldest, bounded=give_up is not None)
                    continue
                ready = max(
                    self.paused_until,
                    self._last_start + self.interval,
                    oldest.done_at + self.span if oldest and oldest.done_at is not None else 0.0,
                )
                if ready > now:
                    await self._nap(ready - now)
                    continue
                if any(count and other < rank for other, count in self._ready.items()):
                    await self._nap(self.interval)  # a more pressing send goes first
                    continue
                held = None
                if self.budget is not None:  # other processes send on the same rate
                    held = self.budget.take()
                    if held is None:
                        wait = await self.budget.refill(max(1, sum(self._ready.values())))
                        if wait > 0:
                            await self._nap(wait)
                        continue
                ticket = SendTicket(chat_id)
                ticket.slice = held
                self._recent.append(ticket)
                if not urgent:
                    self._chat_sending[chat_id] = ticket
                self._last_start = now
                return ticket
        finally:
            if counted:
                self._ready[rank] -= 1

    @staticmethod
    async def _wait_for(ticket: SendTicket, *, bounded: bool) -> None:
        """Until that send came back; `bounded`: at most MAX_NAP (to check `give_up`)."""
        if not bounded:
            await ticket.finished()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.finished(), MAX_NAP)

    def refused(self, chat_id: int, seconds: float) -> None:
        """Telegram said RetryAfter for a send to `chat_id`. A group has its own limit; so does a
        private chat when the overall window was not full, or when another send to it came
        back within the second (a reply right after a reply: then it was that chat's limit):
        only that chat waits. Otherwise everything waits. (During a broadcast the window is
        always full: every staff member's second reply in a row paused all sending, a family's
        alert too, for the `retry_after`.)"""
        now = self._now()
        recent = [ticket for ticket in self._recent if ticket.done_at is None or
                  ticket.done_at > now - self.span]  # fmt: skip
        to_this_chat = sum(1 for ticket in recent if ticket.chat_id == chat_id)
        if chat_id < 0 or len(recent) < self.capacity or to_this_chat > 1:
            self.pause_chat(chat_id, seconds)
        else:
            self.pause(seconds)

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int, *, urgent: bool = False) -> AsyncIterator[SendTicket]:
        """`async with pacer.turn(chat):` send inside; the ticket is finished however it ends."""
        ticket = await self.wait_turn(chat_id, urgent=urgent)
        assert ticket is not None  # only a `give_up` makes it None
        try:
            yield ticket
        finally:
            self.finish(ticket)

    def finish(self, ticket: SendTicket) -> None:
        """The request came back (sent, refused or failed): its window and its chat move on."""
        now = self._now()
        interval = GROUP_INTERVAL if ticket.chat_id < 0 else PER_CHAT_INTERVAL
        self._chat_next[ticket.chat_id] = max(
            self._chat_next.get(ticket.chat_id, 0.0), now + interval + WINDOW_MARGIN
        )
        if self._chat_sending.get(ticket.chat_id) is ticket:
            del self._chat_sending[ticket.chat_id]
        if ticket.slice is not None and self.budget is not None:
            self.budget.answered(ticket.slice, now)
            ticket.slice = None
        ticket._mark(now)

    def forget_idle_chats(self) -> None:
        now = self._now()
        for chat_id in [c for c, ready in self._chat_next.items() if ready < now]:
            del self._chat_next[chat_id]
