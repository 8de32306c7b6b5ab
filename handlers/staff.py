"""The staff console's reading side: /inbox, and a case's card (/case CODE, or a button).

The card shows everything about a case, opened for staff (`storage.case_views`), and offers only
the moves the lifecycle allows from its status, each with the button its status row gives
(`storage.statuses`): a plain move asks to confirm, need_info asks for the question, closed asks
for a reason. What the buttons do is `handlers.staff_actions` (moves, /keep, /visibility),
`handlers.staff_input` (typed notes, questions, merge codes) and `handlers.staff_contacts`
(relatives, merging, notes for the family); each re-checks the role on the server.
"""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.callbacks import CASE, DESK, INBOX, RECORD
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import Translator
from bot.texts import vocabulary as kb
from bot.texts.messages.record import record_lines, sign_text
from bot.texts.statuses import status_word
from bot.texts.vocabulary import CLOSE_REASON_WORDS, EVENT_WORDS
from handlers import desk
from handlers.guard import require
from handlers.pressed import show
from handlers.replies import reply_html as _reply
from handlers.staff_operation import NO_SUCH_CASE, case_press
from storage import audit, case_views, fields, threads
from storage.access import Permission
from storage.codes import normalise_case_code
from storage.enums import EventKind
from storage.recipients import monitors_may_read_notes
from storage.record import record_keys
from storage.statuses import STATUSES, CardFlow, Status

MAX_EVENTS_SHOWN = 10
MAX_BODY_SHOWN = 300


def status_label(tr: Translator, status: str) -> str:
    return status_word(tr, status)


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


# -- /inbox -----------------------------------------------------------------------------------


def inbox_markup(tr: Translator, page: case_views.InboxPage) -> InlineKeyboardMarkup:
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
                callback_data=CASE.build("show", item.code),
            )
        ]
        for item in page.items
    ]
    paging = []
    if page.has_previous and page.first is not None:
        back = INBOX.build("p", page.page - 1, page.first.micros, page.first.id)
        paging.append(InlineKeyboardButton("◀", callback_data=back))
    if page.has_next and page.last is not None:
        forth = INBOX.build("n", page.page + 1, page.last.micros, page.last.id)
        paging.append(InlineKeyboardButton("▶", callback_data=forth))
    if paging:
        rows.append(paging)
    return InlineKeyboardMarkup(rows)


async def inbox(update: Update, context: HotlineContext) -> None:
    """New and need_info cases, oldest first, a page at a time (keyset: a page button carries
    the key of the row beside it, `storage.case_views.inbox`)."""
    if not await require(update, context, Permission.REVIEW_CASES, action="case.inbox"):
        return
    query = update.callback_query
    pressed = INBOX.parse(query.data) if query is not None else None
    if query is not None:
        await query.answer()
    after = before = None
    number = 0
    if pressed is not None and pressed.verb in ("n", "p"):
        number, micros, case_id = (int(arg) for arg in pressed.args)
        key = case_views.InboxKey.of(micros, case_id)
        after, before = (key, None) if pressed.verb == "n" else (None, key)
    async with context.services.sessions() as session:
        page = await case_views.inbox(session, after=after, before=before, page=number)
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
        await show(query, text, reply_markup=markup)
    else:
        await _reply(update, text, markup)


# -- /case CODE -------------------------------------------------------------------------------


def case_text(tr: Translator, view: case_views.StaffCaseView) -> str:
    """The card: the case, what the family told (fields registry), the record staff keep,
    the family's contacts and the latest history. HTML; every stored value escaped."""
    sections = [
        _heading_lines(tr, view),
        _field_lines(tr, view),
        _record_lines(tr, view),
        _contact_lines(tr, view),
        _history_lines(tr, view),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines)


def _heading_lines(tr: Translator, view: case_views.StaffCaseView) -> list[str]:
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
    return lines


def _field_lines(tr: Translator, view: case_views.StaffCaseView) -> list[str]:
    """What the family told, each in the reader's words and date format (`storage.fields`)."""
    e = html.escape
    lines = []
    for field in fields.REGISTRY.stored_in(fields.PERSONAL):
        value = view.personal.get(field.column or "")
        if value:
            lines.append(f"{e(tr.gettext(field.label))}: {e(field.kind.show(tr, field, value))}")
    return lines


def _record_lines(tr: Translator, view: case_views.StaffCaseView) -> list[str]:
    """The prisoner's record (custody, articles, court, hearing...), the group, the last sign."""
    lines = record_lines(tr, view.record, record_keys())
    if view.group:
        lines.append(html.escape(tr.gettext("Group: {name}").format(name=view.group)))
    last = (
        sign_text(tr, view.last_sign.kind, view.last_sign.on_date)
        if view.last_sign
        else tr.gettext("none logged yet")
    )
    lines.append(html.escape(tr.gettext("Last sign of life: {last}").format(last=last)))
    return lines


def _contact_lines(tr: Translator, view: case_views.StaffCaseView) -> list[str]:
    e = html.escape
    lines = [tr.gettext("Family contacts:")]
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
    return lines


def _history_lines(tr: Translator, view: case_views.StaffCaseView) -> list[str]:
    e = html.escape
    lines = [tr.gettext("History:")]
    for event in view.events[-MAX_EVENTS_SHOWN:]:
        move = ""
        if event.new_status:
            old = status_label(tr, event.old_status) if event.old_status else ""
            move = f" {e(old)}→{e(status_label(tr, event.new_status))}"
        body = ""
        if event.body and event.kind != EventKind.RECORD_CHANGED:  # its body is the value
            short = event.body[:MAX_BODY_SHOWN] + ("…" if len(event.body) > MAX_BODY_SHOWN else "")
            body = f": {e(short)}"
        kind = kb.word(tr, EVENT_WORDS, event.kind)
        lines.append(f"• {tr.format_datetime(event.created_at)} {e(kind)}{move}{body}")
    return lines


def case_markup(tr: Translator, view: case_views.StaffCaseView) -> InlineKeyboardMarkup:
    """Buttons only for the moves the lifecycle allows from the current status, each as its
    status's row says (`storage.statuses.CardFlow`); then notes, and relatives to approve."""
    moves = [STATUSES[status] for status in view.allowed_next]
    return InlineKeyboardMarkup(
        [
            *_move_rows(tr, view.code, [row for row in moves if row.flow == CardFlow.MOVE]),
            *_note_rows(tr, view),
            [_button("✎ " + tr.gettext("Edit details"), RECORD.build("menu", view.code))],
            *_flow_rows(tr, view.code, [row for row in moves if row.flow != CardFlow.MOVE]),
            *_approval_rows(tr, view),
        ]
    )


def _move_rows(tr: Translator, code: str, moves: list[Status]) -> list[list[InlineKeyboardButton]]:
    """A plain move: "→ <word>" (or the status's own label), then Confirm."""
    return [
        [
            _button(
                tr.gettext(row.button) if row.button else "→ " + status_label(tr, row.status),
                CASE.build("st", code, row.status),
            )
        ]
        for row in moves
    ]


def _flow_rows(tr: Translator, code: str, moves: list[Status]) -> list[list[InlineKeyboardButton]]:
    """A move that asks something first: the question (need_info), the reason (closed)."""
    rows = []
    for row in moves:
        if row.flow == CardFlow.QUESTION and row.button:
            rows.append([_button(tr.gettext(row.button), CASE.build("ask", code))])
        elif row.flow == CardFlow.REASON and row.button:
            merge = _button(tr.gettext("Merge into another case"), CASE.build("merge", code))
            rows.append([merge, _button(tr.gettext(row.button), CASE.build("close", code))])
    return rows


def _approval_rows(
    tr: Translator, view: case_views.StaffCaseView
) -> list[list[InlineKeyboardButton]]:
    """Someone waiting to be linked as family: compare, verify, approve (`staff_contacts`)."""
    return [
        [
            _button(
                tr.gettext("Approve contact {user}").format(user=contact.user_id),
                CASE.build("link", view.code, contact.user_id),
            )
        ]
        for contact in view.contacts
        if not contact.approved and not contact.is_reporter
    ]


def _note_rows(tr: Translator, view: case_views.StaffCaseView) -> list[list[InlineKeyboardButton]]:
    """On a public case, the buttons say who reads a note: the family, and the monitors."""
    code = view.code
    internal = _button(tr.gettext("Add internal note"), CASE.build("inote", code))
    if monitors_may_read_notes(view.visibility):
        return [
            [
                _button(tr.gettext("Note for family and monitors"), CASE.build("note", code)),
                _button(tr.gettext("Note for family only"), CASE.build("fnote", code)),
            ],
            [internal],
        ]
    return [[_button(tr.gettext("Add note for family"), CASE.build("note", code)), internal]]


async def show_case(update: Update, context: HotlineContext, code: str | None) -> None:
    tr = context.tr
    if code is None:
        await _reply(update, tr.gettext("Usage: /case CODE, for example /case K7M4-9XQ2"))
        return
    services = context.services
    async with services.sessions() as session, session.begin():
        view = await case_views.case_for_staff(session, services.cipher, code)
        if view is not None:
            audit.record(
                session,
                actor_id=context.profile.id,
                action="case.view",
                case_code=code,
                at=services.clock(),
            )
    if view is None:
        await _reply(update, html.escape(tr.gettext(NO_SUCH_CASE).format(code=code)))
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


async def show_button(update: Update, context: HotlineContext) -> None:
    """`case:show:CODE`: the card again (from the inbox, or Cancel under a question)."""
    pressed = await case_press(update, context, {"show": Permission.REVIEW_CASES})
    if pressed is not None:
        await show_case(update, context, pressed.args[0])


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("inbox", inbox))
    application.add_handler(CommandHandler("case", case_command))
    application.add_handler(CallbackQueryHandler(inbox, pattern=INBOX.pattern))
    application.add_handler(CallbackQueryHandler(show_button, pattern=CASE.pattern_of("show")))
