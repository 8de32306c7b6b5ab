"""The error reply, through the real bot: in the language the user chose (not Telegram's, not the
hotline's default), a failed button press answered so its spinner stops, nothing said in a group
but to the presser, and a write the database refused told as "not saved".

A test-only handler, put first in group 0, fails on the text `boom` (or the `boom` button); PTB
then calls the bot's real error handler (`handlers.errors.on_error`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import update
from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.context import HotlineContext
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from handlers.errors import NOT_SAVED, SAVED_NOT_SHOWN, SOMETHING_WENT_WRONG
from storage.db import make_engine, sqlite_file
from storage.models import User
from tests.support.harness import BotHarness
from tests.support.waiting import wait_until_idle

Failure = Callable[[HotlineContext], Awaitable[None]]


async def _raise_key_error(context: HotlineContext) -> None:
    raise KeyError("a detainee's name the user typed")


def _fail_first(bot: BotHarness, failure: Failure = _raise_key_error) -> None:
    """The text `boom` and the `boom` button fail, before any other handler of group 0 sees them
    (a text, not a command: in a group the middleware answers commands itself)."""
    application = bot.application
    assert application is not None

    async def fail(update: Update, context: HotlineContext) -> None:
        await failure(context)

    handlers: list[BaseHandler[Update, HotlineContext, None]] = [
        MessageHandler(filters.Regex("^boom$"), fail),
        CallbackQueryHandler(fail, pattern="^boom$"),
    ]
    application.handlers[0][:0] = handlers


async def _choose_language(sandbox: SandboxServer, user_id: int, language: str) -> None:
    """Through /language, as a person would: the stored choice, not Telegram's code."""
    await sandbox.send_text(user_id, "/language")
    menu = await sandbox.next_message(user_id)
    await sandbox.press(user_id, menu.message_id, f"lang:{language}")
    await sandbox.wait_for_edit(user_id, menu.message_id)


@pytest.mark.parametrize(("telegram_language", "chosen"), [("uk", "en"), ("ru", "crh")])
async def test_the_error_reply_is_in_the_language_the_user_chose(
    running_bot: BotHarness,
    i18n: I18n,
    telegram_language: str,
    chosen: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code=telegram_language).id
    await _choose_language(sandbox, user, chosen)
    _fail_first(running_bot)
    expected = i18n.get(chosen).gettext(SOMETHING_WENT_WRONG)
    assert expected != i18n.get(telegram_language).gettext(SOMETHING_WENT_WRONG)
    assert expected != i18n.get(None).gettext(SOMETHING_WENT_WRONG)

    with caplog.at_level(logging.ERROR, logger="handlers.errors"):
        await sandbox.send_text(user, "boom")
        reply = await sandbox.next_message(user)
    assert reply.plain == expected
    # The log names the test's failing handler (ours are in bot/, handlers/...: here the test
    # module is not, so the place is PTB's) and never the exception's message.
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failed and all("detainee" not in text for text in failed), failed

    # A failed button press: the spinner stops, and the same sentence arrives.
    seen = len(sandbox.messages(user))
    query_id = await sandbox.press(user, reply.message_id, "boom")
    answered = await sandbox.wait_for_callback_answer(query_id)
    assert answered.answered
    again = (await sandbox.wait_for_messages(user, seen + 1))[-1]
    assert again.plain == expected


async def test_in_a_group_only_the_presser_hears_of_a_failure(
    running_bot: BotHarness, i18n: I18n
) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    group = sandbox.add_group(-100_777, "relatives")
    await sandbox.send_text(user, "/help")
    await sandbox.next_message(user)  # the profile exists, English from Telegram
    _fail_first(running_bot)

    await sandbox.send_text(user, "boom", chat_id=group.id)
    query_id = await sandbox.press(user, 1, "boom", chat_id=group.id)
    answered = await sandbox.wait_for_callback_answer(query_id)
    assert answered.show_alert
    assert answered.text == i18n.get("en").gettext(SOMETHING_WENT_WRONG)
    await wait_until_idle(running_bot)
    assert sandbox.messages(group.id) == []


async def test_a_write_the_database_refused_is_told_as_not_saved(
    running_bot: BotHarness, i18n: I18n
) -> None:
    """Another program holds SQLite's write lock; the handler's write gives up at once (its
    busy timeout is 0 here, 10 s in production): "database is locked", a real SQLite error."""
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="uk").id
    await _choose_language(sandbox, user, "crh")
    services = running_bot.services
    assert services is not None
    path = sqlite_file(services.settings.database_url)
    assert path is not None

    async def write_under_a_lock(context: HotlineContext) -> None:
        # The lock is taken once the update is stored (the inbox waits out a lock before it
        # confirms an update): the handler's own write is what the database refuses.
        holder = sqlite3.connect(path)
        holder.execute("BEGIN IMMEDIATE")
        engine = make_engine(services.settings.database_url)
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA busy_timeout=0")
                await connection.execute(
                    update(User).where(User.id == context.profile.id).values(discreet=False)
                )
                await connection.commit()
        finally:
            await engine.dispose()
            holder.rollback()
            holder.close()

    _fail_first(running_bot, write_under_a_lock)
    await sandbox.send_text(user, "boom")
    reply = await sandbox.next_message(user)
    assert reply.plain == i18n.get("crh").gettext(NOT_SAVED)
    assert reply.plain != i18n.get("en").gettext(NOT_SAVED)


async def test_the_error_log_names_our_handler_and_not_the_message(
    running_bot: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """PTB's frames say nothing about what failed: the log names our code's place."""
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id

    async def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("Olena Bariieva, +380 67 555 12 34")

    monkeypatch.setattr("handlers.common.set_language", broken)
    with caplog.at_level(logging.ERROR, logger="handlers.errors"):
        await sandbox.send_text(user, "/language")
        menu = await sandbox.next_message(user)
        await sandbox.press(user, menu.message_id, "lang:crh")
        await sandbox.next_message(user)  # the error reply
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 1, failed
    assert "KeyError in handlers.common.set_language_choice (handlers/common.py:" in failed[0]
    assert "Olena" not in failed[0] and "380" not in failed[0]


async def test_a_bug_after_the_commit_says_it_was_saved(
    running_bot: BotHarness, i18n: I18n
) -> None:
    """What the person did was stored, then our code failed: never "something went wrong" (it
    was done) and never silence, but that it was saved and the answer could not be shown."""
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="uk").id
    await _choose_language(sandbox, user, "en")
    services = running_bot.services
    assert services is not None

    async def write_then_fail(context: HotlineContext) -> None:
        async with services.sessions() as session, session.begin():
            await session.execute(
                update(User).where(User.id == context.profile.id).values(discreet=False)
            )
        raise KeyError("after the commit")

    _fail_first(running_bot, write_then_fail)
    await sandbox.send_text(user, "boom")
    reply = await sandbox.next_message(user)
    assert reply.plain == i18n.get("en").gettext(SAVED_NOT_SHOWN)
    async with services.sessions() as session:
        stored = await session.get(User, running_bot.key(user))
    assert stored is not None and stored.discreet is False
