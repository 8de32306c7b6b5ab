"""The report conversation: a relative reports a detention, one question at a time.

The bot asks for consent, then the questions of `STEPS` in order, then shows a summary to edit or
confirm. The whole draft lives in `context.user_data["report"]` (JSON: strings, ISO dates) and the
ConversationHandler is persistent, so the app's after-every-update flush keeps both the answers and
the question reached: after a restart, the next answer continues where the relative left off.

The questions differ only in their prompt, their buttons and their check, so they are rows of one
table (`STEPS`, states named after what is asked) served by one text handler and one button
handler; the checks themselves are pure functions in `handlers.report_fields`.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_, Translator
from handlers import report_fields as fields
from handlers import report_keyboards as kb
from handlers.common import MENU_REPORT
from handlers.privacy import offer_hide_chat, remember_sensitive_message
from handlers.report_fields import Invalid
from storage.enums import Detainer, Region, Relation, Visibility
from storage.reports import (
    Filed,
    ReportDraft,
    ReportLimitReached,
    StaffChats,
    file_report,
    reports_in_last_day,
)
from storage.threads import Incoming, attach_report_documents

log = logging.getLogger(__name__)

DRAFT_KEY = "report"
EDITING = "_editing"
AT = "_at"
(
    ASK_CONSENT,
    ASK_RELATION,
    ASK_NAME,
    ASK_BIRTH,
    ASK_DATE,
    ASK_REGION,
    ASK_PLACE,
    ASK_DETAINER,
    ASK_CHARGES,
    ASK_HELD_AT,
    ASK_LAWYER,
    ASK_HEALTH,
    ASK_CONTACT,
    ASK_PUBLICITY,
    CONFIRM_SUMMARY,
) = range(15)
ASK_DOCUMENTS = 15  # added later: numbered after the others, so forms open at a restart keep theirs
DOCUMENTS_LIMIT = 10

Parser = Callable[[str, date], dict[str, Any]]


@dataclass(frozen=True)
class Step:
    state: int
    key: str
    label: str  # msgid of the field's name in the summary
    prompt: str  # msgid of the question
    optional: bool
    words: dict[str, str] | None = None  # the choices, if the answer is a button
    parse: Parser | None = None  # the check of a typed answer, if one is accepted
    per_row: int = 1


def _text(limit: int) -> Parser:
    return lambda text, today: {"value": fields.parse_text(text, limit=limit)}


def _birth(text: str, today: date) -> dict[str, Any]:
    birth = fields.parse_birth(text, today=today)
    return {
        "value": birth.birth_date.isoformat() if birth.birth_date else None,
        "age": birth.age,
    }


STEPS: tuple[Step, ...] = (
    Step(ASK_RELATION, "relation", N_("You are"), N_("Who are you to the detained person?"),
         False, kb.RELATION_WORDS, per_row=2),
    Step(ASK_NAME, "name", N_("Name"),
         N_("What is the detained person's full name? (surname, first name, patronymic)"), False,
         parse=lambda text, today: {"value": fields.parse_name(text)}),
    Step(ASK_BIRTH, "birth", N_("Date of birth"),
         N_("Their date of birth, for example 21.03.1985? If you do not know it, write their "
            "approximate age, for example 45."), True, parse=_birth),
    Step(ASK_DATE, "detention_date", N_("Detained on"),
         N_("When were they detained? Write the date, for example 05.12.2024, or tap a button."),
         False, kb.DATE_WORDS, per_row=2),
    Step(ASK_REGION, "region", N_("Region"), N_("Where were they detained?"), False,
         kb.REGION_WORDS),
    Step(ASK_PLACE, "place", N_("Town or address"),
         N_("In which town or village, or at what address?"), True,
         parse=lambda text, today: {"value": fields.parse_place(text)}),
    Step(ASK_DETAINER, "detained_by", N_("Detained by"), N_("Who detained them?"), True,
         kb.DETAINER_WORDS, per_row=2),
    Step(ASK_CHARGES, "charges", N_("Accused of"),
         N_("What are they accused of, if you know?"), True, parse=_text(fields.TEXT_LIMIT)),
    Step(ASK_HELD_AT, "held_at", N_("Held at"),
         N_("Where are they held now, if you know?"), True, parse=_text(fields.TEXT_LIMIT)),
    Step(ASK_LAWYER, "lawyer", N_("Lawyer"), N_("Do they have a lawyer?"), True,
         kb.LAWYER_WORDS),
    Step(ASK_HEALTH, "health", N_("Health"),
         N_("Are there any health concerns (illness, medicines they need)?"), True,
         parse=_text(fields.TEXT_LIMIT)),
    Step(ASK_DOCUMENTS, "documents", N_("Documents"),
         N_("Do you have photos or files of papers: the detention protocol, a search warrant, "
            "court papers? Send them here, one or several, then tap Done. Or tap Skip."), True),
    Step(ASK_CONTACT, "phone", N_("Contact"),
         N_("How can the hotline reach you? Write a phone number, or tap the button to be "
            "contacted only here in Telegram."), True,
         parse=lambda text, today: {"value": fields.parse_phone(text)}),
    Step(ASK_PUBLICITY, "visibility", N_("Publicity"),
         N_("May the hotline speak about this case publicly?"), True, kb.VISIBILITY_WORDS),
)  # fmt: skip
BY_KEY = {step.key: step for step in STEPS}
CHOICES: dict[str, type[Any]] = {
    "relation": Relation,
    "region": Region,
    "detained_by": Detainer,
    "visibility": Visibility,
}


def _draft(context: HotlineContext) -> dict[str, Any]:
    assert context.user_data is not None
    draft = context.user_data.setdefault(DRAFT_KEY, {})
    assert isinstance(draft, dict)
    return draft


def _forget_draft(context: HotlineContext) -> None:
    if context.user_data is not None:
        context.user_data.pop(DRAFT_KEY, None)


def _today(context: HotlineContext) -> date:
    return context.services.clock().date()


async def _send(
    update: Update, text: str, markup: InlineKeyboardMarkup | None = None, *, protect: bool = False
) -> Message | None:
    chat = update.effective_chat
    if chat is None:
        return None
    return await chat.send_message(
        text, parse_mode=ParseMode.HTML, reply_markup=markup, protect_content=protect
    )


async def _say(update: Update, context: HotlineContext, msgid: str, **params: object) -> None:
    text = html.escape(context.tr.gettext(msgid).format(**params))
    await _send(update, text)


# -- entry and consent ---------------------------------------------------------------------------


async def start_report(update: Update, context: HotlineContext) -> int:
    """Entry (/report, the menu button, the deep link): who we are, then ask for consent."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    services = context.services
    async with services.sessions() as session:
        filed = await reports_in_last_day(session, context.profile.id, now=services.clock())
    if filed >= services.settings.reports_per_day:
        await _say(update, context, N_LIMIT)
        return ConversationHandler.END
    tr = context.tr
    text = "\n\n".join(
        [
            tr.gettext(
                "This bot is run by the hotline for families of people detained by the "
                "occupying authorities. I will ask a few questions about the detention."
            ),
            tr.gettext(
                "What is stored: your answers and your Telegram id, encrypted. Who sees them: "
                "only the hotline's staff. Nothing is published unless you allow it at the end."
            ),
            tr.gettext("You can stop at any time with /cancel: then nothing is stored."),
            tr.gettext("Do you agree?"),
        ]
    )
    await _send(update, html.escape(text), kb.consent_keyboard(tr))
    return ASK_CONSENT


N_LIMIT = N_(
    "You have sent several reports today. To protect the hotline from abuse, please write to us "
    "again tomorrow, or call the hotline."
)


async def consent_given(update: Update, context: HotlineContext) -> int:
    assert update.callback_query is not None
    await update.callback_query.answer()
    assert context.user_data is not None
    context.user_data[DRAFT_KEY] = {}
    return await ask(update, context, STEPS[0])


async def consent_refused(update: Update, context: HotlineContext) -> int:
    assert update.callback_query is not None
    await update.callback_query.answer()
    _forget_draft(context)
    await _say(
        update,
        context,
        N_(
            "Nothing has been stored. You can still reach the hotline by phone or e-mail (see "
            "the hotline's website), or come back here with /report whenever you are ready."
        ),
    )
    return ConversationHandler.END


# -- the questions -------------------------------------------------------------------------------


async def ask(update: Update, context: HotlineContext, step: Step) -> int:
    tr = context.tr
    _draft(context)[AT] = step.key
    extra = {
        "phone": [(tr.gettext("Contact me here only"), kb.CONTACT_HERE)],
        "documents": [(tr.gettext("Done"), kb.DOCUMENTS_DONE)],
    }.get(step.key)
    markup = kb.step_keyboard(
        tr, step.key, step.words, optional=step.optional, per_row=step.per_row, extra=extra
    )
    await _send(update, html.escape(tr.gettext(step.prompt)), markup)
    return step.state


def _current(context: HotlineContext) -> Step | None:
    """The question last asked (kept in the draft, so it survives a restart with it)."""
    return BY_KEY.get(str(_draft(context).get(AT)))


async def _after_answer(update: Update, context: HotlineContext, step: Step) -> int:
    """Next question, or the summary when the answer was an edit or the last question."""
    draft = _draft(context)
    index = STEPS.index(step)
    if draft.pop(EDITING, False) or index + 1 == len(STEPS):
        return await show_summary(update, context)
    return await ask(update, context, STEPS[index + 1])


async def typed_answer(update: Update, context: HotlineContext) -> int | None:
    """A text answer to the current question: checked, stored in the draft, then onwards."""
    message = update.effective_message
    step = _current(context)
    if message is None or message.text is None or step is None:
        return None
    if step.parse is None and step.key != "detention_date":
        await _say(update, context, N_("Please choose one of the buttons."))
        return await ask(update, context, step)
    try:
        if step.key == "detention_date":
            value: dict[str, Any] = {"value": _parse_detention(message.text, context)}
        else:
            assert step.parse is not None
            value = step.parse(message.text, _today(context))
    except Invalid as invalid:
        await _say(update, context, invalid.msgid, **invalid.params)
        return step.state
    remember_sensitive_message(context, message.message_id)
    _store(context, step, value)
    return await _after_answer(update, context, step)


def _parse_detention(text: str, context: HotlineContext) -> str:
    tr = context.tr
    words = {
        "today": [tr.pgettext("typed date", "today"), "today", tr.gettext(kb.DATE_WORDS["today"])],
        "yesterday": [
            tr.pgettext("typed date", "yesterday"),
            "yesterday",
            tr.gettext(kb.DATE_WORDS["yesterday"]),
        ],
    }
    return fields.parse_detention_date(text, today=_today(context), words=words).isoformat()


def _store(context: HotlineContext, step: Step, value: dict[str, Any]) -> None:
    draft = _draft(context)
    draft[step.key] = value.get("value")
    if step.key == "birth":
        draft["age"] = value.get("age")


async def pressed(update: Update, context: HotlineContext) -> int | None:
    """A button of a question: a choice, Skip or Back (of the current question only)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    step = _current(context)
    parts = query.data.split(":", 3)
    verb, key = parts[1], parts[2] if len(parts) > 2 else ""
    if step is None or key != step.key:
        await query.answer(context.tr.gettext("This button belongs to an earlier question."))
        return None
    await query.answer()
    if verb == "back":
        return await go_back(update, context, step)
    if step.key == "documents" and verb in ("skip", "a"):
        return await _after_answer(update, context, step)  # Done or Skip: keep what was sent
    if verb == "skip":
        if not step.optional:
            return await ask(update, context, step)
        _store(context, step, {"value": None})
        return await _after_answer(update, context, step)
    value = parts[3] if len(parts) > 3 else ""
    try:
        _store(context, step, {"value": _button_value(step, value, context)})
    except Invalid as invalid:
        await _say(update, context, invalid.msgid, **invalid.params)
        return step.state
    return await _after_answer(update, context, step)


def _button_value(step: Step, value: str, context: HotlineContext) -> str | None:
    if step.key in CHOICES:
        return str(fields.parse_choice(value, CHOICES[step.key]))
    if step.key == "lawyer" and value in kb.LAWYER_ANSWERS:
        return value
    if step.key == "detention_date" and value in kb.DATE_WORDS:
        return _parse_detention(value, context)
    if step.key == "phone" and value == kb.CONTACT_HERE:
        return None
    raise Invalid(N_("Please use the buttons."))


async def document_sent(update: Update, context: HotlineContext) -> int:
    """A photo or file at the documents question: kept by its Telegram file id (sealed with the
    draft), never downloaded; several may follow, until Done."""
    message = update.effective_message
    assert message is not None
    step = BY_KEY["documents"]
    if _current(context) is not step:
        await _say(update, context, N_("Please answer in text (or with the buttons)."))
        return await ask(update, context, _current(context) or step)
    documents: list[dict[str, str]] = _draft(context).setdefault("documents", [])
    if len(documents) >= DOCUMENTS_LIMIT:
        await _say(update, context, N_("That is as many files as the form takes. Tap Done."))
        return ASK_DOCUMENTS
    if message.photo:
        documents.append({"kind": "photo", "file_id": message.photo[-1].file_id})
    elif message.document is not None:
        documents.append({"kind": "document", "file_id": message.document.file_id})
    remember_sensitive_message(context, message.message_id)
    tr = context.tr
    text = tr.ngettext(
        "Received {count} file. Send more, or tap Done.",
        "Received {count} files. Send more, or tap Done.",
        len(documents),
    ).format(count=len(documents))
    markup = kb.step_keyboard(
        tr, step.key, None, optional=True, extra=[(tr.gettext("Done"), kb.DOCUMENTS_DONE)]
    )
    await _send(update, html.escape(text), markup)
    return ASK_DOCUMENTS


async def go_back(update: Update, context: HotlineContext, step: Step) -> int:
    draft = _draft(context)
    if draft.pop(EDITING, False):
        return await show_summary(update, context)
    index = STEPS.index(step)
    if index == 0:
        await _send(
            update,
            html.escape(context.tr.gettext("Do you agree?")),
            kb.consent_keyboard(context.tr),
        )
        return ASK_CONSENT
    return await ask(update, context, STEPS[index - 1])


# -- summary and confirmation --------------------------------------------------------------------


def _shown(tr: Translator, step: Step, draft: dict[str, Any]) -> str:
    value = draft.get(step.key)
    if step.key == "birth" and value is None and draft.get("age") is not None:
        return tr.gettext("about {age} years old").format(age=draft["age"])
    if step.key == "phone" and value is None and "phone" in draft:
        return tr.gettext("Contact me here only")
    if step.key == "documents":
        count = len(value or [])
        return (
            tr.ngettext("{count} file", "{count} files", count).format(count=count)
            if count
            else "—"
        )
    if value is None:
        return "—"
    if step.key in ("birth", "detention_date"):
        return tr.format_date(date.fromisoformat(str(value)))
    if step.words is not None and step.key != "detention_date":
        return kb.word(tr, step.words, value)
    return str(value)


async def show_summary(update: Update, context: HotlineContext) -> int:
    tr = context.tr
    draft = _draft(context)
    draft[AT] = None
    # gettext outside the f-string: Babel does not extract literals inside f-strings
    heading = html.escape(tr.gettext("Please check your report:"))
    lines = [f"<b>{heading}</b>", ""]
    for step in STEPS:
        label = html.escape(tr.gettext(step.label))
        lines.append(f"<b>{label}:</b> {html.escape(_shown(tr, step, draft))}")
    lines += ["", html.escape(tr.gettext("Tap a field to change it, or confirm."))]
    markup = kb.summary_keyboard(tr, [(step.key, tr.gettext(step.label)) for step in STEPS])
    sent = await _send(update, "\n".join(lines), markup, protect=True)  # every answer given
    if sent is not None:
        remember_sensitive_message(context, sent.message_id)
    return CONFIRM_SUMMARY


async def edit_field(update: Update, context: HotlineContext) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    step = BY_KEY.get(query.data.removeprefix("rep:edit:"))
    if step is None:
        return await show_summary(update, context)
    _draft(context)[EDITING] = True
    return await ask(update, context, step)


def draft_to_report(draft: dict[str, Any]) -> ReportDraft:
    """The JSON draft as the storage layer's value (the draft was checked step by step)."""

    def iso(key: str) -> date | None:
        value = draft.get(key)
        return date.fromisoformat(value) if isinstance(value, str) else None

    return ReportDraft(
        relation=draft.get("relation"),
        detainee_name=str(draft["name"]),
        detention_date=iso("detention_date"),
        region=str(draft["region"]),
        birth_date=iso("birth"),
        age=draft.get("age"),
        place=draft.get("place"),
        detained_by=draft.get("detained_by"),
        charges=draft.get("charges"),
        held_at=draft.get("held_at"),
        lawyer=draft.get("lawyer"),
        health=draft.get("health"),
        phone=draft.get("phone"),
        visibility=draft.get("visibility") or Visibility.STAFF_ONLY,
    )


def _missing(draft: dict[str, Any]) -> Step | None:
    for step in STEPS:
        if not step.optional and not draft.get(step.key):
            return step
    return None


async def confirm(update: Update, context: HotlineContext) -> int:
    """One storage call files everything; then the code and what happens next."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    draft = _draft(context)
    missing = _missing(draft)
    if missing is not None:
        draft[EDITING] = True
        return await ask(update, context, missing)
    services, settings = context.services, context.services.settings
    user = update.effective_user
    try:
        async with services.sessions() as session, session.begin():
            filed = await file_report(
                session,
                services.cipher,
                context.profile.id,
                draft_to_report(draft),
                now=services.clock(),
                staff=StaffChats(services.staff_chat_key, services.admin_keys),
                reports_per_day=settings.reports_per_day,
                telegram_name=user.full_name if user is not None else None,
                telegram_username=user.username if user is not None else None,
            )
            await attach_report_documents(
                session,
                services.cipher,
                context.profile.id,
                filed.code,
                [Incoming(d["kind"], None, d["file_id"]) for d in draft.get("documents") or []],
                now=services.clock(),
            )
    except ReportLimitReached:
        _forget_draft(context)
        await _say(update, context, N_LIMIT)
        return ConversationHandler.END
    _forget_draft(context)
    log.info("report filed: %s (%s)", filed.code, filed.outcome)
    await _tell_filed(update, context, filed.outcome, filed.code)
    return ConversationHandler.END


async def _tell_filed(update: Update, context: HotlineContext, outcome: Filed, code: str) -> None:
    """Whether or not the person is already on file, a new report gets the same words (only the
    code differs): the answer must not tell a prober that someone was detained."""
    tr = context.tr
    if outcome == Filed.ALREADY_REPORTED:
        text = tr.gettext(
            "You have already reported this person: the case code is {code}. Nothing new was "
            "stored. Send /status to see the case."
        )
    else:
        text = tr.gettext(
            "Thank you. Your report has been received.\n\nYour case code is {code}. Keep it: "
            "with it you can ask about the case with /status.\n\nWhat happens next: the "
            "hotline's staff will review the report, may ask you questions here, and you will "
            "be told here whenever the status changes."
        )
    sent = await _send(update, text.format(code=f"<code>{html.escape(code)}</code>"))
    if sent is not None:
        await offer_hide_chat(sent, context, code)


# -- anywhere in the conversation ----------------------------------------------------------------


async def cancel(update: Update, context: HotlineContext) -> int:
    _forget_draft(context)
    await _say(update, context, N_("The report was cancelled. Nothing has been stored."))
    return ConversationHandler.END


async def not_text(update: Update, context: HotlineContext) -> None:
    """Photos, documents, stickers... no step accepts them yet."""
    await _say(
        update,
        context,
        N_("Please answer in text (or with the buttons). Files and pictures cannot be added here."),
    )


async def stale_button(update: Update, context: HotlineContext) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(
            context.tr.gettext("This button belongs to an earlier question.")
        )


def build_conversation() -> ConversationHandler[HotlineContext]:
    text = filters.TEXT & ~filters.COMMAND
    question_handlers = [
        CallbackQueryHandler(pressed, pattern=r"^rep:(a|skip|back):"),
        MessageHandler(text, typed_answer),
    ]
    with warnings.catch_warnings():
        # per_message=False is meant: one report per user and chat, whatever message is tapped.
        warnings.filterwarnings("ignore", message="If 'per_message=False'")
        return _conversation(question_handlers, text)


def _conversation(
    question_handlers: list[Any], text: filters.BaseFilter
) -> ConversationHandler[HotlineContext]:
    return ConversationHandler(
        entry_points=[
            CommandHandler("report", start_report),
            CommandHandler("start", start_report, filters=filters.Regex(r"^/start\s+report\s*$")),
            CallbackQueryHandler(start_report, pattern=f"^{MENU_REPORT}$"),
        ],
        states={
            ASK_CONSENT: [
                CallbackQueryHandler(consent_given, pattern=f"^{kb.CONSENT_YES}$"),
                CallbackQueryHandler(consent_refused, pattern=f"^{kb.CONSENT_NO}$"),
                MessageHandler(text, remind_consent),
            ],
            **{step.state: question_handlers for step in STEPS},
            ASK_DOCUMENTS: [
                MessageHandler(filters.PHOTO | filters.Document.ALL, document_sent),
                *question_handlers,
            ],
            CONFIRM_SUMMARY: [
                CallbackQueryHandler(edit_field, pattern=r"^rep:edit:"),
                CallbackQueryHandler(confirm, pattern=f"^{kb.CONFIRM}$"),
                MessageHandler(text, remind_summary),
            ],
        },
        fallbacks=[
            CommandHandler("cancel", cancel),
            MessageHandler(~filters.COMMAND & ~filters.TEXT, not_text),
            CallbackQueryHandler(stale_button, pattern=r"^rep:"),
        ],
        name="report",
        persistent=True,
        allow_reentry=True,
        per_message=False,
    )


async def remind_consent(update: Update, context: HotlineContext) -> int:
    await _send(
        update,
        html.escape(context.tr.gettext("Please tap one of the buttons: do you agree?")),
        kb.consent_keyboard(context.tr),
    )
    return ASK_CONSENT


async def remind_summary(update: Update, context: HotlineContext) -> int:
    await _say(update, context, N_("Please use the buttons under the summary: edit or confirm."))
    return CONFIRM_SUMMARY


def register(application: HotlineApplication) -> None:
    application.add_handler(build_conversation())
