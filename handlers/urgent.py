"""The urgent path for families: "a search or detention is happening now".

From the first screen's button, `/urgent` or the deep link `/start urgent`: at most four
questions, each skippable (where: text or a shared location; what: search, detention, someone
taken away; by whom; a contact: a phone or "here in Telegram"), and "Send the alert now" at any
of them. After the last answer (or "now") ONE storage call (`storage.urgent.file_urgent`)
creates the case and queues the alert to the staff on call; the family gets the case code and
the advice for the next hour at once, in their language, and can complete the full report later
(`/report` starts from these answers: `storage.urgent.urgent_draft_for`).

The answers live in `context.user_data["urgent"]` and the ConversationHandler is persistent, like
the report form, so a restart loses nothing. It is registered before the report form: while a
family is on the urgent path, their words go to it.
"""

from __future__ import annotations

import html
import logging
import warnings
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import URGENT
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_
from handlers.common import MENU_REPORT, reach_us_lines
from handlers.middleware import ONLY_IN_PRIVATE
from handlers.privacy import HIDE_CHAT, HIDE_CODE, remember_sensitive_message
from handlers.urgent_words import BY_WORDS, WHAT_WORDS, advice
from storage import field_checks as fields
from storage.enums import Detainer, UrgentKind
from storage.oncall import Duty
from storage.reports import reports_in_last_day
from storage.urgent import (
    UrgentAnswers,
    UrgentLimitReached,
    file_urgent,
)

log = logging.getLogger(__name__)

DRAFT_KEY = "urgent"
AT = "_at"
QUESTIONS = ("where", "what", "by", "contact")
ASK_WHERE, ASK_WHAT, ASK_BY, ASK_CONTACT = range(4)
STATE = dict(zip(QUESTIONS, range(4), strict=True))
CONTACT_HERE = "here"
PROMPTS = {
    "where": N_(
        "Where is it happening? Write the town and address, or share your location with the "
        "button below."
    ),
    "what": N_("What is happening?"),
    "by": N_("Who is doing it?"),
    "contact": N_(
        'How can the hotline reach you now? Write a phone number, or tap "Here in Telegram".'
    ),
}
CHOICES: dict[str, dict[str, str]] = {"what": WHAT_WORDS, "by": BY_WORDS}
N_LIMIT = N_(
    "You have sent several reports today. To protect the hotline from abuse, please write to us "
    "again tomorrow, or call the hotline."
)
N_EARLIER = N_("This button belongs to an earlier question.")


def _draft(context: HotlineContext) -> dict[str, Any]:
    assert context.user_data is not None
    draft = context.user_data.setdefault(DRAFT_KEY, {})
    assert isinstance(draft, dict)
    return draft


def _forget_draft(context: HotlineContext) -> None:
    if context.user_data is not None:
        context.user_data.pop(DRAFT_KEY, None)


def _current(context: HotlineContext) -> str | None:
    at = _draft(context).get(AT)
    return at if at in QUESTIONS else None


async def _send(
    update: Update,
    text: str,
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None = None,
    *,
    protect: bool = False,
) -> Message | None:
    chat = update.effective_chat
    if chat is None:
        return None
    return await chat.send_message(
        text, parse_mode=ParseMode.HTML, reply_markup=markup, protect_content=protect
    )


async def _say(update: Update, context: HotlineContext, msgid: str, **params: object) -> None:
    await _send(update, html.escape(context.tr.gettext(msgid).format(**params)))


def question_keyboard(context: HotlineContext, question: str) -> InlineKeyboardMarkup:
    """The choices of a question (if any), then Skip and "Send the alert now"."""
    tr = context.tr
    rows: list[list[InlineKeyboardButton]] = []
    words = CHOICES.get(question)
    if words:
        per_row = 2 if question == "by" else 1
        buttons = [
            InlineKeyboardButton(
                tr.gettext(label), callback_data=URGENT.build("a", question, value)
            )
            for value, label in words.items()
        ]
        rows += [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    if question == "contact":
        here = URGENT.build("a", question, CONTACT_HERE)
        rows.append([InlineKeyboardButton(tr.gettext("Here in Telegram"), callback_data=here)])
    tail = [
        InlineKeyboardButton(
            tr.gettext("Skip") + " »", callback_data=URGENT.build("skip", question)
        )
    ]
    if question != QUESTIONS[-1]:
        tail.append(
            InlineKeyboardButton(
                "🚨 " + tr.gettext("Send the alert now"),
                callback_data=URGENT.build("now", question),
            )
        )
    rows.append(tail)
    return InlineKeyboardMarkup(rows)


# -- entry ---------------------------------------------------------------------------------------


async def start_urgent(update: Update, context: HotlineContext) -> int:
    """Entry (/urgent, the first screen's button, /start urgent): the first question at once."""
    query = update.callback_query
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        if query is not None:
            await query.answer(context.tr.gettext(ONLY_IN_PRIVATE), show_alert=True)
        return ConversationHandler.END
    if query is not None:
        await query.answer()
    services = context.services
    async with services.sessions() as session:
        filed = await reports_in_last_day(session, context.profile.id, now=services.clock())
    if filed >= services.settings.reports_per_day:
        lines = [context.tr.gettext(N_LIMIT), *reach_us_lines(context)]
        await _send(update, html.escape("\n".join(lines)))
        return ConversationHandler.END
    assert context.user_data is not None
    context.user_data[DRAFT_KEY] = {}
    tr = context.tr
    intro = tr.gettext(
        "The hotline will be alerted as soon as you answer. Up to four short questions follow: "
        'skip any you cannot answer, or tap "Send the alert now". What you tell us is '
        "encrypted and seen only by the hotline's staff. /cancel stops without sending anything."
    )
    location = ReplyKeyboardMarkup(
        [[KeyboardButton("📍 " + tr.gettext("Share my location"), request_location=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )
    await _send(update, "🚨 " + html.escape(intro), location)
    return await ask(update, context, "where")


async def ask(update: Update, context: HotlineContext, question: str) -> int:
    _draft(context)[AT] = question
    text = html.escape(context.tr.gettext(PROMPTS[question]))
    await _send(update, text, question_keyboard(context, question))
    return STATE[question]


async def _next(update: Update, context: HotlineContext, question: str) -> int:
    index = QUESTIONS.index(question)
    if index + 1 == len(QUESTIONS):
        return await send_alert(update, context)
    return await ask(update, context, QUESTIONS[index + 1])


# -- answers -------------------------------------------------------------------------------------


async def typed_answer(update: Update, context: HotlineContext) -> int | None:
    """Text: the place, or the phone; the other questions take buttons."""
    message = update.effective_message
    question = _current(context)
    if message is None or message.text is None:
        return None
    if question is None:  # the answers were erased meanwhile (/forget): start again
        return await ask(update, context, QUESTIONS[0])
    try:
        if question == "where":
            value = fields.parse_place(message.text)
        elif question == "contact":
            value = fields.parse_phone(message.text)
        else:
            await _say(update, context, N_("Please choose one of the buttons."))
            return await ask(update, context, question)
    except fields.Invalid as invalid:
        await _say(update, context, invalid.msgid, **invalid.params)
        return STATE[question]
    remember_sensitive_message(context, message.message_id)
    _draft(context)["place" if question == "where" else "phone"] = value
    return await _next(update, context, question)


async def location_shared(update: Update, context: HotlineContext) -> int | None:
    """A shared location answers "where" (kept as coordinates, sealed with the case)."""
    message = update.effective_message
    question = _current(context)
    if message is None or message.location is None:
        return None
    if question is None:
        question = _draft(context)[AT] = QUESTIONS[0]
    if question != "where":
        await _say(update, context, N_("Please answer the question above."))
        return await ask(update, context, question)
    remember_sensitive_message(context, message.message_id)
    spot = message.location
    _draft(context)["place"] = f"📍 {spot.latitude:.5f}, {spot.longitude:.5f}"
    return await _next(update, context, question)


async def contact_shared(update: Update, context: HotlineContext) -> int | None:
    """A shared contact card answers "contact" with its phone number."""
    message = update.effective_message
    question = _current(context)
    if message is None or message.contact is None:
        return None
    if question != "contact":
        await _say(update, context, N_("Please answer the question above."))
        return await ask(update, context, question or QUESTIONS[0])
    try:
        phone = fields.parse_phone(message.contact.phone_number)
    except fields.Invalid as invalid:
        await _say(update, context, invalid.msgid, **invalid.params)
        return STATE[question]
    remember_sensitive_message(context, message.message_id)
    _draft(context)["phone"] = phone
    return await _next(update, context, question)


async def pressed(update: Update, context: HotlineContext) -> int | None:
    """A button of the current question: a choice, Skip, or "Send the alert now"."""
    query = update.callback_query
    assert query is not None
    press = URGENT.parse(query.data)
    question = _current(context)
    if press is None or question is None or press.args[:1] != (question,):
        await query.answer(context.tr.gettext(N_EARLIER))
        return None
    await query.answer()
    if press.verb == "now":
        return await send_alert(update, context)
    if press.verb == "a":
        try:
            _store_choice(context, question, press.args[1])
        except fields.Invalid as invalid:
            await _say(update, context, invalid.msgid, **invalid.params)
            return STATE[question]
    return await _next(update, context, question)  # a choice, or Skip


def _store_choice(context: HotlineContext, question: str, value: str) -> None:
    """Button values are re-checked: callback data can be forged."""
    draft = _draft(context)
    if question == "what":
        draft["what"] = str(fields.parse_choice(value, UrgentKind))
    elif question == "by":
        draft["by"] = str(fields.parse_choice(value, Detainer))
    elif question == "contact" and value == CONTACT_HERE:
        draft["phone"] = None
        draft["here"] = True
    else:
        raise fields.Invalid(N_("Please use the buttons."))


# -- the alert -----------------------------------------------------------------------------------


async def send_alert(update: Update, context: HotlineContext) -> int:
    """One storage call creates the case and queues the alert; then the code and the advice."""
    draft = _draft(context)
    answers = UrgentAnswers(
        place=draft.get("place"),
        what=draft.get("what"),
        detained_by=draft.get("by"),
        phone=draft.get("phone"),
        contact_here=bool(draft.get("here")),
    )
    services = context.services
    user = update.effective_user
    try:
        async with services.sessions() as session, session.begin():
            filed = await file_urgent(
                session,
                services.cipher,
                context.profile.id,
                answers,
                now=services.clock(),
                duty=Duty.of(services.admin_keys, services.settings.timezone),
                reports_per_day=services.settings.reports_per_day,
                telegram_name=user.full_name if user is not None else None,
                telegram_username=user.username if user is not None else None,
            )
    except UrgentLimitReached:
        _forget_draft(context)
        await _send(update, html.escape(context.tr.gettext(N_LIMIT)), ReplyKeyboardRemove())
        return ConversationHandler.END
    _forget_draft(context)
    log.info("urgent case filed: %s, alert queued to %d chats", filed.code, filed.alerted)
    await _tell_filed(update, context, filed.code, answers.what)
    return ConversationHandler.END


async def _tell_filed(update: Update, context: HotlineContext, code: str, what: str | None) -> None:
    tr = context.tr
    text = html.escape(
        tr.gettext(
            "The hotline has been alerted. Your case code is {code}.\n\n"
            "The staff member on call will write to you here, and you will see each step here "
            "as it happens. You can write here at any time: it goes to the staff."
        )
    ).format(code=f"<code>{html.escape(code)}</code>")
    reach = reach_us_lines(context)
    if reach:
        text += "\n\n" + html.escape(
            "\n".join([tr.gettext("If Telegram stops working, reach the hotline:"), *reach])
        )
    sent = await _send(update, text, ReplyKeyboardRemove(), protect=True)
    if sent is not None:
        remember_sensitive_message(context, sent.message_id)
    later = tr.gettext(
        "When you can, complete the full report (the person's name and more): tap the button "
        "below or send /report. It starts from what you told us now."
    )
    hide = tr.gettext(
        "If someone else might look at this phone, I can delete the messages with details "
        "from this chat and leave only your case code."
    )
    if context.user_data is not None:
        context.user_data[HIDE_CODE] = code  # what "Hide this chat" leaves (handlers.privacy)
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("Complete the full report"), callback_data=MENU_REPORT
                )
            ],
            [InlineKeyboardButton(tr.gettext("Hide this chat"), callback_data=HIDE_CHAT)],
        ]
    )
    # One message, not three: a burst of messages to one chat is what Telegram limits first.
    sent_advice = await _send(
        update, html.escape("\n\n".join([advice(tr, what), later, hide])), buttons
    )
    if sent_advice is not None:
        remember_sensitive_message(context, sent_advice.message_id)


# -- anywhere on the path ------------------------------------------------------------------------


async def cancel(update: Update, context: HotlineContext) -> int:
    _forget_draft(context)
    await _send(
        update,
        html.escape(context.tr.gettext("Stopped. Nothing was sent to the hotline.")),
        ReplyKeyboardRemove(),
    )
    return ConversationHandler.END


async def other_message(update: Update, context: HotlineContext) -> int | None:
    """Photos, files, stickers...: not an answer; the question is asked again."""
    question = _current(context)
    await _say(update, context, N_("Please answer in words or with the buttons."))
    if question is None:
        return None
    return await ask(update, context, question)


async def stale_button(update: Update, context: HotlineContext) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(context.tr.gettext(N_EARLIER))


def build_conversation() -> ConversationHandler[HotlineContext]:
    private = filters.ChatType.PRIVATE
    new = filters.UpdateType.MESSAGE  # an edit (or a live location moving) is not an answer
    answers: list[Any] = [
        CallbackQueryHandler(pressed, pattern=URGENT.pattern),
        MessageHandler(new & filters.TEXT & ~filters.COMMAND, typed_answer),
        MessageHandler(new & filters.LOCATION, location_shared),
        MessageHandler(new & filters.CONTACT, contact_shared),
    ]
    with warnings.catch_warnings():
        # per_message=False is meant: one urgent path per user and chat, whatever is tapped.
        warnings.filterwarnings("ignore", message="If 'per_message=False'")
        return _conversation(answers, private)


def _conversation(answers: list[Any], private: filters.BaseFilter) -> ConversationHandler[Any]:
    return ConversationHandler(
        entry_points=[
            CommandHandler("urgent", start_urgent, filters=private),
            CommandHandler(
                "start", start_urgent, filters=private & filters.Regex(r"^/start\s+urgent\s*$")
            ),
            CallbackQueryHandler(start_urgent, pattern=f"^{URGENT.build('start')}$"),
        ],
        states={state: answers for state in STATE.values()},
        fallbacks=[
            CommandHandler("cancel", cancel),
            MessageHandler(filters.UpdateType.MESSAGE & ~filters.COMMAND, other_message),
            CallbackQueryHandler(stale_button, pattern=URGENT.pattern),
        ],
        name="urgent",
        persistent=True,
        allow_reentry=True,
        per_message=False,
    )


def register(application: HotlineApplication) -> None:
    application.add_handler(build_conversation())
