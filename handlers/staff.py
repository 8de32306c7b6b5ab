"""The staff console: /inbox, /case CODE and the buttons under a case.

Every button is a plain callback string (`case:st:K7M4-9XQ2:verified`), and every handler checks
the role on the server (`handlers.guard`) and the move against the lifecycle (`storage.cases`),
whatever the button claimed. The business itself lives in `storage.cases`; this module only turns
updates into calls and results into replies.

Notes, questions and merge targets are typed as the staff member's next message: the pending
input is kept in `user_data["staff_input"]` (persisted, so it survives a restart). A family's
answer to a question is caught by `family_reply`, in a late handler group, and only when the
user is not inside another conversation.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import DESK
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_, Translator
from bot.texts import vocabulary as kb
from bot.texts.statuses import status_word
from bot.texts.vocabulary import CLOSE_REASON_WORDS, EVENT_WORDS
from handlers import desk, staff_contacts
from handlers.guard import require
from handlers.replies import reply_html as _reply
from storage import audit, cases, threads
from storage.access import Permission
from storage.codes import normalise_case_code
from storage.enums import AuditOutcome, CaseStatus
from storage.lifecycle import RefusalReason, TransitionRefused

log = logging.getLogger(__name__)

INPUT_KEY = staff_contacts.INPUT_KEY
STAFF_INPUT_GROUP = -10  # before conversations, acting only when input is pending
MAX_EVENTS_SHOWN = 10
MAX_BODY_SHOWN = 300
NOTE_LIMIT = 2000

FIELD_WORDS = {
    "detainee_name": N_("Name"),
    "birth_date": N_("Date of birth"),
    "place": N_("Place of detention"),
    "charges": N_("Charges"),
    "held_at": N_("Held at"),
    "lawyer": N_("Lawyer"),
    "health": N_("Health"),
}
REFUSALS = {
    RefusalReason.UNKNOWN_STATUS: N_("That status does not exist."),
    RefusalReason.SAME_STATUS: N_("The case already has this status."),
    RefusalReason.FINAL: N_(
        "This case is final (returned home or deceased): its status cannot change any more."
    ),
    RefusalReason.CLOSED_ONLY_REOPEN: N_(
        "This case is closed: the only possible change is to reopen it (back to under review)."
    ),
    RefusalReason.NOT_IN_GRAPH: N_("This change is not allowed from the case's current status."),
}


def status_label(tr: Translator, status: str) -> str:
    return status_word(tr, status)


def refusal_text(tr: Translator, refused: TransitionRefused) -> str:
    return tr.gettext("Refused: {reason} ({old} → {new})").format(
        reason=tr.gettext(REFUSALS[refused.reason]),
        old=status_label(tr, refused.old),
        new=status_label(tr, refused.new),
    )


def parse_callback(data: str | None) -> tuple[str, str, str] | None:
    """`case:<verb>:<CODE>[:<arg>]` -> (verb, code, arg); None when malformed."""
    if not data:
        return None
    parts = data.split(":")
    if len(parts) not in (3, 4) or parts[0] != "case":
        return None
    code = normalise_case_code(parts[2])
    if code is None:
        return None
    return parts[1], code, parts[3] if len(parts) == 4 else ""


async def _answer(update: Update) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()


def _staff_contacts(context: HotlineContext) -> cases.StaffContacts:
    services = context.services
    return cases.staff_contacts(services.admin_keys, services.staff_chat_key)


# -- /inbox -----------------------------------------------------------------------------------


def inbox_markup(tr: Translator, page: cases.InboxPage) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                " · ".join(
                    (
                        item.code,
                        status_label(tr, item.status),
                        tr.format_date(item.created_at.date()),
                    )
                ),
                callback_data=f"case:show:{item.code}",
            )
        ]
        for item in page.items
    ]
    paging = []
    if page.page > 0:
        paging.append(InlineKeyboardButton("◀", callback_data=f"inbox:{page.page - 1}"))
    if page.page + 1 < page.pages:
        paging.append(InlineKeyboardButton("▶", callback_data=f"inbox:{page.page + 1}"))
    if paging:
        rows.append(paging)
    return InlineKeyboardMarkup(rows)


async def inbox(update: Update, context: HotlineContext) -> None:
    """New and need_info cases, oldest first, a page at a time."""
    if not await require(update, context, Permission.REVIEW_CASES, action="case.inbox"):
        return
    await _answer(update)
    page_number = 0
    query = update.callback_query
    if query is not None and query.data and query.data.removeprefix("inbox:").isdigit():
        page_number = int(query.data.removeprefix("inbox:"))
    async with context.services.sessions() as session:
        page = await cases.inbox(session, page_number)
    tr = context.tr
    # The family conversations come first: a family waiting for a person matters most.
    counts = await desk.thread_counts(context)
    conversations = tr.ngettext(
        "Family conversations: {count} with unread messages.",
        "Family conversations: {count} with unread messages.",
        counts["unread"],
    ).format(count=counts["unread"])
    desk_row = desk.filter_buttons(tr, counts)
    if page.total == 0:
        text = tr.gettext("No cases are waiting for review.")
        await _reply(update, f"{text}\n\n{conversations}", InlineKeyboardMarkup([desk_row]))
        return
    text = tr.ngettext(
        "{count} case is waiting (page {page} of {pages}):",
        "{count} cases are waiting (page {page} of {pages}):",
        page.total,
    ).format(count=page.total, page=page.page + 1, pages=page.pages)
    markup = InlineKeyboardMarkup([desk_row, *inbox_markup(tr, page).inline_keyboard])
    text = f"{conversations}\n\n{text}"
    if query is not None and query.message is not None and query.data:
        await query.edit_message_text(text, reply_markup=markup)
    else:
        await _reply(update, text, markup)


# -- /case CODE -------------------------------------------------------------------------------


def case_text(tr: Translator, view: cases.StaffCaseView) -> str:
    e = html.escape
    lines = [
        tr.gettext("<b>Case {code}</b>").format(code=e(view.code)),
        tr.gettext("Status: <b>{status}</b>").format(status=e(status_label(tr, view.status))),
        tr.gettext("Region: {region} · detained by: {by} · on: {date}").format(
            region=e(kb.word(tr, kb.REGION_WORDS, view.region)),
            by=e(kb.word(tr, kb.DETAINER_WORDS, view.detained_by) if view.detained_by else "?"),
            date=tr.format_date(view.detention_date) if view.detention_date else "?",
        ),
        tr.gettext("Visibility: {visibility}").format(
            visibility=e(kb.word(tr, kb.VISIBILITY_WORDS, view.visibility))
        ),
    ]
    if view.merged_into:
        lines.append(tr.gettext("Merged into {code}").format(code=e(view.merged_into)))
    if view.duplicate_of:
        lines.append(
            tr.gettext(
                "Possible duplicate of case {code} (same name and date of birth); the reporter "
                "was not told. Compare before you merge or link."
            ).format(code=e(view.duplicate_of))
        )
    if view.closed_reason:
        lines.append(
            tr.gettext("Closed: {reason}").format(
                reason=e(kb.word(tr, CLOSE_REASON_WORDS, view.closed_reason))
            )
        )
    lines.append("")
    for name, label in FIELD_WORDS.items():
        value = view.personal.get(name)
        if value:
            if name == "lawyer":
                value = kb.word(tr, kb.LAWYER_WORDS, value)
            lines.append(f"{e(tr.gettext(label))}: {e(value)}")
    lines.append("")
    lines.append(tr.gettext("Family contacts:"))
    for contact in view.contacts:
        state = (
            tr.gettext("reporter")
            if contact.is_reporter
            else tr.gettext("approved")
            if contact.approved
            else tr.gettext("waiting for approval")
        )
        phone = f" · {e(contact.phone)}" if contact.phone else ""
        relation = (
            f" · {e(kb.word(tr, kb.RELATION_WORDS, contact.relation))}" if contact.relation else ""
        )
        own = (
            " · " + e(tr.gettext("own report {code}").format(code=contact.via))
            if contact.via
            else ""
        )
        lines.append(f"• <code>{contact.user_id}</code> · {e(state)}{relation}{phone}{own}")
    lines.append("")
    lines.append(tr.gettext("History:"))
    for event in view.events[-MAX_EVENTS_SHOWN:]:
        move = ""
        if event.new_status:
            old = status_label(tr, event.old_status) if event.old_status else ""
            move = f" {e(old)}→{e(status_label(tr, event.new_status))}"
        body = ""
        if event.body:
            short = event.body[:MAX_BODY_SHOWN] + ("…" if len(event.body) > MAX_BODY_SHOWN else "")
            body = f": {e(short)}"
        kind = kb.word(tr, EVENT_WORDS, event.kind)
        lines.append(f"• {tr.format_datetime(event.created_at)} {e(kind)}{move}{body}")
    return "\n".join(lines)


def case_markup(tr: Translator, view: cases.StaffCaseView) -> InlineKeyboardMarkup:
    """Buttons only for moves the lifecycle allows from the current status."""
    code = view.code
    special = {CaseStatus.NEED_INFO, CaseStatus.RETURNED, CaseStatus.CLOSED}
    moves = [status for status in view.allowed_next if status not in special]
    rows = [
        [
            InlineKeyboardButton(
                "→ " + status_label(tr, status), callback_data=f"case:st:{code}:{status}"
            )
        ]
        for status in moves
    ]
    if CaseStatus.RETURNED in view.allowed_next:
        rows.append(
            [InlineKeyboardButton(tr.gettext("Mark returned"), callback_data=f"case:ret:{code}")]
        )
    if cases.monitors_may_read_notes(view.visibility):  # a public case: say who reads it
        rows.append(
            [
                InlineKeyboardButton(
                    tr.gettext("Note for family and monitors"), callback_data=f"case:note:{code}"
                ),
                InlineKeyboardButton(
                    tr.gettext("Note for family only"), callback_data=f"case:fnote:{code}"
                ),
            ]
        )
        rows.append(
            [
                InlineKeyboardButton(
                    tr.gettext("Add internal note"), callback_data=f"case:inote:{code}"
                )
            ]
        )
    else:
        rows.append(
            [
                InlineKeyboardButton(
                    tr.gettext("Add note for family"), callback_data=f"case:note:{code}"
                ),
                InlineKeyboardButton(
                    tr.gettext("Add internal note"), callback_data=f"case:inote:{code}"
                ),
            ]
        )
    if CaseStatus.NEED_INFO in view.allowed_next:
        rows.append(
            [
                InlineKeyboardButton(
                    tr.gettext("Ask family for information"), callback_data=f"case:ask:{code}"
                )
            ]
        )
    if CaseStatus.CLOSED in view.allowed_next:
        rows.append(
            [
                InlineKeyboardButton(
                    tr.gettext("Merge into another case"), callback_data=f"case:merge:{code}"
                ),
                InlineKeyboardButton(tr.gettext("Close"), callback_data=f"case:close:{code}"),
            ]
        )
    for contact in view.contacts:
        if not contact.approved and not contact.is_reporter:
            rows.append(
                [
                    InlineKeyboardButton(
                        tr.gettext("Approve contact {user}").format(user=contact.user_id),
                        callback_data=f"case:link:{code}:{contact.user_id}",
                    )
                ]
            )
    return InlineKeyboardMarkup(rows)


async def show_case(update: Update, context: HotlineContext, code: str | None) -> None:
    tr = context.tr
    if code is None:
        await _reply(update, tr.gettext("Usage: /case CODE, for example /case K7M4-9XQ2"))
        return
    services = context.services
    async with services.sessions() as session, session.begin():
        view = await cases.case_for_staff(session, services.cipher, code)
        if view is not None:
            audit.record(
                session,
                actor_id=context.profile.id,
                action="case.view",
                case_code=code,
                at=services.clock(),
            )
    if view is None:
        await _reply(
            update, tr.gettext("No case has the code {code}.").format(code=html.escape(code))
        )
        return
    async with services.sessions() as session:
        conversations = await threads.threads_of_case(session, code)
    text, markup = case_text(tr, view), case_markup(tr, view)
    if conversations:
        unread = sum(item.unread for item in conversations)
        text += "\n\n" + tr.ngettext(
            "Family messages: {count} unread.", "Family messages: {count} unread.", unread
        ).format(count=unread)
        label = tr.gettext("Messages ({count} unread)").format(count=unread)
        button = InlineKeyboardButton(label, callback_data=DESK.build("case", code))
        markup = InlineKeyboardMarkup([[button], *markup.inline_keyboard])
    # name, phones and health: not to be forwarded or saved from a staff member's phone
    await _reply(update, text, markup, protect_content=True)


async def case_command(update: Update, context: HotlineContext) -> None:
    if not await require(update, context, Permission.REVIEW_CASES, action="case.view"):
        return
    args = context.args or []
    await show_case(update, context, normalise_case_code(args[0]) if args else None)


# -- buttons under a case ---------------------------------------------------------------------

VERB_PERMISSIONS: dict[str, Permission] = {
    "show": Permission.REVIEW_CASES,
    "st": Permission.CHANGE_STATUS,
    "verify": Permission.CHANGE_STATUS,
    "ok": Permission.CHANGE_STATUS,
    "ret": Permission.CHANGE_STATUS,
    "close": Permission.CHANGE_STATUS,
    "cls": Permission.CHANGE_STATUS,
    "inote": Permission.ADD_NOTES,
    "ask": Permission.CHANGE_STATUS,
    "merge": Permission.MERGE_CASES,
}  # linking relatives, merging and notes for the family: handlers.staff_contacts


async def case_button(update: Update, context: HotlineContext) -> None:
    """Every `case:` callback: parse, check the role for that verb, then act."""
    query = update.callback_query
    assert query is not None
    parsed = parse_callback(query.data)
    verb = parsed[0] if parsed else "?"
    permission = VERB_PERMISSIONS.get(verb, Permission.CHANGE_STATUS)
    if not await require(update, context, permission, action=f"case.button.{verb}"[:48]):
        return
    if parsed is None or verb not in VERB_PERMISSIONS:
        await query.answer(context.tr.gettext("This button is no longer valid."))
        return
    await query.answer()
    _, code, arg = parsed
    if verb == "show":
        await show_case(update, context, code)
    elif verb in ("st", "verify", "ret"):
        target = {"verify": CaseStatus.VERIFIED, "ret": CaseStatus.RETURNED}.get(verb, arg)
        await confirm_status(update, context, code, str(target))
    elif verb == "ok":
        await apply_status(update, context, code, arg, note=None)
    elif verb in ("inote", "ask", "merge"):
        await ask_for_input(update, context, verb, code, "")
    elif verb == "close":
        await choose_close_reason(update, context, code)
    elif verb == "cls":
        await close_with_reason(update, context, code, arg)


async def confirm_status(update: Update, context: HotlineContext, code: str, target: str) -> None:
    tr = context.tr
    try:
        status = CaseStatus(target)
    except ValueError:
        await _reply(update, tr.gettext(REFUSALS[RefusalReason.UNKNOWN_STATUS]))
        return
    text = tr.gettext("Change case {code} to <b>{status}</b>? The family will be told.").format(
        code=html.escape(code), status=html.escape(status_label(tr, status))
    )
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(tr.gettext("Confirm"), callback_data=f"case:ok:{code}:{status}")],
            [
                InlineKeyboardButton(
                    tr.gettext("Confirm and add a note for the family"),
                    callback_data=f"case:okn:{code}:{status}",
                )
            ],
            [InlineKeyboardButton(tr.gettext("Cancel"), callback_data=f"case:show:{code}")],
        ]
    )
    await _reply(update, text, markup)


async def apply_status(
    update: Update, context: HotlineContext, code: str, target: str, *, note: str | None
) -> None:
    tr = context.tr
    services = context.services
    try:
        status = CaseStatus(target)
    except ValueError:
        await _reply(update, tr.gettext(REFUSALS[RefusalReason.UNKNOWN_STATUS]))
        return
    try:
        async with services.sessions() as session, session.begin():
            change = await cases.change_status(
                session,
                services.cipher,
                code,
                status,
                actor_id=context.profile.id,
                now=services.clock(),
                staff=_staff_contacts(context),
                public_note=note,
                action="case.returned" if status == CaseStatus.RETURNED else "case.status",
            )
    except TransitionRefused as refused:
        await _refused(update, context, code, refused)
        return
    except cases.CaseNotFound:
        await _reply(update, tr.gettext("No case has the code {code}.").format(code=code))
        return
    actor = context.services.cipher.pseudonym(context.profile.id)
    log.info("case %s: %s -> %s by %s", code, change.old_status, change.new_status, actor)
    await _reply(update, _changed_text(tr, change))
    await show_case(update, context, change.code)  # the next move is one tap away


def _changed_text(tr: Translator, change: cases.Change) -> str:
    return tr.ngettext(
        "Case {code} is now <b>{status}</b>. {count} notification is on its way.",
        "Case {code} is now <b>{status}</b>. {count} notifications are on their way.",
        change.queued,
    ).format(
        code=html.escape(change.code),
        status=html.escape(status_label(tr, change.new_status)),
        count=change.queued,
    )


async def _refused(
    update: Update, context: HotlineContext, code: str, refused: TransitionRefused
) -> None:
    services = context.services
    async with services.sessions() as session, session.begin():
        audit.record(
            session,
            actor_id=context.profile.id,
            action="case.status",
            outcome=AuditOutcome.REFUSED,
            case_code=code,
            detail=f"{refused.old}->{refused.new}",
            at=services.clock(),
        )
    await _reply(update, html.escape(refusal_text(context.tr, refused)))


async def choose_close_reason(update: Update, context: HotlineContext, code: str) -> None:
    tr = context.tr
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(tr.gettext(word), callback_data=f"case:cls:{code}:{reason}")]
            for reason, word in CLOSE_REASON_WORDS.items()
        ]
        + [[InlineKeyboardButton(tr.gettext("Cancel"), callback_data=f"case:show:{code}")]]
    )
    await _reply(update, tr.gettext("Why is case {code} being closed?").format(code=code), markup)


async def close_with_reason(
    update: Update, context: HotlineContext, code: str, reason: str
) -> None:
    tr = context.tr
    services = context.services
    try:
        async with services.sessions() as session, session.begin():
            change = await cases.close_case(
                session,
                services.cipher,
                code,
                reason,
                actor_id=context.profile.id,
                now=services.clock(),
            )
    except TransitionRefused as refused:
        await _refused(update, context, code, refused)
        return
    except (cases.CaseRefused, cases.CaseNotFound):
        await _reply(update, tr.gettext("This button is no longer valid."))
        return
    await _reply(update, _changed_text(tr, change))


# -- typed input: notes, questions, merge targets ------------------------------------------------

PROMPTS = {
    "inote": N_("Write the internal note (only staff will see it):"),
    "ask": N_("Write the question for the family:"),
    "merge": N_("Send the code of the case to keep (this case will be closed as its duplicate):"),
}


async def ask_for_input(
    update: Update, context: HotlineContext, kind: str, code: str, status: str
) -> None:
    if context.user_data is not None:
        context.user_data[INPUT_KEY] = {"kind": kind, "code": code, "status": status}
    await _reply(
        update,
        context.tr.gettext(PROMPTS[kind]) + "\n" + context.tr.gettext("(/cancel to stop)"),
    )


async def staff_input(update: Update, context: HotlineContext) -> None:
    """The staff member's typed note, question or merge target, if one was asked for."""
    pending: dict[str, Any] | None = (context.user_data or {}).get(INPUT_KEY)
    message = update.effective_message
    if pending is None or message is None or not message.text:
        return
    if context.user_data is not None:
        context.user_data.pop(INPUT_KEY, None)
    kind, code, status = pending["kind"], pending["code"], pending.get("status", "")
    permission = Permission.MERGE_CASES if kind == "merge" else Permission.ADD_NOTES
    if kind in ("status_note", "ask"):
        permission = Permission.CHANGE_STATUS
    if not await require(update, context, permission, action=f"case.input.{kind}"):
        await _stop_here(context)
    text = message.text.strip()[:NOTE_LIMIT]
    if kind == "status_note":
        await apply_status(update, context, code, status, note=text)
    else:
        await _save_input(update, context, kind, code, text)
    await _stop_here(context)


async def _save_input(
    update: Update, context: HotlineContext, kind: str, code: str, text: str
) -> None:
    if kind in ("note", "fnote"):  # the prompt said who reads it; so does the answer
        await staff_contacts.note_typed(update, context, kind, code, text)
        return
    if kind == "merge":  # nothing merges before both cases are shown and confirmed
        await staff_contacts.confirm_merge(update, context, code, text)
        return
    tr = context.tr
    services = context.services
    actor, now = context.profile.id, services.clock()
    try:
        async with services.sessions() as session, session.begin():
            if kind == "inote":
                change = await cases.add_internal_note(
                    session, services.cipher, code, text, actor_id=actor, now=now
                )
                reply = tr.gettext("The internal note was added.")
            else:
                change = await cases.request_info(
                    session, services.cipher, code, text, actor_id=actor, now=now
                )
                reply = tr.gettext("The question was sent; the case waits for the family's answer.")
    except TransitionRefused as refused:
        await _refused(update, context, code, refused)
        return
    except cases.CaseNotFound as missing:
        await _reply(update, tr.gettext("No case has the code {code}.").format(code=str(missing)))
        return
    except cases.CaseRefused:
        await _reply(update, tr.gettext("That cannot be done with these cases."))
        return
    pseudonym = context.services.cipher.pseudonym(actor)
    log.info("case %s: %s by %s (event %d)", code, kind, pseudonym, change.event_id)
    await _reply(update, reply)


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
    try:
        async with services.sessions() as session, session.begin():
            await cases.keep_for_case(
                session, code, choice, actor_id=context.profile.id, now=services.clock()
            )
    except (cases.CaseNotFound, cases.CaseRefused):
        await _reply(update, html.escape(tr.gettext("No case has this code.")))
        return
    text = (
        tr.gettext("The details of case {code} will be kept if the family asks to be forgotten.")
        if choice
        else tr.gettext(
            "The details of case {code} will be erased if the family asks to be forgotten."
        )
    )
    await _reply(update, html.escape(text.format(code=code)))


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("inbox", inbox))
    application.add_handler(CommandHandler("keep", keep_command))
    application.add_handler(CommandHandler("case", case_command))
    application.add_handler(CallbackQueryHandler(inbox, pattern=r"^inbox:\d+$"))
    staff_contacts.register(application)  # its `case:` verbs first: the first match wins
    application.add_handler(CallbackQueryHandler(case_button, pattern=r"^case:"))
    private_text = filters.TEXT & ~filters.COMMAND
    application.add_handler(CommandHandler("cancel", cancel_input), group=STAFF_INPUT_GROUP)
    application.add_handler(MessageHandler(private_text, staff_input), group=STAFF_INPUT_GROUP)
