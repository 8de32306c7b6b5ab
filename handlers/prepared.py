"""/answers: admins keep the prepared answers staff can pick when they answer a family.

    /answers                          the list, every language of every answer
    /answers set KEY LANG TEXT...     add or replace one language of an answer
    /answers remove KEY               remove an answer in every language

Staff pick an answer by its key under Reply (handlers.desk); the family reads it in their own
language, or in the hotline's default language when theirs is missing.
"""

from __future__ import annotations

import html

from telegram import Update
from telegram.ext import CommandHandler

from bot.context import HotlineApplication, HotlineContext
from bot.i18n import LANGUAGES
from bot.texts.vocabulary import LANGUAGE_NAMES
from handlers.guard import require
from storage import prepared_answers
from storage.access import Permission
from storage.prepared_answers import BadPreparedAnswer

PREVIEW = 120


async def answers_command(update: Update, context: HotlineContext) -> None:
    if not await require(update, context, Permission.MANAGE_PREPARED_ANSWERS, action="prepared"):
        return
    message = update.effective_message
    if message is None:
        return
    tr, services = context.tr, context.services
    text = message.text or ""
    parts = text.split(maxsplit=3)
    verb = parts[1].lower() if len(parts) > 1 else "list"
    usage = tr.gettext("Usage: /answers, /answers set KEY LANGUAGE TEXT, /answers remove KEY")
    if verb == "set" and len(parts) == 4:
        key, rest = parts[2], parts[3]
        language, _, body = rest.partition(" ")
        if language not in LANGUAGES or not body.strip():
            await message.reply_text(html.escape(usage))
            return
        try:
            async with services.sessions() as session, session.begin():
                await prepared_answers.set_answer(
                    session, key, language, body, actor_id=context.profile.id, now=services.clock()
                )
        except BadPreparedAnswer:
            await message.reply_text(
                tr.gettext(
                    "The key is lowercase letters, digits and _ (up to 32), and the text up to "
                    "2000 characters."
                )
            )
            return
        await message.reply_text(
            html.escape(
                tr.gettext("Saved: {key} ({language}).").format(
                    key=key.lower(), language=LANGUAGE_NAMES[language]
                )
            )
        )
        return
    if verb == "remove" and len(parts) == 3:
        async with services.sessions() as session, session.begin():
            removed = await prepared_answers.remove_answer(
                session, parts[2], actor_id=context.profile.id, now=services.clock()
            )
        await message.reply_text(
            tr.ngettext("Removed {count} text.", "Removed {count} texts.", removed).format(
                count=removed
            )
        )
        return
    if verb != "list":
        await message.reply_text(html.escape(usage))
        return
    async with services.sessions() as session:
        answers = await prepared_answers.all_answers(session)
    if not answers:
        empty = tr.gettext("There are no prepared answers yet.")
        await message.reply_text(html.escape(empty + "\n" + usage))
        return
    lines = [tr.gettext("Prepared answers:")]
    for key, texts in answers.items():
        lines.append(f"\n{key}")
        for language, body in texts.items():
            short = body if len(body) <= PREVIEW else body[:PREVIEW] + "…"
            lines.append(f"  {language}: {short}")
    missing = [key for key, texts in answers.items() if set(texts) != set(LANGUAGES)]
    if missing:
        lines.append(
            "\n" + tr.gettext("Missing some languages: {keys}").format(keys=", ".join(missing))
        )
    await message.reply_text(html.escape("\n".join(lines)[:4000]))  # the limit counts as shown


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("answers", answers_command))
