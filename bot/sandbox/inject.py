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


# What a file of each kind is served as when nothing better is known.
DEFAULT_MIME = {
    "document": "application/octet-stream",
    "animation": "video/mp4",
    "video": "video/mp4",
    "audio": "audio/mpeg",
    "voice": "audio/ogg",
}


def photo_sizes(file_id: str, unique: str, size: int) -> list[dict[str, Any]]:
    """A photo as Telegram gives it: the same file in two sizes, the largest last."""
    return [
        {"file_id": file_id, "file_unique_id": unique, "width": w, "height": w, "file_size": size}
        for w in (90, 320)
    ]


def file_object(
    kind: str,
    file_id: str,
    unique: str,
    size: int,
    *,
    file_name: str | None = None,
    mime_type: str | None = None,
    duration: int | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Any:
    """The attachment object of a `Message` for a file of `kind` ("photo" gives a list)."""
    if kind == "photo":
        return photo_sizes(file_id, unique, size)
    data: dict[str, Any] = {"file_id": file_id, "file_unique_id": unique}
    if kind in ("video", "animation"):
        data.update(width=width or 320, height=height or 240, duration=duration or 1)
    elif kind in ("audio", "voice"):
        data["duration"] = duration or 1
    elif kind == "video_note":
        data.update(length=width or 240, duration=duration or 1)
    elif kind == "sticker":
        data.update(
            type="regular", width=512, height=512, is_animated=False, is_video=False, emoji="🙂"
        )
    if kind in ("document", "video", "animation", "audio") and file_name:
        data["file_name"] = file_name
    if kind in DEFAULT_MIME:
        data["mime_type"] = mime_type or DEFAULT_MIME[kind]
    data["file_size"] = size
    return data


def media_message(
    user: SandboxUser,
    chat: SandboxChat,
    message_id: int,
    kind: str,
    attachment: Any,
    caption: str | None = None,
) -> dict[str, Any]:
    """A user's message carrying `attachment` as `kind` (an animation also as `document`)."""
    message = base_message(user, chat, message_id)
    message[kind] = attachment
    if kind == "animation":
        message["document"] = attachment
    return with_caption(message, caption)
