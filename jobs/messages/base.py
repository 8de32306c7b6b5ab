"""What an outbox template is: a function from (translator, sealed params) to a message.

Rows store a template name and parameters, not text, so each message is rendered in the
recipient's language at the moment it is sent. Templates escape every parameter for HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.i18n import Translator


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready for sendMessage with parse_mode HTML."""

    text: str
    buttons: tuple[tuple[tuple[str, str], ...], ...] = field(default=())  # rows of (label, data)
    protect_content: bool = False
    photo_file_id: str | None = None


Renderer = Callable[[Translator, Mapping[str, Any]], RenderedMessage]
