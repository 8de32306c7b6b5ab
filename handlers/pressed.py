"""Answering on the message whose button was pressed, also when it can no longer be edited.

A press on a deleted message, or on one too old for Telegram to include, carries an inaccessible
message: its chat and id, date 0, no content. PTB 22 parses it as a `Message` whose
`is_accessible` is False (as an `InaccessibleMessage`, its edit shortcuts raise `TypeError`), and
editing it is refused ("message to edit not found"), so `/forget`'s "Yes" erased the data and then
said something went wrong. An edit can also be refused when the message went meanwhile. Then
`show` sends the text as a new message in the same chat, and `drop_buttons` leaves the message
be: nobody can press a button on a message nobody sees.
"""

from __future__ import annotations

from typing import TypeGuard

from telegram import CallbackQuery, InlineKeyboardMarkup, MaybeInaccessibleMessage, Message
from telegram.error import BadRequest

CANNOT_EDIT = ("message to edit not found", "message can't be edited", "message_id_invalid")
"""Telegram's words for an edit of a message that is gone or no longer editable."""
NOT_MODIFIED = "message is not modified"


def _editable(message: MaybeInaccessibleMessage | None) -> TypeGuard[Message]:
    return isinstance(message, Message) and message.is_accessible


def _tolerable(error: BadRequest) -> bool:
    words = error.message.lower()
    return NOT_MODIFIED in words or any(refusal in words for refusal in CANNOT_EDIT)


async def show(
    query: CallbackQuery,
    text: str,
    *,
    reply_markup: InlineKeyboardMarkup | None = None,
    parse_mode: str | None = None,
) -> Message | None:
    """Put `text` in place of the pressed message, or send it anew when that message cannot be
    edited; returns the message that shows it (None for an inline message that is gone)."""
    message = query.message
    if _editable(message):
        try:
            edited = await query.edit_message_text(
                text, reply_markup=reply_markup, parse_mode=parse_mode
            )
        except BadRequest as error:
            if not _tolerable(error):
                raise
            if NOT_MODIFIED in error.message.lower():
                return message
        else:
            return edited if isinstance(edited, Message) else message
    if message is None:  # an inline message: there is no chat to write to
        return None
    return await query.get_bot().send_message(
        message.chat.id, text, reply_markup=reply_markup, parse_mode=parse_mode
    )


async def drop_buttons(query: CallbackQuery) -> None:
    """Take the buttons off the pressed message, if it can still be edited."""
    if not _editable(query.message):
        return
    try:
        await query.edit_message_reply_markup(None)
    except BadRequest as error:
        if not _tolerable(error):
            raise
