"""The delivery pacer alone, on a fake clock: never more than `rate` sends in a window, one per
chat per second, and a stalled event loop does not bunch the sleepers into one window."""

from __future__ import annotations

import asyncio
import heapq
import itertools

from jobs.delivery import PER_CHAT_INTERVAL, WINDOW_MARGIN, Pacer


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


async def _send_times(pacer: Pacer, chats: list[int], time: FakeTime) -> list[float]:
    times: list[float] = []

    async def one(chat: int) -> None:
        await pacer.wait_turn(chat)
        times.append(time.now)

    await time.run([asyncio.create_task(one(chat)) for chat in chats])
    return sorted(times)


def _busiest_window(times: list[float], span: float) -> int:
    return max(sum(1 for t in times if start <= t < start + span) for start in times)


async def test_never_more_than_rate_in_any_second() -> None:
    time = FakeTime()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    times = await _send_times(pacer, list(range(300)), time)
    assert len(times) == 300
    assert _busiest_window(times, 1.0 + WINDOW_MARGIN / 2) <= 30
    assert times[-1] - times[0] < 300 / 30 * 1.1  # and not much slower than the rate


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
    assert _busiest_window(first + later, 1.0 + WINDOW_MARGIN / 2) <= 30
