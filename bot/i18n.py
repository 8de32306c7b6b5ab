"""Translations through gettext catalogs, and dates and numbers as each language writes them.

Catalogs are `locales/<lang>/LC_MESSAGES/hotline.po`, compiled in memory at start with Babel, so
there is no build step and no `.mo` file in the repository. Message ids are English, so a message
without a usable translation is shown in English rather than not at all.

Crimean Tatar (`crh`) is not in CLDR: nothing here asks Babel's locale data about it. Its plural
rule comes from its catalog header and its dates and numbers are formatted by hand below.
"""

from __future__ import annotations

import gettext
from datetime import date, datetime
from io import BytesIO
from pathlib import Path

from babel.dates import format_date as babel_format_date
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LANGUAGES: tuple[str, ...] = ("uk", "crh", "en", "ru")
DEFAULT_LANGUAGE = "uk"
DOMAIN = "hotline"

_SLAVIC_PLURALS = (
    "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : "
    "n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);"
)
#: The `Plural-Forms` header each catalog must carry (see locales/README.md for crh's choice).
#: Kept here, not taken from CLDR, so that new catalogs and checks never need CLDR for crh.
PLURAL_FORMS: dict[str, str] = {
    "uk": _SLAVIC_PLURALS,
    "crh": "nplurals=2; plural=(n != 1);",
    "en": "nplurals=2; plural=(n != 1);",
    "ru": _SLAVIC_PLURALS,
}

# CLDR locales for the languages CLDR knows; crh is deliberately absent.
_CLDR_LOCALES: dict[str, str] = {"uk": "uk_UA", "en": "en_GB", "ru": "ru_RU"}
_CRH_MONTHS = (
    "yanvar",
    "fevral",
    "mart",
    "aprel",
    "mayıs",
    "iyun",
    "iyul",
    "avgust",
    "sentâbr",
    "oktâbr",
    "noyabr",
    "dekabr",
)
_NBSP = "\u00a0"


def N_(message: str) -> str:
    """Marks a module-level string for extraction; it is translated later, where it is shown."""
    return message


def default_locales_dir() -> Path:
    """The repository's `locales/`, next to `bot/` (the package is installed editable)."""
    return Path(__file__).resolve().parent.parent / "locales"


def catalog_path(locales_dir: Path, lang: str) -> Path:
    """Where one language's catalog lives; shared with tools/i18n_check.py."""
    return locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _base_code(code: str) -> str:
    return code.strip().replace("_", "-").split("-")[0].lower()


def language_from_telegram(code: str | None) -> str | None:
    """Telegram's `language_code` ("uk", "en-GB") to one of ours, or None (caller uses default)."""
    if not code:
        return None
    base = _base_code(code)
    return base if base in LANGUAGES else None


def suggested_language(code: str | None) -> str | None:
    """A guess for the bot to confirm: a Turkish interface often means a Crimean Tatar speaker."""
    known = language_from_telegram(code)
    if known is not None:
        return known
    if code and _base_code(code) == "tr":
        return "crh"
    return None


def _group_thousands(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(groups)


def _crh_decimal(value: float) -> str:
    """`1 234 567,5`: grouped by no-break spaces, decimal comma, at most 3 decimals (as uk)."""
    text = f"{abs(value):.3f}".rstrip("0").rstrip(".")
    whole, _, fraction = text.partition(".")
    sign = "-" if value < 0 and text != "0" else ""
    grouped = _group_thousands(whole, _NBSP)
    return f"{sign}{grouped},{fraction}" if fraction else f"{sign}{grouped}"


class Translator:
    """One language: messages, plurals, dates and numbers, so handlers never branch on language."""

    def __init__(self, lang: str, translations: gettext.NullTranslations) -> None:
        self.lang = lang
        self._translations = translations

    def gettext(self, message: str) -> str:
        # gettext("") would return the catalog's header; an empty text stays empty.
        return self._translations.gettext(message) if message else message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._translations.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self._translations.pgettext(context, message)

    def format_date(self, value: date) -> str:
        """Day, month, year in every language: `05.12.2024` (uk, ru, crh), `5 Dec 2024` (en)."""
        if self.lang == "en":
            return babel_format_date(value, "d MMM y", locale=_CLDR_LOCALES["en"])
        if self.lang in _CLDR_LOCALES:
            return babel_format_date(value, "dd.MM.y", locale=_CLDR_LOCALES[self.lang])
        return f"{value.day:02d}.{value.month:02d}.{value.year}"

    def format_datetime(self, value: datetime) -> str:
        """The date as above and a 24-hour time, which all four languages use."""
        return f"{self.format_date(value.date())} {value.hour:02d}:{value.minute:02d}"

    def format_month_day(self, value: date) -> str:
        """`5 грудня`, `5 December`, `5 dekabr`: for reminders within the year."""
        if self.lang in _CLDR_LOCALES:
            return babel_format_date(value, "d MMMM", locale=_CLDR_LOCALES[self.lang])
        return f"{value.day} {_CRH_MONTHS[value.month - 1]}"

    def format_number(self, value: int | float) -> str:
        """Thousands grouped as each language writes them: `12 345` (uk, ru, crh), `12,345` (en)."""
        if self.lang in _CLDR_LOCALES:
            return format_decimal(value, locale=_CLDR_LOCALES[self.lang])
        return _crh_decimal(float(value))

    def format_percent(self, ratio: float) -> str:
        """A ratio (0.25) as a percentage: `25%` (uk, en), `25 %` (ru), `25%` (crh)."""
        if self.lang in _CLDR_LOCALES:
            return format_percent(ratio, locale=_CLDR_LOCALES[self.lang])
        return f"{_crh_decimal(round(ratio * 100))}%"


def load_catalog(po_path: Path) -> Catalog:
    """Read a .po file; Babel keeps an unknown Language header (crh) without needing CLDR."""
    with po_path.open("rb") as handle:
        return read_po(handle, domain=DOMAIN)


def _usable(string: str | tuple[str, ...] | list[str] | None) -> bool:
    if string is None or isinstance(string, str):
        return bool(string)
    return bool(string) and all(string)


def compile_catalog(catalog: Catalog) -> gettext.GNUTranslations:
    """Compile in memory, leaving out fuzzy and empty (or partly empty plural) entries.

    Those then fall back to the English msgid as a whole, never to a half-translated plural.
    """
    for message in list(catalog)[1:]:
        if message.fuzzy or not _usable(message.string):
            catalog.delete(message.id, context=message.context)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class I18n:
    """All four catalogs, loaded once at start; `get(lang)` gives the translator for a user."""

    def __init__(
        self, locales_dir: Path | None = None, default_language: str = DEFAULT_LANGUAGE
    ) -> None:
        self.locales_dir = locales_dir or default_locales_dir()
        self.default_language = (
            default_language if default_language in LANGUAGES else DEFAULT_LANGUAGE
        )
        self._translators: dict[str, Translator] = {}
        for lang in LANGUAGES:
            po_path = catalog_path(self.locales_dir, lang)
            translations: gettext.NullTranslations
            if po_path.exists():
                translations = compile_catalog(load_catalog(po_path))
            else:
                translations = gettext.NullTranslations()
            self._translators[lang] = Translator(lang, translations)

    def get(self, lang: str | None) -> Translator:
        """The user's language, or the default one for None or an unknown code."""
        if lang is not None and lang in self._translators:
            return self._translators[lang]
        return self._translators[self.default_language]
