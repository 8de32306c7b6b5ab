"""The baseline of `benchmarks.cpu_per_update`: the smallest PTB bot giving the same replies.

No database, no persistence, no rate limiter: it polls, and answers each text with the reply
the hotline bot gave to that kind of update (text, parse mode and buttons, read from the JSON
file named by BENCH_REPLIES): a user's first /start, a later one, /status, anything else (an
answer in the report form). Run as `python -m benchmarks.bare_bot` with BENCH_TOKEN,
BENCH_BASE_URL and BENCH_REPLIES set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters


def build(token: str, base_url: str, replies: dict[str, dict[str, Any]]) -> Application:  # type: ignore[type-arg]
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

    application = ApplicationBuilder().token(token).base_url(base_url).build()
    application.add_handler(MessageHandler(filters.TEXT, answer))
    return application


def main() -> None:
    replies = json.loads(Path(os.environ["BENCH_REPLIES"]).read_text(encoding="utf-8"))
    build(os.environ["BENCH_TOKEN"], os.environ["BENCH_BASE_URL"], replies).run_polling(
        poll_interval=0.0, timeout=10
    )


if __name__ == "__main__":
    main()
