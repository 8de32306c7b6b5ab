"""Telegram-HTML parsing as the real Bot API does it.

The bot's texts must be rejected here exactly when Telegram would reject them (an unescaped `<`
in a translated string is a real production failure), and the web page needs the same text as
plain text and as browser-safe HTML.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

# Telegram tag -> entity type; `None` means the tag needs attribute checks below.
TAG_ENTITIES: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
SAFE_SCHEMES = ("http://", "https://", "tg://")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTR = re.compile(r"\s*([a-zA-Z][a-zA-Z0-9_-]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; `str(err)` is Telegram's description."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Bad Request: can't parse entities: {detail}")
        self.detail = detail


@dataclass
class ParsedText:
    """A message text after entity parsing."""

    plain: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    safe_html: str = ""


@dataclass
class _Open:
    name: str
    attrs: dict[str, str]
    offset: int  # UTF-16 offset in the plain text
    safe_close: str


def utf16_len(text: str) -> int:
    """Telegram measures entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _unescape_entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _NAMED:
        return _NAMED[name]
    code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return chr(code)


def _decode_text(text: str, start: int, end: int) -> str:
    """Decode a text run (between tags), rejecting a `&` that starts no entity."""
    out: list[str] = []
    pos = start
    while pos < end:
        amp = text.find("&", pos, end)
        if amp < 0:
            out.append(text[pos:end])
            break
        out.append(text[pos:amp])
        match = _ENTITY.match(text, amp, end)
        if match is None:
            raise EntityParseError(
                f"Character entity expected at byte offset {_byte_offset(text, amp)}"
            )
        out.append(_unescape_entity(match))
        pos = match.end()
    return "".join(out)


def _parse_attrs(raw: str, text: str, at: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    raw = raw.rstrip("/ \t\n")
    while pos < len(raw):
        if raw[pos:].strip() == "":
            break
        match = _ATTR.match(raw, pos)
        if match is None or match.end() == pos:
            raise EntityParseError(f"Expected equal sign at byte offset {_byte_offset(text, at)}")
        value = match.group(2) or ""
        if value[:1] in ("'", '"'):
            value = value[1:-1]
        attrs[match.group(1).lower()] = html.unescape(value)
        pos = match.end()
    return attrs


def _check_start_tag(name: str, attrs: dict[str, str], text: str, at: int) -> None:
    if name not in TAG_ENTITIES or (name == "span" and attrs.get("class") != "tg-spoiler"):
        raise EntityParseError(
            f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, at)}'
        )
    if name == "tg-emoji" and "emoji-id" not in attrs:
        raise EntityParseError(f"Custom emoji identifier must be specified for tag {name}")


def _safe_open(name: str, attrs: dict[str, str]) -> tuple[str, str]:
    """The browser-safe opening and closing tags for an allowed Telegram tag."""
    if name == "a":
        href = attrs.get("href", "")
        if href.lower().startswith(SAFE_SCHEMES):
            quoted = html.escape(href, quote=True)
            return f'<a href="{quoted}" rel="noopener noreferrer" target="_blank">', "</a>"
        return "<u>", "</u>"
    if name in ("tg-spoiler", "span"):
        return '<span class="tg-spoiler">', "</span>"
    if name == "blockquote":
        if "expandable" in attrs:
            return '<blockquote class="expandable">', "</blockquote>"
        return "<blockquote>", "</blockquote>"
    if name == "tg-emoji":
        return "", ""
    return f"<{name}>", f"</{name}>"


def _entity(opened: _Open, end: int, parents: list[_Open]) -> dict[str, Any] | None:
    length = end - opened.offset
    if length <= 0:
        return None
    kind = TAG_ENTITIES[opened.name]
    entity: dict[str, Any] = {"type": kind, "offset": opened.offset, "length": length}
    if opened.name == "a":
        entity["url"] = opened.attrs.get("href", "")
    elif opened.name == "tg-emoji":
        entity["custom_emoji_id"] = opened.attrs.get("emoji-id", "")
    elif opened.name == "blockquote" and "expandable" in opened.attrs:
        entity["type"] = "expandable_blockquote"
    elif opened.name == "code" and parents and parents[-1].name == "pre":
        return None  # `<pre><code class="language-x">`: the language goes on the pre entity
    elif opened.name == "pre":
        entity["language"] = opened.attrs.get("_language", "")
        if not entity["language"]:
            del entity["language"]
    return entity


def parse_html(text: str) -> ParsedText:
    """Parse Telegram HTML into plain text, entities and browser-safe HTML.

    Raises `EntityParseError` with Telegram's wording for anything Telegram refuses.
    """
    plain: list[str] = []
    safe: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[_Open] = []
    offset = 0
    pos = 0
    while pos < len(text):
        lt = text.find("<", pos)
        run_end = len(text) if lt < 0 else lt
        if run_end > pos:
            decoded = _decode_text(text, pos, run_end)
            plain.append(decoded)
            safe.append(html.escape(decoded, quote=False))
            offset += utf16_len(decoded)
        if lt < 0:
            break
        gt = text.find(">", lt)
        if gt < 0:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, lt)}"
            )
        inner = text[lt + 1 : gt]
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                raise EntityParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(text, lt)}"
                )
            top = stack[-1]
            if name != top.name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, lt)}, "
                    f'expected "</{top.name}>", found "</{name}>"'
                )
            stack.pop()
            found = _entity(top, offset, stack)
            if found is not None:
                entities.append(found)
            safe.append(top.safe_close)
        else:
            match = _TAG_NAME.match(inner)
            if match is None:
                raise EntityParseError(
                    f'Unsupported start tag "{inner[:16]}" at byte offset {_byte_offset(text, lt)}'
                )
            name = match.group(0).lower()
            attrs = _parse_attrs(inner[match.end() :], text, lt)
            _check_start_tag(name, attrs, text, lt)
            if name == "code" and stack and stack[-1].name == "pre":
                language = attrs.get("class", "")
                if language.startswith("language-"):
                    stack[-1].attrs["_language"] = language[len("language-") :]
            opening, closing = _safe_open(name, attrs)
            safe.append(opening)
            stack.append(_Open(name, attrs, offset, closing))
        pos = gt + 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText(plain="".join(plain), entities=entities, safe_html="".join(safe))


def parse_text(text: str, parse_mode: str | None) -> ParsedText:
    """Parse a text for a given parse_mode; anything but HTML is passed through as plain text."""
    if parse_mode is not None and parse_mode.lower() == "html":
        return parse_html(text)
    return ParsedText(plain=text, entities=[], safe_html=html.escape(text, quote=False))
