"""A seized phone: the "Show" button of discreet notifications, /freeze and /unfreeze, and the
alert to staff when a frozen account writes.

"Show" reads its outbox row from the database (so it works after a restart), only for the chat
the row was sent to, renders it in the user's language now, sends it with protect_content, and
records when to delete it (jobs/deletions.py deletes it after `HOTLINE_DISCREET_DETAILS_MINUTES`,
restart or not). A gone or foreign row, or a frozen account, gets "no longer available".
"""

from __future__ import annotations

import dataclasses
import html
import logging
from datetime import timedelta

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import CallbackQueryHandler, CommandHandler, TypeHandler

from bot.callbacks import SHOW
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_
from bot.texts.messages import UnknownTemplateError, render
from bot.texts.messages.discreet import FAMILY_FACING
from handlers.guard import require
from handlers.pin import add_action, pin_asked
from jobs import deletions
from jobs.send import send_rendered
from storage import chat_cleanup, safety
from storage.access import Permission, is_staff
from storage.recipients import staff_contacts

log = logging.getLogger(__name__)

SHOW_ACTION = "show"
FROZEN_WATCH_GROUP = -90  # right after the profile is loaded, before anything answers
STALE = N_("This message is no longer available.")


# -- "Show" ---------------------------------------------------------------------------------------


async def show_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    pressed = SHOW.parse(query.data) if query is not None else None
    if query is None or pressed is None:  # routing lets only well-formed presses through
        return
    row = pressed.args[0]
    if context.profile.frozen:
        await query.answer(context.tr.gettext(STALE), show_alert=True)
        return
    if await pin_asked(update, context, SHOW_ACTION, row):
        await query.answer()
        return
    if await show_details(update, context, row):
        await query.answer()
    else:
        await query.answer(context.tr.gettext(STALE), show_alert=True)


async def _show_after_pin(update: Update, context: HotlineContext, row: str) -> None:
    if not await show_details(update, context, row) and update.effective_chat is not None:
        await update.effective_chat.send_message(context.tr.gettext(STALE))


async def show_details(update: Update, context: HotlineContext, row: str) -> bool:
    """Send the details behind a discreet notification; False when there are none to show."""
    chat = update.effective_chat
    if chat is None or not row.isdigit() or context.profile.frozen:
        return False
    services = context.services
    async with services.sessions() as session:
        details = await safety.details_for(
            session,
            services.cipher,
            int(row),
            services.keys.chat_key(chat.id),
            family_facing=FAMILY_FACING,
        )
    if details is None:
        return False
    try:
        message = render(details.template, context.tr, details.params)
    except (UnknownTemplateError, KeyError, ValueError):
        return False
    sent: list[Message] = []
    try:
        await send_rendered(
            context.bot, chat.id, dataclasses.replace(message, protect_content=True), every=sent
        )
    finally:
        await _delete_later(context, chat.id, [m.message_id for m in sent])
    return True


async def _delete_later(context: HotlineContext, chat_id: int, message_ids: list[int]) -> None:
    """Persist when the details go (a restart does not keep them), and come back then."""
    if not message_ids:
        return
    services = context.services
    now = services.clock()
    after = timedelta(minutes=services.settings.discreet_details_minutes)
    async with services.sessions() as session, session.begin():
        await chat_cleanup.remember(
            session,
            services.keys.chat_key(chat_id),
            message_ids,
            sent_at=now,
            delete_at=now + after,
        )
    deletions.schedule_at(context.application, after)


# -- /freeze and /unfreeze ------------------------------------------------------------------------


async def freeze_command(update: Update, context: HotlineContext) -> None:
    """/freeze ID: a relative called, the phone was taken. No details and no updates from now."""
    await _set_frozen(update, context, frozen=True)


async def unfreeze_command(update: Update, context: HotlineContext) -> None:
    await _set_frozen(update, context, frozen=False)


async def _set_frozen(update: Update, context: HotlineContext, *, frozen: bool) -> None:
    action = "user.freeze" if frozen else "user.unfreeze"
    if not await require(update, context, Permission.REVIEW_CASES, action=action):
        return
    message = update.effective_message
    if message is None:
        return
    tr, services = context.tr, context.services
    args = list(context.args or [])
    if len(args) != 1 or not args[0].isdigit():
        usage = (
            tr.gettext("Usage: /freeze <user id>")
            if frozen
            else tr.gettext("Usage: /unfreeze <user id>")
        )
        await message.reply_text(html.escape(usage))
        return
    user_id = int(args[0])
    if user_id == 0:
        await message.reply_text(tr.gettext("No user has this id."))
        return
    async with services.sessions() as session, session.begin():
        # Staff may type the Telegram id or the user number the bot shows them (the key).
        found = await safety.freeze(
            session,
            services.keys.key(user_id),
            actor_id=context.profile.id,
            now=services.clock(),
            frozen=frozen,
        )
    if not found:
        text = tr.gettext("No user has this id.")
    elif frozen:
        text = tr.gettext(
            "User {user} is frozen: they get no details and no updates, and you will hear if "
            "they write. /unfreeze {user} undoes it."
        )
    else:
        text = tr.gettext("User {user} is no longer frozen.")
    await message.reply_text(html.escape(text.format(user=user_id)))


# -- a frozen account writes ----------------------------------------------------------------------


async def frozen_watch(update: object, context: HotlineContext) -> None:
    """Alert the staff desk (at most hourly) when a frozen account sends anything."""
    if not isinstance(update, Update) or update.message is None or not context.profile.frozen:
        return
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE or is_staff(context.profile.role):
        return
    services = context.services
    async with services.sessions() as session, session.begin():
        queued = await safety.alert_frozen_wrote(
            session,
            services.cipher,
            context.profile.id,
            now=services.clock(),
            staff=staff_contacts(services.admin_keys, services.staff_chat_key),
        )
    if queued:
        log.warning("a frozen account wrote; staff alerted")


def register(application: HotlineApplication) -> None:
    application.add_handler(TypeHandler(Update, frozen_watch), group=FROZEN_WATCH_GROUP)
    application.add_handler(CallbackQueryHandler(show_button, pattern=SHOW.pattern))
    application.add_handler(CommandHandler("freeze", freeze_command))
    application.add_handler(CommandHandler("unfreeze", unfreeze_command))
    add_action(application, SHOW_ACTION, _show_after_pin)
