"""/broadcast: staff write an announcement and send it to an audience; /broadcasts manages them.

The conversation: ASK_AUDIENCE (buttons) -> ASK_TEXT (the Ukrainian text, Telegram HTML, checked
before anything is queued) -> ASK_MORE (a button per language still missing, or "No more
languages"; a language's button asks for its text in ASK_TEXT and comes back here) -> ASK_PHOTO
(a photo, or "No photo") -> CONFIRM (the preview of each language's text, exactly as its
recipients will see it, how many read each, and Send / Edit / Cancel; Edit comes back to
ASK_MORE with a Change button per text). Each recipient gets the text of their language, else
the Ukrainian one. The draft lives in `user_data["broadcast"]` (persisted, JSON):
`{"audience", "arg", "texts": {language: text}, "writing": language, "photo", "editing"}`.
Sending sends the staff member's progress message first, then creates the broadcast with that
message's id in one transaction, so the progress job (`jobs.broadcast_progress`) can edit it,
even after a restart; the recipients' rows follow, a chunk per transaction (a restart continues
them).

Every button press re-checks the role on the server (`handlers.guard`), as does Send; callback
data is built and parsed by `bot.callbacks.BROADCAST` / `BROADCASTS` and re-validated whatever it
claims; a `bc:` press outside a conversation (an old or forged button) is refused to non-staff,
audited, like any other.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import BROADCAST, BROADCASTS, Pressed
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import Translator
from bot.texts.messages import render
from handlers.broadcast_words import (
    STATUS_WORDS,
    argument_keyboard,
    audience_keyboard,
    audience_label,
    confirm_keyboard,
    describe,
    language_name,
    languages_keyboard,
    manage_keyboard,
    problem_reply,
    verb_pattern,
)
from handlers.guard import require
from handlers.pressed import drop_buttons, show
from handlers.telegram_html import check_text
from jobs import broadcast_progress
from jobs.send import send_rendered
from storage import broadcasts
from storage.access import Permission
from storage.broadcasts import (
    LANGUAGES,
    OPTIONAL_LANGUAGES,
    REQUIRED_LANGUAGE,
    TEMPLATE,
    Audience,
    BadAudience,
    BadBroadcastState,
    BroadcastNotFound,
)

log = logging.getLogger(__name__)

ASK_AUDIENCE, ASK_TEXT, ASK_PHOTO, CONFIRM, ASK_MORE = range(5)
DRAFT_KEY = "broadcast"
RECENT_SHOWN = 5

# -- the conversation -----------------------------------------------------------------------------


def _draft(context: HotlineContext) -> dict[str, Any]:
    draft = context.user_data.get(DRAFT_KEY) if context.user_data is not None else None
    return draft if isinstance(draft, dict) else {}


def _save(context: HotlineContext, draft: dict[str, Any]) -> None:
    if context.user_data is not None:
        context.user_data[DRAFT_KEY] = draft


def _forget(context: HotlineContext) -> None:
    if context.user_data is not None:
        context.user_data.pop(DRAFT_KEY, None)


def texts_of(draft: dict[str, Any]) -> dict[str, str]:
    """The draft's texts by language, in language order (a draft saved before languages existed
    has one `text`: the Ukrainian one)."""
    texts = draft.get("texts")
    if not isinstance(texts, dict):
        texts = {REQUIRED_LANGUAGE: draft["text"]} if isinstance(draft.get("text"), str) else {}
    return {code: texts[code] for code in LANGUAGES if isinstance(texts.get(code), str)}


def _pressed(update: Update) -> Pressed | None:
    query = update.callback_query
    return BROADCAST.parse(query.data if query is not None else None)


FORMATTING = frozenset(
    {
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "pre",
        "text_link",
        "blockquote",
        "expandable_blockquote",
    }
)


def markup_of(message: Message) -> str | None:
    """The announcement as Telegram HTML. Staff may type the tags (`<b>...</b>`): then the text
    is the markup. If they formatted it with their app's bold/italic instead, Telegram sends
    entities, and PTB turns them into HTML (escaping any literal `<`)."""
    if message.text is None:
        return None
    if any(entity.type in FORMATTING for entity in message.entities):
        return message.text_html
    return message.text


async def _answer(update: Update) -> Message | None:
    """Acknowledge a button press; the message to reply under (or the message itself)."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    return update.effective_message


async def start(update: Update, context: HotlineContext) -> int:
    if not await require(update, context, Permission.BROADCAST, action="broadcast.start"):
        return ConversationHandler.END
    message = await _answer(update)
    _save(context, {})
    if message is not None:
        await message.reply_text(
            context.tr.gettext("Who should receive this announcement?"),
            reply_markup=audience_keyboard(context.tr),
        )
    return ASK_AUDIENCE


async def audience_chosen(update: Update, context: HotlineContext) -> int:
    query = update.callback_query
    pressed = _pressed(update)
    if query is None:
        return ASK_AUDIENCE
    if not await require(update, context, Permission.BROADCAST, action="broadcast.audience"):
        return ConversationHandler.END
    await query.answer()
    if pressed is None or pressed.verb not in ("aud", "of"):
        return ASK_AUDIENCE
    try:
        audience = Audience(pressed.args[0])
    except ValueError:
        return ASK_AUDIENCE
    argument = pressed.args[1] if pressed.verb == "of" else None
    tr = context.tr
    if audience in broadcasts.NEEDS_ARGUMENT and argument is None:
        await show(query, tr.gettext("Which one?"), reply_markup=argument_keyboard(tr, audience))
        return ASK_AUDIENCE
    try:
        broadcasts.check_audience(audience, argument)
    except BadAudience:
        return ASK_AUDIENCE
    _save(context, {"audience": audience.value, "arg": argument, "writing": REQUIRED_LANGUAGE})
    await show(
        query,
        tr.gettext(
            "Audience: {audience}.\n\nNow send the announcement's text in Ukrainian. Telegram "
            "formatting is allowed: <b>bold</b>, <i>italic</i>, links with &lt;a href=...&gt;. "
            "After it you can add the same announcement in other languages: each person gets "
            "it in their language, or in Ukrainian if there is no text in theirs."
        ).format(audience=audience_label(tr, audience, argument)),
        parse_mode=ParseMode.HTML,
    )
    return ASK_TEXT


async def text_received(update: Update, context: HotlineContext) -> int:
    """The text of the language being written (Ukrainian first), checked before it is kept."""
    message = update.effective_message
    if message is None:
        return ASK_TEXT
    draft = _draft(context)
    if "audience" not in draft:
        return await start(update, context)
    language = draft.get("writing")
    if language not in LANGUAGES:
        language = REQUIRED_LANGUAGE
    raw = markup_of(message)
    verdict = check_text(raw)
    if verdict.problem is not None:
        await message.reply_text(
            problem_reply(context.tr, verdict.problem, verdict.detail, verdict.length),
            parse_mode=ParseMode.HTML,
        )
        return ASK_TEXT
    assert raw is not None
    texts = texts_of(draft)
    texts[language] = raw
    draft.pop("text", None)
    draft.update(texts=texts_of({"texts": texts}), writing=None, photo=None)
    _save(context, draft)
    return await offer_languages(message, context, draft)


async def offer_languages(message: Message, context: HotlineContext, draft: dict[str, Any]) -> int:
    """After a text: a button per language still missing, or on to the photo when none is."""
    texts = texts_of(draft)
    editing = bool(draft.get("editing"))
    if not editing and all(code in texts for code in OPTIONAL_LANGUAGES):
        return await ask_photo(message, context)
    tr = context.tr
    written = ", ".join(language_name(code) for code in texts)
    if editing:
        text = tr.gettext(
            "Texts: {languages}.\n\nChange a text, add another language, or press No more "
            "languages to go on."
        )
    else:
        text = tr.gettext(
            "Texts: {languages}.\n\nAdd the announcement in another language? Whoever has no "
            "text in their language gets the Ukrainian one."
        )
    await message.reply_text(
        text.format(languages=written),
        reply_markup=languages_keyboard(tr, texts, editing=editing),
    )
    return ASK_MORE


async def language_chosen(update: Update, context: HotlineContext) -> int:
    """Add (or, when editing, change) one language's text: ask for it."""
    query = update.callback_query
    pressed = _pressed(update)
    if query is None:
        return ASK_MORE
    if not await require(update, context, Permission.BROADCAST, action="broadcast.language"):
        _forget(context)
        return ConversationHandler.END
    draft = _draft(context)
    language = pressed.args[0] if pressed is not None and pressed.verb == "lang" else ""
    texts = texts_of(draft)
    allowed = LANGUAGES if draft.get("editing") else [c for c in LANGUAGES if c not in texts]
    if "audience" not in draft or language not in allowed:
        await query.answer(context.tr.gettext("This button is no longer valid."))
        return ASK_MORE
    await query.answer()
    draft["writing"] = language
    _save(context, draft)
    await show(
        query,
        context.tr.gettext("Send the announcement's text in {language}.").format(
            language=html.escape(language_name(language))
        ),
        parse_mode=ParseMode.HTML,
    )
    return ASK_TEXT


async def languages_done(update: Update, context: HotlineContext) -> int:
    query = update.callback_query
    if query is None or query.message is None:
        return ASK_MORE
    if not await require(update, context, Permission.BROADCAST, action="broadcast.languages"):
        _forget(context)
        return ConversationHandler.END
    await query.answer()
    draft = _draft(context)
    if not texts_of(draft).get(REQUIRED_LANGUAGE):
        return await start(update, context)
    draft["editing"] = False
    _save(context, draft)
    await drop_buttons(query)
    assert isinstance(query.message, Message)
    return await ask_photo(query.message, context)


async def ask_photo(message: Message, context: HotlineContext) -> int:
    draft = _draft(context)
    draft["photo"] = None
    _save(context, draft)
    await message.reply_text(
        context.tr.gettext(
            "Send a photo to go with the announcement (the text becomes its caption), "
            "or press No photo."
        ),
        reply_markup=InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        context.tr.gettext("No photo"), callback_data=BROADCAST.build("nophoto")
                    )
                ]
            ]
        ),
    )
    return ASK_PHOTO


def first_problem(tr: Translator, texts: dict[str, str], *, with_photo: bool) -> str | None:
    """The refusal for the first text that cannot be sent (named by its language when there are
    several), or None when all can."""
    for code, text in texts.items():
        verdict = check_text(text, with_photo=with_photo)
        if verdict.problem is not None:
            reply = problem_reply(tr, verdict.problem, verdict.detail, verdict.length)
            if len(texts) > 1:
                reply = f"{html.escape(language_name(code))}: {reply}"
            return reply
    return None


async def photo_received(update: Update, context: HotlineContext) -> int:
    message = update.effective_message
    if message is None or not message.photo:
        return ASK_PHOTO
    draft = _draft(context)
    problem = first_problem(context.tr, texts_of(draft), with_photo=True)
    if problem is not None:
        await message.reply_text(problem, parse_mode=ParseMode.HTML)
        return ASK_PHOTO
    draft["photo"] = message.photo[-1].file_id
    _save(context, draft)
    return await preview(update, context)


async def no_photo(update: Update, context: HotlineContext) -> int:
    if update.callback_query is not None and not await require(
        update, context, Permission.BROADCAST, action="broadcast.photo"
    ):
        _forget(context)
        return ConversationHandler.END
    await _answer(update)
    draft = _draft(context)
    draft["photo"] = None
    _save(context, draft)
    return await preview(update, context)


async def remind_photo(update: Update, context: HotlineContext) -> int:
    message = update.effective_message
    if message is not None:
        await message.reply_text(
            context.tr.gettext("Please send a photo, or press No photo above.")
        )
    return ASK_PHOTO


async def preview(update: Update, context: HotlineContext) -> int:
    """Each language's text exactly as its recipients get it (with how many read it, when there
    are several), then the audience size and the choice."""
    message = update.effective_message
    chat = update.effective_chat
    draft = _draft(context)
    texts = texts_of(draft)
    if message is None or chat is None or REQUIRED_LANGUAGE not in texts:
        return ConversationHandler.END
    tr = context.tr
    readers = await _readers(context, draft, texts)
    for code, text in texts.items():
        if len(texts) > 1:
            await context.bot.send_message(
                chat.id,
                tr.ngettext(
                    "{language}: this text goes to {count} person.",
                    "{language}: this text goes to {count} people.",
                    readers[code],
                ).format(
                    language=html.escape(language_name(code)),
                    count=tr.format_number(readers[code]),
                ),
                parse_mode=ParseMode.HTML,
            )
        rendered = render(TEMPLATE, tr, {"text": text, "photo": draft.get("photo")})
        await send_rendered(context.bot, chat.id, rendered)
    size = sum(readers.values())
    await context.bot.send_message(
        chat.id,
        tr.ngettext(
            "Above is the announcement as it will arrive. It goes to {audience}: {count} person.",
            "Above is the announcement as it will arrive. It goes to {audience}: {count} people.",
            size,
        ).format(
            audience=audience_label(tr, draft["audience"], draft.get("arg")),
            count=tr.format_number(size),
        ),
        parse_mode=ParseMode.HTML,
        reply_markup=confirm_keyboard(tr),
    )
    return CONFIRM


async def _readers(
    context: HotlineContext, draft: dict[str, Any], texts: dict[str, str]
) -> dict[str, int]:
    services = context.services
    async with services.sessions() as session:
        return await broadcasts.audience_by_language(
            session,
            draft["audience"],
            draft.get("arg"),
            texts,
            admin_ids=services.admin_keys,
            default_language=services.settings.default_language,
        )


async def send(update: Update, context: HotlineContext) -> int:
    """Queue it: the progress message first, then the broadcast, then its rows a chunk per
    transaction (`storage.broadcasts.queue_all`)."""
    query = update.callback_query
    if query is None or query.message is None:
        return CONFIRM
    if not await require(update, context, Permission.BROADCAST, action="broadcast.send"):
        _forget(context)
        return ConversationHandler.END
    await query.answer()
    draft = _draft(context)
    texts = texts_of(draft)
    chat_id = query.message.chat.id
    tr = context.tr
    photo = draft.get("photo")
    if (
        "audience" not in draft
        or REQUIRED_LANGUAGE not in texts
        or first_problem(tr, texts, with_photo=bool(photo)) is not None
    ):
        await show(query, tr.gettext("This draft is no longer valid. Start again with /broadcast."))
        _forget(context)
        return ConversationHandler.END
    await drop_buttons(query)
    progress = await context.bot.send_message(chat_id, tr.gettext("Queuing the announcement…"))
    services = context.services
    async with services.sessions() as session, session.begin():
        broadcast_id = await broadcasts.create_broadcast(
            session,
            services.cipher,
            author_id=context.profile.id,
            audience=draft["audience"],
            audience_arg=draft.get("arg"),
            text=texts[REQUIRED_LANGUAGE],
            translations={code: text for code, text in texts.items() if code != REQUIRED_LANGUAGE},
            photo_file_id=photo,
            progress_chat_id=services.keys.chat_key(chat_id),
            progress_message_id=progress.message_id,
            now=services.clock(),
        )
    # The recipients, a chunk per transaction. The broadcast is committed: if a chunk fails
    # (a locked or full database), the progress job carries on from the last chunk queued.
    try:
        await broadcast_progress.reporter_of(context.application).queue(broadcast_id)
    except SQLAlchemyError as error:
        log.warning(
            "broadcast %d: queueing paused (%s), the progress job continues it",
            broadcast_id,
            type(error).__name__,
        )
    async with services.sessions() as session:
        view = await broadcasts.view(session, broadcast_id)
    author = services.cipher.pseudonym(view.author_id)
    log.info(
        "broadcast %d queued by user %s: %d rows, %d languages",
        view.id,
        author,
        view.counts.total,
        len(view.languages),
    )
    _forget(context)
    await progress.edit_text(
        tr.gettext("Broadcast #{id} queued for {count} people. Progress will appear here.").format(
            id=view.id, count=tr.format_number(view.counts.total)
        )
    )
    return ConversationHandler.END


async def edit(update: Update, context: HotlineContext) -> int:
    """Back to the texts: change any of them, add a language, then on to the photo again."""
    query = update.callback_query
    if query is None or query.message is None:
        return CONFIRM
    if not await require(update, context, Permission.BROADCAST, action="broadcast.edit"):
        _forget(context)
        return ConversationHandler.END
    await query.answer()
    draft = _draft(context)
    if REQUIRED_LANGUAGE not in texts_of(draft):
        return await start(update, context)
    draft["editing"] = True
    _save(context, draft)
    await drop_buttons(query)
    assert isinstance(query.message, Message)
    return await offer_languages(query.message, context, draft)


async def cancel(update: Update, context: HotlineContext) -> int:
    message = await _answer(update)
    _forget(context)
    if message is not None:
        text = context.tr.gettext("The announcement was cancelled; nothing was sent.")
        if update.callback_query is not None:
            await message.edit_text(text)
        else:
            await message.reply_text(text)
    return ConversationHandler.END


async def remind_buttons(update: Update, context: HotlineContext) -> int | None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(
            context.tr.gettext("Please use the buttons above, or /cancel to stop.")
        )
    return None


async def stray_button(update: Update, context: HotlineContext) -> None:
    """A `bc:` press that no conversation step took (an old message, or forged data): refused
    and audited for anyone but staff; staff are told it is no longer valid."""
    query = update.callback_query
    if query is None:
        return
    if not await require(update, context, Permission.BROADCAST, action="broadcast.button"):
        return
    await query.answer(context.tr.gettext("This button is no longer valid."))


# -- /broadcasts ----------------------------------------------------------------------------------


async def list_recent(update: Update, context: HotlineContext) -> None:
    if not await require(update, context, Permission.BROADCAST, action="broadcast.list"):
        return
    message = update.effective_message
    if message is None:
        return
    tr = context.tr
    async with context.services.sessions() as session:
        items = await broadcasts.recent(session, RECENT_SHOWN)
    if not items:
        await message.reply_text(tr.gettext("No broadcasts yet. Start one with /broadcast."))
        return
    await message.reply_text(
        "\n\n".join(describe(tr, item) for item in items),
        parse_mode=ParseMode.HTML,
        reply_markup=manage_keyboard(tr, items),
    )


MANAGE_ACTIONS = {
    "pause": broadcasts.pause,
    "resume": broadcasts.resume,
    "cancel": broadcasts.cancel,
}


async def manage(update: Update, context: HotlineContext) -> None:
    """A Pause / Resume / Cancel button: re-checked on the server, audited by storage."""
    query = update.callback_query
    if query is None:
        return
    pressed = BROADCASTS.parse(query.data)
    verb = pressed.verb if pressed is not None else "button"
    if not await require(update, context, Permission.BROADCAST, action=f"broadcast.{verb}"):
        return
    action = MANAGE_ACTIONS.get(verb)
    number = pressed.int_arg(0) if pressed is not None else None
    tr = context.tr
    if action is None or number is None:
        await query.answer(tr.gettext("Unknown action."), show_alert=True)
        return
    services = context.services
    try:
        async with services.sessions() as session, session.begin():
            item = await action(session, number, context.profile.id, now=services.clock())
    except BroadcastNotFound:
        await query.answer(tr.gettext("There is no such broadcast."), show_alert=True)
        return
    except BadBroadcastState:
        await query.answer(
            tr.gettext("This broadcast can no longer be changed that way."), show_alert=True
        )
        return
    await query.answer(tr.gettext(STATUS_WORDS.get(item.status, item.status)))
    async with services.sessions() as session:
        items = await broadcasts.recent(session, RECENT_SHOWN)
    await show(
        query,
        "\n\n".join(describe(tr, one) for one in items),
        parse_mode=ParseMode.HTML,
        reply_markup=manage_keyboard(tr, items),
    )


def conversation() -> ConversationHandler[HotlineContext]:
    text = filters.TEXT & ~filters.COMMAND
    cancel_pattern = verb_pattern(BROADCAST, "cancel")
    return ConversationHandler(
        entry_points=[CommandHandler("broadcast", start)],
        states={
            ASK_AUDIENCE: [
                CallbackQueryHandler(audience_chosen, pattern=verb_pattern(BROADCAST, "aud", "of")),
                MessageHandler(text, remind_buttons),
            ],
            ASK_TEXT: [MessageHandler(text, text_received)],
            ASK_MORE: [
                CallbackQueryHandler(language_chosen, pattern=verb_pattern(BROADCAST, "lang")),
                CallbackQueryHandler(languages_done, pattern=verb_pattern(BROADCAST, "done")),
                MessageHandler(text, remind_buttons),
            ],
            ASK_PHOTO: [
                MessageHandler(filters.PHOTO, photo_received),
                CallbackQueryHandler(no_photo, pattern=verb_pattern(BROADCAST, "nophoto")),
                MessageHandler(text, remind_photo),
            ],
            CONFIRM: [
                CallbackQueryHandler(send, pattern=verb_pattern(BROADCAST, "send")),
                CallbackQueryHandler(edit, pattern=verb_pattern(BROADCAST, "edit")),
                CallbackQueryHandler(cancel, pattern=cancel_pattern),
                MessageHandler(text, remind_buttons),
            ],
        },
        fallbacks=[
            CommandHandler("cancel", cancel),
            CallbackQueryHandler(cancel, pattern=cancel_pattern),
        ],
        name="broadcast",
        persistent=True,
        allow_reentry=True,
        per_message=False,
    )


def register(application: HotlineApplication) -> None:
    application.add_handler(conversation())
    application.add_handler(CommandHandler("broadcasts", list_recent))
    application.add_handler(CallbackQueryHandler(manage, pattern=BROADCASTS.pattern))
    application.add_handler(CallbackQueryHandler(stray_button, pattern=BROADCAST.pattern))
