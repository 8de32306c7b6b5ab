"""The family's PIN: asked before /status, /mydata, "Show" and privacy changes, when one is set.

Someone else may hold the phone. With a PIN set, a protected action first asks for it and is
remembered (`PENDING` in the user's data); the next message of digits is the PIN: it is deleted
from the chat at once, checked against the sealed scrypt hash (storage/safety.py), and the action
runs if it is right. Five wrong PINs in a row freeze the account and alert staff. A message that
is not digits cancels the question and goes on to the other handlers.

Actions are registered by the modules that own them (`add_action`, kept in bot_data), so this
module imports none of them.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, MessageHandler, filters

from bot.context import HotlineApplication, HotlineContext
from storage import safety
from storage.recipients import staff_contacts

log = logging.getLogger(__name__)

PENDING = "pin_pending"
ACTIONS_KEY = "pin_actions"
PIN_GROUP = -40  # after the profile and first contact, before staff input and conversations
VERIFY, NEW, REPEAT = "verify", "new", "repeat"

Action = Callable[[Update, HotlineContext, str], Awaitable[None]]


def add_action(application: HotlineApplication, name: str, action: Action) -> None:
    """Make `action(update, context, arg)` runnable after a right PIN."""
    application.bot_data.setdefault(ACTIONS_KEY, {})[name] = action


def _user_data(context: HotlineContext) -> dict[Any, Any]:
    return context.user_data if context.user_data is not None else {}


async def _say(update: Update, text: str) -> None:
    chat = update.effective_chat
    if chat is not None:
        await chat.send_message(html.escape(text))


async def pin_asked(update: Update, context: HotlineContext, action: str, arg: str = "") -> bool:
    """True when the user has a PIN: it is asked for, and `action` runs once it is given.
    A frozen account is never asked (it is shown nothing, whatever it types)."""
    profile = context.profile
    if not profile.has_pin or profile.frozen:
        return False
    _user_data(context)[PENDING] = {"mode": VERIFY, "action": action, "arg": arg}
    await _say(update, context.tr.gettext("Please send your PIN."))
    return True


async def ask_new_pin(update: Update, context: HotlineContext) -> None:
    """Start setting a PIN (after the current one was given, if there is one)."""
    _user_data(context)[PENDING] = {"mode": NEW}
    await _say(
        update,
        context.tr.gettext(
            "Send a PIN of 4 to 8 digits. Choose one that others cannot guess; I will delete "
            "it from the chat at once."
        ),
    )


async def _delete_typed(update: Update, context: HotlineContext) -> None:
    message = update.effective_message
    if message is None:
        return
    try:
        await context.bot.delete_message(message.chat_id, message.message_id)
    except TelegramError:
        log.info("pin: the typed PIN could not be deleted")


async def pin_input(update: Update, context: HotlineContext) -> None:
    """The answer to a PIN question; anything that is not digits cancels the question."""
    message = update.effective_message
    data = _user_data(context)
    pending = data.get(PENDING)
    if message is None or message.text is None or not isinstance(pending, dict):
        return
    typed = message.text.strip()
    if not (typed.isascii() and typed.isdigit()):
        data.pop(PENDING, None)
        return
    await _delete_typed(update, context)
    data.pop(PENDING, None)
    mode = pending.get("mode")
    if mode == VERIFY:
        await _verify(update, context, typed, pending)
    elif mode == NEW:
        await _new(update, context, typed)
    elif mode == REPEAT:
        await _repeat(update, context, typed, str(pending.get("first", "")))
    await context.application.update_persistence()
    raise ApplicationHandlerStop


async def _verify(
    update: Update, context: HotlineContext, typed: str, pending: dict[str, Any]
) -> None:
    services, tr = context.services, context.tr
    async with services.sessions() as session, session.begin():
        result = await safety.check_pin(
            session,
            services.cipher,
            context.profile.id,
            typed,
            now=services.clock(),
            staff=staff_contacts(services.admin_keys, services.staff_chat_key),
        )
    if result.ok:
        actions: dict[str, Action] = context.bot_data.get(ACTIONS_KEY, {})
        action = actions.get(str(pending.get("action")))
        if action is not None:
            await action(update, context, str(pending.get("arg", "")))
        return
    if result.tries_left == 0:
        log.warning("pin: too many wrong PINs, account frozen")
        await _say(
            update,
            tr.gettext(
                "Wrong PIN. For your safety this account shows no details any more. To undo "
                "this, please contact the hotline another way."
            ),
        )
        return
    _user_data(context)[PENDING] = pending  # the same question again
    await _say(
        update,
        tr.ngettext(
            "Wrong PIN. You have {count} more try.",
            "Wrong PIN. You have {count} more tries.",
            result.tries_left,
        ).format(count=result.tries_left),
    )


async def _new(update: Update, context: HotlineContext, typed: str) -> None:
    if not safety.valid_pin(typed):
        _user_data(context)[PENDING] = {"mode": NEW}
        await _say(update, context.tr.gettext("A PIN is 4 to 8 digits. Please send another."))
        return
    first = await asyncio.to_thread(safety.hash_pin, typed)
    _user_data(context)[PENDING] = {"mode": REPEAT, "first": first}
    await _say(update, context.tr.gettext("Please send the same PIN again."))


async def _repeat(update: Update, context: HotlineContext, typed: str, first: str) -> None:
    tr = context.tr
    if not await asyncio.to_thread(safety.pin_matches, first, typed):
        await _say(update, tr.gettext("The two PINs differ. Nothing was changed."))
        return
    services = context.services
    async with services.sessions() as session, session.begin():
        await safety.set_pin(session, services.cipher, context.profile.id, first)
    await _say(
        update,
        tr.gettext(
            "Your PIN is set. /status, /mydata and the Show button will ask for it. "
            "Five wrong PINs lock the details away until the hotline unlocks them."
        ),
    )


def register(application: HotlineApplication) -> None:
    typed = filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE
    application.add_handler(MessageHandler(typed, pin_input), group=PIN_GROUP)
