"""The real PTB Application against the sandbox: what a bot sees must be what Telegram gives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from bot.sandbox.server import SandboxServer

TOKEN = "123:ABC"
FAMILY = 1001


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Yes", callback_data="yes")],
            [InlineKeyboardButton("No", callback_data="no")],
        ]
    )
    await update.effective_message.reply_text(
        "<b>Hello</b> &amp; welcome", parse_mode="HTML", reply_markup=keyboard
    )


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(f"got {query.data}")
    await query.edit_message_text(f"You chose {query.data}")


@pytest.fixture
async def app(server: SandboxServer) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    application = ApplicationBuilder().token(TOKEN).base_url(server.base_url).build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(pressed))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()


async def test_start_then_press_edits(server: SandboxServer, app: Application) -> None:  # type: ignore[type-arg]
    await server.send_text(FAMILY, "/start")
    reply = await server.next_message(FAMILY)
    assert reply.plain == "Hello & welcome"
    assert reply.entities == [{"type": "bold", "offset": 0, "length": 5}]
    assert reply.buttons == [[("Yes", "yes")], [("No", "no")]]
    query_id = await server.press_button(FAMILY, reply, "No")
    edited = await server.wait_for_edit(FAMILY, reply.message_id)
    assert edited.plain == "You chose no"
    assert edited.edits[0].plain == "Hello & welcome"
    answered = await server.wait_for_callback_answer(query_id)
    assert answered.text == "got no"
    await server.wait_for_updates_consumed()
    assert server.stats.requests["sendMessage"] == 1


async def test_updates_are_never_delivered_twice(server: SandboxServer, app: Application) -> None:  # type: ignore[type-arg]
    for _ in range(3):
        await server.send_text(FAMILY, "/start")
    await server.wait_for_messages(FAMILY, 3)
    await server.wait_for_updates_consumed()
    await server.send_text(FAMILY, "/start")
    await server.wait_for_messages(FAMILY, 4)
    await server.wait_for_updates_consumed()
    assert len(server.messages(FAMILY)) == 4
    assert server.stats.duplicates() == {(FAMILY, "<b>Hello</b> &amp; welcome"): 4}


async def test_group_command_with_bot_username(server: SandboxServer, app: Application) -> None:  # type: ignore[type-arg]
    server.add_group(-500, "Families")
    await server.send_text(FAMILY, f"/start@{server.bot_username}", chat_id=-500)
    reply = await server.next_message(-500)
    assert reply.chat["type"] == "group"
