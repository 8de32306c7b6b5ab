"""Runs before every handler: holds back floods and knows who the user is.

The per-user message limit is checked first, in memory, so a flooding user costs the others almost
nothing; then the user's profile is loaded (or created) so every handler can answer in the user's
language and check their role.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.context import HotlineContext
from bot.i18n import language_from_telegram
from storage.users import touch_user

log = logging.getLogger(__name__)


async def load_profile(update: object, context: HotlineContext) -> None:
    if not isinstance(update, Update) or update.effective_user is None:
        return
    user = update.effective_user
    services = context.services
    limiter = services.message_limiter
    allowed = limiter.allow(user.id)
    if not allowed and not limiter.should_warn(user.id):
        raise ApplicationHandlerStop
    async with services.sessions() as session, session.begin():
        context.profile = await touch_user(
            session,
            user.id,
            first_language=language_from_telegram(user.language_code),
            admin_ids=services.settings.admin_ids,
            now=services.clock(),
        )
    log.debug(
        "update %s: role %s, new=%s", update.update_id, context.profile.role, context.profile.is_new
    )
    if not allowed:
        if update.effective_message is not None:
            await update.effective_message.reply_text(
                context.tr.gettext("You are sending messages very fast. Please wait a minute.")
            )
        raise ApplicationHandlerStop


async def flush_persistence(update: object, context: HotlineContext) -> None:
    """Write conversation states and drafts after each update, so a crash loses no answer.

    PTB marks an update's user and chat for persistence only after all groups ran, so they are
    marked here, or this flush would write the previous update's data instead.
    """
    if isinstance(update, Update):
        context.application.mark_data_for_update_persistence(
            chat_ids=update.effective_chat.id if update.effective_chat else None,
            user_ids=update.effective_user.id if update.effective_user else None,
        )
    await context.application.update_persistence()
