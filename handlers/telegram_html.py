"""Checks a staff member's announcement text BEFORE anything is queued.

Telegram refuses a whole message whose HTML it cannot parse, and that refusal would come once per
recipient, thousands of times. So the text is parsed here with the same parser the sandbox uses to
behave like the Bot API (`bot.sandbox.html`: a pure module, standard library only, written to
reject exactly what Telegram rejects), and measured the way Telegram measures: after entity
parsing, in UTF-16 code units.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.sandbox.html import EntityParseError, parse_html, utf16_len

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


class Problem(StrEnum):
    EMPTY = "empty"
    BAD_HTML = "bad_html"
    TOO_LONG = "too_long"
    CAPTION_TOO_LONG = "caption_too_long"


@dataclass(frozen=True)
class TextCheck:
    """The verdict on one text: `problem` is None when it can be sent."""

    problem: Problem | None
    length: int = 0
    detail: str = ""


def check_text(text: str | None, *, with_photo: bool = False) -> TextCheck:
    """Whether `text` (Telegram HTML) can go out as a message, or as a photo caption."""
    if text is None or not text.strip():
        return TextCheck(Problem.EMPTY)
    try:
        parsed = parse_html(text)
    except EntityParseError as error:
        return TextCheck(Problem.BAD_HTML, detail=error.detail)
    length = utf16_len(parsed.plain)
    if not parsed.plain.strip():
        return TextCheck(Problem.EMPTY)
    if with_photo and length > CAPTION_LIMIT:
        return TextCheck(Problem.CAPTION_TOO_LONG, length)
    if length > TEXT_LIMIT:
        return TextCheck(Problem.TOO_LONG, length)
    return TextCheck(None, length)
