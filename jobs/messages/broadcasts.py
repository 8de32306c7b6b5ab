"""A staff announcement as its recipients read it.

A broadcast has a Ukrainian text and may have one per other language; each recipient reads the
text of the language the delivery job renders for them (`tr.lang`: their own, or the hotline's
default), else the Ukrainian one (`storage.broadcasts.choose_text`). The texts are staff's own
Telegram HTML, validated before they were queued (handlers.broadcast), so they are passed
through unchanged rather than escaped; nothing else is translated. The same function renders the
preview staff see, one per language, so the preview is exactly what recipients get.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.i18n import Translator
from jobs.messages.base import Attachment, RenderedMessage, Renderer
from storage.broadcasts import REQUIRED_LANGUAGE, TEMPLATE, choose_text


def texts_of(params: Mapping[str, Any]) -> dict[str, str]:
    """Every text the parameters carry by language (rows queued before translations existed
    have only `text`, the Ukrainian one)."""
    texts = {REQUIRED_LANGUAGE: params.get("text")}
    more = params.get("texts")
    if isinstance(more, Mapping):
        texts.update(more)
    return {code: text for code, text in texts.items() if isinstance(text, str) and text.strip()}


def announcement(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    texts = texts_of(params)
    if REQUIRED_LANGUAGE not in texts:
        raise ValueError("broadcast without text")
    photo = params.get("photo")
    attachment = Attachment("photo", photo) if isinstance(photo, str) else None
    return RenderedMessage(choose_text(texts, tr.lang), attachment=attachment)


TEMPLATES: dict[str, Renderer] = {TEMPLATE: announcement}
