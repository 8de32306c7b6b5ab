"""Runs before every handler: holds back floods, knows who the user is, keeps groups out.

The per-user message limit is checked first, in memory, so a flooding user costs the others almost
nothing; then the user's profile is loaded (or created) so every handler can answer in the user's
language and check their role.

In a group (the staff group included) the bot's answers are read by every member, stay on every
member's phone and can be forwarded: there, every command but /help, and the buttons that open a
case, a family's cases or the inbox, get one line saying it works only in a private chat, and
nothing else (`only_in_private`).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.ext import Application, ApplicationHandlerStop

from bot.callbacks import CASE, INBOX, MENU, STATUS
from bot.context import HotlineContext
from bot.i18n import N_, language_from_telegram
from bot.update_processor import PerUserUpdateProcessor
from storage.access import is_staff
from storage.identity import seal_telegram_id
from storage.persistence import DatabasePersistence
from storage.reachability import mark_reachable
from storage.users import known_profile, touch_user

log = logging.getLogger(__name__)

PRIVATE_ONLY_GROUP = -95  # after the profile is loaded (its language), before anything answers
ALLOWED_IN_GROUPS = frozenset({"help"})
VIEW_BUTTONS_REFUSED_IN_GROUPS = (CASE.head("show"), STATUS.head("show"), MENU.head(), INBOX.head())
ONLY_IN_PRIVATE = N_(
    "This works only in a private chat with the bot. Please open a private chat with it and "
    "send the command there."
)


async def load_profile(update: object, context: HotlineContext) -> None:
    if not isinstance(update, Update) or update.effective_user is None:
        return
    user = update.effective_user
    services = context.services
    limiter = services.message_limiter
    allowed = limiter.allow(user.id)
    if not allowed and not limiter.should_warn(user.id):
        raise ApplicationHandlerStop
    keys = services.keys
    user_key = keys.key(user.id)

    async def sealed_telegram_id(session: AsyncSession) -> bytes:
        # With the user's own data key: /forget destroys it, so no copy of the row opens.
        return await seal_telegram_id(session, services.cipher, user_key, user.id)

    first_language = language_from_telegram(user.language_code)
    async with services.sessions() as session, session.begin():
        # The one place a Telegram user id becomes the user key every storage call gets.
        context.profile = await known_profile(
            session, user_key, first_language=first_language, admin_ids=services.admin_keys
        ) or await touch_user(
            session,
            user_key,
            first_language=first_language,
            admin_ids=services.admin_keys,
            now=services.clock(),
            sealed_telegram_id=sealed_telegram_id,
            new_user_sealing=lambda: services.cipher.new_data_key_sealing(str(user.id)),
        )
        await _reachable_now(session, update, context, user_key)
    log.debug(
        "update %s: role %s, new=%s", update.update_id, context.profile.role, context.profile.is_new
    )
    limiter.trust(user.id, is_staff(context.profile.role))
    if not allowed and not is_staff(context.profile.role):
        if update.effective_message is not None:
            await update.effective_message.reply_text(
                context.tr.gettext("You are sending messages very fast. Please wait a minute.")
            )
        raise ApplicationHandlerStop


async def _reachable_now(
    session: AsyncSession, update: Update, context: HotlineContext, user_key: int
) -> None:
    """A staff member's /start in private (how everyone opens a bot), or any update from the
    staff group, shows that chat exists: notices to it no longer fail with `chat not found`
    (storage/reachability.py). Other updates cost nothing here."""
    chat = update.effective_chat
    if chat is None:
        return
    if chat.type == ChatType.PRIVATE:
        started = command_of(update.message, context.bot.username) == "start"
        if started and is_staff(context.profile.role):
            await mark_reachable(session, user_key)
    elif chat.id == context.services.settings.staff_chat_id:
        await mark_reachable(session, chat.id)


async def flush_persistence(update: object, context: HotlineContext) -> None:
    """Write conversation states and drafts after each update, so a crash loses no answer.

    PTB marks an update's user and chat for persistence only after all groups ran, so they are
    marked here, or this flush would write the previous update's data instead. Then the least
    recently seen users' data, written, leaves memory (`DatabasePersistence.release_idle`):
    it is read again when their next update arrives.
    """
    application = context.application
    if isinstance(update, Update):
        application.mark_data_for_update_persistence(
            chat_ids=update.effective_chat.id if update.effective_chat else None,
            user_ids=update.effective_user.id if update.effective_user else None,
        )
    await application.update_persistence()
    release_idle_user_data(application)


def release_idle_user_data(application: Application[Any, Any, Any, Any, Any, Any]) -> int:
    """PTB keeps every user's data for the life of the process; hand back those beyond the
    persistence's `resident_users` whose update is done and whose changes are written."""
    persistence = application.persistence
    processor = application.update_processor
    if not isinstance(persistence, DatabasePersistence) or not isinstance(
        processor, PerUserUpdateProcessor
    ):
        return 0
    # PTB offers no public way to forget an entry without deleting it from the persistence
    # (drop_user_data does both), so its own mappings are trimmed here.
    return persistence.release_idle(
        application._user_data,
        application._chat_data,
        busy=processor.busy,
        unwritten=application._user_ids_to_be_updated_in_persistence
        | application._chat_ids_to_be_updated_in_persistence,
    )


def command_of(message: Message | None, bot_username: str | None) -> str | None:
    """The command a message starts with (`/case@HotlineBot K7M4` -> "case"); None when it does
    not start with one, or names another bot."""
    if message is None or not message.entities:
        return None
    first = message.entities[0]
    if first.type != MessageEntity.BOT_COMMAND or first.offset != 0:
        return None
    name, _, addressee = message.parse_entity(first).removeprefix("/").partition("@")
    if addressee and addressee.casefold() != (bot_username or "").casefold():
        return None
    return name.casefold()


async def only_in_private(update: object, context: HotlineContext) -> None:
    """In a group or channel, refuse commands (but /help) and case-opening buttons: one line in
    the user's language, and no handler runs, so nothing personal is shown there."""
    if not isinstance(update, Update) or update.effective_user is None:
        return
    chat = update.effective_chat
    if chat is None or chat.type == ChatType.PRIVATE:
        return
    text = context.tr.gettext(ONLY_IN_PRIVATE)
    query = update.callback_query
    if query is not None:
        if query.data and query.data.startswith(VIEW_BUTTONS_REFUSED_IN_GROUPS):
            await query.answer(text, show_alert=True)
            raise ApplicationHandlerStop
        return
    message = update.effective_message
    command = command_of(message, context.bot.username)
    if message is None or command is None or command in ALLOWED_IN_GROUPS:
        return
    log.info("a command refused in a %s chat (private chats only)", chat.type)
    await message.reply_text(text)
    raise ApplicationHandlerStop
