"""One pacer for every message the bot sends: interactive replies and the outbox share it.

Telegram counts every message a bot sends against the same limits (about 30 a second overall,
one a second per chat, 20 a minute per group), so two limiters that each allow the full rate
together exceed it, and one RetryAfter then stalls everything. The Application's rate limiter
below takes a turn on the delivery job's `Pacer` for each message it sends to a chat, ahead of the
outbox's own sends (a person is waiting for this one). Requests that send nothing (getUpdates,
answering a button, the command menus) are not paced.

It is also where every reply of the Application (a message, an edit, a button's answer, the
error handler's words: whatever is said to a chat or to a pressed button) survives a short
fault: a 429 is retried after its `retry_after`, a 5xx or a refused or dropped connection after
a capped backoff, for up to `HOTLINE_REPLY_RETRY_SECONDS` (a person is waiting: long enough for
a blip, not for an outage, which the outbox rides out instead). A request that timed out
waiting for its answer may have been carried out, so a message is not sent again blindly; only
requests that are harmless to repeat are (`bot.telegram_faults`). The delivery job sends with
its own Bot, not through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram._utils.types import JSONDict
from telegram.error import BadRequest, RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bot import metrics
from bot.telegram_faults import Failure, failure_of
from jobs.delivery import retry_after_seconds
from jobs.pacer import Pacer

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.25
BACKOFF_CAP = 2.0
"""Seconds between tries after a 5xx or a lost connection: doubling, with jitter, capped low
(a person is waiting, and the answer should follow soon after Telegram is back)."""
REPEATABLE_ENDPOINTS = frozenset(
    {
        "getMe",
        "getChat",
        "getFile",
        "getChatMember",
        "getMyCommands",
        "getWebhookInfo",
        "setMyCommands",
        "deleteMyCommands",
        "setChatMenuButton",
        "setWebhook",
        "deleteWebhook",
        "sendChatAction",
    }
)
"""Requests that are harmless to repeat after a timeout (Telegram may have carried the first
out): reads, and settings that end the same however often they are made. Not a message, an
edit or a button's answer: a second one is a copy, or an error."""

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
    """PTB's rate limiter interface over the shared Pacer, retrying short faults for up to
    `horizon` seconds; `rate_limit_args`, if given for a call, caps its retries."""

    def __init__(
        self,
        pacer: Pacer,
        horizon: float = 30.0,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.pacer = pacer
        self.horizon = horizon
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep

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
        paced = endpoint in PACED_ENDPOINTS and chat_id is not None
        # A reply is said to someone: a chat, a pressed button. What is not (getMe at start, the
        # command menus, the webhook) fails at once, as a start against a dead API should.
        reply = chat_id is not None or "callback_query_id" in data or "inline_message_id" in data
        clock = self._clock or asyncio.get_running_loop().time
        deadline = clock() + (self.horizon if reply else 0.0)
        attempt = 0
        while True:
            try:
                if paced:
                    assert chat_id is not None
                    async with self.pacer.turn(chat_id, urgent=True):
                        return metrics.reply_sent(await callback(*args, **kwargs))
                return metrics.reply_sent(await callback(*args, **kwargs))
            except TelegramError as error:
                if endpoint == "answerCallbackQuery" and _press_gone(error, attempt):
                    # Answered before a crash (a press replayed from the inbox, or after a
                    # takeover), or past Telegram's window of about 15 s (retried, or a long
                    # wait for the database): the press still does what it asked, only the
                    # spinner is not stopped; the handler goes on.
                    log.info("answerCallbackQuery: the press cannot be answered any more")
                    return True
                wait = self._wait_before_retry(error, endpoint, chat_id, attempt, paced)
                if wait is None or clock() + wait > deadline:
                    raise
                if rate_limit_args is not None and attempt >= rate_limit_args:
                    raise
                attempt += 1
                log.info(
                    "%s: %s; try %d in %.2f s", endpoint, type(error).__name__, attempt + 1, wait
                )
                await self._sleep(wait)

    def _wait_before_retry(
        self, error: TelegramError, endpoint: str, chat_id: int | None, attempt: int, paced: bool
    ) -> float | None:
        """Seconds to wait before trying again, or None: not to be tried again."""
        failure = failure_of(error)
        if failure is Failure.RATE_LIMITED:
            assert isinstance(error, RetryAfter)
            metrics.reply_rate_limited()
            seconds = retry_after_seconds(error)
            if paced and chat_id is not None:
                self.pacer.refused(chat_id, seconds)  # the outbox waits too
            return seconds
        if failure is Failure.MAYBE_SENT and endpoint not in REPEATABLE_ENDPOINTS:
            return None
        if failure is Failure.REFUSED:
            return None
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0**attempt)
        return ceiling * (0.5 + 0.5 * self._rng.random())


QUERY_GONE = "query is too old"


def _press_gone(error: TelegramError, attempt: int) -> bool:
    """Telegram refuses to answer this press: after our own retries any refusal, else the
    one saying it was answered already or is too old."""
    if not isinstance(error, BadRequest):
        return False
    return attempt > 0 or QUERY_GONE in error.message.lower()
