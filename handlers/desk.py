"""The staff desk: family conversations (threads), taking them, and answering.

A family message arrives as a notice (no name, no text) with Open and Reply buttons, in the staff
group or each staff member's chat. Staff answer by pressing Reply and writing (text, a photo or a
document, or a prepared answer), or the usual support-bot way: a Telegram reply to the notice.
Every press and every answer is checked against the role on the server and audited
(`storage.threads`); the answer goes to the family through the outbox.
"""

from __future__ import annotations

import html
import json
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import DESK, Pressed
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_, Translator
from bot.texts.messages.base import ATTACHMENT_KINDS, Attachment, RenderedMessage
from bot.texts.messages.threads import kind_word
from bot.texts.vocabulary import LANGUAGE_NAMES
from handlers.family_messages import incoming_of
from handlers.guard import require
from jobs.send import send_rendered
from storage import prepared_answers, threads
from storage.access import Permission, is_staff
from storage.codes import normalise_case_code
from storage.threads import (
    THREAD_FILTERS,
    ThreadFilter,
    ThreadNotFound,
    ThreadRefused,
    ThreadSummary,
    ThreadView,
)

log = logging.getLogger(__name__)

INPUT_KEY = "desk_input"
DESK_INPUT_GROUP = -9  # after the case notes' input (-10), before conversations (0)
TEXT_CHUNK = 3500
N_ANSWER_IN_GROUP = N_(
    "Answer by replying to the notice, or open the conversation in a private chat."
)


def _filter_word(tr: Translator, kind: str, count: int) -> str:
    words = {
        "unread": tr.gettext("Unread ({count})"),
        "unassigned": tr.gettext("Unassigned ({count})"),
        "mine": tr.gettext("Mine ({count})"),
        "all": tr.gettext("All ({count})"),
    }
    return words[kind].format(count=count)


def taken_words(tr: Translator, summary: ThreadSummary, me: int) -> str:
    if summary.assigned_to is None:
        return tr.gettext("not taken")
    if summary.assigned_to == me:
        return tr.gettext("taken by you")
    return tr.gettext("taken by staff member {id}").format(id=summary.assigned_to)


def thread_title(tr: Translator, summary: ThreadSummary) -> str:
    if summary.code:
        return tr.gettext("Case {code}").format(code=summary.code)
    return tr.gettext("No case, conversation {id}").format(id=summary.id)


def _button(label: str, verb: str, *args: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=DESK.build(verb, *args))


async def _say(update: Update, context: HotlineContext, msgid: str, **params: object) -> None:
    """A plain sentence from the catalog, escaped."""
    await _reply(update, html.escape(context.tr.gettext(msgid).format(**params)))


async def _reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    chat = update.effective_chat
    if chat is not None:
        await chat.send_message(text, reply_markup=markup, disable_web_page_preview=True)


def _private(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type == ChatType.PRIVATE


# -- lists: /inbox filters, /mine, a case's threads --------------------------------------------


def filter_buttons(tr: Translator, counts: dict[ThreadFilter, int]) -> list[InlineKeyboardButton]:
    return [
        _button(_filter_word(tr, kind, counts[kind]), "list", kind, 0) for kind in THREAD_FILTERS
    ]


async def thread_counts(context: HotlineContext) -> dict[ThreadFilter, int]:
    async with context.services.sessions() as session:
        return await threads.thread_counts(session, context.profile.id)


async def show_list(
    update: Update, context: HotlineContext, kind: ThreadFilter, page_number: int
) -> None:
    tr = context.tr
    me = context.profile.id
    async with context.services.sessions() as session:
        page = await threads.list_threads(session, kind, staff_id=me, page=page_number)
        counts = await threads.thread_counts(session, me)
    head = tr.gettext("Family conversations: {filter}").format(
        filter=_filter_word(tr, kind, page.total)
    )
    rows = [
        [
            InlineKeyboardButton(
                " · ".join(
                    (
                        thread_title(tr, item),
                        tr.ngettext("{count} unread", "{count} unread", item.unread).format(
                            count=item.unread
                        ),
                        taken_words(tr, item, me),
                    )
                ),
                callback_data=DESK.build("open", item.id),
            )
        ]
        for item in page.items
    ]
    paging = []
    if page.page > 0:
        paging.append(_button("◀", "list", kind, page.page - 1))
    if page.page + 1 < page.pages:
        paging.append(_button("▶", "list", kind, page.page + 1))
    if paging:
        rows.append(paging)
    rows.append(filter_buttons(tr, counts))
    if not page.items:
        head += "\n" + tr.gettext("Nothing here.")
    await _reply(update, html.escape(head), InlineKeyboardMarkup(rows))


async def mine_command(update: Update, context: HotlineContext) -> None:
    """/mine: the conversations you took."""
    if not await require(update, context, Permission.ANSWER_FAMILIES, action="thread.list"):
        return
    await show_list(update, context, "mine", 0)


async def case_threads(update: Update, context: HotlineContext, code: str) -> None:
    """The family conversations of one case (from the case card)."""
    async with context.services.sessions() as session:
        found = await threads.threads_of_case(session, code)
    if len(found) == 1:
        await show_thread(update, context, found[0].id)
        return
    tr = context.tr
    if not found:
        await _say(update, context, N_("No family has written about this case yet."))
        return
    rows = [
        [
            InlineKeyboardButton(
                tr.gettext("Conversation {id}").format(id=item.id)
                + " · "
                + tr.ngettext("{count} unread", "{count} unread", item.unread).format(
                    count=item.unread
                ),
                callback_data=DESK.build("open", item.id),
            )
        ]
        for item in found
    ]
    text = tr.gettext("Family conversations of case {code}:").format(code=code)
    await _reply(update, html.escape(text), InlineKeyboardMarkup(rows))


# -- one thread ------------------------------------------------------------------------------


def thread_markup(tr: Translator, summary: ThreadSummary, me: int) -> InlineKeyboardMarkup:
    rows = [[_button(tr.gettext("Reply"), "reply", summary.id)]]
    if summary.assigned_to is None:
        rows[0].append(_button(tr.gettext("Take"), "take", summary.id))
    elif summary.assigned_to == me:
        rows[0].append(
            InlineKeyboardButton(
                tr.gettext("Release"), callback_data=DESK.build("release", summary.id)
            )
        )
    if summary.code is None:
        rows.append(
            [
                InlineKeyboardButton(
                    tr.gettext("Join to a case"), callback_data=DESK.build("join", summary.id)
                )
            ]
        )
    return InlineKeyboardMarkup(rows)


def _who(tr: Translator, message: threads.MessageView) -> str:
    when = tr.format_datetime(message.created_at)
    if message.from_staff:
        return tr.gettext("Hotline (staff member {id}), {when}").format(
            id=message.author_id, when=when
        )
    return tr.gettext("Family, {when}").format(when=when)


def _body(tr: Translator, message: threads.MessageView) -> str:
    """The message's words as HTML (escaped); a location or contact as a readable line."""
    if message.kind == "location" and message.text:
        try:
            where: dict[str, Any] = json.loads(message.text)
        except ValueError:
            where = {}
        place = f"{where.get('latitude')}, {where.get('longitude')}"
        if where.get("title"):
            place += f" ({where['title']})"
        return html.escape(tr.gettext("Location: {place}").format(place=place))
    return html.escape(message.text or "")


def thread_messages(tr: Translator, view: ThreadView) -> list[RenderedMessage]:
    """The thread as messages to staff: texts joined into few messages, each attachment re-sent
    by its file id with who and when as the caption; all protected from forwarding."""
    out: list[RenderedMessage] = []
    chunk: list[str] = []

    def flush() -> None:
        if chunk:
            out.append(RenderedMessage("\n\n".join(chunk), protect_content=True))
            chunk.clear()

    for message in view.messages:
        head = f"<b>{html.escape(_who(tr, message))}</b>"
        body = _body(tr, message)
        if message.kind in ATTACHMENT_KINDS and message.file_id:
            flush()
            caption = head + (f"\n{body}" if body else "")
            attachment = Attachment(message.kind, message.file_id)
            out.append(RenderedMessage(caption, protect_content=True, attachment=attachment))
            continue
        if message.kind not in ("text", "location"):
            body = f"[{html.escape(kind_word(tr, message.kind))}] {body}".strip()
        entry = f"{head}\n{body}"
        if sum(len(part) for part in chunk) + len(entry) > TEXT_CHUNK:
            flush()
        chunk.append(entry[: TEXT_CHUNK + 200])
    flush()
    return out


async def show_thread(update: Update, context: HotlineContext, thread_id: int) -> None:
    """Open a conversation: who took it, its latest messages, and what can be done."""
    tr, services, me = context.tr, context.services, context.profile.id
    if not _private(update):
        await _reply(
            update,
            html.escape(tr.gettext("Conversations open only in a private chat with the bot.")),
        )
        return
    try:
        async with services.sessions() as session, session.begin():
            view = await threads.open_thread(
                session, services.cipher, thread_id, staff_id=me, now=services.clock()
            )
    except ThreadNotFound:
        await _say(update, context, N_("This conversation no longer exists."))
        return
    summary = view.summary
    language = LANGUAGE_NAMES.get(summary.language or services.settings.default_language, "?")
    head = [
        f"<b>{html.escape(thread_title(tr, summary))}</b>",
        html.escape(
            tr.gettext("{count} messages · {taken} · writes in {language}").format(
                count=view.total, taken=taken_words(tr, summary, me), language=language
            )
        ),
    ]
    if view.total > len(view.messages):
        head.append(
            html.escape(
                tr.gettext("The latest {count} are shown.").format(count=len(view.messages))
            )
        )
    chat = update.effective_chat
    assert chat is not None
    for rendered in thread_messages(tr, view):
        await send_rendered(context.bot, chat.id, rendered)
    await _reply(update, "\n".join(head), thread_markup(tr, summary, me))


async def take_thread(
    update: Update, context: HotlineContext, thread_id: int, *, take: bool
) -> None:
    tr, services, me = context.tr, context.services, context.profile.id
    try:
        async with services.sessions() as session, session.begin():
            summary = await threads.take(session, thread_id, me, now=services.clock(), take=take)
    except ThreadNotFound:
        await _say(update, context, N_("This conversation no longer exists."))
        return
    except ThreadRefused as refused:
        text = tr.gettext("Already taken by staff member {id}.").format(id=refused.taken_by)
        await _reply(update, html.escape(text))
        return
    text = (
        tr.gettext("You took this conversation: new messages in it come to you.")
        if take
        else tr.gettext("You released this conversation: new messages in it go to the desk.")
    )
    await _reply(update, html.escape(text), thread_markup(tr, summary, me))


# -- answering -------------------------------------------------------------------------------


async def ask_for_reply(update: Update, context: HotlineContext, thread_id: int) -> None:
    """Reply pressed: the staff member's next message (or a prepared answer) is the answer."""
    tr = context.tr
    if not _private(update):
        text = tr.gettext(
            "Answer by replying to the notice, or open the conversation in a private chat."
        )
        await _reply(update, html.escape(text))
        return
    async with context.services.sessions() as session:
        try:
            summary = await threads.summary_of(session, thread_id)
        except ThreadNotFound:
            await _say(update, context, N_("This conversation no longer exists."))
            return
        answers = await prepared_answers.all_answers(session)
    if context.user_data is not None:
        context.user_data[INPUT_KEY] = {"kind": "reply", "thread": thread_id}
    text = tr.gettext(
        "Write your answer to the family of {title}: text, a photo or a document. It is sent "
        "as it is, protected from forwarding. (/cancel to stop)"
    ).format(title=thread_title(tr, summary))
    rows = [[_button("✎ " + key, "pick", thread_id, key)] for key in answers]
    if rows:
        text += "\n" + tr.gettext("Or pick a prepared answer:")
    await _reply(update, html.escape(text), InlineKeyboardMarkup(rows) if rows else None)


async def pick_prepared(update: Update, context: HotlineContext, thread_id: int, key: str) -> None:
    """Show the prepared answer in the family's language; Send, or write an edited version."""
    tr, services = context.tr, context.services
    async with services.sessions() as session:
        try:
            summary = await threads.summary_of(session, thread_id)
        except ThreadNotFound:
            await _say(update, context, N_("This conversation no longer exists."))
            return
        text = await prepared_answers.answer_in(
            session, key, summary.language, services.settings.default_language
        )
    if text is None:
        await _say(update, context, N_("This prepared answer no longer exists."))
        return
    if context.user_data is not None:
        context.user_data[INPUT_KEY] = {"kind": "reply", "thread": thread_id}
    intro = tr.gettext(
        "The family will read this. Send it as it is, or write an edited version instead:"
    )
    markup = InlineKeyboardMarkup([[_button(tr.gettext("Send"), "send", thread_id, key)]])
    await _reply(update, f"{html.escape(intro)}\n\n{html.escape(text)}", markup)


async def send_prepared(update: Update, context: HotlineContext, thread_id: int, key: str) -> None:
    services = context.services
    async with services.sessions() as session:
        try:
            summary = await threads.summary_of(session, thread_id)
        except ThreadNotFound:
            summary = None
        text = (
            await prepared_answers.answer_in(
                session, key, summary.language, services.settings.default_language
            )
            if summary is not None
            else None
        )
    if text is None:
        await _say(update, context, N_("This button is no longer valid."))
        return
    await answer_family(update, context, thread_id, threads.Incoming("text", text))


async def answer_family(
    update: Update,
    context: HotlineContext,
    thread_id: int,
    outgoing: threads.Incoming,
    *,
    react: bool = False,
) -> None:
    """Store the answer and queue it to the family; say so, or say why not. With `react`, "sent"
    is a 👍 on the staff member's own message (a Telegram reply to a notice): a busy staff group
    is not filled with confirmations, which count against its 20 messages a minute."""
    tr, services = context.tr, context.services
    if context.user_data is not None:
        context.user_data.pop(INPUT_KEY, None)
    if outgoing.kind not in ("text", *ATTACHMENT_KINDS) or (
        outgoing.kind == "text" and not (outgoing.text or "").strip()
    ):
        await _reply(
            update, html.escape(tr.gettext("Please answer with text, a photo or a document."))
        )
        return
    try:
        async with services.sessions() as session, session.begin():
            replied = await threads.staff_reply(
                session,
                services.cipher,
                thread_id,
                context.profile.id,
                outgoing,
                now=services.clock(),
            )
    except ThreadNotFound:
        await _say(update, context, N_("This conversation no longer exists."))
        return
    except ThreadRefused:
        text = tr.gettext("This family has left the hotline (they asked to be forgotten).")
        await _reply(update, html.escape(text))
        return
    staff_member = context.services.cipher.pseudonym(context.profile.id)
    log.info("thread %d: staff answer by %s", replied.thread_id, staff_member)
    if react and update.effective_message is not None:
        try:
            await update.effective_message.set_reaction("👍")
        except TelegramError:
            pass  # reactions turned off in that chat: say it in words below
        else:
            return
    await _say(update, context, N_("Sent to the family."))


async def ask_for_case_code(update: Update, context: HotlineContext, thread_id: int) -> None:
    if context.user_data is not None:
        context.user_data[INPUT_KEY] = {"kind": "join", "thread": thread_id}
    text = context.tr.gettext(
        "Send the code of the family member's case to join this conversation to. (/cancel to stop)"
    )
    await _reply(update, html.escape(text))


async def join_thread(update: Update, context: HotlineContext, thread_id: int, text: str) -> None:
    tr, services = context.tr, context.services
    if context.user_data is not None:
        context.user_data.pop(INPUT_KEY, None)
    code = normalise_case_code(text)
    if code is None:
        await _say(update, context, N_("That is not a case code."))
        return
    try:
        async with services.sessions() as session, session.begin():
            code = await threads.join_to_case(
                session, thread_id, code, actor_id=context.profile.id, now=services.clock()
            )
    except ThreadNotFound:
        await _say(update, context, N_("This conversation no longer exists."))
        return
    except ThreadRefused:
        text = tr.gettext(
            "This person is not family on that case, so the conversation was not joined to it."
        )
        await _reply(update, html.escape(text))
        return
    await _reply(update, html.escape(tr.gettext("Joined to case {code}.").format(code=code)))


# -- buttons ---------------------------------------------------------------------------------


async def desk_button(update: Update, context: HotlineContext) -> None:
    """Every `desk:` press: the role is checked whatever the button said, then the verb runs."""
    query = update.callback_query
    assert query is not None
    pressed = DESK.parse(query.data)
    verb = pressed.verb if pressed else "?"
    if not await require(update, context, Permission.ANSWER_FAMILIES, action=f"thread.{verb}"[:48]):
        return
    if pressed is None:
        await query.answer(context.tr.gettext("This button is no longer valid."))
        return
    await query.answer()
    await _route(update, context, pressed)


async def _route(update: Update, context: HotlineContext, pressed: Pressed) -> None:
    verb, args = pressed.verb, pressed.args
    if verb == "list":
        kind = args[0] if args[0] in THREAD_FILTERS else "unread"
        await show_list(update, context, kind, pressed.int_arg(1) or 0)
        return
    if verb == "case":
        code = normalise_case_code(args[0])
        if code is None:
            await _say(update, context, N_("This button is no longer valid."))
            return
        await case_threads(update, context, code)
        return
    number = pressed.int_arg(0)
    if number is None:
        await _say(update, context, N_("This button is no longer valid."))
        return
    if verb in ("mopen", "mreply"):
        try:
            async with context.services.sessions() as session:
                number = await threads.thread_of_message(session, number)
        except ThreadNotFound:
            await _reply(
                update, html.escape(context.tr.gettext("This conversation no longer exists."))
            )
            return
        verb = verb.removeprefix("m")
    if verb == "open":
        await show_thread(update, context, number)
    elif verb == "reply":
        await ask_for_reply(update, context, number)
    elif verb in ("take", "release"):
        await take_thread(update, context, number, take=verb == "take")
    elif verb == "join":
        await ask_for_case_code(update, context, number)
    elif verb == "pick":
        await pick_prepared(update, context, number, args[1])
    elif verb == "send":
        await send_prepared(update, context, number, args[1])


# -- staff messages: the awaited answer, or a Telegram reply to a notice ------------------------


async def staff_message(update: Update, context: HotlineContext) -> None:
    """A staff member's message that answers a family: after Reply was pressed, or as a Telegram
    reply to a notice (in the staff group or their own chat). Anything else passes on."""
    message = update.effective_message
    if message is None:
        return
    pending: dict[str, Any] | None = (context.user_data or {}).get(INPUT_KEY)
    if pending is not None and _private(update) and is_staff(context.profile.role):
        await _take_pending(update, context, message, pending)
        await _stop_here(update, context)
    thread_id = await _notice_thread(message, context)
    if thread_id is None:
        return
    if not await require(update, context, Permission.ANSWER_FAMILIES, action="thread.reply"):
        await _stop_here(update, context)
    await answer_family(update, context, thread_id, incoming_of(message), react=True)
    await _stop_here(update, context)


async def _take_pending(
    update: Update, context: HotlineContext, message: Message, pending: dict[str, Any]
) -> None:
    if not await require(update, context, Permission.ANSWER_FAMILIES, action="thread.input"):
        return
    thread_id = int(pending.get("thread", 0))
    if pending.get("kind") == "join":
        await join_thread(update, context, thread_id, message.text or "")
    else:
        await answer_family(update, context, thread_id, incoming_of(message))


async def _notice_thread(message: Message, context: HotlineContext) -> int | None:
    """The thread of the desk notice this message replies to, if it replies to one. A family's
    reply to a staff answer is a family message, not a staff answer: only chats that receive
    notices (the staff group, staff members' chats) count, and the role is checked after."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
        return None
    if message.chat.type == ChatType.PRIVATE and not is_staff(context.profile.role):
        return None
    services = context.services
    async with services.sessions() as session:
        found = await threads.thread_of_sent_message(
            session, services.keys.chat_key(message.chat_id), replied.message_id
        )
        notice_of = _notice_message_id(replied)
        if found is None and notice_of is not None:
            # The notice reached the chat before its delivery was recorded (a fast answer on a
            # busy bot): its own Open button names the family's message.
            try:
                found = await threads.thread_of_message(session, notice_of)
            except ThreadNotFound:
                return None
        return found


def _notice_message_id(notice: Message) -> int | None:
    """The family's message a desk notice announces, read from its Open button."""
    markup = notice.reply_markup
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            pressed = DESK.parse(
                button.callback_data if isinstance(button.callback_data, str) else None
            )
            if pressed is not None and pressed.verb == "mopen":
                return pressed.int_arg(0)
    return None


async def cancel_input(update: Update, context: HotlineContext) -> None:
    """/cancel while an answer or a case code was awaited."""
    if context.user_data is None or INPUT_KEY not in context.user_data:
        return
    context.user_data.pop(INPUT_KEY, None)
    if update.effective_message is not None:
        await update.effective_message.reply_text(context.tr.gettext("Cancelled."))
    await _stop_here(update, context)


async def _stop_here(update: Update, context: HotlineContext) -> None:
    """This message was handled here: no other handler may take it. Persist first (the awaited
    input is gone), since stopping also skips the flush group."""
    context.application.mark_data_for_update_persistence(
        chat_ids=update.effective_chat.id if update.effective_chat else None,
        user_ids=update.effective_user.id if update.effective_user else None,
    )
    await context.application.update_persistence()
    raise ApplicationHandlerStop


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("mine", mine_command))
    application.add_handler(CallbackQueryHandler(desk_button, pattern=DESK.pattern))
    application.add_handler(CommandHandler("cancel", cancel_input), group=DESK_INPUT_GROUP)
    application.add_handler(
        MessageHandler(filters.UpdateType.MESSAGE & ~filters.COMMAND, staff_message),
        group=DESK_INPUT_GROUP,
    )
