"""The update processor: one user's updates in order, at most N handled at once, and a user's
queued updates hold no place (so one user's backlog cannot stall the others)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from telegram import Chat, Message, Update, User

from bot.update_processor import (
    DELIVERY_SENDS,
    PerUserUpdateProcessor,
    connection_pool_size,
)


def _update(update_id: int, user_id: int) -> Update:
    user = User(user_id, "x", is_bot=False)
    chat = Chat(user_id, Chat.PRIVATE)
    return Update(update_id, message=Message(update_id, datetime.now(UTC), chat, from_user=user))


async def test_a_users_backlog_holds_no_place_and_the_cap_holds() -> None:
    processor = PerUserUpdateProcessor(max_concurrent_updates=2)
    release = asyncio.Event()
    running = 0
    most = 0
    order: list[int] = []
    other_started = asyncio.Event()

    async def handle(update_id: int, *, other: bool = False) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        order.append(update_id)
        if other:
            other_started.set()
        await release.wait()
        running -= 1

    tasks = [
        asyncio.create_task(processor.process_update(_update(i, 1), handle(i))) for i in range(10)
    ]
    await asyncio.sleep(0)
    tasks.append(
        asyncio.create_task(processor.process_update(_update(99, 2), handle(99, other=True)))
    )
    # User 1 has one update handled and nine waiting for it; user 2's still gets a place.
    await asyncio.wait_for(other_started.wait(), timeout=5)
    assert processor.busy(1) and processor.busy(2)
    release.set()
    await asyncio.gather(*tasks)
    assert most <= 2
    assert [i for i in order if i != 99] == list(range(10))  # one user's in order
    assert not processor.busy(1) and not processor.busy(2)


async def test_at_most_the_cap_run_at_once_across_users() -> None:
    processor = PerUserUpdateProcessor(max_concurrent_updates=3)
    running = 0
    most = 0
    gate = asyncio.Event()

    async def handle() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await gate.wait()
        running -= 1

    tasks = [
        asyncio.create_task(processor.process_update(_update(i, 100 + i), handle()))
        for i in range(20)
    ]
    for _ in range(5):
        await asyncio.sleep(0)
    assert running == 3
    gate.set()
    await asyncio.gather(*tasks)
    assert most == 3


def test_the_pool_has_a_connection_for_every_request_in_flight() -> None:
    assert connection_pool_size(32) >= 32 + DELIVERY_SENDS
