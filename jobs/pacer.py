"""The pacer: when each outgoing message may start, so that Telegram's limits are never exceeded.

Telegram counts every message a bot sends against the same limits: about 30 a second overall,
one a second per chat, 20 a minute per group. One `Pacer` per process is shared by the delivery
job (jobs/delivery.py) and the Application's rate limiter (bot/pacing.py), which takes urgent
turns for the replies people are waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable

PER_CHAT_INTERVAL = 1.0
GROUP_INTERVAL = 3.0
"""Telegram lets a bot send about 20 messages a minute to one group."""
WINDOW_MARGIN = 0.03
"""Seconds added to each window: headroom for the replies people are waiting for, which go out
beside the outbox (the Pacer itself does not rely on timing)."""
MAX_NAP = 1.0
"""A waiter re-checks at least this often (seconds): a pause that was lifted, or a send that is
no longer wanted (`give_up`), is noticed without waiting out the whole pause."""


class SendTicket:
    """One send's place in the pacer: `finish` it when the request returned (or failed)."""

    __slots__ = ("_done", "chat_id", "done_at")

    def __init__(self, chat_id: int) -> None:
        self.chat_id = chat_id
        self.done_at: float | None = None
        self._done: asyncio.Future[None] | None = None

    async def finished(self) -> None:
        if self.done_at is None:
            if self._done is None:
                self._done = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._done)  # a cancelled waiter must not cancel the others

    def _mark(self, now: float) -> None:
        self.done_at = now
        if self._done is not None and not self._done.done():
            self._done.set_result(None)


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
                ticket = SendTicket(chat_id)
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
        private chat when the overall window was not full (then it was that chat's limit):
        only that chat waits. Otherwise everything waits."""
        now = self._now()
        started = sum(1 for ticket in self._recent if ticket.done_at is None or
                      ticket.done_at > now - self.span)  # fmt: skip
        if chat_id < 0 or started < self.capacity:
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
        ticket._mark(now)

    def forget_idle_chats(self) -> None:
        now = self._now()
        for chat_id in [c for c, ready in self._chat_next.items() if ready < now]:
            del self._chat_next[chat_id]
