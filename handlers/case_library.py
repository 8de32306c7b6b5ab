"""/cases for monitors: the library of cases families allowed to publish, filtered by region,
custody, article and year of detention, a page at a time, each case with a Follow button (the
monitors' own follow flow, `handlers.monitor`). A filter can be saved as a subscription, so its
new cases' alerts and digests reach the monitor; the anonymised export of public cases is
theirs once an admin approved it.

    /cases region:crimea custody:colony article:205.5 year:2019

Public cases show name, custody, articles and detention date; anonymous ones only code, region
and status. The filter between pages is kept in `user_data["library"]`. Every press re-checks
that the user is an approved monitor; the admins' Approve/Refuse is re-checked too.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.callbacks import LIBRARY, MONITOR
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_, Translator
from bot.texts.messages.record import article_text, custody_word
from bot.texts.statuses import status_word
from bot.texts.vocabulary import FILTER_WORDS, REGION_WORDS, word
from handlers.find_query import BadCriteria, parse_library
from handlers.guard import require
from handlers.monitor import _approved as approved_monitor
from handlers.replies import reply_html
from jobs.export_files import Format, file_name, write_export
from storage import export, library
from storage.access import Permission
from storage.enums import AlertFilter, MonitorStatus

STATE_KEY = "library"
USAGE = N_(
    "The case library: public and anonymous cases. Narrow it with any of "
    "region:crimea custody:colony article:205.5 year:2019, e.g. /cases region:crimea year:2019"
)


def filter_text(tr: Translator, chosen: library.LibraryFilter) -> str:
    parts = []
    if chosen.region:
        parts.append(word(tr, REGION_WORDS, chosen.region))
    if chosen.custody:
        parts.append(custody_word(tr, chosen.custody))
    if chosen.article:
        parts.append(article_text(tr, {"number": chosen.article}))
    if chosen.year:
        parts.append(str(chosen.year))
    return ", ".join(parts) or tr.gettext("all public cases")


def case_line(tr: Translator, item: library.LibraryCase) -> str:
    parts = [
        f"<code>{html.escape(item.code)}</code>",
        html.escape(word(tr, REGION_WORDS, item.region)),
        html.escape(status_word(tr, item.status)),
    ]
    if item.public:
        if item.name:
            parts.insert(1, f"<b>{html.escape(item.name)}</b>")
        if item.custody:
            parts.append(html.escape(custody_word(tr, item.custody)))
        if item.articles:
            parts.append(html.escape(", ".join(article_text(tr, a) for a in item.articles)))
        if item.detention_date:
            parts.append(html.escape(tr.format_date(item.detention_date)))
    return "• " + " · ".join(parts)


def page_markup(tr: Translator, page: library.LibraryPage) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                tr.gettext("Follow {code}").format(code=item.code),
                callback_data=MONITOR.build("follow", item.code),
            )
        ]
        for item in page.items
    ]
    paging = []
    if page.page > 0:
        paging.append(InlineKeyboardButton("◀", callback_data=LIBRARY.build("page", page.page - 1)))
    if page.page + 1 < page.pages:
        paging.append(InlineKeyboardButton("▶", callback_data=LIBRARY.build("page", page.page + 1)))
    if paging:
        rows.append(paging)
    rows.append(
        [
            InlineKeyboardButton(tr.gettext(label), callback_data=LIBRARY.build("save", value))
            for value, label in (
                (AlertFilter.ALL_CHANGES, N_("Follow this filter")),
                (AlertFilter.VERDICTS_AND_RETURNS, N_("Follow: verdicts and returns")),
            )
        ]
    )
    rows.append([InlineKeyboardButton(tr.gettext("Export"), callback_data=LIBRARY.build("ask"))])
    return InlineKeyboardMarkup(rows)


def page_text(tr: Translator, chosen: library.LibraryFilter, page: library.LibraryPage) -> str:
    head = tr.ngettext(
        "{count} case ({what}), page {page} of {pages}:",
        "{count} cases ({what}), page {page} of {pages}:",
        page.total,
    ).format(count=page.total, what=filter_text(tr, chosen), page=page.page + 1, pages=page.pages)
    return "\n".join([html.escape(head), *(case_line(tr, item) for item in page.items)])


def _stored(context: HotlineContext) -> library.LibraryFilter:
    return library.LibraryFilter.from_json((context.user_data or {}).get(STATE_KEY))


async def _show(
    update: Update, context: HotlineContext, chosen: library.LibraryFilter, number: int
) -> None:
    services = context.services
    async with services.sessions() as session:
        page = await library.library_page(session, services.cipher, chosen, number)
    if context.user_data is not None:
        context.user_data[STATE_KEY] = chosen.as_json()
    text, markup = page_text(context.tr, chosen, page), page_markup(context.tr, page)
    query = update.callback_query
    if query is not None and query.message is not None:
        await query.edit_message_text(text, parse_mode="HTML", reply_markup=markup)
    else:
        await reply_html(update, text, markup)


async def cases_command(update: Update, context: HotlineContext) -> None:
    if not await approved_monitor(update, context, "library.view"):
        return
    tr = context.tr
    text = update.effective_message.text if update.effective_message else None
    typed = (text or "").partition(" ")[2].strip()
    try:
        chosen = library.LibraryFilter.from_json(parse_library(tr, typed))
    except BadCriteria as bad:
        await reply_html(update, html.escape(bad.text(tr) + "\n\n" + tr.gettext(USAGE)))
        return
    except ValueError:
        await reply_html(update, html.escape(tr.gettext(USAGE)))
        return
    await _show(update, context, chosen, 0)


async def _save(update: Update, context: HotlineContext, alert_filter: AlertFilter) -> None:
    tr, services = context.tr, context.services
    chosen = _stored(context)
    async with services.sessions() as session, session.begin():
        await library.save_filter(
            session, context.profile.id, chosen, alert_filter, now=services.clock()
        )
    text = tr.gettext("Done: you follow {what} ({filter}).").format(
        what=filter_text(tr, chosen), filter=tr.gettext(FILTER_WORDS[alert_filter])
    )
    await reply_html(update, html.escape(text))


async def _export(update: Update, context: HotlineContext, file_format: Format | None) -> None:
    """Send the anonymised export of public cases if an admin approved; else ask them."""
    tr, services, user_id = context.tr, context.services, context.profile.id
    async with services.sessions() as session, session.begin():
        status = await library.export_status(session, user_id)
        asked = False
        if status != MonitorStatus.APPROVED:
            asked = await library.request_export(
                session, services.cipher, user_id, admin_ids=services.admin_keys,
                now=services.clock(),
            )  # fmt: skip
    if status != MonitorStatus.APPROVED:
        text = (
            tr.gettext("I asked the hotline's admins; you will hear when they decide.")
            if asked
            else tr.gettext("Your request is waiting for the admins.")
        )
        await reply_html(update, html.escape(text))
        return
    if file_format is None:
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(f.upper(), callback_data=LIBRARY.build("get", f))
                    for f in Format
                ]
            ]
        )
        await reply_html(update, html.escape(tr.gettext("Which format?")), markup)
        return
    sheet = export.sheet(export.What.CASES, anonymised=True)
    now = services.clock()
    name = file_name(sheet, file_format, encrypted=False, day=now.date().isoformat())
    chat = update.effective_chat
    assert chat is not None
    with tempfile.TemporaryDirectory(prefix="hotline-export-") as folder:
        path = Path(folder) / name
        with path.open("wb") as target:
            count = await write_export(
                services.sessions, services.cipher, sheet, file_format, target
            )
        with path.open("rb") as source:
            await chat.send_document(InputFile(source, filename=name), protect_content=True)
    async with services.sessions() as session, session.begin():
        export.record_export(
            session, actor_id=user_id, chosen=sheet, file_format=file_format, encrypted=False,
            count=count, now=now,
        )  # fmt: skip


async def _decide(update: Update, context: HotlineContext, user_id: int, approve: bool) -> None:
    action = "export.approve" if approve else "export.refuse"
    if not await require(update, context, Permission.DECIDE_MONITOR_REQUESTS, action=action):
        return
    if update.callback_query is not None:
        await update.callback_query.answer()
    tr, services = context.tr, context.services
    async with services.sessions() as session, session.begin():
        decided = await library.decide_export(
            session, services.cipher, user_id, approve, actor_id=context.profile.id,
            now=services.clock(),
        )  # fmt: skip
    if not decided:
        text = tr.gettext("This request was already decided.")
    elif approve:
        text = tr.gettext("Approved: the monitor may download the anonymised export.")
    else:
        text = tr.gettext("Refused: the monitor was told.")
    await reply_html(update, html.escape(text))


async def library_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    assert query is not None
    pressed = LIBRARY.parse(query.data)
    if pressed is not None and pressed.verb in ("grant", "deny"):
        user_id = pressed.int_arg(0)
        if user_id is not None:
            await _decide(update, context, user_id, pressed.verb == "grant")
            return
    if not await approved_monitor(update, context, "library.view"):
        return
    tr = context.tr
    try:
        assert pressed is not None
        if pressed.verb == "page" and pressed.int_arg(0) is not None:
            await query.answer()
            await _show(update, context, _stored(context), int(pressed.args[0]))
        elif pressed.verb == "save":
            alert_filter = AlertFilter(pressed.args[0])
            await query.answer()
            await _save(update, context, alert_filter)
        elif pressed.verb in ("ask", "get"):
            file_format = Format(pressed.args[0]) if pressed.verb == "get" else None
            await query.answer()
            await _export(update, context, file_format)
        else:
            raise AssertionError(pressed.verb)
    except (AssertionError, ValueError):
        await query.answer(tr.gettext("This button is no longer valid."))


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("cases", cases_command))
    application.add_handler(CallbackQueryHandler(library_button, pattern=LIBRARY.pattern))
