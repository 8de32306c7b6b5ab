"""An update is confirmed only once stored, and handled from the store (issue 16): a crash, or
a database lock held by another process, never loses a family's words, and never files them
twice. Every test runs polling and webhook alike (the sandbox posts to the bot's webhook as
Telegram does, and posts again what was not answered 200).

Before the durable inbox, PTB confirmed a polled update on the next getUpdates and answered the
webhook 200 when the update was queued in memory: the kill in `test_a_crash_while_handling...`
lost the message (no reply, no thread message).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, func, select
from telegram import Update
from telegram.ext import TypeHandler

from bot.app import open_services
from bot.inbox import UpdateInbox, inbox_of
from storage.db import sqlite_file
from storage.models import DataKey, InboxUpdate, PersistenceEntry, ThreadMessage
from tests.support.harness import BotHarness
from tests.support.waiting import eventually, wait_until_idle

ACK = "Received. A person from the hotline will answer you here."
WORDS = "They took my son at 5 this morning"
BEFORE_ANY_WRITE = -98  # after the profile (and `arm`), before every handler that writes
AFTER_THE_HANDLERS = 50  # after the family's message is filed and acknowledged, before the flush


@pytest.fixture(params=["polling", "webhook"])
def bot(request: pytest.FixtureRequest, harness: BotHarness) -> BotHarness:
    harness.mode = request.param
    return harness


class Gate:
    """A handler that holds the update whose text is `text` until released (never, here)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, update: Update, context: Any) -> None:
        if update.effective_message is not None and update.effective_message.text == self.text:
            self.reached.set()
            await self.release.wait()


def _inbox(bot: BotHarness) -> UpdateInbox:
    assert bot.application is not None
    inbox = inbox_of(bot.application)
    assert inbox is not None
    return inbox


async def _thread_messages(bot: BotHarness) -> int:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(ThreadMessage)) or 0)


async def _inbox_rows(bot: BotHarness) -> list[tuple[int, bool, int | None]]:
    """(update_id, payload kept, data key) of every inbox row."""
    assert bot.services is not None
    async with bot.services.sessions() as session:
        rows = await session.execute(
            select(
                InboxUpdate.update_id, InboxUpdate.payload.isnot(None), InboxUpdate.data_key_id
            ).order_by(InboxUpdate.id)
        )
        return [(update_id, kept, key) for update_id, kept, key in rows]


async def _acks(bot: BotHarness, user: int, count: int) -> list[str]:
    """The user's messages once `count` arrived and the bot is idle (nothing more can come)."""
    await bot.sandbox.wait_for_messages(user, count)
    await wait_until_idle(bot)
    return [message.plain for message in bot.sandbox.messages(user)]


@contextmanager
def write_lock(bot: BotHarness) -> Iterator[sqlite3.Connection]:
    """Another process holding SQLite's write lock (as a second bot, or a backup tool, would)."""
    path = sqlite_file(bot.settings.database_url)
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


async def test_a_crash_while_handling_replays_the_update_once(bot: BotHarness) -> None:
    await bot.start()
    sandbox = bot.sandbox
    family = sandbox.add_user(language_code="en").id
    gate = Gate(WORDS)
    assert bot.application is not None
    bot.application.add_handler(TypeHandler(Update, gate), group=BEFORE_ANY_WRITE)

    first = await sandbox.send_text(family, WORDS)
    await sandbox.send_text(family, "and his phone")  # waits behind the first: one user, in order
    await gate.reached.wait()
    await sandbox.wait_for(lambda: not sandbox.pending_updates)  # Telegram was told: confirmed
    assert first and [kept for _, kept, _ in await _inbox_rows(bot)] == [True, True]
    await bot.kill()

    await bot.start()  # no gate now
    await sandbox.send_text(family, "/help")  # new: after the two stored ones
    messages = await _acks(bot, family, 3)
    assert messages[:2] == [ACK, ACK] and "/privacy" in messages[2] and len(messages) == 3
    assert await _thread_messages(bot) == 2  # each once


async def test_the_first_write_marks_the_update_so_a_later_crash_files_nothing_twice(
    bot: BotHarness,
) -> None:
    await bot.start()
    sandbox = bot.sandbox
    family = sandbox.add_user(language_code="en").id
    gate = Gate(WORDS)
    assert bot.application is not None
    bot.application.add_handler(TypeHandler(Update, gate), group=AFTER_THE_HANDLERS)

    await sandbox.send_text(family, WORDS)
    await gate.reached.wait()  # filed and acknowledged; the handling is not over
    assert [kept for _, kept, _ in await _inbox_rows(bot)] == [False]
    await bot.kill()

    await bot.start()
    await sandbox.send_text(family, "/help")  # the next update: the first is not replayed
    messages = await _acks(bot, family, 2)
    assert messages[0] == ACK and "/privacy" in messages[1] and len(messages) == 2
    assert await _thread_messages(bot) == 1


async def test_a_crash_before_the_update_is_stored_has_telegram_deliver_it_again(
    bot: BotHarness,
) -> None:
    bot.services = await open_services(bot.settings, i18n=bot.i18n)
    engine = bot.services.engine

    @event.listens_for(engine.sync_engine, "connect")
    def impatient(connection: Any, _record: Any) -> None:  # each try gives up at once
        cursor = connection.cursor()
        cursor.execute("PRAGMA busy_timeout=20")
        cursor.close()

    await engine.dispose()  # connections opened from now on are impatient
    await bot.start()
    sandbox = bot.sandbox
    family = sandbox.add_user(language_code="en").id
    inbox = _inbox(bot)
    with write_lock(bot):
        await sandbox.send_text(family, WORDS)
        update_id = sandbox.pending_updates[-1]["update_id"]
        await sandbox.wait_for(lambda: sandbox.world.handed_out >= update_id)
        await eventually(lambda: _true(not inbox.idle), "the bot storing the update")
        storing = list(inbox._storing)
        inbox.abandon()  # the crash, while the store waits for the lock
        # A dead process holds no transaction: let the cancelled tries end while the lock is
        # still held, so none of them takes the lock afterwards in a thread nobody waits for.
        await asyncio.gather(*storing, return_exceptions=True)
    assert [u["update_id"] for u in sandbox.pending_updates] == [update_id]  # not confirmed
    await bot.kill()
    assert sandbox.messages(family) == []

    await bot.start()
    assert await _acks(bot, family, 1) == [ACK]
    assert await _thread_messages(bot) == 1
    assert [(u, kept) for u, kept, _ in await _inbox_rows(bot)] == [(update_id, False)]


async def test_an_update_the_locked_database_refuses_is_retried_not_lost(
    bot: BotHarness,
) -> None:
    bot.services = await open_services(bot.settings, i18n=bot.i18n)
    engine = bot.services.engine

    @event.listens_for(engine.sync_engine, "connect")
    def impatient(connection: Any, _record: Any) -> None:  # refuse at once, not after 10 s
        cursor = connection.cursor()
        cursor.execute("PRAGMA busy_timeout=20")
        cursor.close()

    await engine.dispose()  # connections opened from now on are impatient
    await bot.start()
    sandbox = bot.sandbox
    family = sandbox.add_user(language_code="en").id
    inbox = _inbox(bot)
    with write_lock(bot):
        await sandbox.send_text(family, WORDS)
        await eventually(lambda: _true(inbox.refused_writes >= 2), "the store refused twice")
        assert len(sandbox.pending_updates) == 1  # refused, so not confirmed
        assert sandbox.messages(family) == []
    assert await _acks(bot, family, 1) == [ACK]
    assert await _thread_messages(bot) == 1
    assert not sandbox.pending_updates


async def test_a_handled_update_keeps_neither_its_words_nor_its_key(bot: BotHarness) -> None:
    await bot.start()
    sandbox = bot.sandbox
    family = sandbox.add_user(language_code="en").id
    await sandbox.send_text(family, WORDS)
    await _acks(bot, family, 1)
    rows = await _inbox_rows(bot)
    assert rows and all(not kept and key is None for _, kept, key in rows)
    assert bot.services is not None
    async with bot.services.sessions() as session:
        drafts = select(PersistenceEntry.data_key_id).where(
            PersistenceEntry.data_key_id.isnot(None)
        )
        unowned = await session.scalar(
            select(func.count())
            .select_from(DataKey)
            .where(DataKey.case_id.is_(None), DataKey.user_id.is_(None), DataKey.id.not_in(drafts))
        )
    assert unowned == 0  # the update's own key is gone with its words


async def test_the_same_update_delivered_again_is_handled_once(bot: BotHarness) -> None:
    """A crash after the store, before Telegram heard back: it delivers the update again."""
    await bot.start()
    sandbox = bot.sandbox
    family = sandbox.add_user(language_code="en").id
    await sandbox.send_text(family, WORDS)
    await _acks(bot, family, 1)
    [(update_id, _, _)] = await _inbox_rows(bot)
    await bot.kill()
    [sent] = [m for m in sandbox.world.user_messages[family] if m.text == WORDS]
    sandbox.world.push_update({"update_id": update_id, "message": sent.raw})

    await bot.start()
    await sandbox.wait_for(lambda: not sandbox.pending_updates)  # taken (and confirmed) again
    await sandbox.send_text(family, "/help")
    messages = await _acks(bot, family, 2)
    assert messages[0] == ACK and "/privacy" in messages[1] and len(messages) == 2
    assert await _thread_messages(bot) == 1


async def _true(value: bool) -> bool:
    return value


@contextmanager
def committed_transactions() -> Iterator[list[list[str]]]:
    """The transactions committed meanwhile, on any engine: each as the first three words of
    its statements."""
    running: dict[int, list[str]] = {}
    committed: list[list[str]] = []

    def statement(connection: Connection, *args: Any) -> None:
        running.setdefault(id(connection), []).append(" ".join(args[1].split()[:3]))

    def commit(connection: Connection) -> None:
        committed.append(running.pop(id(connection), []))

    def rollback(connection: Connection) -> None:
        running.pop(id(connection), None)

    listeners = (("before_cursor_execute", statement), ("commit", commit), ("rollback", rollback))
    for name, listener in listeners:
        event.listen(Engine, name, listener)
    try:
        yield committed
    finally:
        for name, listener in listeners:
            event.remove(Engine, name, listener)


async def _help_answered_while_marks_wait(bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> int:
    """A family's /help answered, the bot's marks lingering for ever: only a store (or a clean
    stop) writes them. Returns the family's id."""
    monkeypatch.setattr("bot.inbox.MARK_LINGER", 3600.0)
    await bot.start()
    family = bot.sandbox.add_user(language_code="en").id
    await bot.sandbox.send_text(family, "/help")
    await bot.sandbox.wait_for_messages(family, 1)
    return family


async def test_a_read_only_updates_mark_rides_in_the_next_store(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/help writes nothing, so its mark comes after it: not in a transaction of its own (one
    cost more than the rest of the update's database work) but in the next store's, when the
    person writes again within `MARK_LINGER`. Made endless here, so only a store can carry it."""
    family = await _help_answered_while_marks_wait(bot, monkeypatch)
    sandbox = bot.sandbox
    await eventually(lambda: _true(not _inbox(bot).idle), "the mark waiting")
    [(_, kept, _)] = await _inbox_rows(bot)
    assert kept  # handled, its mark still waiting

    with committed_transactions() as committed:
        await sandbox.send_text(family, "/help")
        await sandbox.wait_for_messages(family, 2)
        await sandbox.wait_for(lambda: not sandbox.pending_updates)
        first, second = await _inbox_rows(bot)
    assert not first[1] and first[2] is None  # marked
    assert second[1]  # its own mark waits for the next store (or the stop)
    marks = [statements for statements in committed if "UPDATE inbox SET" in statements]
    assert marks and all("INSERT INTO inbox" in statements for statements in marks)  # rode

    await bot.stop()  # a clean stop marks at once what waits
    rows = await _inbox_rows(bot)
    assert [kept for _, kept, _ in rows] == [False, False]


async def test_a_read_only_updates_mark_is_written_alone_when_nobody_writes_again(
    bot: BotHarness,
) -> None:
    await bot.start()
    sandbox = bot.sandbox
    family = sandbox.add_user(language_code="en").id
    await sandbox.send_text(family, "/help")
    await _acks(bot, family, 1)  # idle: the linger is over
    assert [kept for _, kept, _ in await _inbox_rows(bot)] == [False]


async def test_a_crash_while_a_mark_lingers_answers_the_read_only_update_again_once(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    family = await _help_answered_while_marks_wait(bot, monkeypatch)
    await bot.kill()

    monkeypatch.undo()  # the linger as it is
    await bot.start()
    messages = await _acks(bot, family, 2)
    assert len(messages) == 2 and all("/privacy" in text for text in messages)
    assert [kept for _, kept, _ in await _inbox_rows(bot)] == [False]
