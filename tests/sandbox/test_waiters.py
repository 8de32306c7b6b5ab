"""The harness tells the truth: a confirmation wakes whoever waits for it, and a wait that runs
out fails the test instead of passing it late (issue 16).

Before this, a getUpdates that confirmed earlier updates woke nobody, so `wait_until_idle` slept
its whole timeout and then reported success (the bad-input test took ~95 s instead of ~10)."""

from __future__ import annotations

import asyncio

import pytest
from telegram import Bot

from bot.sandbox.server import SandboxServer
from bot.sandbox.state import World
from tests.support.harness import BotHarness
from tests.support.waiting import eventually, wait_until_idle

FAMILY = 1001
LOOP_TURNS = 100
"""Event-loop turns a woken waiter is given to finish (no clock involved)."""


async def settle(task: asyncio.Task[None]) -> None:
    for _ in range(LOOP_TURNS):
        if task.done():
            return
        await asyncio.sleep(0)


async def test_a_confirming_getupdates_wakes_whoever_waits(server: SandboxServer, bot: Bot) -> None:
    await server.send_text(FAMILY, "hello")
    (update,) = await bot.get_updates(timeout=0)  # handed out, not yet confirmed
    assert len(server.pending_updates) == 1
    waiter = asyncio.create_task(server.wait_for_updates_consumed(timeout=3600))
    await settle(waiter)
    assert not waiter.done()  # still waiting: nothing was confirmed
    await bot.get_updates(offset=update.update_id + 1, timeout=0)
    await settle(waiter)
    try:
        assert waiter.done(), "the confirmation woke nobody"
        await waiter
    finally:
        waiter.cancel()
    assert server.pending_updates == []


async def test_confirming_updates_wakes_waiters_by_itself() -> None:
    """The queue shrinking is what wakes them, whatever else the server notifies about (over
    HTTP, the poll's own start also notifies, which hid a missing wake-up here)."""
    world = World()
    first = world.push_update({"message": {"text": "a"}})
    world.push_update({"message": {"text": "b"}})

    async def consumed() -> None:
        assert await world.notifier.wait_until(lambda: not world.updates, 3600)

    waiter = asyncio.create_task(consumed())
    await settle(waiter)
    assert world.confirm_updates(0) == 0  # no offset: nothing confirmed
    assert world.confirm_updates(first["update_id"] + 1) == 1
    await settle(waiter)
    assert not waiter.done()  # one update still waits
    assert world.confirm_updates(-1) == 0  # keep the last one: it is the last one
    assert world.confirm_updates(first["update_id"] + 2) == 1
    await settle(waiter)
    try:
        assert waiter.done(), "the confirmation woke nobody"
        await waiter
    finally:
        waiter.cancel()


async def test_a_condition_that_came_true_unannounced_fails_the_wait() -> None:
    """A change nobody announced is a missing wake-up: the wait fails at its timeout instead of
    finding the condition true then and passing late."""
    world = World()
    state = {"done": False}

    async def change_quietly() -> None:
        state["done"] = True  # no notify()

    quiet = asyncio.create_task(change_quietly())  # runs as soon as the waiter awaits
    assert not await world.notifier.wait_until(lambda: state["done"], 0.2)
    await quiet
    assert state["done"]
    assert await world.notifier.wait_until(lambda: state["done"], 0.2)  # true at the start


async def test_a_wait_that_runs_out_fails(server: SandboxServer) -> None:
    with pytest.raises(AssertionError, match="not met"):
        await server.wait_for(lambda: False, timeout=0.01)
    await server.send_text(FAMILY, "never fetched")
    with pytest.raises(AssertionError):
        await server.wait_for_updates_consumed(timeout=0.01)
    with pytest.raises(AssertionError, match="expected 1 bot messages"):
        await server.wait_for_messages(FAMILY, 1, timeout=0.01)

    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="not reached within"):
        await eventually(never, "never", within=0.01)


async def test_idle_after_an_update_that_gets_no_reply(running_bot: BotHarness) -> None:
    """A channel post gets no answer, so no message wakes the idle wait: only the confirmation
    (the bot's next getUpdates) can. Without that wake-up this wait failed at its timeout."""
    chat = {"id": -100_555, "type": "channel", "title": "c"}
    await running_bot.sandbox.send_update(
        {"channel_post": {"message_id": 1, "date": 0, "chat": chat, "text": "."}}
    )
    await wait_until_idle(running_bot, within=10)
    assert running_bot.sandbox.pending_updates == []
