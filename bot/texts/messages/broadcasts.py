"""A staff announcement as its recipients read it.

Each row carries the one text its recipient reads, chosen by their language when the broadcast
was queued (`storage.broadcasts.text_language`: theirs if the broadcast has it, else Ukrainian).
The text is staff's own Telegram HTML, validated before it was queued (handlers.broadcast), so it
is passed through unchanged rather than escaped; the recipient's translator is not used. The same
function renders the preview staff see, one per language, so the preview is exactly what
recipients get.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.i18n import Translator
from bot.texts.messages.base import Attachment, RenderedMessage, Renderer
from storage.broadcasts import TEMPLATE


def announcement(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("broadcast without text")
    photo = params.get("photo")
    attachment = Attachment("photo", photo) if isinstance(photo, str) else None
    return RenderedMessage(text, attachment=attachment)


TEMPLATES: dict[str, Renderer] = {TEMPLATE: announcement}
