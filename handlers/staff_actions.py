"""What staff do to a case with a tap or a command: move it along the lifecycle, close it for a
reason, keep its details (/keep), record the family's changed consent (/visibility).

Each action is checked twice on the server: the role its verb needs (`case_press`, or `require`
for a command), then the case's state in storage. The operation runs in one transaction through
`handlers.staff_operation.run`, which also answers every refusal; this module only answers
success. What a change sets off is `storage.cases`.
"""

from __future__ import annotations

import html
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.callbacks import CASE
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import Translator
from bot.texts.statuses import status_word
from bot.texts.vocabulary import CLOSE_REASON_WORDS, VISIBILITY_WORDS
from handlers import staff_operation
from handlers.guard import require
from handlers.replies import reply_html as _reply
from handlers.staff import show_case
from handlers.staff_operation import case_press
from storage import cases
from storage.access import Permission
from storage.codes import normalise_case_code
from storage.enums import CaseStatus, Visibility
from storage.recipients import StaffContacts, staff_contacts

log = logging.getLogger(__name__)

VERB_PERMISSIONS: dict[str, Permission] = {
    "st": Permission.CHANGE_STATUS,
    "ok": Permission.CHANGE_STATUS,
    "close": Permission.CHANGE_STATUS,
    "cls": Permission.CHANGE_STATUS,
}
VISIBILITY_ARGS = {v.value: v for v in Visibility}


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


def _staff(context: HotlineContext) -> StaffContacts:
    services = context.services
    return staff_contacts(services.admin_keys, services.staff_chat_key)


async def case_button(update: Update, context: HotlineContext) -> None:
    """A move under a case: ask to confirm it, apply it, or ask why the case is closed."""
    pressed = await case_press(update, context, VERB_PERMISSIONS)
    if pressed is None:
        return
    code = pressed.args[0]
    if pressed.verb == "st":
        await confirm_status(update, context, code, CaseStatus(pressed.args[1]))
    elif pressed.verb == "ok":
        await apply_status(update, context, code, CaseStatus(pressed.args[1]), note=None)
    elif pressed.verb == "close":
        await choose_close_reason(update, context, code)
    elif pressed.verb == "cls":
        await close_with_reason(update, context, code, pressed.args[1])


async def confirm_status(
    update: Update, context: HotlineContext, code: str, status: CaseStatus
) -> None:
    tr = context.tr
    text = tr.gettext("Change case {code} to <b>{status}</b>? The family will be told.").format(
        code=html.escape(code), status=html.escape(status_word(tr, status))
    )
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("Confirm"), callback_data=CASE.build("ok", code, status)
                )
            ],
            [
                InlineKeyboardButton(
                    tr.gettext("Confirm and add a note for the family"),
                    callback_data=CASE.build("okn", code, status),
                )
            ],
            [InlineKeyboardButton(tr.gettext("Cancel"), callback_data=CASE.build("show", code))],
        ]
    )
    await _reply(update, text, markup)


async def apply_status(
    update: Update, context: HotlineContext, code: str, status: CaseStatus, *, note: str | None
) -> None:
    """Move the case (with the note typed for the family, if any), then show the card again:
    the next move is one tap away."""
    services = context.services
    change = await staff_operation.run(
        update,
        context,
        lambda session: cases.change_status(
            session,
            services.cipher,
            code,
            status,
            actor_id=context.profile.id,
            now=services.clock(),
            staff=_staff(context),
            public_note=note,
        ),
        action="case.status",
        code=code,
    )
    if change is None:
        return
    actor = services.cipher.pseudonym(context.profile.id)
    log.info("case %s: %s -> %s by %s", code, change.old_status, change.new_status, actor)
    await _reply(update, changed_text(context.tr, change))
    await show_case(update, context, change.code)


def changed_text(tr: Translator, change: cases.Change) -> str:
    """HTML: the new status, and how many notifications are on their way."""
    return tr.ngettext(
        "Case {code} is now <b>{status}</b>. {count} notification is on its way.",
        "Case {code} is now <b>{status}</b>. {count} notifications are on their way.",
        change.queued,
    ).format(
        code=html.escape(change.code),
        status=html.escape(status_word(tr, change.new_status)),
        count=change.queued,
    )


async def choose_close_reason(update: Update, context: HotlineContext, code: str) -> None:
    tr = context.tr
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(tr.gettext(word), callback_data=CASE.build("cls", code, reason))]
            for reason, word in CLOSE_REASON_WORDS.items()
        ]
        + [[InlineKeyboardButton(tr.gettext("Cancel"), callback_data=CASE.build("show", code))]]
    )
    text = tr.gettext("Why is case {code} being closed?").format(code=code)
    await _reply(update, html.escape(text), markup)


async def close_with_reason(
    update: Update, context: HotlineContext, code: str, reason: str
) -> None:
    services = context.services
    change = await staff_operation.run(
        update,
        context,
        lambda session: cases.close_case(
            session,
            services.cipher,
            code,
            reason,
            actor_id=context.profile.id,
            now=services.clock(),
        ),
        action="case.close",
        code=code,
    )
    if change is not None:
        await _reply(update, changed_text(context.tr, change))


async def keep_command(update: Update, context: HotlineContext) -> None:
    """/keep CODE on|off: keep the detainee's details even if the reporter asks to be forgotten."""
    if not await require(update, context, Permission.CHANGE_STATUS, action="case.keep"):
        return
    tr, services = context.tr, context.services
    args = list(context.args or [])
    code = normalise_case_code(args[0]) if len(args) == 2 else None
    choice = {"on": True, "off": False}.get(args[1].lower()) if len(args) == 2 else None
    if code is None or choice is None:
        await _reply(update, html.escape(tr.gettext("Usage: /keep CODE on|off")))
        return
    kept = await staff_operation.run(
        update,
        context,
        lambda session: cases.keep_for_case(
            session, code, choice, actor_id=context.profile.id, now=services.clock()
        ),
        action="case.keep",
        code=code,
    )
    if kept is None:
        return
    text = (
        tr.gettext("The details of case {code} will be kept if the family asks to be forgotten.")
        if choice
        else tr.gettext(
            "The details of case {code} will be erased if the family asks to be forgotten."
        )
    )
    await _reply(update, html.escape(text.format(code=kept)))


async def visibility_command(update: Update, context: HotlineContext) -> None:
    """/visibility CODE public|anonymous|staff_only: what the family now allows."""
    if not await require(update, context, Permission.CHANGE_STATUS, action="case.visibility"):
        return
    tr, services = context.tr, context.services
    args = list(context.args or [])
    code = normalise_case_code(args[0]) if len(args) == 2 else None
    level = VISIBILITY_ARGS.get(args[1].lower()) if len(args) == 2 else None
    if code is None or level is None:
        usage = tr.gettext("Usage: /visibility CODE public|anonymous|staff_only")
        await _reply(update, html.escape(usage))
        return
    change = await staff_operation.run(
        update,
        context,
        lambda session: cases.change_visibility(
            session,
            services.cipher,
            code,
            level,
            actor_id=context.profile.id,
            now=services.clock(),
        ),
        action="case.visibility",
        code=code,
    )
    if change is None:
        return
    text = tr.gettext("Case {code} is now: {level}.").format(
        code=change.code, level=tr.gettext(VISIBILITY_WORDS[level])
    )
    await _reply(update, html.escape(text))


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("keep", keep_command))
    application.add_handler(CommandHandler("visibility", visibility_command))
    pattern = CASE.pattern_of(*VERB_PERMISSIONS)
    application.add_handler(CallbackQueryHandler(case_button, pattern=pattern))
