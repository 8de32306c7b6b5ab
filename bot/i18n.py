"""Translations through gettext catalogs, and dates and numbers as each language writes them.

Catalogs are `.po` files in `locales/<lang>/LC_MESSAGES/hotline.po`, compiled in memory at start
with Babel (so no build step and no committed `.mo`). Message ids are English. Crimean Tatar
(`crh`) is not in CLDR, so nothing here asks Babel's locale data about it: its plural rule comes
from its catalog header and its formats are written by hand.
"""

from __future__ import annotations

import gettext
from datetime import date, datetime
from io import BytesIO
from pathlib import Path

from babel.dates import format_date as babel_format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LANGUAGES: tuple[str, ...] = ("uk", "crh", "en", "ru")
DEFAULT_LANGUAGE = "uk"
LANGUAGE_NAMES: dict[str, str] = {
    "uk": "Українська",
    "crh": "Qırımtatarca",
    "en": "English",
    "ru": "Русский",
}
DOMAIN = "hotline"
_CLDR_LOCALES = {"uk": "uk_UA", "en": "en_GB", "ru": "ru_RU"}
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


def N_(message: str) -> str:
    """Marks a module-level string for extraction; it is translated where it is shown."""
    return message


def default_locales_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "locales"


def language_from_telegram(code: str | None) -> str | None:
    """Telegram's `language_code` ("uk", "en-GB") to one of ours, or None."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def suggested_language(code: str | None) -> str | None:
    """A guess to confirm with the user: Turkish settings often mean a Crimean Tatar speaker."""
    known = language_from_telegram(code)
    if known is not None:
        return known
    if code and code.split("-")[0].lower() == "tr":
        return "crh"
    return None


class Translator:
    """One language: messages, plurals, dates and numbers."""

    def __init__(self, lang: str, translations: gettext.NullTranslations) -> None:
        self.lang = lang
        self._translations = translations

    def gettext(self, message: str) -> str:
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._translations.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self._translations.pgettext(context, message)

    def format_date(self, value: date) -> str:
        """Day, month, year in every language: `05.12.2024` (uk, ru), `5 Dec 2024` (en)."""
        if self.lang == "crh":
            return f"{value.day:02d}.{value.month:02d}.{value.year}"
        if self.lang == "en":
            return babel_format_date(value, "d MMM y", locale=_CLDR_LOCALES["en"])
        return babel_format_date(value, "dd.MM.y", locale=_CLDR_LOCALES[self.lang])

    def format_datetime(self, value: datetime) -> str:
        return f"{self.format_date(value.date())} {value.hour:02d}:{value.minute:02d}"

    def format_month_day(self, value: date) -> str:
        if self.lang == "crh":
            return f"{value.day} {_CRH_MONTHS[value.month - 1]}"
        return babel_format_date(value, "d MMMM", locale=_CLDR_LOCALES[self.lang])

    def format_number(self, value: float) -> str:
        """Thousands grouped as each language writes them: `12 345` (uk, ru, crh), `12,345` (en)."""
        if self.lang == "crh":
            whole = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
            return whole.replace(",", "\u00a0")
        return format_decimal(value, locale=_CLDR_LOCALES[self.lang])


def _compile(po_path: Path) -> gettext.GNUTranslations:
    """Compile a .po in memory; fuzzy entries are left out (they fall back to English)."""
    with po_path.open("rb") as handle:
        catalog = read_po(handle, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class I18n:
    """All four catalogs, loaded once; `get(lang)` gives the translator for a user's language."""

    def __init__(self, locales_dir: Path | None = None, default_language: str = DEFAULT_LANGUAGE):
        directory = locales_dir or default_locales_dir()
        self.default_language = default_language if default_language in LANGUAGES else "uk"
        self._translators: dict[str, Translator] = {}
        for lang in LANGUAGES:
            po_path = directory / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
            translations: gettext.NullTranslations
            translations = _compile(po_path) if po_path.exists() else gettext.NullTranslations()
            self._translators[lang] = Translator(lang, translations)

    def get(self, lang: str | None) -> Translator:
        if lang in self._translators:
            return self._translators[lang]
        return self._translators[self.default_language]
