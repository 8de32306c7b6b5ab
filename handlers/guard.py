"""The server-side permission check every staff handler goes through.

Buttons and callback data arrive from the user's client and can be forged, so a handler never
trusts that the user saw a staff button: it calls `require` (or is wrapped by `requires`), which
asks `storage.access.can` for the user's current role, refuses in the user's language, writes an
audit row with outcome DENIED, and logs the attempt with ids only.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update

from bot.context import HotlineContext
from storage import audit
from storage.access import Permission, can
from storage.codes import normalise_case_code
from storage.enums import AuditOutcome

log = logging.getLogger(__name__)

Handler = Callable[[Update, HotlineContext], Coroutine[Any, Any, None]]


def case_code_in(update: Update, context: HotlineContext) -> str | None:
    """The case code a command or callback names, if any (for the audit row)."""
    parts: list[str] = []
    if update.callback_query is not None and update.callback_query.data:
        parts = update.callback_query.data.split(":")
    elif context.args:
        parts = list(context.args)
    for part in parts:
        code = normalise_case_code(part)
        if code is not None:
            return code
    return None


async def require(
    update: Update, context: HotlineContext, permission: Permission, *, action: str
) -> bool:
    """True when the user may do it; otherwise refuse, audit and log, and return False."""
    profile = context.profile
    if can(profile.role, permission):
        return True
    code = case_code_in(update, context)
    services = context.services
    async with services.sessions() as session, session.begin():
        audit.record(
            session,
            actor_id=profile.id,
            action=action,
            outcome=AuditOutcome.DENIED,
            case_code=code,
            detail=f"needs {permission}",
            at=services.clock(),
        )
    log.warning(
        "denied %s to user %s (role %s, case %s)",
        action,
        services.cipher.pseudonym(profile.id),
        profile.role,
        services.cipher.pseudonym(code),
    )
    text = context.tr.gettext("Sorry, this is only for the hotline's staff.")
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(text)
    return False


def requires(permission: Permission, action: str) -> Callable[[Handler], Handler]:
    """Decorator form of `require` for whole handlers."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(update: Update, context: HotlineContext) -> None:
            if await require(update, context, permission, action=action):
                await handler(update, context)

        return guarded

    return decorate
