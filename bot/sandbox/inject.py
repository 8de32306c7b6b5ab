"""Building updates as Telegram would send them for what a sandbox user does.

PTB's filters look at details (a `bot_command` entity at offset 0, `from.language_code`, the
pressed message inside a callback query), so the shapes here follow real updates closely.
"""

from __future__ import annotations

import re
import time
from typing import Any

from bot.sandbox.html import utf16_len
from bot.sandbox.state import SandboxChat, SandboxUser

_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def command_entities(text: str) -> list[dict[str, Any]]:
    """`bot_command` entities for every /command in the text, offsets in UTF-16 units."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: match.start()]),
            "length": utf16_len(match.group(0)),
        }
        for match in _COMMAND.finditer(text)
    ]


def base_message(user: SandboxUser, chat: SandboxChat, message_id: int) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat.to_api(),
        "from": user.to_api(),
    }


def text_message(
    user: SandboxUser, chat: SandboxChat, message_id: int, text: str
) -> dict[str, Any]:
    message = {**base_message(user, chat, message_id), "text": text}
    entities = command_entities(text)
    if entities:
        message["entities"] = entities
    return message


def with_caption(message: dict[str, Any], caption: str | None) -> dict[str, Any]:
    if caption:
        message["caption"] = caption
        entities = command_entities(caption)
        if entities:
            message["caption_entities"] = entities
    return message


def chat_instance(chat_id: int) -> str:
    """A stable per-chat token, as Telegram gives one per chat."""
    return str(abs(chat_id) * 7919 + 104729)
