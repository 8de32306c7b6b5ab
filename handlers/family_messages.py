"""The family side of a conversation: whatever a family member writes reaches a person.

Any private message outside a form (text, photo, document, voice, video, audio, location,
contact, sticker...) is stored in the sender's thread and announced to the staff desk in one
transaction (`storage.threads`), and only then acknowledged, in the sender's language. With one
case the message joins that case's thread; with several, it waits in the general thread while the
bot asks which case it is about (buttons with codes only); with none, it opens a general thread.
A Telegram reply to a staff answer goes to that answer's thread.
"""

from __future__ import annotations

import html
import json
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from bot.callbacks import FAMILY
from bot.context import HotlineApplication, HotlineContext
from handlers.common import reach_us_lines
from handlers.pressed import drop_buttons
from storage import threads
from storage.access import is_staff
from storage.codes import normalise_case_code
from storage.recipients import staff_contacts
from storage.threads import Incoming, ThreadNotFound, ThreadRefused

log = logging.getLogger(__name__)

_ATTACHMENTS = ("photo", "document", "voice", "video", "video_note", "audio", "animation")


def incoming_of(message: Message) -> Incoming:
    """What a Telegram message carries, as plain values (the largest photo size)."""
    text = message.text or message.caption
    if message.photo:
        return Incoming("photo", text, message.photo[-1].file_id, message.message_id)
    for kind in _ATTACHMENTS[1:]:
        media = getattr(message, kind)
        if media is not None:
            return Incoming(kind, text, media.file_id, message.message_id)
    if message.sticker is not None:
        return Incoming(
            "sticker", message.sticker.emoji, message.sticker.file_id, message.message_id
        )
    if message.location is not None:
        where = {"latitude": message.location.latitude, "longitude": message.location.longitude}
        if message.venue is not None:
            where["title"] = message.venue.title  # type: ignore[assignment]
        return Incoming("location", json.dumps(where), None, message.message_id)
    if message.contact is not None:
        contact = message.contact
        card = " ".join(filter(None, (contact.first_name, contact.last_name)))
        return Incoming("contact", f"{card}: {contact.phone_number}", None, message.message_id)
    if text:
        return Incoming("text", text, None, message.message_id)
    return Incoming("other", None, None, message.message_id)


async def _thread_code_of_reply(message: Message, context: HotlineContext) -> str | None:
    """When the family replies (Telegram reply) to a staff answer: that answer's case."""
    replied = message.reply_to_message
    if replied is None:
        return None
    services = context.services
    async with services.sessions() as session:
        thread_id = await threads.thread_of_sent_message(
            session, services.keys.chat_key(message.chat_id), replied.message_id
        )
        if thread_id is None:
            return None
        summary = await threads.summary_of(session, thread_id)
    return summary.code


async def family_message(update: Update, context: HotlineContext) -> None:
    """Store, tell the desk, then acknowledge: nothing a family writes is dropped."""
    message = update.effective_message
    if message is None:
        return
    tr, services = context.tr, context.services
    incoming = incoming_of(message)
    async with services.sessions() as session:
        codes = await threads.family_cases(session, context.profile.id)
    code = await _thread_code_of_reply(message, context)
    if code is None and len(codes) == 1:
        code = codes[0]
    async with services.sessions() as session, session.begin():
        recorded = await threads.record_family_message(
            session,
            services.cipher,
            context.profile.id,
            incoming,
            code=code,
            now=services.clock(),
            staff=staff_contacts(services.admin_keys, services.staff_chat_key),
        )
    log.info("thread %d: family message (%s)", recorded.thread_id, incoming.kind)
    lines = [tr.gettext("Received. A person from the hotline will answer you here.")]
    if recorded.answered_question:
        lines = [
            tr.gettext(
                "Thank you. Your answer was added to case {code}, and the staff will read it."
            ).format(code=recorded.code)
        ]
    lines += reach_us_lines(context, hours_only=True)
    markup = None
    if code is None and len(codes) > 1:
        lines += ["", tr.gettext("Which case is it about?")]
        markup = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(case, callback_data=_choice(recorded.message_id, case))]
                for case in codes
            ]
        )
    await message.reply_text(html.escape("\n".join(lines)), reply_markup=markup)


def _choice(message_id: int, code: str) -> str:
    return FAMILY.build("case", message_id, code)


async def case_chosen(update: Update, context: HotlineContext) -> None:
    """The family tapped the case a message is about: it moves to that case's thread."""
    query = update.callback_query
    assert query is not None
    tr, services = context.tr, context.services
    pressed = FAMILY.parse(query.data)
    message_id = pressed.int_arg(0) if pressed else None
    code = normalise_case_code(pressed.args[1]) if pressed else None
    if message_id is None or code is None:
        await query.answer(tr.gettext("This button is no longer valid."))
        return
    try:
        async with services.sessions() as session, session.begin():
            code = await threads.move_to_case(
                session, context.profile.id, message_id, code, now=services.clock()
            )
    except (ThreadNotFound, ThreadRefused):
        await query.answer(tr.gettext("This button is no longer valid."))
        return
    await query.answer(tr.gettext("Added to case {code}.").format(code=code))
    await drop_buttons(query)


def register(application: HotlineApplication) -> None:
    """Registered last in group 0: only what no form, command or desk input took gets here."""
    private_new = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & ~filters.COMMAND
    application.add_handler(MessageHandler(private_new, _family_or_staff))
    application.add_handler(CallbackQueryHandler(case_chosen, pattern=FAMILY.pattern))


async def _family_or_staff(update: Update, context: HotlineContext) -> None:
    if not is_staff(context.profile.role):
        await family_message(update, context)
        return
    message = update.effective_message
    if message is not None:
        await message.reply_text(
            html.escape(
                context.tr.gettext(
                    "Staff answer families from the desk: /inbox. /help lists the commands."
                )
            )
        )
