"""The last handlers of all: whatever nothing else took still gets an answer.

A command the bot does not know, a button that no longer means anything (an old message, a form
already finished, forged data): each is answered in the user's language, so nobody is left with
silence. Registered after every other handler of group 0. Edited messages never get this far:
`handlers.edits` takes them all first, and answers with `edited_message` here.
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from bot.context import HotlineApplication, HotlineContext


async def unknown_command(update: Update, context: HotlineContext) -> None:
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        context.tr.gettext("I do not know this command. /help lists what I can do.")
    )


async def stale_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    if query is not None:
        await query.answer(context.tr.gettext("This button is no longer valid."))


async def edited_message(update: Update, context: HotlineContext) -> None:
    """Edits are not read: an edit must never be taken for a new message."""
    message = update.effective_message
    if message is None or message.chat.type != ChatType.PRIVATE:
        return
    await message.reply_text(
        context.tr.gettext(
            "I do not read edited messages. Please send the corrected text again as a new message."
        )
    )


def register(application: HotlineApplication) -> None:
    private = filters.ChatType.PRIVATE
    application.add_handler(
        MessageHandler(private & filters.UpdateType.MESSAGE & filters.COMMAND, unknown_command)
    )
    application.add_handler(CallbackQueryHandler(stale_button))
