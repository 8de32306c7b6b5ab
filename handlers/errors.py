"""When a handler (or a job) fails: log where, and tell the person, in their language.

PTB gives the error handler a fresh context, without the profile `handlers.middleware` loaded, so
the language is looked up again by the user's key (one primary-key read, no personal data);
when even that fails (the database is what broke), Telegram's language code stands in.

The reply names nothing personal. It goes to a private chat only: in a group (the staff group
included) every member would read it, so a failed button press there is answered to the presser
alone, and a failed message only in the log. A failed button press is always answered, so its
spinner stops. A write the database refused (locked too long, full disk, read-only) gets its own
sentence: the person's action was not saved, and trying again later can work.

A committed action is never reported as failed: when the update's handling had already
committed a write (`bot.inbox_mark.committed`: what the person did is stored, its alerts queued)
and only sending the confirmation failed (even after the retries of `bot.pacing`), nothing is
said but the log line, and a pressed button's spinner is stopped; when our code failed after the
commit, the person reads that it was saved and only the answer could not be shown. Nor is
anything said when the failure was a reply that timed out waiting for Telegram's answer: it may
well have arrived (`bot.telegram_faults`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from sqlalchemy.exc import TimeoutError as PoolTimeout
from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError

from bot import inbox_mark
from bot.context import HotlineContext
from bot.i18n import N_, Translator, language_from_telegram
from bot.logs import describe_error
from bot.telegram_faults import Failure, failure_of
from storage.db import write_refused
from storage.users import language_of

log = logging.getLogger(__name__)

SOMETHING_WENT_WRONG = N_(
    "Sorry, something went wrong on our side. Your data is safe. "
    "Please try again in a minute, or send /start."
)
SAVED_NOT_SHOWN = N_(
    "What you did was saved, but the answer could not be shown. Send /start to go on."
)
NOT_SAVED = N_(
    "Sorry, what you just did was not saved: the hotline's database could not take it just now. "
    "Please try again in a few minutes."
)


async def on_error(update: object, context: HotlineContext) -> None:
    """Log the failure (type and our code's place, never the message) and answer politely."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    if error is not None:
        log.error("update %s failed: %s", update_id, describe_error(error))
    if not isinstance(update, Update):
        return  # a job: nobody is waiting for an answer
    stored = inbox_mark.committed()
    sending_failed = isinstance(error, TelegramError)
    if (stored and sending_failed) or (
        error is not None and failure_of(error) is Failure.MAYBE_SENT
    ):
        # "Something went wrong" would be untrue: it was done, or its reply may have arrived.
        why = "its effect is stored" if stored else "its reply timed out, may have arrived"
        log.warning("update %s: %s; no error reply", update_id, why)
        if update.callback_query is not None:
            await _quietly(update.callback_query.answer())  # the spinner stops, no words
        return
    # With every connection taken, a look-up would only wait as long again: Telegram's language.
    tr = await user_translator(update, context, read=not isinstance(error, PoolTimeout))
    refused = error is not None and write_refused(error)
    if stored:
        text = tr.gettext(SAVED_NOT_SHOWN)
    else:
        text = tr.gettext(NOT_SAVED if refused else SOMETHING_WENT_WRONG)
    chat = update.effective_chat
    private = chat is not None and chat.type == ChatType.PRIVATE
    query = update.callback_query
    if query is not None:
        # Stops the spinner; in a group, the answer only the presser sees is the whole reply.
        # The handler may have answered it already (Telegram then refuses a second answer).
        await _quietly(query.answer(None if private else text, show_alert=not private))
    if private and chat is not None:
        await _quietly(context.bot.send_message(chat.id, text))


async def user_translator(
    update: Update, context: HotlineContext, *, read: bool = True
) -> Translator:
    """The translator of the language stored for the update's user; Telegram's language when
    none is stored or the database cannot (or need not: `read`) be read; else the default."""
    services = context.services
    user = update.effective_user
    if user is None:
        return services.i18n.get(None)
    language = None
    try:
        if read:
            async with services.sessions() as session:
                language = await language_of(session, services.keys.key(user.id))
    except Exception as error:  # the database may be what failed
        log.warning("error reply: the user's language was not read (%s)", type(error).__name__)
    return services.i18n.get(language or language_from_telegram(user.language_code))


async def _quietly(call: Awaitable[object]) -> None:
    """Await a Bot API call whose failure must not raise from the error handler."""
    try:
        await call
    except TelegramError as reply_error:
        log.warning("could not send the error reply: %s", type(reply_error).__name__)
