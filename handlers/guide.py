"""/guide: the "what to do" guide, one screen per page, with Back / Contents / Next buttons.

It opens from /guide, from the main menu, and from the button after a report, which names the
pages that fit the report's answers (`pages_for_report`): those come first, then the rest in the
guide's order. The button data carries that order (`gd:p:<page>:<first pages>`), so a page shows
the same way after a restart, in whatever message it is pressed. Pages are in the reader's
language (else Ukrainian); titles are escaped, texts were checked as Telegram HTML when the guide
was loaded (`bot.guide`).

The guide is loaded from locales/guide/ at start; a version imported with
`python -m bot guide import` replaces it at the next press, without a restart (`GuideShelf`).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.callbacks import GUIDE, MAX_BYTES
from bot.context import HotlineApplication, HotlineContext
from bot.guide import (
    PAGE_ID,
    Book,
    Guide,
    GuideError,
    bundled_sources,
    load_guide,
    pages_for_report,
    reading_order,
)
from bot.i18n import Translator
from storage.db import SessionFactory
from storage.guide import latest_version_id, version_sources

__all__ = ["guide_button", "menu_button", "pages_for_report", "register"]

log = logging.getLogger(__name__)

GUIDE_KEY = "guide"
NO_PAGES = "-"
"""The data's "first pages" argument when there are none."""
MAX_FIRST = 3


class GuideShelf:
    """The guide the bot shows: the files loaded at start, or the newest imported version (one
    indexed query per press finds out; an unusable version is logged once and skipped)."""

    def __init__(self, bundled: Guide) -> None:
        self.bundled = bundled
        self.current = bundled
        self.unusable: set[int] = set()

    async def guide(self, sessions: SessionFactory) -> Guide:
        async with sessions() as session:
            latest = await latest_version_id(session)
            if latest is None:
                self.current = self.bundled
                return self.current
            if latest == self.current.version or latest in self.unusable:
                return self.current
            sources = await version_sources(session, latest)
        try:
            self.current = load_guide(sources or {}, version=latest)
        except GuideError as error:
            self.unusable.add(latest)
            log.error("guide version %d cannot be shown (%d problems)", latest, len(error.problems))
        return self.current


# -- button data ----------------------------------------------------------------------------------


def encode_first(pages: Iterable[str]) -> str:
    """The pages to show first, as one callback argument that fits any button of the guide."""
    chosen = [page for page in dict.fromkeys(pages) if PAGE_ID.match(page)][:MAX_FIRST]
    while chosen and len(GUIDE.build("p", "x" * 12, ".".join(chosen)).encode()) > MAX_BYTES:
        chosen.pop()
    return ".".join(chosen) or NO_PAGES


def decode_first(argument: str) -> list[str]:
    if argument == NO_PAGES:
        return []
    return [page for page in argument.split(".") if PAGE_ID.match(page)][:MAX_FIRST]


def guide_button(tr: Translator, pages: list[str]) -> InlineKeyboardButton:
    """The button under a filed report: opens the guide at these pages (from
    `pages_for_report`), in a new message."""
    return InlineKeyboardButton(
        tr.gettext("What to do now: a short guide"),
        callback_data=GUIDE.build("open", encode_first(pages)),
    )


def menu_button(tr: Translator) -> InlineKeyboardButton:
    """The main menu's button: the guide's contents, in a new message."""
    return InlineKeyboardButton(
        tr.gettext("What to do: a short guide"), callback_data=GUIDE.build("open", NO_PAGES)
    )


# -- screens --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Screen:
    text: str
    markup: InlineKeyboardMarkup


def contents_screen(book: Book, first: list[str]) -> Screen:
    data = encode_first(first)
    text = f"<b>{html.escape(book.title)}</b>\n\n{book.intro}"
    rows = [
        [InlineKeyboardButton(page.title, callback_data=GUIDE.build("p", page.id, data))]
        for page in book.pages
    ]
    return Screen(text, InlineKeyboardMarkup(rows))


def page_screen(
    tr: Translator, book: Book, page_id: str, first: list[str], contact: list[str]
) -> Screen:
    """One page, its place in the reading order, and Back / Contents / Next."""
    page = book.page(page_id)
    assert page is not None
    order = reading_order(book.ids, first)
    index = order.index(page_id)
    data = encode_first(first)
    text = f"<b>{html.escape(page.title)}</b>\n\n{page.text}"
    if page.contact and contact:
        text += "\n\n" + "\n".join(html.escape(line) for line in contact)
    text += f"\n\n{index + 1}/{len(order)}"
    row = []
    if index > 0:
        back = "« " + tr.gettext("Back")
        row.append(
            InlineKeyboardButton(back, callback_data=GUIDE.build("p", order[index - 1], data))
        )
    row.append(InlineKeyboardButton(tr.gettext("Contents"), callback_data=GUIDE.build("toc", data)))
    if index + 1 < len(order):
        after = tr.gettext("Next") + " »"
        row.append(
            InlineKeyboardButton(after, callback_data=GUIDE.build("p", order[index + 1], data))
        )
    return Screen(text, InlineKeyboardMarkup([row]))


# -- handlers -------------------------------------------------------------------------------------


async def _book(context: HotlineContext) -> Book:
    shelf = context.bot_data[GUIDE_KEY]
    assert isinstance(shelf, GuideShelf)
    guide = await shelf.guide(context.services.sessions)
    return guide.book(context.tr.lang)


def _contact(context: HotlineContext) -> list[str]:
    from handlers.common import reach_us_lines  # common's menu imports this module

    return reach_us_lines(context)


async def guide_command(update: Update, context: HotlineContext) -> None:
    message = update.effective_message
    if message is None:
        return
    screen = contents_screen(await _book(context), [])
    await message.reply_text(
        screen.text,
        parse_mode=ParseMode.HTML,
        reply_markup=screen.markup,
        disable_web_page_preview=True,
    )


async def pressed(update: Update, context: HotlineContext) -> None:
    """Open (a new message), or turn to a page or the contents (this message, edited)."""
    query = update.callback_query
    if query is None:
        return
    press = GUIDE.parse(query.data)
    tr = context.tr
    if press is None:
        await query.answer(tr.gettext("This button is no longer valid."))
        return
    book = await _book(context)
    first = decode_first(press.args[-1])
    if press.verb == "open":
        await query.answer()
        order = [page for page in first if book.page(page) is not None]
        screen = (
            page_screen(tr, book, order[0], first, _contact(context))
            if order
            else contents_screen(book, first)
        )
        await _send(update, context, screen)
        return
    if press.verb == "p" and book.page(press.args[0]) is None:
        await query.answer(tr.gettext("This page is no longer in the guide."))
        await _show(update, context, contents_screen(book, first))
        return
    await query.answer()
    if press.verb == "p":
        await _show(update, context, page_screen(tr, book, press.args[0], first, _contact(context)))
    else:
        await _show(update, context, contents_screen(book, first))


async def _send(update: Update, context: HotlineContext, screen: Screen) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    await context.bot.send_message(
        chat.id,
        screen.text,
        parse_mode=ParseMode.HTML,
        reply_markup=screen.markup,
        disable_web_page_preview=True,
    )


async def _show(update: Update, context: HotlineContext, screen: Screen) -> None:
    """In place, as a book turns its page; as a new message if that one cannot be edited."""
    query = update.callback_query
    assert query is not None
    try:
        await query.edit_message_text(
            screen.text,
            parse_mode=ParseMode.HTML,
            reply_markup=screen.markup,
            disable_web_page_preview=True,
        )
    except BadRequest as error:
        if "not modified" in error.message.lower():
            return
        await _send(update, context, screen)


def register(application: HotlineApplication) -> None:
    """Loads the guide from locales/guide/ (a broken file stops the start, with its problems)."""
    application.bot_data[GUIDE_KEY] = GuideShelf(load_guide(bundled_sources()))
    application.add_handler(CommandHandler("guide", guide_command))
    application.add_handler(CallbackQueryHandler(pressed, pattern=GUIDE.pattern))
