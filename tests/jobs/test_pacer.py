"""The delivery pacer alone, on a fake clock: never more than `rate` sends ARRIVE in any window,
one per chat per second, whatever delays the machine adds between the pacer's decision and the
request's arrival, and a stalled event loop does not bunch the sleepers into one window."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random

from jobs.pacer import GROUP_INTERVAL, MAX_NAP, PER_CHAT_INTERVAL, Pacer


class FakeTime:
    """Virtual time for the pacer: sleepers wake in time order, the clock jumps to each wake-up.

    `stall_next` makes the next jump overshoot, as a frozen event loop does: every sleeper due by
    then wakes at once, late.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.stall_next = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), self._count, future))
        await future

    async def run(self, tasks: list[asyncio.Task[None]]) -> None:
        while not all(task.done() for task in tasks):
            for _ in range(10):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if not self._sleepers:
                continue
            self.now = max(self.now, self._sleepers[0][0]) + self.stall_next
            self.stall_next = 0.0
            while self._sleepers and self._sleepers[0][0] <= self.now:
                heapq.heappop(self._sleepers)[2].set_result(None)


async def _send_times(
    pacer: Pacer, chats: list[int], time: FakeTime, delays: random.Random | None = None
) -> list[float]:
    """When each send ARRIVES: it starts when the pacer says, then travels a delay (random up
    to 0.4 s with `delays`: a busy machine, a slow network), and its answer comes back at once."""
    arrivals: list[float] = []

    async def one(chat: int) -> None:
        ticket = await pacer.wait_turn(chat)
        await time.sleep(delays.uniform(0.0, 0.4) if delays else 0.002)
        arrivals.append(time.now)
        pacer.finish(ticket)

    await time.run([asyncio.create_task(one(chat)) for chat in chats])
    return sorted(arrivals)


def _busiest_window(times: list[float], span: float) -> int:
    return max(sum(1 for t in times if start <= t < start + span) for start in times)


async def test_never_more_than_rate_in_any_second() -> None:
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    times = await _send_times(pacer, list(range(300)), time)
    assert len(times) == 300
    assert _busiest_window(times, 1.0) <= 30
    assert times[-1] - times[0] < 300 / 30 * 1.1  # and not much slower than the rate


async def test_late_arrivals_never_crowd_a_window() -> None:
    """The requests travel up to 0.4 s, each a different time: a pacer that spaced only its
    decisions would let a slow one arrive together with the next second's."""
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    times = await _send_times(pacer, list(range(600)), time, random.Random(7))
    assert len(times) == 600
    assert _busiest_window(times, 1.0) <= 30


async def test_a_group_gets_one_message_every_three_seconds() -> None:
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    times = await _send_times(pacer, [-100500] * 4, time)
    assert all(b - a >= GROUP_INTERVAL for a, b in itertools.pairwise(times))


async def test_one_chat_gets_one_message_per_second() -> None:
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    times = await _send_times(pacer, [7, 7, 7], time)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= PER_CHAT_INTERVAL for gap in gaps)


async def test_a_stalled_loop_does_not_bunch_the_sleepers() -> None:
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    first = await _send_times(pacer, list(range(30)), time)
    time.stall_next = 0.5  # the loop froze: the next sleeper wakes half a second late
    later = await _send_times(pacer, list(range(100, 160)), time)
    assert _busiest_window(first + later, 1.0) <= 30


async def test_a_reply_someone_waits_for_goes_before_the_outbox() -> None:
    """Sixty outbox sends wait their turn; a reply asked for now starts before all of them."""
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    order: list[str] = []

    async def send(name: str, chat: int, urgent: bool) -> None:
        ticket = await pacer.wait_turn(chat, urgent=urgent)
        order.append(name)
        await time.sleep(0.002)
        pacer.finish(ticket)

    tasks = [asyncio.create_task(send(f"outbox {n}", n, False)) for n in range(60)]
    for _ in range(10):
        await asyncio.sleep(0)
    tasks.append(asyncio.create_task(send("reply", 1000, True)))
    await time.run(tasks)
    assert order.index("reply") <= 2


async def test_lower_priority_rows_wait_for_the_pressing_ones() -> None:
    """Sixty broadcast rows wait; a staff notice queued after them starts before most of them."""
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    order: list[str] = []

    async def send(name: str, chat: int, priority: int) -> None:
        ticket = await pacer.wait_turn(chat, priority=priority)
        order.append(name)
        await time.sleep(0.002)
        pacer.finish(ticket)

    tasks = [asyncio.create_task(send(f"broadcast {n}", n, 100)) for n in range(60)]
    for _ in range(10):
        await asyncio.sleep(0)
    tasks.append(asyncio.create_task(send("notice", 1000, 10)))
    await time.run(tasks)
    assert order.index("notice") <= 2


async def test_a_429_pauses_one_chat_unless_the_window_was_full() -> None:
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    ticket = await pacer.wait_turn(5)
    pacer.finish(ticket)
    pacer.refused(5, 3.0)  # one send in the last second: that chat's own limit
    assert pacer.paused_until == 0.0
    await _send_times(pacer, list(range(100, 130)), time)
    pacer.refused(7, 3.0)  # thirty in the last second: the bot's overall limit
    assert pacer.paused_until > time.now


async def test_a_429_for_a_second_reply_in_a_row_pauses_only_that_chat_in_a_full_window() -> None:
    """During a broadcast the window is always full. A staff member's second reply in a row
    (the confirmation, then the card) is refused for the chat's own limit: pausing every send
    for it held a family's alert back by the `retry_after`, at each status change."""
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)

    async def reply(chat: int) -> None:  # urgent: no chat spacing
        ticket = await pacer.wait_turn(chat, urgent=True)
        await time.sleep(0.002)
        pacer.finish(ticket)

    await _send_times(pacer, list(range(100, 130)), time)  # the broadcast: the window is full
    await time.run([asyncio.create_task(reply(7))])
    await time.run([asyncio.create_task(reply(7))])
    pacer.refused(7, 1.0)
    assert pacer.paused_until <= time.now  # the others go on
    pacer.refused(8, 1.0)  # a chat that had nothing this second: the bot's overall limit
    assert pacer.paused_until > time.now


async def test_a_waiter_gives_up_during_a_long_pause_and_a_lifted_pause_is_noticed() -> None:
    """A row no longer ours (or a stopping bot) stops waiting within MAX_NAP, not after the
    hour-long pause; and a pause that is lifted early lets the others go within MAX_NAP."""
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    pacer.pause(3600)
    lost = [False]
    turns: dict[str, float | None] = {}

    async def wait(name: str, chat: int, give_up: list[bool]) -> None:
        ticket = await pacer.wait_turn(chat, give_up=lambda: give_up[0])
        turns[name] = None if ticket is None else time.now
        if ticket is not None:
            pacer.finish(ticket)

    async def events() -> None:
        await time.sleep(5)
        lost[0] = True
        await time.sleep(5)
        pacer.paused_until = 0.0

    await time.run(
        [
            asyncio.create_task(wait("lost", 1, lost)),
            asyncio.create_task(wait("kept", 2, [False])),
            asyncio.create_task(events()),
        ]
    )
    assert turns["lost"] is None
    kept = turns["kept"]
    assert kept is not None and 10 <= kept <= 10 + MAX_NAP
