"""/find for staff: cases by code, region, status, custody, tag, assignee, report dates and
name, a page at a time, each result a button that opens the case's card (`handlers.staff`).

A name is hashed into the keyed index at once (`storage.search.by_name`) and never kept: what is
remembered between pages (`user_data["find"]`) holds hashes only. Every search by name is
audited by storage. Every press re-checks the role on the server.
"""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.callbacks import FIND
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_, Translator
from bot.texts.messages.record import custody_word
from bot.texts.statuses import status_word
from bot.texts.vocabulary import REGION_WORDS, word
from handlers import staff
from handlers.find_query import BadCriteria, Criteria, parse_find
from handlers.guard import require
from handlers.replies import reply_html
from storage import search
from storage.access import Permission
from storage.codes import normalise_case_code

STATE_KEY = "find"
USAGE = N_(
    "Find cases by any of these (combine them; quote values with spaces):\n"
    "/find K7M4 (the first characters of a code)\n"
    "/find region:crimea status:verified custody:pre_trial\n"
    "/find tag:journalist assignee:me\n"
    "/find from:01.01.2025 to:31.03.2025 (reported between)\n"
    '/find name:"Ivan Petrenko" born:12.05.1990 (exact name; the birth date is optional)'
)


def to_filter(context: HotlineContext, criteria: Criteria) -> search.CaseFilter:
    """The storage filter of typed criteria: the name becomes its keyed hash here."""
    values = criteria.values
    assignee = values.get("assignee")
    assignee_key: int | None = None
    if assignee is not None:
        if assignee.casefold() == "me":
            assignee_key = context.profile.id
        elif assignee.isdigit():
            assignee_key = context.services.keys.key(int(assignee))
        else:
            raise BadCriteria(N_("assignee: write me or a staff member's Telegram id."))
    chosen = search.CaseFilter(
        code_prefix=values.get("code"),
        region=values.get("region"),
        status=values.get("status"),
        custody=values.get("custody"),
        tag=" ".join(values["tag"].split()).lower() if "tag" in values else None,
        assignee=assignee_key,
        reported_from=criteria.dates.get("from"),
        reported_to=criteria.dates.get("to"),
    )
    if criteria.name is not None:
        chosen = search.by_name(
            context.services.cipher, chosen, criteria.name, criteria.dates.get("born")
        )
    return chosen


def result_line(tr: Translator, item: search.FoundCase) -> str:
    parts = [
        f"<code>{html.escape(item.code)}</code>",
        html.escape(status_word(tr, item.status)),
        html.escape(word(tr, REGION_WORDS, item.region)),
    ]
    if item.custody:
        parts.append(html.escape(custody_word(tr, item.custody)))
    parts.append(tr.format_date(item.reported_at.date()))
    if item.tags:
        parts.append(html.escape(", ".join(f"#{tag}" for tag in item.tags)))
    return "• " + " · ".join(parts)


def results_markup(page: search.FoundPage) -> InlineKeyboardMarkup:
    rows = [
        [InlineKeyboardButton(item.code, callback_data=FIND.build("open", item.code))]
        for item in page.items
    ]
    paging = []
    if page.page > 0:
        paging.append(InlineKeyboardButton("◀", callback_data=FIND.build("page", page.page - 1)))
    if page.page + 1 < page.pages:
        paging.append(InlineKeyboardButton("▶", callback_data=FIND.build("page", page.page + 1)))
    if paging:
        rows.append(paging)
    return InlineKeyboardMarkup(rows)


def results_text(tr: Translator, page: search.FoundPage) -> str:
    if page.total == 0:
        return html.escape(tr.gettext("No case matches."))
    head = tr.ngettext(
        "{count} case found (page {page} of {pages}):",
        "{count} cases found (page {page} of {pages}):",
        page.total,
    ).format(count=page.total, page=page.page + 1, pages=page.pages)
    return "\n".join([html.escape(head), *(result_line(tr, item) for item in page.items)])


async def _show(
    update: Update, context: HotlineContext, chosen: search.CaseFilter, page_number: int
) -> None:
    services = context.services
    async with services.sessions() as session, session.begin():
        page = await search.find_cases(
            session, chosen, page_number, actor_id=context.profile.id, now=services.clock()
        )
    if context.user_data is not None:
        context.user_data[STATE_KEY] = chosen.as_json()
    text, markup = results_text(context.tr, page), results_markup(page)
    query = update.callback_query
    if query is not None and query.message is not None:
        await query.edit_message_text(text, parse_mode="HTML", reply_markup=markup)
    else:
        await reply_html(update, text, markup)


async def find_command(update: Update, context: HotlineContext) -> None:
    if not await require(update, context, Permission.REVIEW_CASES, action="case.find"):
        return
    tr = context.tr
    text = update.effective_message.text if update.effective_message else None
    typed = (text or "").partition(" ")[2].strip()
    if not typed:
        await reply_html(update, html.escape(tr.gettext(USAGE)))
        return
    try:
        criteria = parse_find(tr, typed, today=context.services.clock().date())
        chosen = to_filter(context, criteria)
    except BadCriteria as bad:
        await reply_html(
            update, html.escape(bad.text(tr)) + "\n\n" + html.escape(tr.gettext(USAGE))
        )
        return
    await _show(update, context, chosen, 0)


async def find_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    assert query is not None
    if not await require(update, context, Permission.REVIEW_CASES, action="case.find"):
        return
    pressed = FIND.parse(query.data)
    stored = (context.user_data or {}).get(STATE_KEY)
    if pressed is not None and pressed.verb == "open":
        await query.answer()
        await staff.show_case(update, context, normalise_case_code(pressed.args[0]))
        return
    page = pressed.int_arg(0) if pressed is not None else None
    if page is None or not isinstance(stored, dict):
        await query.answer(context.tr.gettext("This button is no longer valid."))
        return
    await query.answer()
    await _show(update, context, search.CaseFilter.from_json(stored), page)


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("find", find_command))
    application.add_handler(CallbackQueryHandler(find_button, pattern=FIND.pattern))
