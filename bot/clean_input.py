"""Every incoming update is cleaned of invisible characters before any handler sees it.

Zero-width spaces and joiners (U+200B, U+200D), the word joiner (U+2060), the byte-order mark
(U+FEFF), the Arabic letter mark (U+061C) and the rest of Unicode's category Cf change nothing a
person sees, but make two equal names or codes compare different (a duplicate report missed, a
case code refused), and can hide or reorder what staff read. `CleanInputApplication` removes them
from every string of an update, in one place, whatever the handler; message entities (commands,
bold, links) are moved so they still cover the same visible text. An update without any such
character is passed on untouched.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application

from storage.confusables import is_invisible

JSON = Any


def _utf16_units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def clean_text(text: str, entities: list[dict[str, Any]] | None) -> str:
    """`text` without invisible characters; `entities` (UTF-16 offsets) moved to match, and those
    left empty removed, in place."""
    if not any(is_invisible(ch) for ch in text):
        return text
    new_offset: list[int] = []  # old UTF-16 position -> new UTF-16 position
    kept: list[str] = []
    position = 0
    for ch in text:
        units = _utf16_units(ch)
        new_offset.extend([position] * units)
        if not is_invisible(ch):
            kept.append(ch)
            position += units
    new_offset.append(position)
    if entities:
        last = len(new_offset) - 1
        moved = []
        for entity in entities:
            start = new_offset[min(int(entity.get("offset", 0)), last)]
            end = new_offset[min(int(entity.get("offset", 0)) + int(entity.get("length", 0)), last)]
            if end > start:
                moved.append({**entity, "offset": start, "length": end - start})
        entities[:] = moved
    return "".join(kept)


def _entities_key(key: str) -> str:
    return "entities" if key == "text" else f"{key}_entities"


def clean_json(value: JSON) -> JSON:
    """A copy of a decoded update with every string cleaned (and its entities moved)."""
    if isinstance(value, str):
        return clean_text(value, None)
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {key: clean_json(item) for key, item in value.items()}
    for key, item in value.items():
        entities = result.get(_entities_key(key))
        if isinstance(item, str) and isinstance(entities, list):
            result[key] = clean_text(item, entities)
    return result


def has_invisible(value: JSON) -> bool:
    if isinstance(value, str):
        return any(is_invisible(ch) for ch in value)
    if isinstance(value, list):
        return any(has_invisible(item) for item in value)
    if isinstance(value, dict):
        return any(has_invisible(item) for item in value.values())
    return False


def clean_update(update: object, bot: Any) -> object:
    """The update itself when it holds no invisible character, else a cleaned copy."""
    if not isinstance(update, Update):
        return update
    data = update.to_dict()
    if not has_invisible(data):
        return update
    return Update.de_json(clean_json(data), bot)


class CleanInputApplication(Application):  # type: ignore[type-arg]
    """The PTB Application, cleaning each update before its handlers run."""

    async def process_update(self, update: object) -> None:
        await super().process_update(clean_update(update, self.bot))
