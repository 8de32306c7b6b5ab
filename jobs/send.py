"""Sends a rendered message: text, or an attachment (by file id) with the text as its caption.

One function for the delivery job and for handlers that show the same thing interactively (the
broadcast preview, a thread's attachments shown to staff), so both send exactly alike. The text
is HTML: the bot's default parse mode (`bot.app`; the delivery job's bot shares its defaults).
"""

from __future__ import annotations

from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import MessageLimit

from bot.texts.messages.base import RenderedMessage

_NO_CAPTION = frozenset({"sticker", "video_note"})


def markup_of(message: RenderedMessage) -> InlineKeyboardMarkup | None:
    """Rows of (label, data): a URL button when data is a link, else a callback button."""
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label, url=data)
                if data.startswith(("https://", "http://"))
                else InlineKeyboardButton(label, callback_data=data)
                for label, data in row
            ]
            for row in message.buttons
        ]
    )


async def send_rendered(
    bot: Bot, chat_id: int, message: RenderedMessage, *, every: list[Message] | None = None
) -> Message:
    """Send it; returns the message that carries the text (and the buttons). `every`, if given,
    receives each message sent (an attachment and its text may be two), e.g. to delete them."""
    markup = markup_of(message)
    attachment = message.attachment
    if attachment is None:
        only = await _send_text(bot, chat_id, message, markup)
        if every is not None:
            every.append(only)
        return only
    fits = attachment.kind not in _NO_CAPTION and len(message.text) <= MessageLimit.CAPTION_LENGTH
    common: dict[str, Any] = {"protect_content": message.protect_content}
    if fits:
        common.update(caption=message.text, reply_markup=markup)
    sender = getattr(bot, f"send_{attachment.kind}")
    sent: Message = await sender(chat_id, attachment.file_id, **common)
    if every is not None:
        every.append(sent)
    if fits or not message.text:
        return sent
    text = await _send_text(bot, chat_id, message, markup)
    if every is not None:
        every.append(text)
    return text


async def _send_text(
    bot: Bot, chat_id: int, message: RenderedMessage, markup: InlineKeyboardMarkup | None
) -> Message:
    return await bot.send_message(
        chat_id,
        message.text,
        reply_markup=markup,
        protect_content=message.protect_content,
        disable_web_page_preview=True,
    )
