"""The staff console's way of answering: HTML (the default parse mode, `bot.app`), no link
previews, optionally protected."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update


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
