"""bot.i18n: plural rules from the catalog headers, fallbacks, Telegram codes, dates and numbers."""

from __future__ import annotations

import gettext
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import babel.localedata
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from bot.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    PLURAL_FORMS,
    I18n,
    catalog_path,
    default_locales_dir,
    language_from_telegram,
    load_catalog,
    suggested_language,
)
from bot.texts.vocabulary import LANGUAGE_NAMES

# n -> index of the plural form, as Ukrainian and Russian grammar wants it.
SLAVIC = {0: 2, 1: 0, 2: 1, 4: 1, 5: 2, 11: 2, 12: 2, 14: 2, 21: 0, 22: 1, 25: 2, 101: 0, 111: 2}
TWO_FORMS = {0: 1, 1: 0, 2: 1, 5: 1, 11: 1, 21: 1, 111: 1}
EXPECTED_FORMS = {"uk": SLAVIC, "ru": SLAVIC, "en": TWO_FORMS, "crh": TWO_FORMS}

SINGULAR = "{count} case"
PLURAL = "{count} cases"


def _make_locales(tmp_path: Path, plural_forms: dict[str, str]) -> Path:
    """Catalogs with one plural message whose forms say their own index: `form1:{count}`."""
    locales = tmp_path / "locales"
    for lang in LANGUAGES:
        catalog = Catalog(domain="hotline", charset="utf-8", fuzzy=False)
        catalog.mime_headers = [("Language", lang), ("Plural-Forms", plural_forms[lang])]
        forms = tuple(f"{lang}-form{i}:{{count}}" for i in range(catalog.num_plurals))
        catalog.add((SINGULAR, PLURAL), forms)
        catalog.add("Hello", f"Hello in {lang}")
        catalog.add("Half", "", flags=[])
        catalog.add("Unsure", f"Unsure in {lang}", flags=["fuzzy"])
        catalog.add(("{n} file", "{n} files"), (f"{lang} one", ""))
        catalog.add("Open", f"Open (door) in {lang}", context="door")
        path = catalog_path(locales, lang)
        path.parent.mkdir(parents=True)
        with path.open("wb") as handle:
            write_po(handle, catalog)
    return locales


def _repo_plural_forms() -> dict[str, str]:
    """The Plural-Forms headers of the real catalogs, so a wrong header fails these tests."""
    return {
        lang: load_catalog(catalog_path(default_locales_dir(), lang)).plural_forms
        for lang in LANGUAGES
    }


@pytest.mark.parametrize("lang", LANGUAGES)
def test_repo_catalog_headers_pick_the_right_plural_form(lang: str) -> None:
    header = _repo_plural_forms()[lang]
    expression = header.split("plural=", 1)[1].rstrip(";")
    rule: Callable[[int], int] = gettext.c2py(expression)
    assert {n: rule(n) for n in EXPECTED_FORMS[lang]} == EXPECTED_FORMS[lang]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_ngettext_through_compiled_catalog_picks_the_right_form(tmp_path: Path, lang: str) -> None:
    tr = I18n(_make_locales(tmp_path, _repo_plural_forms())).get(lang)
    for n, index in EXPECTED_FORMS[lang].items():
        assert tr.ngettext(SINGULAR, PLURAL, n) == f"{lang}-form{index}:{{count}}", n


def test_a_wrong_plural_header_would_be_caught(tmp_path: Path) -> None:
    wrong = {lang: "nplurals=2; plural=(n != 1);" for lang in LANGUAGES}
    tr = I18n(_make_locales(tmp_path, wrong)).get("uk")
    picked = {n: int(tr.ngettext(SINGULAR, PLURAL, n).split("form")[1][0]) for n in SLAVIC}
    assert picked != SLAVIC


def test_plural_forms_constant_matches_the_repo_catalogs() -> None:
    for lang, header in _repo_plural_forms().items():
        assert header.replace(" ", "") == PLURAL_FORMS[lang].replace(" ", "")


def test_fuzzy_empty_and_half_empty_translations_fall_back_to_english(tmp_path: Path) -> None:
    tr = I18n(_make_locales(tmp_path, _repo_plural_forms())).get("uk")
    assert tr.gettext("Hello") == "Hello in uk"
    assert tr.gettext("Half") == "Half"
    assert tr.gettext("Unsure") == "Unsure"
    assert tr.ngettext("{n} file", "{n} files", 1) == "{n} file"
    assert tr.ngettext("{n} file", "{n} files", 5) == "{n} files"
    assert tr.gettext("Not in any catalog") == "Not in any catalog"
    assert tr.gettext("") == ""


def test_pgettext_uses_the_context(tmp_path: Path) -> None:
    tr = I18n(_make_locales(tmp_path, _repo_plural_forms())).get("ru")
    assert tr.pgettext("door", "Open") == "Open (door) in ru"
    assert tr.pgettext("case", "Open") == "Open"


def test_missing_or_empty_locales_dir_works(tmp_path: Path) -> None:
    i18n = I18n(tmp_path / "nothing-here")
    assert i18n.get("crh").gettext("Hello") == "Hello"
    assert i18n.get("uk").ngettext("a", "b", 5) == "b"


def test_unknown_or_missing_language_falls_back_to_default() -> None:
    i18n = I18n()
    assert i18n.get(None).lang == DEFAULT_LANGUAGE == "uk"
    assert i18n.get("de").lang == "uk"
    assert i18n.get("").lang == "uk"
    assert I18n(default_language="en").get("xx").lang == "en"
    assert I18n(default_language="klingon").get(None).lang == "uk"
    assert {lang: i18n.get(lang).lang for lang in LANGUAGES} == {lang: lang for lang in LANGUAGES}


def test_language_names_are_written_in_their_own_language() -> None:
    assert LANGUAGE_NAMES == {
        "uk": "Українська",
        "crh": "Qırımtatarca",
        "en": "English",
        "ru": "Русский",
    }


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("uk", "uk"),
        ("uk-UA", "uk"),
        ("UK_ua", "uk"),
        ("ru", "ru"),
        ("ru-RU", "ru"),
        ("en", "en"),
        ("en-GB", "en"),
        ("crh", "crh"),
        ("tr", None),
        ("de", None),
        ("", None),
        (None, None),
    ],
)
def test_language_from_telegram(code: str | None, expected: str | None) -> None:
    assert language_from_telegram(code) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [("tr", "crh"), ("tr-TR", "crh"), ("uk", "uk"), ("en-US", "en"), ("de", None), (None, None)],
)
def test_suggested_language(code: str | None, expected: str | None) -> None:
    assert suggested_language(code) == expected


def test_crh_loads_and_formats_without_cldr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing may need CLDR data for crh: loading it raises here, and nothing notices."""
    real_load = babel.localedata.load

    def guarded_load(name: str, merge_inherited: bool = True) -> object:
        assert not name.startswith("crh"), "CLDR data was asked for crh"
        return real_load(name, merge_inherited)

    monkeypatch.setattr(babel.localedata, "load", guarded_load)
    tr = I18n().get("crh")
    assert tr.lang == "crh"
    assert tr.format_date(date(2024, 12, 5)) == "05.12.2024"
    assert tr.format_datetime(datetime(2024, 12, 5, 9, 7)) == "05.12.2024 09:07"
    assert tr.format_number(1234567) == "1\u00a0234\u00a0567"
    assert tr.format_number(1234.5) == "1\u00a0234,5"
    assert tr.format_percent(0.25) == "25%"
    assert tr.format_month_day(date(2024, 5, 9)) == "9 mayıs"
    assert tr.ngettext("{n} day", "{n} days", 2) == "{n} days"


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("uk", "05.12.2024"), ("ru", "05.12.2024"), ("crh", "05.12.2024"), ("en", "5 Dec 2024")],
)
def test_format_date_is_day_month_year(lang: str, expected: str) -> None:
    assert I18n().get(lang).format_date(date(2024, 12, 5)) == expected


def test_format_datetime_uses_24_hours() -> None:
    i18n = I18n()
    moment = datetime(2024, 12, 5, 18, 30)
    assert i18n.get("uk").format_datetime(moment) == "05.12.2024 18:30"
    assert i18n.get("en").format_datetime(moment) == "5 Dec 2024 18:30"


@pytest.mark.parametrize(
    ("lang", "value", "expected"),
    [
        ("uk", 12345, "12\u00a0345"),
        ("ru", 12345, "12\u00a0345"),
        ("crh", 12345, "12\u00a0345"),
        ("en", 12345, "12,345"),
        ("uk", 1234.5, "1\u00a0234,5"),
        ("en", 1234.5, "1,234.5"),
        ("crh", -1234567.25, "-1\u00a0234\u00a0567,25"),
        ("crh", 0, "0"),
        ("crh", 999, "999"),
        ("uk", 999, "999"),
    ],
)
def test_format_number_groups_thousands(lang: str, value: float, expected: str) -> None:
    assert I18n().get(lang).format_number(value) == expected


def test_format_percent() -> None:
    i18n = I18n()
    assert i18n.get("en").format_percent(0.5) == "50%"
    assert i18n.get("uk").format_percent(0.5) == "50%"
    assert i18n.get("ru").format_percent(0.5) == "50\u00a0%"


def test_format_month_day() -> None:
    i18n = I18n()
    assert i18n.get("uk").format_month_day(date(2024, 12, 5)) == "5 грудня"
    assert i18n.get("en").format_month_day(date(2024, 12, 5)) == "5 December"
    assert i18n.get("crh").format_month_day(date(2024, 12, 5)) == "5 dekabr"


ERASED = (
    "An unfinished report is erased after {days} day.",
    "An unfinished report is erased after {days} days.",
)


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        # n = 1, 2, 5, 21, 22, 25: one, few, many, one again, few again, many again
        ("uk", ("день", "дні", "днів", "день", "дні", "днів")),
        ("ru", ("день", "дня", "дней", "день", "дня", "дней")),
    ],
)
def test_real_catalog_plural_forms_for_1_2_5_21_22_25(lang: str, words: tuple[str, ...]) -> None:
    """A real plural message from the repo catalogs through the real I18n: the right word."""
    tr = I18n(default_locales_dir()).get(lang)
    for n, word in zip((1, 2, 5, 21, 22, 25), words, strict=True):
        text = tr.ngettext(*ERASED, n).format(days=n)
        assert text.endswith(f" {n} {word}."), (n, text)
        assert "unfinished" not in text
