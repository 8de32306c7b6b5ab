"""/letters: where to write to the person, how letters get past the censor, and signs of life.

A family (and staff) see, per case, the place of detention and its postal address from the
record staff keep, the rules a letter must follow, the last sign of life, and one-tap buttons to
log a new one (a letter came, a call, a visit, a lawyer's visit). The tap logs today; "It was
another day" asks for the date. An approved monitor sees the address of a public case only.
The page is shown after the PIN (if one is set), never to a frozen account, with protect_content.
"""

from __future__ import annotations

import html
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import LIFE
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_, Translator
from bot.texts.messages.record import SIGN_BUTTONS, sign_text
from handlers.pin import add_action, pin_asked
from handlers.privacy import remember_sensitive_message
from handlers.replies import stop_here
from storage.access import is_staff
from storage.enums import SignOfLife
from storage.field_checks import Invalid
from storage.record_values import parse_record_date
from storage.reports import cases_of
from storage.signs_of_life import (
    LettersView,
    NotYourCase,
    letters_view,
    log_sign,
    logged_by,
    redate_sign,
)

PIN_ACTION = "letters"
INPUT_KEY = "life_date"
INPUT_GROUP = -12  # before every other input and the form (-8): only when a date is awaited

LETTER_RULES = N_(
    "How letters reach the person:\n"
    "• Write in Russian: a letter in another language waits for a translator, often for "
    "weeks, or is not passed on.\n"
    "• Write about family, health, everyday life and support. Do not write about the case, "
    "the investigation or politics, and no codes or hints: the censor reads every letter and "
    "may hold it back.\n"
    "• Put the person's full name and year of birth on the envelope, and your own return "
    "address.\n"
    "• Number the pages and keep a copy or a photo of each letter and the date you sent it.\n"
    "• Send by registered mail with notice of delivery, or through the prison service's "
    "official electronic letter service where the place of detention offers it.\n"
    "• If letters stop coming, tap below when one arrives: the hotline watches the silence."
)
NO_ADDRESS = N_(
    "The hotline does not know the postal address yet. It will be added here as soon as staff "
    "learn it; you can also write it to us."
)
NOT_SHOWN = N_("I cannot show letters for this case.")


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


def page_text(tr: Translator, view: LettersView) -> str:
    """The letters page as HTML (every stored value escaped)."""
    code = f"<code>{html.escape(view.code)}</code>"
    heading = html.escape(tr.gettext("Letters: case {code}")).format(code=code)
    lines = [f"<b>{heading}</b>"]
    if view.name:
        lines.append(html.escape(view.name))
    if view.detention_place:
        label = html.escape(tr.gettext("Place of detention"))
        lines.append(f"<b>{label}:</b> {html.escape(view.detention_place)}")
    if view.postal_address:
        label = html.escape(tr.gettext("Postal address for letters"))
        lines.append(f"<b>{label}:</b>\n<code>{html.escape(view.postal_address)}</code>")
    else:
        lines.append(html.escape(tr.gettext(NO_ADDRESS)))
    lines += ["", html.escape(tr.gettext(LETTER_RULES))]
    if view.may_log:
        last = (
            sign_text(tr, view.last.kind, view.last.on_date)
            if view.last
            else tr.gettext("none logged yet")
        )
        lines += ["", html.escape(tr.gettext("Last sign of life: {last}").format(last=last))]
    return "\n".join(lines)


def page_markup(tr: Translator, view: LettersView) -> InlineKeyboardMarkup | None:
    if not view.may_log:
        return None
    buttons = [
        _button(tr.gettext(label), LIFE.build("log", view.code, kind))
        for kind, label in SIGN_BUTTONS.items()
    ]
    return InlineKeyboardMarkup([buttons[:2], buttons[2:]])


async def _send(
    update: Update, context: HotlineContext, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """HTML (escaped by the caller), protected, and deleted with the chat's sensitive messages."""
    chat = update.effective_chat
    if chat is None:
        return
    sent = await chat.send_message(
        text, parse_mode=ParseMode.HTML, reply_markup=markup, protect_content=True
    )
    remember_sensitive_message(context, sent.message_id)


async def letters_command(update: Update, context: HotlineContext) -> None:
    typed = " ".join(context.args or [])
    if not await pin_asked(update, context, PIN_ACTION, typed):
        await show_letters(update, context, typed)


async def show_letters(update: Update, context: HotlineContext, typed: str) -> None:
    """One case's page, or the family's cases to choose from."""
    tr, services, profile = context.tr, context.services, context.profile
    chat = update.effective_chat
    if chat is None:
        return
    if profile.frozen:  # a seized phone: an account without cases
        await chat.send_message(tr.gettext(NOT_SHOWN))
        return
    async with services.sessions() as session:
        if not typed.strip():
            mine = await cases_of(session, services.cipher, profile.id)
            codes = [case.code for case in mine.cases]
            if len(codes) != 1:
                await _choose(update, context, codes)
                return
            typed = codes[0]
        try:
            view = await letters_view(
                session,
                services.cipher,
                typed,
                profile.id,
                staff=is_staff(profile.role),
                monitor=profile.is_approved_monitor,
            )
        except NotYourCase:
            await chat.send_message(tr.gettext(NOT_SHOWN))  # plain text, nothing to escape
            return
    await _send(update, context, page_text(tr, view), page_markup(tr, view))


async def _choose(update: Update, context: HotlineContext, codes: list[str]) -> None:
    tr, chat = context.tr, update.effective_chat
    assert chat is not None
    if not codes:
        await chat.send_message(
            tr.gettext("Send /letters followed by the case code, for example /letters K7M4-9XQ2.")
        )
        return
    rows = [[_button(code, LIFE.build("show", code))] for code in codes]
    await chat.send_message(
        tr.gettext("Which case?"), reply_markup=InlineKeyboardMarkup(rows), protect_content=True
    )


async def life_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    assert query is not None
    pressed = LIFE.parse(query.data)
    tr = context.tr
    if pressed is None:
        await query.answer(tr.gettext("This button is no longer valid."))
        return
    await query.answer()
    if pressed.verb == "show":
        if not await pin_asked(update, context, PIN_ACTION, pressed.args[0]):
            await show_letters(update, context, pressed.args[0])
    elif pressed.verb == "log":
        await _log(update, context, pressed.args[0], pressed.args[1])
    elif pressed.verb == "date":
        await _ask_date(update, context, pressed.int_arg(0))


async def _ask_date(update: Update, context: HotlineContext, entry: int | None) -> None:
    """ "It was another day": only for a sign this user logged (the button can be forged)."""
    tr, services = context.tr, context.services
    async with services.sessions() as session:
        mine = entry is not None and await logged_by(session, entry, context.profile.id)
    if not mine or context.user_data is None:
        await _plain(update, tr.gettext("This button is no longer valid."))
        return
    context.user_data[INPUT_KEY] = entry
    await _plain(update, tr.gettext("Write the date, for example 28.11.2026 (/cancel to stop)."))


async def _plain(update: Update, text: str) -> None:
    if update.effective_chat is not None:
        await update.effective_chat.send_message(text)  # plain text: nothing to escape


async def _log(update: Update, context: HotlineContext, code: str, kind_value: str) -> None:
    tr, services, profile = context.tr, context.services, context.profile
    try:
        kind = SignOfLife(kind_value)
    except ValueError:
        await _plain(update, tr.gettext("This button is no longer valid."))
        return
    if profile.frozen:
        await _plain(update, tr.gettext(NOT_SHOWN))
        return
    today = services.clock().date()
    try:
        async with services.sessions() as session, session.begin():
            entry = await log_sign(
                session, code, kind, today, user_id=profile.id,
                staff=is_staff(profile.role), now=services.clock(),
            )  # fmt: skip
    except NotYourCase:
        await _plain(update, tr.gettext(NOT_SHOWN))
        return
    text = tr.gettext(
        "Noted: {sign}. Thank you: this is how the hotline knows they are heard from."
    )
    markup = InlineKeyboardMarkup(
        [[_button(tr.gettext("It was another day"), LIFE.build("date", entry))]]
    )
    await _send(update, context, html.escape(text.format(sign=sign_text(tr, kind, today))), markup)


async def typed_date(update: Update, context: HotlineContext) -> None:
    """The day of a sign of life, after "It was another day"."""
    pending: Any = (context.user_data or {}).get(INPUT_KEY)
    message = update.effective_message
    if pending is None or message is None or not message.text:
        return
    tr, services = context.tr, context.services
    today = services.clock().date()
    try:
        on_date = parse_record_date(message.text, today=today)
        if on_date > today:
            raise Invalid(N_("A sign of life cannot be in the future."))
    except Invalid as invalid:
        await _plain(update, tr.gettext(invalid.msgid).format(**invalid.params))
        await stop_here(update, context)
    assert context.user_data is not None
    context.user_data.pop(INPUT_KEY, None)
    try:
        async with services.sessions() as session, session.begin():
            sign = await redate_sign(session, int(pending), on_date, user_id=context.profile.id)
    except NotYourCase:
        await _plain(update, tr.gettext("This button is no longer valid."))
        await stop_here(update, context)
    await _plain(
        update, tr.gettext("Noted: {sign}.").format(sign=sign_text(tr, sign.kind, sign.on_date))
    )
    await stop_here(update, context)


async def cancel_input(update: Update, context: HotlineContext) -> None:
    if context.user_data is None or INPUT_KEY not in context.user_data:
        return
    context.user_data.pop(INPUT_KEY, None)
    await _plain(update, context.tr.gettext("Cancelled."))
    await stop_here(update, context)


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("letters", letters_command))
    application.add_handler(CallbackQueryHandler(life_button, pattern=LIFE.pattern))
    add_action(application, PIN_ACTION, show_letters)
    application.add_handler(CommandHandler("cancel", cancel_input), group=INPUT_GROUP)
    application.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND,
            typed_date,
        ),
        group=INPUT_GROUP,
    )
