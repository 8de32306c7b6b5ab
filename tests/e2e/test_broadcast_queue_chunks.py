"""A large broadcast is queued a chunk per transaction (no long write lock), and a process that
dies between two chunks is continued by the next start: every recipient exactly once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, func, select

from bot.callbacks import BROADCAST
from jobs.broadcast_progress import reporter_of
from storage import broadcasts
from storage.db import make_engine, make_session_factory
from storage.enums import BroadcastStatus, OutboxKind, OutboxStatus
from storage.models import Broadcast, OutboxMessage
from tests.handlers.test_broadcast import ADMIN, begin, no_more_languages, seed_users
from tests.support.harness import BotHarness

CHUNK = 100
USERS = 250  # and the admin: 251 recipients, three chunks (100, 100, 51)


async def press_send(bot: BotHarness, text: str) -> int:
    """The real /broadcast conversation up to Send; returns the progress message's id."""
    sandbox = bot.sandbox
    await begin(bot)
    await sandbox.send_text(ADMIN, text)
    await no_more_languages(bot)
    ask_photo = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, ask_photo.message_id, BROADCAST.build("nophoto"))
    await sandbox.next_message(ADMIN)  # the preview
    confirm = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, confirm.message_id, BROADCAST.build("send"))
    return (await sandbox.next_message(ADMIN)).message_id


def received(bot: BotHarness, text: str) -> dict[int, int]:
    """The announcements each chat got (the admin's preview of it not counted)."""
    counts: dict[int, int] = {ADMIN: -1}
    for send in bot.sandbox.stats.sends:
        if send.method == "sendMessage" and send.text == text:
            counts[send.chat_id] = counts.get(send.chat_id, 0) + 1
    return counts


async def rows_per_chat(bot: BotHarness) -> dict[int, int]:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        found = await session.execute(
            select(OutboxMessage.chat_id, func.count())
            .where(OutboxMessage.kind == OutboxKind.BROADCAST)
            .group_by(OutboxMessage.chat_id)
        )
        return {chat: number for chat, number in found}


async def the_broadcast(bot: BotHarness) -> Broadcast:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        found: Broadcast | None = await session.scalar(select(Broadcast))
        assert found is not None
        return found


async def test_queued_in_chunks_each_its_own_transaction(
    running_bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broadcasts, "QUEUE_CHUNK", CHUNK)
    chats = await seed_users(running_bot, USERS)
    assert running_bot.application is not None and running_bot.services is not None
    chunks: list[int] = []
    commits: list[int] = []

    async def after_chunk(chunk: broadcasts.Chunk) -> None:
        chunks.append(chunk.added)

    def on_commit(connection: object) -> None:
        commits.append(len(chunks))

    reporter_of(running_bot.application).after_chunk = after_chunk
    engine = running_bot.services.engine.sync_engine
    event.listen(engine, "commit", on_commit)
    try:
        text = "Legal aid on Friday, in chunks"
        progress = await press_send(running_bot, text)
        sandbox = running_bot.sandbox
        await sandbox.wait_for(
            lambda: "Delivered: 251" in sandbox.message(ADMIN, progress).plain, timeout=30
        )
    finally:
        event.remove(engine, "commit", on_commit)
    assert chunks == [CHUNK, CHUNK, USERS + 1 - 2 * CHUNK]
    # each chunk was committed before the next began: a commit seen between any two chunks
    assert {0, 1, 2} <= set(commits)
    assert set(received(running_bot, text)) == {*chats, ADMIN}
    assert set(received(running_bot, text).values()) == {1}
    assert set((await rows_per_chat(running_bot)).values()) == {1}
    made = await the_broadcast(running_bot)
    assert (made.total, made.queue_open, made.status) == (251, False, BroadcastStatus.DONE)


async def test_a_crash_between_chunks_is_continued_after_restart_each_once(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a short lease: rows the killed process held go out again seconds after the restart
    harness.settings = harness.settings.model_copy(update={"delivery_lease_seconds": 5})
    running_bot = harness
    await running_bot.start()
    monkeypatch.setattr(broadcasts, "QUEUE_CHUNK", CHUNK)
    chats = await seed_users(running_bot, USERS)
    assert running_bot.application is not None
    second_committed = asyncio.Event()
    chunks: list[int] = []

    async def die_after_the_second(chunk: broadcasts.Chunk) -> None:
        chunks.append(chunk.added)
        if len(chunks) == 2:
            second_committed.set()
            await asyncio.Event().wait()  # the process dies here: the kill cancels it

    reporter_of(running_bot.application).after_chunk = die_after_the_second
    text = "Hotline hours change, queued across a crash"
    progress = await press_send(running_bot, text)
    await asyncio.wait_for(second_committed.wait(), timeout=20)
    await running_bot.kill()
    engine = make_engine(running_bot.settings.database_url)
    try:
        async with make_session_factory(engine)() as session:
            half = await session.scalar(select(Broadcast))
            rows = await session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            by_status = {status: number for status, number in rows}
    finally:
        await engine.dispose()
    assert half is not None and half.queue_open and half.total == 2 * CHUNK
    assert sum(by_status.values()) == 2 * CHUNK
    in_flight = by_status.get(OutboxStatus.SENDING, 0)  # sent perhaps, not yet marked

    await running_bot.start()  # the sandbox keeps what was sent before the kill

    sandbox = running_bot.sandbox
    await sandbox.wait_for(
        lambda: "Delivered: 251" in sandbox.message(ADMIN, progress).plain, timeout=40
    )
    assert chunks == [CHUNK, CHUNK]  # the dead process queued two chunks, the new one the rest
    assert set((await rows_per_chat(running_bot)).values()) == {1}
    got = received(running_bot, text)
    assert set(got) == {*chats, ADMIN}
    # queued once each; sent twice only if in flight at the kill (the outbox's lease)
    assert sum(got.values()) - len(got) <= in_flight
    done = await the_broadcast(running_bot)
    assert (done.total, done.queue_open, done.status) == (251, False, BroadcastStatus.DONE)
