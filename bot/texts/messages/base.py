"""What an outbox template is: a function from (translator, sealed params) to a message.

Rows store a template name and parameters, not text, so each message is rendered in the
recipient's language at the moment it is sent. Templates escape every parameter for HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.i18n import Translator

ATTACHMENT_KINDS = (
    "photo",
    "document",
    "voice",
    "video",
    "audio",
    "animation",
    "video_note",
    "sticker",
)
"""Kinds of Telegram file the bot re-sends by file id (it never downloads them)."""


@dataclass(frozen=True)
class Attachment:
    """A Telegram file to send along, by the file id Telegram gave the bot."""

    kind: str
    file_id: str

    def __post_init__(self) -> None:
        if self.kind not in ATTACHMENT_KINDS:
            raise ValueError(f"unknown attachment kind {self.kind!r}")


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready to send with parse_mode HTML: text alone, or an attachment with the text
    as its caption (`jobs.send.send_rendered` sends either)."""

    text: str
    buttons: tuple[tuple[tuple[str, str], ...], ...] = field(default=())  # rows of (label, data)
    protect_content: bool = False
    attachment: Attachment | None = None


Renderer = Callable[[Translator, Mapping[str, Any]], RenderedMessage]
