"""What a staff member types after a button asked for it: an internal note, a question for the
family, the code of the case to merge into, a note for the family (with or without a status
change).

The button's prompt records the pending input in `user_data["staff_input"]` (persisted, so it
survives a restart); the next text message of that staff member is the input, taken in an early
handler group so no conversation or family handler sees it. /cancel drops it. The role is
checked again when the text arrives, and the operation runs through
`handlers.staff_operation.run` like every other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import CASE
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_
from handlers import staff_contacts, staff_operation
from handlers.guard import require
from handlers.replies import reply_html as _reply
from handlers.staff_actions import apply_status
from handlers.staff_contacts import INPUT_KEY
from handlers.staff_operation import case_press
from storage import cases
from storage.access import Permission
from storage.enums import CaseStatus

log = logging.getLogger(__name__)

STAFF_INPUT_GROUP = -10  # before conversations, acting only when input is pending
NOTE_LIMIT = 2000

VERB_PERMISSIONS: dict[str, Permission] = {
    "inote": Permission.ADD_NOTES,
    "ask": Permission.CHANGE_STATUS,
    "merge": Permission.MERGE_CASES,
}
INPUT_PERMISSIONS: dict[str, Permission] = {
    **VERB_PERMISSIONS,
    "note": Permission.ADD_NOTES,
    "fnote": Permission.ADD_NOTES,
    "status_note": Permission.CHANGE_STATUS,
}
PROMPTS = {
    "inote": N_("Write the internal note (only staff will see it):"),
    "ask": N_("Write the question for the family:"),
    "merge": N_("Send the code of the case to keep (this case will be closed as its duplicate):"),
}


async def input_button(update: Update, context: HotlineContext) -> None:
    """Internal note, question, merge: ask for the text, and wait for it."""
    pressed = await case_press(update, context, VERB_PERMISSIONS)
    if pressed is None:
        return
    if context.user_data is not None:
        context.user_data[INPUT_KEY] = {"kind": pressed.verb, "code": pressed.args[0]}
    tr = context.tr
    await _reply(update, tr.gettext(PROMPTS[pressed.verb]) + "\n" + tr.gettext("(/cancel to stop)"))


async def staff_input(update: Update, context: HotlineContext) -> None:
    """The staff member's typed note, question or merge target, if one was asked for."""
    pending: dict[str, Any] | None = (context.user_data or {}).get(INPUT_KEY)
    message = update.effective_message
    if pending is None or message is None or not message.text:
        return
    if context.user_data is not None:
        context.user_data.pop(INPUT_KEY, None)
    kind = str(pending.get("kind"))
    permission = INPUT_PERMISSIONS.get(kind, Permission.CHANGE_STATUS)
    if not await require(update, context, permission, action=f"case.input.{kind}"):
        await _stop_here(context)
    typed = Typed(kind, str(pending.get("code")), str(pending.get("status", "")))
    handler = _TYPED_INPUT.get(kind)
    if handler is not None:
        await handler(update, context, typed, message.text.strip()[:NOTE_LIMIT])
    await _stop_here(context)


@dataclass(frozen=True)
class Typed:
    """What the pending input was for: its kind, the case, and the status for a status note."""

    kind: str
    code: str
    status: str


async def _status_note(update: Update, context: HotlineContext, typed: Typed, text: str) -> None:
    if typed.status in set(CaseStatus):
        await apply_status(update, context, typed.code, CaseStatus(typed.status), note=text)


async def _note(update: Update, context: HotlineContext, typed: Typed, text: str) -> None:
    """The prompt said who reads it; so does the answer."""
    await staff_contacts.note_typed(update, context, typed.kind, typed.code, text)


async def _merge_code(update: Update, context: HotlineContext, typed: Typed, text: str) -> None:
    """Nothing merges before both cases are shown and confirmed."""
    await staff_contacts.confirm_merge(update, context, typed.code, text)


async def _note_or_question(
    update: Update, context: HotlineContext, typed: Typed, text: str
) -> None:
    await _save_note_or_question(update, context, typed.kind, typed.code, text)


_TYPED_INPUT: dict[str, Callable[[Update, HotlineContext, Typed, str], Awaitable[None]]] = {
    "status_note": _status_note,
    "note": _note,
    "fnote": _note,
    "merge": _merge_code,
    "inote": _note_or_question,
    "ask": _note_or_question,
}


async def _save_note_or_question(
    update: Update, context: HotlineContext, kind: str, code: str, text: str
) -> None:
    tr, services = context.tr, context.services
    actor, now = context.profile.id, services.clock()

    async def save(session: AsyncSession) -> cases.Change:
        if kind == "inote":
            return await cases.add_internal_note(
                session, services.cipher, code, text, actor_id=actor, now=now
            )
        return await cases.request_info(
            session, services.cipher, code, text, actor_id=actor, now=now
        )

    action = "case.internal_note" if kind == "inote" else "case.request_info"
    change = await staff_operation.run(update, context, save, action=action, code=code)
    if change is None:
        return
    pseudonym = services.cipher.pseudonym(actor)
    log.info("case %s: %s by %s (event %d)", code, kind, pseudonym, change.event_id)
    if kind == "inote":
        await _reply(update, tr.gettext("The internal note was added."))
    else:
        await _reply(
            update, tr.gettext("The question was sent; the case waits for the family's answer.")
        )


async def cancel_input(update: Update, context: HotlineContext) -> None:
    """/cancel while a note or question was being typed."""
    if context.user_data is None or INPUT_KEY not in context.user_data:
        return
    context.user_data.pop(INPUT_KEY, None)
    await _reply(update, context.tr.gettext("Cancelled."))
    await _stop_here(context)


async def _stop_here(context: HotlineContext) -> None:
    """This message was the awaited input: no other handler may take it. Persist first, since
    stopping also skips the flush group."""
    await context.application.update_persistence()
    raise ApplicationHandlerStop


def register(application: HotlineApplication) -> None:
    pattern = CASE.pattern_of(*VERB_PERMISSIONS)
    application.add_handler(CallbackQueryHandler(input_button, pattern=pattern))
    private_text = filters.TEXT & ~filters.COMMAND
    application.add_handler(CommandHandler("cancel", cancel_input), group=STAFF_INPUT_GROUP)
    application.add_handler(MessageHandler(private_text, staff_input), group=STAFF_INPUT_GROUP)
