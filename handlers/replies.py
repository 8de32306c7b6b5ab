"""The staff console's way of answering: HTML (the default parse mode, `bot.app`), no link
previews, optionally protected."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import ApplicationHandlerStop

from bot.context import HotlineContext


async def reply_html(
    update: Update,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    *,
    protect_content: bool = False,
) -> None:
    """Reply to the update's message; `text` is HTML the caller has escaped."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        text,
        reply_markup=markup,
        disable_web_page_preview=True,
        protect_content=protect_content,
    )


async def stop_here(update: Update, context: HotlineContext) -> None:
    """This message was the awaited input: persist the user data (stopping skips the flush
    group), then let no later handler take it."""
    context.application.mark_data_for_update_persistence(
        user_ids=update.effective_user.id if update.effective_user else None
    )
    await context.application.update_persistence()
    raise ApplicationHandlerStop
