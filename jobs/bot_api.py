"""A lean Bot API client for the delivery workers' sends: one aiohttp POST of a JSON body.

PTB's request path (its Bot, httpx, httpcore, anyio, and a full `telegram.Message` parsed from
every answer) cost a `deliver` worker most of its CPU at a thousand sends a second. A worker needs
a handful of methods and one field of the answer (the message id), so it posts JSON with aiohttp
(already the sandbox's library) and turns Telegram's errors into PTB's exception classes, which
the delivery job already understands (RetryAfter, Forbidden, BadRequest, ChatMigrated, and
NetworkError / TimedOut for everything that may be retried).

It offers what `jobs.send.send_rendered` calls: `send_message` and `send_<kind>` by file id. The
bot process keeps PTB's Bot (it shares its connection pool with the replies).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from telegram import InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.telegram_faults import SEND_READ_TIMEOUT

# As long as the bot's own sends wait (`bot.telegram_faults`): a slow API is waited for, not
# sent to twice.
TIMEOUT = aiohttp.ClientTimeout(
    total=SEND_READ_TIMEOUT + 10.0, connect=5.0, sock_read=SEND_READ_TIMEOUT
)


@dataclass(frozen=True)
class SentMessage:
    """What delivery keeps of Telegram's answer."""

    message_id: int


def _error(status: int, answer: dict[str, Any]) -> TelegramError:
    description = str(answer.get("description") or f"HTTP {status}")
    parameters = answer.get("parameters") or {}
    code = int(answer.get("error_code") or status)
    if code == 429:
        return RetryAfter(int(parameters.get("retry_after") or 1))
    if parameters.get("migrate_to_chat_id") is not None:
        return ChatMigrated(int(parameters["migrate_to_chat_id"]))
    if code == 403:
        return Forbidden(description)
    if code == 400:
        return BadRequest(description)
    if code >= 500:
        return NetworkError(description)
    return TelegramError(description)


class LeanBot:
    """`send_message` and `send_<kind>` (photo, document, voice... by file id), HTML texts."""

    def __init__(self, base_url: str, token: str, *, connections: int) -> None:
        self._url = f"{base_url}{token}/"
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                timeout=TIMEOUT,
                json_serialize=json.dumps,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._client().post(self._url + method, json=payload) as response:
                answer = await response.json(content_type=None)
        except TimeoutError as error:  # it may have arrived: the job decides what to retry
            raise TimedOut(f"{method} timed out") from error
        except (aiohttp.ClientError, ValueError) as error:
            raise NetworkError(f"{method}: {type(error).__name__}") from error
        if not isinstance(answer, dict):
            raise NetworkError(f"{method}: unreadable answer")
        if not answer.get("ok"):
            raise _error(response.status, answer)
        result = answer.get("result")
        return result if isinstance(result, dict) else {}

    async def send_message(
        self,
        chat_id: int,
        text: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        protect_content: bool | None = None,
        disable_web_page_preview: bool | None = None,
    ) -> SentMessage:
        payload: dict[str, Any] = {"chat_id": chat_id, "text": text, "parse_mode": "HTML"}
        if disable_web_page_preview:
            payload["link_preview_options"] = {"is_disabled": True}
        return await self._send("sendMessage", payload, reply_markup, protect_content)

    async def _send(
        self,
        method: str,
        payload: dict[str, Any],
        reply_markup: InlineKeyboardMarkup | None,
        protect_content: bool | None,
    ) -> SentMessage:
        if reply_markup is not None:
            payload["reply_markup"] = reply_markup.to_dict()
        if protect_content:
            payload["protect_content"] = True
        result = await self.call(method, payload)
        return SentMessage(int(result.get("message_id") or 0))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[SentMessage]]:
        """`send_photo(chat_id, file_id, caption=..., reply_markup=..., protect_content=...)`
        and the like: a file Telegram already has, by its id."""
        if not name.startswith("send_") or name == "send_message":
            raise AttributeError(name)
        kind = name.removeprefix("send_")
        method = "send" + "".join(part.capitalize() for part in kind.split("_"))

        async def send(
            chat_id: int,
            file_id: str,
            *,
            caption: str | None = None,
            reply_markup: InlineKeyboardMarkup | None = None,
            protect_content: bool | None = None,
        ) -> SentMessage:
            payload: dict[str, Any] = {"chat_id": chat_id, kind: file_id}
            if caption is not None:
                payload.update(caption=caption, parse_mode="HTML")
            return await self._send(method, payload, reply_markup, protect_content)

        return send
