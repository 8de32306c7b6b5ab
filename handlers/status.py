"""/status: a family's cases, and one case by its code.

Who sees what (DESIGN.md): the reporter and the contacts staff approved see the case in full; anyone
else with the code of a case that is not staff-only sees the status word and its date, never a name.
An unknown, malformed or hidden code gets one and the same answer, and lookups by code are limited
per user, so codes cannot be probed.
"""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.callbacks import MENU, STATUS
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import Translator
from bot.texts.messages.record import custody_word
from bot.texts.statuses import status_explanation, status_word
from handlers.monitor import follow_button
from handlers.pin import add_action, pin_asked
from handlers.privacy import remember_sensitive_message
from storage import audit
from storage.access import is_staff
from storage.codes import normalise_case_code
from storage.reports import CaseSummary, MyCases, cases_of, look_up

PIN_ACTION = "status"
NOTE_SHOWN = 300


def _case_lines(tr: Translator, case: CaseSummary) -> list[str]:
    """HTML lines: code and status (and, for the family, the name and the last public note)."""
    code = f"<code>{html.escape(case.code)}</code>"
    word = f"<b>{html.escape(status_word(tr, case.status))}</b>"
    lines = [tr.gettext("Case {code}: {status}").format(code=code, status=word)]
    if case.full and case.detainee_name:
        lines.append(html.escape(case.detainee_name))
    if case.full and case.custody:
        custody = custody_word(tr, case.custody)
        lines.append(html.escape(tr.gettext("Custody: {custody}").format(custody=custody)))
    lines.append(
        html.escape(
            tr.gettext("Last change: {date}").format(date=tr.format_date(case.changed_at.date()))
        )
    )
    if case.full and case.last_note:
        note = case.last_note[:NOTE_SHOWN]
        lines.append(
            html.escape(tr.gettext("Latest note from the hotline: {note}").format(note=note))
        )
    return lines


async def status_command(update: Update, context: HotlineContext) -> None:
    """/status lists the user's cases; /status CODE looks one up (after the PIN, if one is set)."""
    typed = " ".join(context.args or [])
    if not await pin_asked(update, context, PIN_ACTION, typed):
        await _status(update, context, typed)


async def _status(update: Update, context: HotlineContext, typed: str) -> None:
    if typed:
        await show_one(update, context, typed)
    else:
        await list_cases(update, context)


async def status_button(update: Update, context: HotlineContext) -> None:
    """The menu's "Status of my cases" (after the PIN, if one is set)."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    if not await pin_asked(update, context, PIN_ACTION):
        await list_cases(update, context)


async def list_cases(update: Update, context: HotlineContext) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()
    chat = update.effective_chat
    if chat is None:
        return
    tr, services = context.tr, context.services
    if context.profile.frozen:  # a seized phone: shown as an account without cases
        mine = MyCases(cases=[])
    else:
        async with services.sessions() as session:
            mine = await cases_of(session, services.cipher, context.profile.id)
    blocks: list[str] = []
    buttons = []
    for case in mine.cases:
        blocks.append("\n".join(_case_lines(tr, case)))
        buttons.append(
            [
                InlineKeyboardButton(
                    tr.gettext("Details of {code}").format(code=case.code),
                    callback_data=STATUS.build("show", case.code),
                )
            ]
        )
    if not blocks:
        blocks.append(
            html.escape(
                tr.gettext(
                    "You have no cases yet. To report a detention, send /report. To look up a "
                    "case by its code, send /status followed by the code."
                )
            )
        )
    sent = await chat.send_message(
        "\n\n".join(blocks),
        reply_markup=InlineKeyboardMarkup(buttons) if buttons else None,
        protect_content=bool(mine.cases),
    )
    if mine.cases:
        remember_sensitive_message(context, sent.message_id)


async def show_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    pressed = STATUS.parse(query.data if query is not None else None)
    assert query is not None and pressed is not None  # routing lets only these through
    await query.answer()
    typed = pressed.args[0]
    if not await pin_asked(update, context, PIN_ACTION, typed):
        await show_one(update, context, typed)


async def show_one(update: Update, context: HotlineContext, typed: str) -> None:
    """One case by code; the same reply for unknown, malformed and hidden codes."""
    chat = update.effective_chat
    if chat is None:
        return
    tr, services = context.tr, context.services
    limiter = services.lookup_limiter
    if not limiter.allow(context.profile.id):
        text = tr.gettext("You have looked up many codes. Please wait a while and try again.")
        await chat.send_message(html.escape(text))
        return
    staff = is_staff(context.profile.role)
    # A frozen account (a seized phone) gets the answer for a code it cannot see.
    code = None if context.profile.frozen else normalise_case_code(typed)
    async with services.sessions() as session, session.begin():
        case = await look_up(
            session,
            services.cipher,
            code,
            context.profile.id,
            sees_every_case=staff,
        )
        if staff and case is not None:  # staff see every case in full: as with /case, audited
            audit.record(
                session,
                actor_id=context.profile.id,
                action="case.view",
                case_code=case.code,
                at=services.clock(),
            )
    if case is None:
        text = tr.gettext(
            "I cannot show a case with this code. Please check the code (it looks like "
            "K7M4-9XQ2). If it is your case and the code is right, write to the hotline."
        )
        await chat.send_message(html.escape(text))
        return
    lines = _case_lines(tr, case)
    explanation = status_explanation(tr, case.status)
    if explanation:
        lines.append(html.escape(explanation))
    # A stranger's view is only ever given for a public or anonymous case: those monitors follow.
    markup = follow_button(tr, case.code) if context.profile.is_approved_monitor else None
    sent = await chat.send_message("\n".join(lines), protect_content=case.full, reply_markup=markup)
    if case.full:
        remember_sensitive_message(context, sent.message_id)


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("status", status_command))
    application.add_handler(CallbackQueryHandler(status_button, pattern=MENU.pattern_of("status")))
    add_action(application, PIN_ACTION, _status)
    application.add_handler(CallbackQueryHandler(show_button, pattern=STATUS.pattern))
