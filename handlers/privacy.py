"""The family's control over its data: /privacy, /mydata, /forget and "Hide this chat".

A relative's phone may be taken and read at a checkpoint. So the bot says plainly what it keeps,
shows the user everything it holds (protected from forwarding), erases it on request, and can
delete its own sensitive messages from the chat, leaving only the case code. /privacy also holds
the switches against a seized phone: discreet notifications (on by default) and a PIN
(handlers/pin.py); "Hide this chat" is there at any time, and still works after /forget.
"""

from __future__ import annotations

import html
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.callbacks import FORGET, HIDE, PRIVACY
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import Translator
from bot.texts.messages.threads import kind_word
from bot.texts.statuses import status_word
from bot.texts.vocabulary import LANGUAGE_NAMES, REQUEST_WORDS
from handlers.monitor import label_for_target
from handlers.pin import add_action, ask_new_pin, pin_asked
from handlers.pressed import show
from storage import chat_cleanup, fields, safety
from storage.data_keys import shred_copies
from storage.privacy import HeldData, forget_user, held_data

log = logging.getLogger(__name__)

SENSITIVE_IDS = "sensitive_ids"
HIDE_CODE = "hide_case_code"
FORGET_YES = FORGET.build("yes")
FORGET_NO = FORGET.build("no")
HIDE_CHAT = HIDE.build("chat")
DISCREET_ON = PRIVACY.build("discreet", "on")
DISCREET_OFF = PRIVACY.build("discreet", "off")
PIN_SET = PRIVACY.build("pin", "set")
PIN_REMOVE = PRIVACY.build("pin", "remove")
DELETE_BATCH = 100  # deleteMessages takes up to 100 ids
MAX_REMEMBERED = 200
MESSAGES_SHOWN = 30  # /mydata must fit one message


def remember_sensitive_message(context: HotlineContext, message_id: int) -> None:
    """Note a message (the bot's, or the user's own answer) to delete on "Hide this chat"."""
    if context.user_data is None:
        return
    ids = context.user_data.setdefault(SENSITIVE_IDS, [])
    if message_id not in ids:
        ids.append(message_id)
        del ids[:-MAX_REMEMBERED]


async def offer_hide_chat(message: Message, context: HotlineContext, case_code: str) -> Message:
    """After a report: offer to delete the sensitive messages, keeping only the case code."""
    if context.user_data is not None:
        context.user_data[HIDE_CODE] = case_code
    tr = context.tr
    return await message.reply_text(
        tr.gettext(
            "If someone else might look at this phone, I can delete the messages with details "
            "from this chat and leave only your case code."
        ),
        reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton(tr.gettext("Hide this chat"), callback_data=HIDE_CHAT)]]
        ),
    )


async def privacy(update: Update, context: HotlineContext) -> None:
    if update.effective_message is None:
        return
    tr = context.tr
    days = context.services.settings.draft_retention_days
    text = "\n\n".join(
        [
            tr.gettext(
                "What we keep: your Telegram id and language; for each report, the details you "
                "give (name, date of birth, places, charges, health, your phone if you give it)."
            ),
            tr.gettext(
                "The details are encrypted in our database. Only the hotline's staff can read "
                "them. Monitors see a case only if you allow it, and the name only if you agree "
                "to make it public."
            ),
            tr.ngettext(
                "An unfinished report is erased after {days} day.",
                "An unfinished report is erased after {days} days.",
                days,
            ).format(days=days),
            tr.gettext(
                "Telegram itself carries our messages and can see them. Do not write here what "
                "you would not tell Telegram."
            ),
            tr.gettext(
                "/mydata: see what we hold about you\n/forget: erase your data and contacts"
            ),
            *_safety_lines(context),
        ]
    )
    await update.effective_message.reply_text(text, reply_markup=privacy_keyboard(context))


def _safety_lines(context: HotlineContext) -> list[str]:
    """What protects this chat if someone else holds the phone, as it is set now."""
    tr, profile = context.tr, context.profile
    if profile.frozen:
        return []
    minutes = context.services.settings.discreet_details_minutes
    if profile.discreet:
        discreet = tr.ngettext(
            "Discreet notifications are on: a notification only says there is news. Tap Show "
            "to see it; the details cannot be forwarded and are deleted after {minutes} minute.",
            "Discreet notifications are on: a notification only says there is news. Tap Show "
            "to see it; the details cannot be forwarded and are deleted after {minutes} minutes.",
            minutes,
        ).format(minutes=minutes)
    else:
        discreet = tr.gettext("Discreet notifications are off: notifications show the details.")
    if profile.has_pin:
        pin = tr.gettext("Your PIN protects /status, /mydata and Show.")
    else:
        pin = tr.gettext("With a PIN, /status, /mydata and Show ask for it first.")
    hide = tr.gettext(
        '"Hide this chat" deletes the messages with details from this chat (Telegram allows '
        "it for 48 hours; for older ones, discreet notifications are what protects you)."
    )
    return [discreet, pin, hide]


def privacy_keyboard(context: HotlineContext) -> InlineKeyboardMarkup:
    tr, profile = context.tr, context.profile
    rows: list[list[InlineKeyboardButton]] = []
    if not profile.frozen:
        if profile.discreet:
            rows.append([_button(tr.gettext("Turn discreet notifications off"), DISCREET_OFF)])
        else:
            rows.append([_button(tr.gettext("Turn discreet notifications on"), DISCREET_ON)])
        if profile.has_pin:
            rows.append(
                [
                    _button(tr.gettext("Change the PIN"), PIN_SET),
                    _button(tr.gettext("Remove the PIN"), PIN_REMOVE),
                ]
            )
        else:
            rows.append([_button(tr.gettext("Set a PIN"), PIN_SET)])
    rows.append([_button(tr.gettext("Hide this chat"), HIDE_CHAT)])
    return InlineKeyboardMarkup(rows)


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


async def privacy_choice(update: Update, context: HotlineContext) -> None:
    """A switch of /privacy. Making things less protected (discreet off, a new or no PIN) asks
    for the PIN first when there is one; a frozen account changes nothing."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    await query.answer()
    if context.profile.frozen:
        return
    choice = query.data
    if choice == DISCREET_ON:
        await _set_discreet(update, context, "on")
    elif choice == DISCREET_OFF:
        if not await pin_asked(update, context, "discreet", "off"):
            await _set_discreet(update, context, "off")
    elif choice == PIN_SET:
        if not await pin_asked(update, context, "pin_new"):
            await ask_new_pin(update, context)
    elif choice == PIN_REMOVE and context.profile.has_pin:
        await pin_asked(update, context, "pin_remove")


async def _set_discreet(update: Update, context: HotlineContext, arg: str) -> None:
    services, tr = context.services, context.tr
    async with services.sessions() as session, session.begin():
        await safety.set_discreet(session, context.profile.id, arg == "on")
    if arg == "on":
        text = tr.gettext("Discreet notifications are on.")
    else:
        text = tr.gettext(
            "Discreet notifications are off: from now on, notifications show the details."
        )
    if update.effective_chat is not None:
        await update.effective_chat.send_message(text)


async def _new_pin(update: Update, context: HotlineContext, arg: str) -> None:
    await ask_new_pin(update, context)


async def _remove_pin(update: Update, context: HotlineContext, arg: str) -> None:
    services = context.services
    async with services.sessions() as session, session.begin():
        await safety.set_pin(session, services.cipher, context.profile.id, None)
    if update.effective_chat is not None:
        await update.effective_chat.send_message(context.tr.gettext("Your PIN was removed."))


def render_held_data(tr: Translator, held: HeldData | None) -> str:
    """HTML, every stored value escaped."""
    if held is None:
        return html.escape(tr.gettext("We hold nothing about you."))
    lines = [
        html.escape(tr.gettext("What we hold about you:")),
        html.escape(tr.gettext("Telegram id: {id}").format(id=held.user_id)),
        html.escape(
            tr.gettext("Language: {language}").format(
                language=LANGUAGE_NAMES.get(held.language or "", "-")
            )
        ),
    ]
    for case in held.cases:
        if case.waiting:
            lines.append(html.escape(tr.gettext("A report you sent, waiting for staff review")))
        else:
            lines.append(
                html.escape(
                    tr.gettext("Case {code}: {status}").format(
                        code=case.code, status=status_word(tr, case.status)
                    )
                )
            )
        for key, value in case.told:  # every field held, as the registry labels and shows it
            field = fields.REGISTRY[key]
            lines.append(
                html.escape(
                    tr.gettext("  {label}: {value}").format(
                        label=tr.gettext(field.label), value=field.kind.show(tr, field, value)
                    )
                )
            )
        if case.telegram_name:
            lines.append(
                html.escape(
                    tr.gettext("  Your Telegram name when you reported: {name}").format(
                        name=case.telegram_name
                    )
                )
            )
    for target in held.subscriptions:
        lines.append(
            html.escape(
                tr.gettext("You follow: {target}").format(target=label_for_target(tr, target))
            )
        )
    for organisation, _purpose, status in held.monitor_requests:
        lines.append(
            html.escape(
                tr.gettext("Monitor request ({status}): {organisation}").format(
                    status=tr.gettext(REQUEST_WORDS.get(status, status)),
                    organisation=organisation or "-",
                )
            )
        )
    if held.thread_messages:
        lines.append(html.escape(tr.gettext("Your conversation with the hotline:")))
    for message in held.thread_messages[-MESSAGES_SHOWN:]:
        who = tr.gettext("the hotline") if message.from_staff else tr.gettext("you")
        words = message.text if message.kind == "text" else kind_word(tr, message.kind)
        lines.append(
            html.escape(
                tr.gettext("  {when}, {who}: {words}").format(
                    when=tr.format_datetime(message.created_at), who=who, words=(words or "")[:200]
                )
            )
        )
    if held.has_draft:
        lines.append(
            html.escape(
                tr.gettext("Answers of an unfinished conversation (for example a report draft).")
            )
        )
    return "\n".join(lines)


async def my_data(update: Update, context: HotlineContext) -> None:
    if not await pin_asked(update, context, "mydata"):
        await _show_my_data(update, context, "")


async def _show_my_data(update: Update, context: HotlineContext, arg: str) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    services = context.services
    held: HeldData | None = None
    if not context.profile.frozen:  # a seized phone is shown nothing
        async with services.sessions() as session:
            held = await held_data(session, services.cipher, context.profile.id)
    sent = await chat.send_message(render_held_data(context.tr, held), protect_content=True)
    remember_sensitive_message(context, sent.message_id)


async def ask_forget(update: Update, context: HotlineContext) -> None:
    if update.effective_message is None:
        return
    tr = context.tr
    await update.effective_message.reply_text(
        tr.gettext(
            "Erase your data? Your contact details and what you told us will be deleted, and "
            "you will no longer hear about your cases. Staff keep only what a case needs, "
            "without your name or contacts. This cannot be undone."
        ),
        reply_markup=InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(tr.gettext("Yes, erase my data"), callback_data=FORGET_YES)],
                [InlineKeyboardButton(tr.gettext("No, keep it"), callback_data=FORGET_NO)],
            ]
        ),
    )


async def confirm_forget(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    if query is None:
        return
    await query.answer()
    services = context.services
    remembered = (context.user_data or {}).get(SENSITIVE_IDS, [])
    async with services.sessions() as session:
        expiring = await chat_cleanup.expiring_in(session, context.profile.id)
    if expiring.message_ids and update.effective_chat is not None:
        # Details due to be deleted in a few minutes go now: once the Telegram id is erased,
        # the deletion job could no longer find the chat.
        await _delete_messages(context, update.effective_chat.id, expiring.message_ids)
    async with services.sessions() as session, session.begin():
        await chat_cleanup.drop(session, expiring.row_ids)
        # What "Hide this chat" needs, kept before the outbox and threads are erased.
        await chat_cleanup.keep_through_forget(
            session, context.profile.id, remembered, now=services.clock()
        )
        result = await forget_user(
            session, services.cipher, context.profile.id, now=services.clock()
        )
    # The destroyed keys' own bytes: out of the WAL (SQLite), out of the heap (PostgreSQL).
    await shred_copies(services.engine)
    if context.user_data is not None:
        context.user_data.clear()
    if context.chat_data is not None:
        context.chat_data.clear()
    log.info(
        "user data erased: %d cases unlinked, %d erased, %d kept",
        result.cases_unlinked,
        result.cases_erased,
        result.cases_kept,
    )
    # The language was erased too: answer in the hotline's default language from now on.
    tr = services.i18n.get(None)
    await show(query, tr.gettext("Your data has been erased."))


async def cancel_forget(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    if query is None:
        return
    await query.answer()
    await show(query, context.tr.gettext("Nothing was erased."))


async def hide_chat(update: Update, context: HotlineContext) -> None:
    """Delete every sensitive message Telegram still lets us delete (48 hours): what the delivery
    job sent, details shown, the family's own answers and messages, /status and /mydata; and the
    button's message. Leave one message with the case code."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or chat is None:
        return
    await query.answer()
    data = context.user_data if context.user_data is not None else {}
    ids = {int(i) for i in data.pop(SENSITIVE_IDS, [])}
    if query.message is not None:
        ids.add(query.message.message_id)
    services = context.services
    async with services.sessions() as session:
        plan = await chat_cleanup.plan_hiding(
            session, services.keys.chat_key(chat.id), now=services.clock()
        )
    ids.update(plan.message_ids)
    failed = await _delete_messages(context, chat.id, sorted(ids))
    async with services.sessions() as session, session.begin():
        await chat_cleanup.forget_chat(session, services.keys.chat_key(chat.id))
    failed += plan.too_old
    tr = context.tr
    code = data.get(HIDE_CODE)
    if code:
        text = tr.gettext("Your case code is {code}.").format(code=html.escape(str(code)))
    else:
        text = tr.gettext("Done.")
    if failed:
        text += "\n" + tr.gettext(
            "Some messages were too old for me to delete; please delete them yourself."
        )
    await context.bot.send_message(chat.id, text)


async def _delete_messages(context: HotlineContext, chat_id: int, ids: list[int]) -> int:
    """deleteMessages in batches; returns how many batches Telegram refused."""
    failed = 0
    for start in range(0, len(ids), DELETE_BATCH):
        try:
            await context.bot.delete_messages(chat_id, ids[start : start + DELETE_BATCH])
        except TelegramError:
            failed += 1
    return failed


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("privacy", privacy))
    application.add_handler(CommandHandler("mydata", my_data))
    application.add_handler(CommandHandler("forget", ask_forget))
    application.add_handler(CallbackQueryHandler(confirm_forget, pattern=FORGET.pattern_of("yes")))
    application.add_handler(CallbackQueryHandler(cancel_forget, pattern=FORGET.pattern_of("no")))
    application.add_handler(CallbackQueryHandler(hide_chat, pattern=HIDE.pattern))
    application.add_handler(CallbackQueryHandler(privacy_choice, pattern=PRIVACY.pattern))
    add_action(application, "mydata", _show_my_data)
    add_action(application, "discreet", _set_discreet)
    add_action(application, "pin_new", _new_pin)
    add_action(application, "pin_remove", _remove_pin)
