"""What staff type after /find, /stats and /cases: `key:value` criteria, read into plain values.

    /find region:crimea status:verified custody:colony tag:journalist
    /find K7M4            (the first characters of a code)
    /find from:01.01.2025 to:31.03.2025 assignee:me
    /find name:"Ivan Petrenko" born:12.05.1990

Keys are English words (the same in every language, as in the help text); a value may be the
stored word (`crimea`, `pre_trial`) or the word the reader sees in their own language (`Крим`,
`Під вартою`), matched without case. A value with spaces is quoted. Unknown keys and values are
refused with a message saying which, never guessed.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from bot.i18n import N_, Translator
from bot.texts.statuses import STATUS_WORDS
from bot.texts.vocabulary import CUSTODY_WORDS, REGION_WORDS
from storage.field_checks import Invalid, parse_date, parse_name
from storage.search import normalise_code_prefix

FIND_KEYS = ("code", "region", "status", "custody", "tag", "assignee", "from", "to", "name", "born")
LIBRARY_KEYS = ("region", "custody", "article", "year")


@dataclass(frozen=True)
class Criteria:
    """Typed criteria, checked; `name` stays in memory only for the length of one request."""

    values: dict[str, str] = field(default_factory=dict)
    dates: dict[str, date] = field(default_factory=dict)
    name: str | None = None


class BadCriteria(ValueError):
    """`msgid` (with `params`) says what is wrong, in the reader's language."""

    def __init__(self, msgid: str, params: Mapping[str, object] | None = None) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.params = dict(params or {})

    def text(self, tr: Translator) -> str:
        return tr.gettext(self.msgid).format(**self.params)


def choice(tr: Translator, words: Mapping[str, str], typed: str) -> str | None:
    """The stored value `typed` names: the value itself, its English word or its word in the
    reader's language (case and spacing ignored)."""
    folded = " ".join(typed.split()).casefold()
    for value, msgid in words.items():
        if folded in (str(value).casefold(), msgid.casefold(), tr.gettext(msgid).casefold()):
            return str(value)
    return None


def split_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        raise BadCriteria(N_("A quotation mark is not closed.")) from None


def pairs(text: str, keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """(key, value) for each `key:value` word; a bare word is ("", word)."""
    found = []
    for word in split_words(text):
        key, sep, value = word.partition(":")
        key = key.casefold()
        if not sep:
            found.append(("", word))
            continue
        if key not in keys:
            raise BadCriteria(N_("I do not know the criterion “{key}”."), {"key": key})
        if not value.strip():
            raise BadCriteria(N_("The criterion “{key}” has no value."), {"key": key})
        found.append((key, value.strip()))
    return found


def parse_find(tr: Translator, text: str, *, today: date) -> Criteria:
    values: dict[str, str] = {}
    dates: dict[str, date] = {}
    name: str | None = None
    words = {
        "region": REGION_WORDS,
        "status": {str(k): v for k, v in STATUS_WORDS.items()},
        "custody": CUSTODY_WORDS,
    }
    for key, value in pairs(text, FIND_KEYS):
        if key in ("", "code"):
            prefix = normalise_code_prefix(value)
            if prefix is None:
                raise BadCriteria(
                    N_("“{value}” is not the start of a case code."), {"value": value}
                )
            values["code"] = prefix
        elif key in words:
            chosen = choice(tr, words[key], value)
            if chosen is None:
                raise BadCriteria(
                    N_("“{value}” is not a known {key}."), {"value": value, "key": key}
                )
            values[key] = chosen
        elif key in ("from", "to", "born"):
            try:
                dates[key] = parse_date(value, today=today)
            except Invalid as invalid:
                raise BadCriteria(invalid.msgid, invalid.params) from None
        elif key == "name":
            try:
                name = parse_name(value)
            except Invalid as invalid:
                raise BadCriteria(invalid.msgid, invalid.params) from None
        else:  # tag, assignee
            values[key] = value
    if "born" in dates and name is None:
        raise BadCriteria(N_('A date of birth is searched with a name: add name:"…".'))
    return Criteria(values, dates, name)


def parse_library(tr: Translator, text: str) -> dict[str, str]:
    """region, custody, article (205.5) and year (of the detention), checked by the caller's
    `storage.library.LibraryFilter`."""
    values: dict[str, str] = {}
    for key, value in pairs(text, LIBRARY_KEYS):
        if key == "":
            raise BadCriteria(N_("I do not know the criterion “{key}”."), {"key": value})
        if key == "region":
            chosen = choice(tr, REGION_WORDS, value)
        elif key == "custody":
            chosen = choice(tr, CUSTODY_WORDS, value)
        else:
            chosen = value
        if chosen is None:
            raise BadCriteria(N_("“{value}” is not a known {key}."), {"value": value, "key": key})
        values[key] = chosen
    return values
