"""/export for admins: cases, events or the audit log as CSV, XLSX or JSON, anonymised (for
partners) or full, sent as a protected document (it cannot be forwarded or saved from the chat).

`/export` asks with buttons; `/export cases xlsx anonymised` does it at once. The file is
written to a private temporary folder as rows stream in (`jobs.export_files`), sent, and
deleted; the export is audited. Encryption to a passphrase is the command line's
(`python -m bot export --encrypt`), where the passphrase is never typed into a chat.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.callbacks import EXPORT
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_, Translator
from handlers.guard import require
from handlers.replies import reply_html
from jobs.export_files import Format, file_name, write_export
from storage import export
from storage.access import Permission

KINDS = {"anonymised": True, "full": False}
WHAT_WORDS = {
    export.What.CASES: N_("Cases"),
    export.What.EVENTS: N_("Case history"),
    export.What.AUDIT: N_("Audit log"),
}
KIND_WORDS = {"anonymised": N_("anonymised"), "full": N_("full")}


def what_markup(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(tr.gettext(label), callback_data=EXPORT.build("what", what))]
            for what, label in WHAT_WORDS.items()
        ]
    )


def format_markup(tr: Translator, what: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    f"{file_format.upper()} · {tr.gettext(label)}",
                    callback_data=EXPORT.build("go", what, file_format, kind),
                )
                for file_format in Format
            ]
            for kind, label in KIND_WORDS.items()
        ]
    )


async def send_export(
    update: Update,
    context: HotlineContext,
    sheet: export.Sheet,
    file_format: Format,
) -> int:
    """Write, send (protected) and delete the file; audit it. Returns the rows."""
    services = context.services
    now = services.clock()
    name = file_name(sheet, file_format, encrypted=False, day=now.date().isoformat())
    chat = update.effective_chat
    assert chat is not None
    with tempfile.TemporaryDirectory(prefix="hotline-export-") as folder:
        path = Path(folder) / name
        with path.open("wb") as target:
            count = await write_export(
                services.sessions, services.cipher, sheet, file_format, target
            )
        with path.open("rb") as source:
            await chat.send_document(
                InputFile(source, filename=name), protect_content=True, disable_notification=True
            )
    async with services.sessions() as session, session.begin():
        export.record_export(
            session,
            actor_id=context.profile.id,
            chosen=sheet,
            file_format=file_format,
            encrypted=False,
            count=count,
            now=now,
        )
    return count


async def _made(update: Update, context: HotlineContext, count: int) -> None:
    text = context.tr.ngettext(
        "Export ready: {count} row.", "Export ready: {count} rows.", count
    ).format(count=count)
    await reply_html(update, html.escape(text))


async def export_command(update: Update, context: HotlineContext) -> None:
    if not await require(update, context, Permission.EXPORT, action="export.start"):
        return
    tr = context.tr
    args = [arg.lower() for arg in context.args or []]
    if not args:
        text = tr.gettext("What do you want to export?")
        await reply_html(update, html.escape(text), what_markup(tr))
        return
    try:
        what, file_format, kind = export.What(args[0]), Format(args[1]), args[2]
        anonymised = KINDS[kind]
    except (IndexError, ValueError, KeyError):
        usage = tr.gettext("Usage: /export cases|events|audit csv|xlsx|json anonymised|full")
        await reply_html(update, html.escape(usage))
        return
    await _made(
        update,
        context,
        await send_export(update, context, export.sheet(what, anonymised), file_format),
    )


async def export_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    assert query is not None
    if not await require(update, context, Permission.EXPORT, action="export.start"):
        return
    pressed = EXPORT.parse(query.data)
    tr = context.tr
    try:
        assert pressed is not None
        what = export.What(pressed.args[0])
        if pressed.verb == "what":
            await query.answer()
            await reply_html(
                update, html.escape(tr.gettext("Which format?")), format_markup(tr, what)
            )
            return
        file_format, anonymised = Format(pressed.args[1]), KINDS[pressed.args[2]]
    except (AssertionError, ValueError, KeyError):
        await query.answer(tr.gettext("This button is no longer valid."))
        return
    await query.answer(tr.gettext("Preparing the file…"))
    count = await send_export(update, context, export.sheet(what, anonymised), file_format)
    await _made(update, context, count)


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("export", export_command))
    application.add_handler(CallbackQueryHandler(export_button, pattern=EXPORT.pattern))
