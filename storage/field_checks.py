"""Pure checks of what a relative types into the report form: no Telegram, no database.

Every check returns the cleaned value or raises `Invalid`, which carries an English msgid (marked
with `N_`) and its named placeholders, so the handler can say the reason in the user's language and
ask again. Control characters and text-direction overrides are removed: they can hide or reorder
what staff read. Invisible format characters (category Cf: zero-width spaces and joiners, the
byte-order mark, the Arabic letter mark, ...) are removed too; `bot.clean_input` already removed
them from every update, this keeps the checks safe on their own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import TypeVar

from storage.msgids import N_

EARLIEST_DETENTION = date(2014, 1, 1)
EARLIEST_BIRTH = date(1900, 1, 1)
MAX_AGE = 120
NAME_LIMIT = 200
PLACE_LIMIT = 300
TEXT_LIMIT = 1000
PHONE_MIN_DIGITS = 7
PHONE_MAX_DIGITS = 15

# Bidirectional overrides and isolates: they can make text read differently from what it is.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_DATE_DMY = re.compile(r"^(\d{1,2})[./\-\s](\d{1,2})[./\-\s](\d{2}|\d{4})$")
_DATE_YMD = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_AGE = re.compile(r"^~?\s*(\d{1,3})$")
_PHONE_NOISE = re.compile(r"[\s\-().]")

E = TypeVar("E", bound=StrEnum)


@dataclass
class Invalid(ValueError):
    """The answer cannot be used; `msgid` says why (to be translated), `params` fill it in."""

    msgid: str
    params: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:  # never the user's text: only the reason
        return self.msgid


def clean_text(text: str, *, multiline: bool = False) -> str:
    """Remove control characters (keeping line breaks in free text) and trim spacing."""
    kept: list[str] = []
    for ch in text:
        if ch in _BIDI_CONTROLS:
            continue
        if ch in "\n\r" and multiline:
            kept.append("\n")
        elif ch.isspace():
            kept.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            kept.append(ch)
    if not multiline:
        return " ".join("".join(kept).split())
    lines = [" ".join(line.split()) for line in "".join(kept).split("\n")]
    joined = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", joined)


def parse_text(text: str, *, limit: int = TEXT_LIMIT, multiline: bool = True) -> str:
    cleaned = clean_text(text, multiline=multiline)
    if not cleaned:
        raise Invalid(N_("Please write the answer in words, or use the buttons."))
    if len(cleaned) > limit:
        raise Invalid(
            N_("This is too long: {length} characters. Please keep it under {limit}."),
            {"length": len(cleaned), "limit": limit},
        )
    return cleaned


def parse_name(text: str) -> str:
    name = parse_text(text, limit=NAME_LIMIT, multiline=False)
    if not any(ch.isalpha() for ch in name):
        raise Invalid(N_("Please write the person's name in letters."))
    return name


def parse_place(text: str) -> str:
    return parse_text(text, limit=PLACE_LIMIT, multiline=False)


def _relative_word(text: str, today: date, words: Mapping[str, Iterable[str]]) -> date | None:
    folded = text.casefold()
    for offset, key in ((0, "today"), (1, "yesterday")):
        if folded in {word.casefold().strip() for word in words.get(key, ())}:
            return today - timedelta(days=offset)
    return None


def parse_date(text: str, *, today: date, words: Mapping[str, Iterable[str]] | None = None) -> date:
    """`05.12.2024`, `5/12/24`, `2024-12-05`, or the words for today and yesterday.

    `words` maps "today" and "yesterday" to the words the user may type (their language's and
    English), supplied by the handler so this stays free of translation machinery.
    """
    cleaned = clean_text(text)
    relative = _relative_word(cleaned, today, words or {})
    if relative is not None:
        return relative
    ymd = _DATE_YMD.match(cleaned)
    dmy = _DATE_DMY.match(cleaned)
    if ymd:
        year, month, day = (int(part) for part in ymd.groups())
    elif dmy:
        day, month, year = (int(part) for part in dmy.groups())
        if year < 100:
            year += 2000 if 2000 + year <= today.year else 1900
    else:
        raise Invalid(N_("I could not read this date. Please write it like 05.12.2024."))
    try:
        return date(year, month, day)
    except ValueError:
        raise Invalid(N_("This date does not exist. Please check the day and the month.")) from None


def parse_detention_date(
    text: str, *, today: date, words: Mapping[str, Iterable[str]] | None = None
) -> date:
    """A detention date: not in the future, not before 2014 (when the occupation began)."""
    when = parse_date(text, today=today, words=words)
    if when > today:
        raise Invalid(N_("This date is in the future. Please write the date of the detention."))
    if when < EARLIEST_DETENTION:
        raise Invalid(
            N_("This hotline records detentions since 2014. Please check the year."),
        )
    return when


@dataclass(frozen=True)
class Birth:
    """A date of birth, or an approximate age when the date is not known."""

    birth_date: date | None = None
    age: int | None = None


def parse_birth(text: str, *, today: date) -> Birth:
    cleaned = clean_text(text)
    age = _AGE.match(cleaned)
    if age:
        years = int(age.group(1))
        if not 1 <= years <= MAX_AGE:
            raise Invalid(N_("Please write an age between 1 and {max}."), {"max": MAX_AGE})
        return Birth(age=years)
    when = parse_date(cleaned, today=today)
    if when > today:
        raise Invalid(N_("A date of birth cannot be in the future."))
    if when < EARLIEST_BIRTH:
        raise Invalid(N_("Please check the year of birth."))
    return Birth(birth_date=when)


def parse_phone(text: str) -> str:
    """A phone number in international shape: an optional +, then 7 to 15 digits."""
    compact = _PHONE_NOISE.sub("", clean_text(text))
    digits = compact.removeprefix("+")
    if not digits.isdigit() or not PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_DIGITS:
        raise Invalid(
            N_("This does not look like a phone number. Please write it like +380 67 123 45 67.")
        )
    return compact


def parse_choice(value: str, choices: type[E]) -> E:
    """A button's value, re-checked: callback data can be forged."""
    try:
        return choices(value)
    except ValueError:
        raise Invalid(N_("Please use the buttons.")) from None
