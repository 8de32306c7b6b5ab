"""Waiting for states the bot does not announce: an idle update processor, a settled outbox.

These poll a cheap condition until a deadline; they never decide a test by elapsed time (a slow
machine only waits longer). Prefer the sandbox's `wait_*` helpers, which wake on changes, where
the thing awaited is a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.inbox import inbox_of
from storage import outbox
from storage.db import make_engine, make_session_factory
from storage.enums import OutboxStatus
from tests.support.harness import BotHarness

POLL_SECONDS = 0.02


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {within}s")
        await asyncio.sleep(POLL_SECONDS)


async def wait_until_idle(bot: BotHarness, within: float = 30.0) -> None:
    """Every update the sandbox handed out has been fetched and fully processed."""
    await bot.sandbox.wait_for_updates_consumed(timeout=within)

    async def idle() -> bool:
        app = bot.application
        assert app is not None
        inbox = inbox_of(app)
        return (
            app.update_queue.empty()
            and app.update_processor.current_concurrent_updates == 0
            and (inbox is None or inbox.idle)
        )

    await eventually(idle, "an idle update processor", within)


async def outbox_counts(bot: BotHarness) -> dict[OutboxStatus, int]:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        return await outbox.counts(session)


async def outbox_counts_after_kill(bot: BotHarness) -> dict[OutboxStatus, int]:
    """The outbox counts read on an engine of their own: the killed bot's services are gone."""
    engine = make_engine(bot.settings.database_url)
    try:
        async with make_session_factory(engine)() as session:
            return await outbox.counts(session)
    finally:
        await engine.dispose()


async def settled(bot: BotHarness, within: float = 10.0) -> dict[OutboxStatus, int]:
    """The outbox counts once no row is pending or in flight (rows are marked after the send)."""

    async def done() -> bool:
        counts = await outbox_counts(bot)
        return counts[OutboxStatus.PENDING] == counts[OutboxStatus.SENDING] == 0

    await eventually(done, "a settled outbox", within)
    return await outbox_counts(bot)
