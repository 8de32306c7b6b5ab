"""One pacer for every message the bot sends: interactive replies and the outbox share it.

Telegram counts every message a bot sends against the same limits (about 30 a second overall,
one a second per chat, 20 a minute per group), so two limiters that each allow the full rate
together exceed it, and one RetryAfter then stalls everything. The Application's rate limiter
below takes a turn on the delivery job's `Pacer` for each message it sends to a chat, ahead of the
outbox's own sends (a person is waiting for this one), and retries a RetryAfter a few times.
Requests that send nothing (getUpdates, answering a button, the command menus) are not paced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram._utils.types import JSONDict
from telegram.error import BadRequest, RetryAfter
from telegram.ext import BaseRateLimiter

from jobs.delivery import retry_after_seconds
from jobs.pacer import Pacer

log = logging.getLogger(__name__)

PACED_ENDPOINTS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVoice",
        "sendVideo",
        "sendAudio",
        "sendAnimation",
        "sendVideoNote",
        "sendSticker",
        "sendLocation",
        "sendContact",
        "sendMediaGroup",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
    }
)


class SharedPacerLimiter(BaseRateLimiter[int]):
    """PTB's rate limiter interface over the shared Pacer; `rate_limit_args` is max retries."""

    def __init__(self, pacer: Pacer, max_retries: int = 3) -> None:
        self.pacer = pacer
        self.max_retries = max_retries

    async def initialize(self) -> None:
        """Nothing to set up: the pacer lives as long as the Application."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        chat_id: int | None = None
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(data["chat_id"]) if "chat_id" in data else None
        if endpoint == "answerCallbackQuery":
            return await _answer_callback(callback, args, kwargs)
        if endpoint not in PACED_ENDPOINTS or chat_id is None:
            return await callback(*args, **kwargs)
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        attempt = 0
        while True:
            try:
                async with self.pacer.turn(chat_id, urgent=True):
                    return await callback(*args, **kwargs)
            except RetryAfter as error:
                if attempt >= retries:
                    raise
                attempt += 1
                seconds = retry_after_seconds(error)
                self.pacer.refused(chat_id, seconds)
                await asyncio.sleep(seconds)  # a reply goes past its chat's spacing: wait here
                log.info("a reply met a rate limit: retrying in %.1f s", seconds)


QUERY_GONE = "query is too old"


async def _answer_callback(
    callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
    args: Any,
    kwargs: dict[str, Any],
) -> bool | JSONDict | list[JSONDict]:
    """Answer a button press; a press that can no longer be answered is no failure of its
    handler. Telegram refuses a second answer and any answer after about 15 s: a press replayed
    from the inbox after a crash or a takeover (`bot/inbox.py`), or handled after a long wait
    for the database, still does what it asked, only the spinner is not stopped."""
    try:
        return await callback(*args, **kwargs)
    except BadRequest as error:
        if QUERY_GONE not in error.message.lower():
            raise
        log.info("a button press could not be answered any more (answered before, or too old)")
        return False
