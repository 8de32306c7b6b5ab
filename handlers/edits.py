"""Edited messages are never new messages: not an answer, not a command, not staff input.

Telegram sends an edit as an `edited_message` update, and PTB's text filters and
`CommandHandler` match those too: an earlier answer corrected while the form asks the next
question would be taken as that next answer, and a message edited into `/report` would restart
the form. So every edit is taken here, before any form, input or command handler: in a private
chat, an edit of an answer still in the open report form updates that answer
(`handlers.report.edited_answer`); any other edit is answered that edits are not read
(`handlers.fallbacks.edited_message`). In groups edits are left unanswered, as before.
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot.context import HotlineApplication, HotlineContext
from handlers import fallbacks, report

EDIT_GROUP = -45
"""After the profile, the frozen-account watch and first contact; before PIN input (-40),
staff and desk input (-10, -9), the report form (-8) and group 0."""


async def edited(update: object, context: HotlineContext) -> None:
    if not isinstance(update, Update):
        return
    message = update.edited_message or update.edited_channel_post
    if message is None:
        return
    if message.chat.type == ChatType.PRIVATE and not await report.edited_answer(update, context):
        await fallbacks.edited_message(update, context)
    context.application.mark_data_for_update_persistence(
        chat_ids=message.chat.id,
        user_ids=update.effective_user.id if update.effective_user else None,
    )
    await context.application.update_persistence()
    raise ApplicationHandlerStop


def register(application: HotlineApplication) -> None:
    application.add_handler(TypeHandler(Update, edited), group=EDIT_GROUP)
