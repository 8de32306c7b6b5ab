"""The report form: a relative reports a detention, one question at a time.

The questions are the fields of `storage.fields.REGISTRY` that the form asks, in their order:
consent first, then each question, then a summary to edit or confirm. Where the relative is and
what they answered is one row (`storage.forms`), written in ONE transaction before the next
question is sent: after a restart or a crash the form continues exactly where the relative
sees it, and a release that changes the questions carries the open form over.

Routing. The ways in (/report, /start report, the menu button) are ordinary handlers of group 0.
Whatever else a relative sends in a private chat goes first through `route` (its own group,
`REPORT_GROUP`, before the forms and commands of group 0): it reads the form (one primary-key
read) and, if one is open and the update is an answer, a button of the form or /cancel, handles
it and stops there; otherwise the update goes on to the other handlers. No ConversationHandler
and no PTB persistence keep the form. Edits of typed answers come through `edited_answer`
(called by `handlers.edits`, which keeps every edit away from the other handlers).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, CommandHandler, TypeHandler
from telegram.ext import filters as ptb_filters

from bot.callbacks import REPORT, Pressed
from bot.context import HotlineApplication, HotlineContext
from bot.guide import pages_for_report
from bot.i18n import N_
from handlers import report_keyboards as kb
from handlers.common import MENU_REPORT
from handlers.guide import guide_button
from handlers.middleware import command_of
from handlers.privacy import offer_hide_chat, remember_sensitive_message
from storage import fields, forms
from storage.field_checks import Invalid
from storage.fields import Field, Files, Typing
from storage.forms import Form, State
from storage.reports import (
    Filed,
    ReportDraft,
    ReportLimitReached,
    StaffChats,
    file_report,
    reports_in_last_day,
)
from storage.threads import Incoming, attach_report_documents
from storage.urgent import mark_draft_used, urgent_draft_for

log = logging.getLogger(__name__)

REPORT_GROUP = -8
"""After staff and desk input (-10, -9), before the forms and commands of group 0."""
LEGACY_DRAFT = "report"
"""Where earlier releases kept the draft (`user_data`): converted once, at the next update."""
N_LIMIT = N_(
    "You have sent several reports today. To protect the hotline from abuse, please write to us "
    "again tomorrow, or call the hotline."
)
N_EARLIER = N_("This button belongs to an earlier question.")
N_REMIND_SUMMARY = N_("Please use the buttons under the summary: edit or confirm.")


# -- the stored form -----------------------------------------------------------------------------


async def load_form(context: HotlineContext) -> Form | None:
    """The user's open form under the current registry (carried over if an earlier release
    stored it), or None."""
    services = context.services
    async with services.sessions() as session:
        form = await forms.load(session, services.cipher, context.profile.id)
    if form is None:
        form = await _from_legacy(context)
    return forms.carry_over(form) if form is not None else None


async def _from_legacy(context: HotlineContext) -> Form | None:
    """A draft of the PTB conversation of earlier releases becomes a stored form, once."""
    legacy = (context.user_data or {}).get(LEGACY_DRAFT)
    if not isinstance(legacy, dict):
        return None
    form = forms.carry_over(forms.from_legacy(legacy))
    await _save(context, form)
    if context.user_data is not None:
        context.user_data.pop(LEGACY_DRAFT, None)
    return form


async def _save(context: HotlineContext, form: Form) -> None:
    """State and answers in one write, committed before anything is sent."""
    services = context.services
    async with services.sessions() as session, session.begin():
        await forms.save(session, services.cipher, context.profile.id, form, now=services.clock())


async def _discard(context: HotlineContext) -> None:
    services = context.services
    async with services.sessions() as session, session.begin():
        await forms.discard(session, services.cipher, context.profile.id)


def _typing(context: HotlineContext) -> Typing:
    """Today, and the words for today and yesterday the user may type."""
    tr = context.tr
    typed = {
        "today": tr.pgettext("typed date", "today"),
        "yesterday": tr.pgettext("typed date", "yesterday"),
    }
    return Typing(
        today=context.services.clock().date(),
        relative={key: [word, key, tr.gettext(kb.DATE_WORDS[key])] for key, word in typed.items()},
    )


# -- sending -------------------------------------------------------------------------------------


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


def _lead(note: str | None, text: str) -> str:
    return f"{html.escape(note)}\n\n{text}" if note else text


async def show(
    update: Update, context: HotlineContext, form: Form, note: str | None = None
) -> None:
    """What the form asks now: consent, the question, or the summary (after `note`, if any)."""
    field = fields.REGISTRY.get(form.step)
    if form.state == State.QUESTION and field is not None:
        await _ask(update, context, field, note)
    elif form.state == State.SUMMARY:
        await _show_summary(update, context, form, note)
    else:
        tr = context.tr
        text = _lead(note, html.escape(tr.gettext("Do you agree?")))
        await _send(update, text, kb.consent_keyboard(tr))


async def _ask(
    update: Update, context: HotlineContext, field: Field, note: str | None = None
) -> None:
    tr = context.tr
    assert field.question is not None
    text = _lead(note, html.escape(tr.gettext(field.question)))
    await _send(update, text, kb.step_keyboard(tr, field))


async def _show_summary(
    update: Update, context: HotlineContext, form: Form, note: str | None = None
) -> None:
    tr = context.tr
    # gettext outside the f-string: Babel does not extract literals inside f-strings
    heading = html.escape(tr.gettext("Please check your report:"))
    lines = [f"<b>{heading}</b>", ""]
    for field in fields.REGISTRY.form:
        label = html.escape(tr.gettext(field.label))
        shown = (
            field.kind.show_answer(tr, field, form.answers[field.key])
            if field.key in form.answers
            else "—"
        )
        lines.append(f"<b>{label}:</b> {html.escape(shown)}")
    lines += ["", html.escape(tr.gettext("Tap a field to change it, or confirm."))]
    markup = kb.summary_keyboard(tr, [(f.key, tr.gettext(f.label)) for f in fields.REGISTRY.form])
    sent = await _send(update, _lead(note, "\n".join(lines)), markup, protect=True)
    if sent is not None:  # every answer given
        remember_sensitive_message(context, sent.message_id)


async def _move(update: Update, context: HotlineContext, form: Form) -> None:
    """Store the form, then show where it is: never the other way round."""
    await _save(context, form)
    await show(update, context, form)


# -- the way in ----------------------------------------------------------------------------------


async def start_report(update: Update, context: HotlineContext) -> None:
    """/report, the menu button, the deep link: who we are, then ask for consent. A form
    already open is replaced (its answers and their key are destroyed)."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    services = context.services
    async with services.sessions() as session:
        filed = await reports_in_last_day(session, context.profile.id, now=services.clock())
    if filed >= services.settings.reports_per_day:
        await _say(update, context, N_LIMIT)
        return
    async with services.sessions() as session, session.begin():
        form = forms.new_form()
        urgent = await urgent_draft_for(session, services.cipher, context.profile.id)
        if urgent is not None:
            form = form.from_urgent(urgent.case_id, urgent.form_answers())
        await forms.start(session, services.cipher, context.profile.id, form, now=services.clock())
    if context.user_data is not None:
        context.user_data.pop(LEGACY_DRAFT, None)
    tr = context.tr
    kept = (
        []
        if urgent is None
        else [
            tr.gettext(
                "What you told us when you asked for urgent help (case {code}) is kept: those "
                "questions are not asked again, and you can change the answers at the end."
            ).format(code=urgent.code)
        ]
    )
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
            *kept,
            tr.gettext("Do you agree?"),
        ]
    )
    await _send(update, html.escape(text), kb.consent_keyboard(tr))


# -- routing -------------------------------------------------------------------------------------


def _for_the_form(update: Update, context: HotlineContext) -> bool:
    """Whether the update could belong to an open form (before reading it): a new message in
    a private chat (not a command, but /cancel) or a button of the form."""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE or update.effective_user is None:
        return False
    query = update.callback_query
    if query is not None:
        return (query.data or "").startswith(REPORT.prefix + ":")
    message = update.message  # edits arrive as `edited_message`: never here
    if message is None:
        return False
    command = command_of(message, context.bot.username)
    return command is None or command == "cancel"


async def route(update: object, context: HotlineContext) -> None:
    """Hand the update to the open form, if there is one and the update is for it."""
    if not isinstance(update, Update) or not _for_the_form(update, context):
        return
    form = await load_form(context)
    if form is None:
        return  # no form: a stale button or an ordinary message, for the other handlers
    message = update.message
    if update.callback_query is not None:
        await _pressed(update, context, form)
    elif message is None:
        return
    elif command_of(message, context.bot.username) == "cancel":
        await cancel(update, context)
    elif message.text is not None:
        await _typed(update, context, form)
    elif message.photo or message.document is not None:
        await _file_sent(update, context, form)
    else:
        await _not_text(update, context)
    await stop_here(update, context)


async def stop_here(update: Update, context: HotlineContext) -> None:
    """Handled: no other handler may take it. User data (the sensitive message ids) are
    written first, since stopping skips the flush group."""
    context.application.mark_data_for_update_persistence(
        chat_ids=update.effective_chat.id if update.effective_chat else None,
        user_ids=update.effective_user.id if update.effective_user else None,
    )
    await context.application.update_persistence()
    raise ApplicationHandlerStop


# -- buttons -------------------------------------------------------------------------------------


ButtonAction = Callable[[Update, HotlineContext, Form, Pressed], Awaitable[None]]


async def _pressed(update: Update, context: HotlineContext, form: Form) -> None:
    query = update.callback_query
    assert query is not None
    pressed = REPORT.parse(query.data)
    action = _button_action(form, pressed)
    if action is None or pressed is None:
        # A button of an earlier question (or of an earlier release's form): say so, ask again.
        await query.answer(context.tr.gettext(N_EARLIER))
        await show(update, context, form)
        return
    await query.answer()
    await action(update, context, form, pressed)


def _button_action(form: Form, pressed: Pressed | None) -> ButtonAction | None:
    """What a press does where the form is; None for a button that is not the form's now."""
    if pressed is None:
        return None
    key = pressed.args[0] if pressed.args else None
    if pressed.verb in ("a", "skip", "back"):  # buttons of a question: of the current one only
        return _question_button if form.state == State.QUESTION and key == form.step else None
    field = fields.REGISTRY.get(key)
    actions: dict[tuple[str, State], ButtonAction | None] = {
        ("consent", State.CONSENT): (
            _consent_given if pressed.args == ("yes",) else _consent_refused
        ),
        ("confirm", State.SUMMARY): _confirm,
        ("edit", State.SUMMARY): _edit if field is not None and field.in_form else None,
    }
    return actions.get((pressed.verb, form.state))


async def _edit(update: Update, context: HotlineContext, form: Form, pressed: Pressed) -> None:
    """A field of the summary: its question, then back to the summary."""
    await _move(update, context, form.at(pressed.args[0], editing=True))


async def _consent_given(
    update: Update, context: HotlineContext, form: Form, pressed: Pressed
) -> None:
    """On to the first question (answers given before going Back to consent are kept)."""
    await _move(update, context, form.at(fields.REGISTRY.form[0].key, editing=False))


async def _consent_refused(
    update: Update, context: HotlineContext, form: Form, pressed: Pressed
) -> None:
    await _discard(context)
    await _say(
        update,
        context,
        N_(
            "Nothing has been stored. You can still reach the hotline by phone or e-mail (see "
            "the hotline's website), or come back here with /report whenever you are ready."
        ),
    )


async def _question_button(
    update: Update, context: HotlineContext, form: Form, pressed: Pressed
) -> None:
    """A choice, an extra button (Done, contact me here), Skip or Back of the current question."""
    field = fields.REGISTRY[form.step or ""]
    current = form.answers.get(field.key)
    if pressed.verb == "back":
        await _move(update, context, _back(form, field))
        return
    if pressed.verb == "skip":
        if not field.optional:
            await _ask(update, context, field)
            return
        await _move(update, context, _onwards(form.answered(field.key, field.kind.skip(current))))
        return
    try:
        answer = field.kind.tap(field, pressed.args[1], _typing(context), current)
    except Invalid as invalid:
        await _say(update, context, invalid.msgid, **invalid.params)
        return
    await _move(update, context, _onwards(form.answered(field.key, answer)))


def _onwards(form: Form) -> Form:
    """After an answer: the next question (not one answered on the urgent path); after the last
    one or an edit, a question never answered (one a later release put before where the
    relative was), else the summary."""
    order = [f.key for f in fields.REGISTRY.form]
    index = order.index(form.step) if form.step in order else len(order) - 1
    ahead = [key for key in order[index + 1 :] if key not in form.kept]
    if not form.editing and ahead:
        return form.at(ahead[0])
    missed = [key for key in order if key not in form.answers]
    return form.at(missed[0], editing=True) if missed else form.at_summary()


def _back(form: Form, field: Field) -> Form:
    if form.editing:
        return form.at_summary()
    order = [f.key for f in fields.REGISTRY.form]
    index = order.index(field.key)
    return form.at_consent() if index == 0 else form.at(order[index - 1])


# -- typed answers and files ---------------------------------------------------------------------


async def _typed(update: Update, context: HotlineContext, form: Form) -> None:
    """A text answer to the current question: checked, stored with the state, then onwards."""
    message = update.message
    assert message is not None and message.text is not None
    if form.state == State.CONSENT:
        await _send(
            update,
            html.escape(context.tr.gettext("Please tap one of the buttons: do you agree?")),
            kb.consent_keyboard(context.tr),
        )
        return
    field = fields.REGISTRY.get(form.step)
    if form.state == State.SUMMARY or field is None:
        await _say(
            update, context, N_("Please use the buttons under the summary: edit or confirm.")
        )
        return
    if not field.kind.typed:
        await _say(update, context, N_("Please choose one of the buttons."))
        await _ask(update, context, field)
        return
    try:
        answer = field.kind.parse(message.text, _typing(context))
    except Invalid as invalid:
        await _say(update, context, invalid.msgid, **invalid.params)
        return
    remember_sensitive_message(context, message.message_id)
    await _move(update, context, _onwards(form.answered(field.key, answer, message.message_id)))


async def _file_sent(update: Update, context: HotlineContext, form: Form) -> None:
    """A photo or file at a question that takes them: kept by its Telegram file id (sealed with
    the form), never downloaded; several may follow, until Done."""
    message = update.message
    assert message is not None
    field = fields.REGISTRY.get(form.step)
    if form.state != State.QUESTION or field is None or not isinstance(field.kind, Files):
        await _not_text(update, context)
        return
    if message.photo:
        kind, file_id = "photo", message.photo[-1].file_id
    else:
        assert message.document is not None
        kind, file_id = "document", message.document.file_id
    files = field.kind.add(form.answers.get(field.key), kind, file_id)
    if files is None:
        await _say(update, context, N_("That is as many files as the form takes. Tap Done."))
        return
    await _save(context, form.answered(field.key, files))
    remember_sensitive_message(context, message.message_id)
    tr = context.tr
    text = tr.ngettext(
        "Received {count} file. Send more, or tap Done.",
        "Received {count} files. Send more, or tap Done.",
        len(files),
    ).format(count=len(files))
    await _send(update, html.escape(text), kb.step_keyboard(tr, field))


async def _not_text(update: Update, context: HotlineContext) -> None:
    """Stickers, voice, locations...: no question takes them."""
    await _say(
        update,
        context,
        N_("Please answer in text (or with the buttons). Files and pictures cannot be added here."),
    )


# -- edits ---------------------------------------------------------------------------------------


async def edited_answer(update: Update, context: HotlineContext) -> bool:
    """An edit of a typed answer of the open form updates that answer (and says so); False when
    the edited message is no such answer (the caller says edits are not read)."""
    message = update.edited_message
    if message is None or message.text is None or command_of(message, context.bot.username):
        return False  # an answer edited into a command is neither: edits are not read
    form = await load_form(context)
    key = form.key_of_message(message.message_id) if form is not None else None
    field = fields.REGISTRY.get(key)
    if form is None or field is None or not field.kind.typed:
        return False
    tr = context.tr
    label = tr.gettext(field.label)
    try:
        answer = field.kind.parse(message.text, _typing(context))
    except Invalid as invalid:
        reason = tr.gettext(invalid.msgid).format(**invalid.params)
        kept = tr.gettext("Your earlier answer to “{label}” is kept.").format(label=label)
        await _send(update, html.escape(f"{reason}\n{kept}"))
        return True
    form = form.answered(field.key, answer, message.message_id)
    await _save(context, form)
    remember_sensitive_message(context, message.message_id)
    await show(
        update, context, form, tr.gettext("I changed your answer to “{label}”.").format(label=label)
    )
    return True


# -- summary and confirmation --------------------------------------------------------------------


def _missing(form: Form) -> Field | None:
    for field in fields.REGISTRY.form:
        if not field.optional and not form.answers.get(field.key):
            return field
    return None


async def _confirm(
    update: Update, context: HotlineContext, form: Form, pressed: Pressed | None = None
) -> None:
    """One transaction files everything and ends the form; then the code and what happens next.
    A required question not answered yet (a later release may add one) is asked first."""
    missing = _missing(form)
    if missing is not None:
        await _move(update, context, form.at(missing.key, editing=True))
        return
    services, settings = context.services, context.services.settings
    user = update.effective_user
    documents = [
        Incoming(item["kind"], None, item["file_id"])
        for field in fields.REGISTRY.form
        if isinstance(field.kind, Files)
        for item in form.answers.get(field.key) or []
    ]
    try:
        async with services.sessions() as session, session.begin():
            filed = await file_report(
                session,
                services.cipher,
                context.profile.id,
                ReportDraft(form.answers),
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
                documents,
                now=services.clock(),
            )
            if form.urgent_case is not None:
                await mark_draft_used(
                    session,
                    form.urgent_case,
                    filed.code,
                    user_id=context.profile.id,
                    now=services.clock(),
                )
            await forms.discard(session, services.cipher, context.profile.id)
    except ReportLimitReached:
        await _discard(context)
        await _say(update, context, N_LIMIT)
        return
    log.info("report filed: %s (%s)", filed.code, filed.outcome)
    pages = pages_for_report(form.answers, today=services.clock().date())
    await _tell_filed(update, context, filed.outcome, filed.code, pages)


async def _tell_filed(
    update: Update, context: HotlineContext, outcome: Filed, code: str, pages: list[str]
) -> None:
    """Whether or not the person is already on file, a new report gets the same words (only the
    code differs): the answer must not tell a prober that someone was detained. Under it, the
    guide opens at the pages that fit the answers (no lawyer: how to find one first)."""
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
    guide = InlineKeyboardMarkup([[guide_button(tr, pages)]])
    sent = await _send(update, text.format(code=f"<code>{html.escape(code)}</code>"), guide)
    if sent is not None:
        await offer_hide_chat(sent, context, code)


async def cancel(update: Update, context: HotlineContext) -> None:
    await _discard(context)
    await _say(update, context, N_("The report was cancelled. Nothing has been stored."))


def register(application: HotlineApplication) -> None:
    new = ptb_filters.UpdateType.MESSAGE  # an edit is never a way in (handlers.edits)
    application.add_handler(CommandHandler("report", start_report, filters=new))
    application.add_handler(
        CommandHandler(
            "start", start_report, filters=new & ptb_filters.Regex(r"^/start\s+report\s*$")
        )
    )
    application.add_handler(CallbackQueryHandler(start_report, pattern=f"^{MENU_REPORT}$"))
    application.add_handler(TypeHandler(Update, route), group=REPORT_GROUP)
