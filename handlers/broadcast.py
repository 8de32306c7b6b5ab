"""/broadcast: staff write an announcement and send it to an audience; /broadcasts manages them.

The conversation: ASK_AUDIENCE (buttons) -> ASK_TEXT (Telegram HTML, checked before anything is
queued) -> ASK_PHOTO (a photo, or "No photo") -> CONFIRM (the preview, exactly as recipients
will see it, the audience size, and Send / Edit / Cancel). The draft lives in
`user_data["broadcast"]` (persisted, JSON). Sending sends the staff member's progress message
first, then queues the broadcast with that message's id in one transaction, so the progress job
(`jobs.broadcast_progress`) can edit it, even after a restart.

Every step that changes something re-checks the role on the server (`handlers.guard`); callback
data (`bc:...`, `bcs:pause:12`) is re-validated whatever it claims.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
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
from bot.texts.messages import render
from handlers.guard import require
from handlers.report_keyboards import REGION_WORDS
from handlers.telegram_html import CAPTION_LIMIT, TEXT_LIMIT, Problem, check_text
from jobs.send import send_rendered
from storage import broadcasts
from storage.access import Permission
from storage.broadcasts import (
    LANGUAGES,
    TEMPLATE,
    Audience,
    BadAudience,
    BadBroadcastState,
    BroadcastNotFound,
    BroadcastView,
)
from storage.enums import BroadcastStatus

log = logging.getLogger(__name__)

ASK_AUDIENCE, ASK_TEXT, ASK_PHOTO, CONFIRM = range(4)
DRAFT_KEY = "broadcast"
RECENT_SHOWN = 5

AUDIENCE_WORDS: dict[str, str] = {
    Audience.EVERYONE: N_("Everyone"),
    Audience.FAMILIES: N_("Families"),
    Audience.MONITORS: N_("Monitors"),
    Audience.STAFF: N_("Staff"),
    Audience.LANGUAGE: N_("Users of one language"),
    Audience.REGION: N_("Followers of one region"),
}
LANGUAGE_WORDS: dict[str, str] = {
    "uk": "Українська",
    "crh": "Qırımtatarca",
    "en": "English",
    "ru": "Русский",
}
STATUS_WORDS: dict[str, str] = {
    BroadcastStatus.DRAFT: N_("draft"),
    BroadcastStatus.SENDING: N_("sending"),
    BroadcastStatus.PAUSED: N_("paused"),
    BroadcastStatus.CANCELLED: N_("cancelled"),
    BroadcastStatus.DONE: N_("finished"),
}
SEND, EDIT, CANCEL, NO_PHOTO = "bc:send", "bc:edit", "bc:cancel", "bc:nophoto"


# -- words ----------------------------------------------------------------------------------------


def audience_label(tr: Translator, audience: str, argument: str | None) -> str:
    """'Followers of one region: Crimea', escaped for HTML."""
    label = tr.gettext(AUDIENCE_WORDS.get(audience, audience))
    if argument is None:
        return html.escape(label)
    if audience == Audience.REGION:
        detail = tr.gettext(REGION_WORDS.get(argument, argument))
    else:
        detail = LANGUAGE_WORDS.get(argument, argument)
    return html.escape(f"{label}: {detail}")


def problem_reply(tr: Translator, problem: Problem, detail: str, length: int) -> str:
    """What staff read when their text cannot be sent (nothing was queued)."""
    if problem == Problem.EMPTY:
        return tr.gettext("The announcement is empty. Please send the text to broadcast.")
    if problem == Problem.BAD_HTML:
        return tr.gettext(
            "Telegram would refuse this text: its HTML is not valid ({detail}). Only Telegram's "
            "tags are allowed (b, i, u, s, a, code, pre, blockquote, tg-spoiler), every tag must "
            "be closed, and a plain &lt; or &amp; must be written &amp;lt; or &amp;amp;. "
            "Nothing was sent; please send the corrected text."
        ).format(detail=html.escape(detail))
    if problem == Problem.CAPTION_TOO_LONG:
        return tr.gettext(
            "With a photo, the text can be at most {limit} characters; this one has {length}. "
            "Nothing was sent. Send a shorter text with /broadcast, or press No photo."
        ).format(limit=tr.format_number(CAPTION_LIMIT), length=tr.format_number(length))
    return tr.gettext(
        "The text can be at most {limit} characters; this one has {length}. Nothing was sent; "
        "please send a shorter text."
    ).format(limit=tr.format_number(TEXT_LIMIT), length=tr.format_number(length))


# -- keyboards ------------------------------------------------------------------------------------


def audience_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(tr.gettext(word), callback_data=f"bc:aud:{audience}")]
            for audience, word in AUDIENCE_WORDS.items()
        ]
    )


def argument_keyboard(tr: Translator, audience: Audience) -> InlineKeyboardMarkup:
    if audience == Audience.LANGUAGE:
        choices = [(code, LANGUAGE_WORDS[code]) for code in LANGUAGES]
    else:
        choices = [(code, tr.gettext(word)) for code, word in REGION_WORDS.items()]
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=f"bc:aud:{audience}:{code}")]
            for code, label in choices
        ]
    )


def confirm_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(tr.gettext("Send"), callback_data=SEND),
                InlineKeyboardButton(tr.gettext("Edit"), callback_data=EDIT),
                InlineKeyboardButton(tr.gettext("Cancel"), callback_data=CANCEL),
            ]
        ]
    )


def manage_keyboard(tr: Translator, items: list[BroadcastView]) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    for item in items:
        buttons: list[InlineKeyboardButton] = []
        if item.status == BroadcastStatus.SENDING:
            buttons.append(_manage_button(tr, N_("Pause #{id}"), "pause", item.id))
        if item.status == BroadcastStatus.PAUSED:
            buttons.append(_manage_button(tr, N_("Resume #{id}"), "resume", item.id))
        if item.status in (BroadcastStatus.SENDING, BroadcastStatus.PAUSED):
            buttons.append(_manage_button(tr, N_("Cancel #{id}"), "cancel", item.id))
        if buttons:
            rows.append(buttons)
    return InlineKeyboardMarkup(rows) if rows else None


def _manage_button(tr: Translator, label: str, verb: str, broadcast_id: int) -> Any:
    return InlineKeyboardButton(
        tr.gettext(label).format(id=broadcast_id), callback_data=f"bcs:{verb}:{broadcast_id}"
    )


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
    if query is None or query.data is None:
        return ASK_AUDIENCE
    if not await require(update, context, Permission.BROADCAST, action="broadcast.audience"):
        return ConversationHandler.END
    parts = query.data.split(":")
    await query.answer()
    try:
        audience = Audience(parts[2])
    except (IndexError, ValueError):
        return ASK_AUDIENCE
    argument = parts[3] if len(parts) > 3 else None
    tr = context.tr
    if audience in broadcasts.NEEDS_ARGUMENT and argument is None:
        await query.edit_message_text(
            tr.gettext("Which one?"), reply_markup=argument_keyboard(tr, audience)
        )
        return ASK_AUDIENCE
    try:
        broadcasts.check_audience(audience, argument)
    except BadAudience:
        return ASK_AUDIENCE
    _save(context, {"audience": audience.value, "arg": argument})
    await query.edit_message_text(
        tr.gettext(
            "Audience: {audience}.\n\nNow send the announcement's text. Telegram formatting is "
            "allowed: <b>bold</b>, <i>italic</i>, links with &lt;a href=...&gt;. It is sent as "
            "you write it, in your language."
        ).format(audience=audience_label(tr, audience, argument)),
        parse_mode=ParseMode.HTML,
    )
    return ASK_TEXT


async def text_received(update: Update, context: HotlineContext) -> int:
    message = update.effective_message
    if message is None:
        return ASK_TEXT
    draft = _draft(context)
    if "audience" not in draft:
        return await start(update, context)
    raw = markup_of(message)
    verdict = check_text(raw)
    if verdict.problem is not None:
        await message.reply_text(
            problem_reply(context.tr, verdict.problem, verdict.detail, verdict.length),
            parse_mode=ParseMode.HTML,
        )
        return ASK_TEXT
    draft.update(text=raw, photo=None)
    _save(context, draft)
    await message.reply_text(
        context.tr.gettext(
            "Send a photo to go with the announcement (the text becomes its caption), "
            "or press No photo."
        ),
        reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton(context.tr.gettext("No photo"), callback_data=NO_PHOTO)]]
        ),
    )
    return ASK_PHOTO


async def photo_received(update: Update, context: HotlineContext) -> int:
    message = update.effective_message
    if message is None or not message.photo:
        return ASK_PHOTO
    draft = _draft(context)
    verdict = check_text(draft.get("text"), with_photo=True)
    if verdict.problem is not None:
        await message.reply_text(
            problem_reply(context.tr, verdict.problem, verdict.detail, verdict.length),
            parse_mode=ParseMode.HTML,
        )
        return ASK_PHOTO
    draft["photo"] = message.photo[-1].file_id
    _save(context, draft)
    return await preview(update, context)


async def no_photo(update: Update, context: HotlineContext) -> int:
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
    """The announcement exactly as recipients get it, then its audience size and the choice."""
    message = update.effective_message
    chat = update.effective_chat
    draft = _draft(context)
    if message is None or chat is None or "text" not in draft:
        return ConversationHandler.END
    tr = context.tr
    rendered = render(TEMPLATE, tr, {"text": draft["text"], "photo": draft.get("photo")})
    await send_rendered(context.bot, chat.id, rendered)
    size = await _audience_size(context, draft)
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


async def _audience_size(context: HotlineContext, draft: dict[str, Any]) -> int:
    services = context.services
    async with services.sessions() as session:
        return await broadcasts.audience_size(
            session,
            draft["audience"],
            draft.get("arg"),
            admin_ids=services.admin_keys,
            default_language=services.settings.default_language,
        )


async def send(update: Update, context: HotlineContext) -> int:
    """Queue it: the progress message first, then the broadcast and its rows in one transaction."""
    query = update.callback_query
    if query is None or query.message is None:
        return CONFIRM
    if not await require(update, context, Permission.BROADCAST, action="broadcast.send"):
        _forget(context)
        return ConversationHandler.END
    await query.answer()
    draft = _draft(context)
    chat_id = query.message.chat.id
    tr = context.tr
    verdict = check_text(draft.get("text"), with_photo=bool(draft.get("photo")))
    if "audience" not in draft or verdict.problem is not None:
        await query.edit_message_text(
            tr.gettext("This draft is no longer valid. Start again with /broadcast.")
        )
        _forget(context)
        return ConversationHandler.END
    await query.edit_message_reply_markup(None)
    progress = await context.bot.send_message(chat_id, tr.gettext("Queuing the announcement…"))
    services = context.services
    async with services.sessions() as session, session.begin():
        view = await broadcasts.queue_broadcast(
            session,
            services.cipher,
            author_id=context.profile.id,
            audience=draft["audience"],
            audience_arg=draft.get("arg"),
            text=draft["text"],
            photo_file_id=draft.get("photo"),
            progress_chat_id=services.keys.chat_key(chat_id),
            progress_message_id=progress.message_id,
            admin_ids=services.admin_keys,
            default_language=services.settings.default_language,
            now=services.clock(),
        )
    author = services.cipher.pseudonym(view.author_id)
    log.info("broadcast %d queued by user %s: %d rows", view.id, author, view.counts.total)
    _forget(context)
    await progress.edit_text(
        tr.gettext("Broadcast #{id} queued for {count} people. Progress will appear here.").format(
            id=view.id, count=tr.format_number(view.counts.total)
        )
    )
    return ConversationHandler.END


async def edit(update: Update, context: HotlineContext) -> int:
    query = update.callback_query
    if query is not None:
        await query.answer()
        await query.edit_message_text(context.tr.gettext("Send the new text of the announcement."))
    return ASK_TEXT


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


# -- /broadcasts ----------------------------------------------------------------------------------


def describe(tr: Translator, item: BroadcastView) -> str:
    numbers = item.counts
    return tr.gettext(
        "#{id} · {audience} · {status}\n"
        "delivered {delivered}, blocked {blocked}, failed {failed}, waiting {pending} of {total}"
    ).format(
        id=item.id,
        audience=audience_label(tr, item.audience, item.audience_arg),
        status=html.escape(tr.gettext(STATUS_WORDS.get(item.status, item.status))),
        delivered=tr.format_number(numbers.delivered),
        blocked=tr.format_number(numbers.blocked),
        failed=tr.format_number(numbers.failed),
        pending=tr.format_number(numbers.pending),
        total=tr.format_number(numbers.total),
    )


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
    if query is None or query.data is None:
        return
    verb, _, number = query.data.removeprefix("bcs:").partition(":")
    if not await require(update, context, Permission.BROADCAST, action=f"broadcast.{verb}"[:48]):
        return
    action = MANAGE_ACTIONS.get(verb)
    tr = context.tr
    if action is None or not number.isdigit():
        await query.answer(tr.gettext("Unknown action."), show_alert=True)
        return
    services = context.services
    try:
        async with services.sessions() as session, session.begin():
            item = await action(session, int(number), context.profile.id, now=services.clock())
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
    await query.edit_message_text(
        "\n\n".join(describe(tr, one) for one in items),
        parse_mode=ParseMode.HTML,
        reply_markup=manage_keyboard(tr, items),
    )


def conversation() -> ConversationHandler[HotlineContext]:
    text = filters.TEXT & ~filters.COMMAND
    return ConversationHandler(
        entry_points=[CommandHandler("broadcast", start)],
        states={
            ASK_AUDIENCE: [
                CallbackQueryHandler(audience_chosen, pattern=r"^bc:aud:"),
                MessageHandler(text, remind_buttons),
            ],
            ASK_TEXT: [MessageHandler(text, text_received)],
            ASK_PHOTO: [
                MessageHandler(filters.PHOTO, photo_received),
                CallbackQueryHandler(no_photo, pattern=f"^{NO_PHOTO}$"),
                MessageHandler(text, remind_photo),
            ],
            CONFIRM: [
                CallbackQueryHandler(send, pattern=f"^{SEND}$"),
                CallbackQueryHandler(edit, pattern=f"^{EDIT}$"),
                CallbackQueryHandler(cancel, pattern=f"^{CANCEL}$"),
                MessageHandler(text, remind_buttons),
            ],
        },
        fallbacks=[
            CommandHandler("cancel", cancel),
            CallbackQueryHandler(cancel, pattern=f"^{CANCEL}$"),
        ],
        name="broadcast",
        persistent=True,
        allow_reentry=True,
        per_message=False,
    )


def register(application: HotlineApplication) -> None:
    application.add_handler(conversation())
    application.add_handler(CommandHandler("broadcasts", list_recent))
    application.add_handler(CallbackQueryHandler(manage, pattern=r"^bcs:"))
