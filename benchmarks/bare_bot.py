"""The baseline of `benchmarks.cpu_per_update`: the smallest PTB bot giving the same replies.

No database, no persistence, no rate limiter: it polls, and answers each text with the reply
the hotline bot gave to that kind of update (text, parse mode and buttons, read from the JSON
file named by BENCH_REPLIES): a user's first /start, a later one, /status, anything else (an
answer in the report form). Run as `python -m benchmarks.bare_bot` with BENCH_TOKEN,
BENCH_BASE_URL and BENCH_REPLIES set.

With BENCH_INBOX set (a database URL, migrated) and BENCH_DATA_KEY, it keeps issue 16's durable
inbox and nothing else of the hotline: each update is stored (sealed) before it is confirmed,
handled from the store and marked handled, through the hotline's own `bot.inbox` and
`bot.inbox_polling`. That is the least CPU per update any bot that loses no update can have on
this stack: the floor under the hotline's figure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.inbox import UpdateInbox
from bot.inbox_polling import InboxUpdater
from storage.crypto import FieldCipher
from storage.db import make_engine, make_session_factory


def build(  # type: ignore[type-arg]
    token: str,
    base_url: str,
    replies: dict[str, dict[str, Any]],
    *,
    inbox_url: str | None = None,
    data_key: str | None = None,
) -> Application:
    seen: set[int] = set()

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.text is None or update.effective_user is None:
            return
        user = update.effective_user.id
        if message.text == "/start":
            kind = "returning_start" if user in seen else "first_start"
            seen.add(user)
        elif message.text == "/status":
            kind = "status"
        else:
            kind = "report_answer"
        reply = replies[kind]
        markup = reply.get("reply_markup")
        await message.reply_text(
            reply["text"],
            parse_mode=reply.get("parse_mode"),
            reply_markup=InlineKeyboardMarkup.de_json(markup, context.bot)
            if markup and "inline_keyboard" in markup
            else None,
        )

    builder = ApplicationBuilder().token(token).base_url(base_url)
    inbox = None
    if inbox_url is not None and data_key is not None:
        engine = make_engine(inbox_url)
        inbox = UpdateInbox(make_session_factory(engine), FieldCipher.from_setting(data_key))
        builder = builder.update_queue(inbox).post_init(lambda _: inbox.replay())
    application = builder.build()
    if inbox is not None:
        inbox.bind(application)
        application.updater = InboxUpdater(application.bot, inbox)
    application.add_handler(MessageHandler(filters.TEXT, answer))
    return application


def main() -> None:
    replies = json.loads(Path(os.environ["BENCH_REPLIES"]).read_text(encoding="utf-8"))
    application = build(
        os.environ["BENCH_TOKEN"],
        os.environ["BENCH_BASE_URL"],
        replies,
        inbox_url=os.environ.get("BENCH_INBOX"),
        data_key=os.environ.get("BENCH_DATA_KEY"),
    )
    application.run_polling(poll_interval=0.0, timeout=10)


if __name__ == "__main__":
    main()
