"""The pure checks of the report form's answers."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.enums import Region
from storage.field_checks import (
    NAME_LIMIT,
    Birth,
    Invalid,
    clean_text,
    parse_birth,
    parse_choice,
    parse_detention_date,
    parse_name,
    parse_phone,
    parse_text,
)

TODAY = date(2025, 6, 15)
WORDS = {"today": ["сьогодні", "today"], "yesterday": ["вчора", "yesterday"]}


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("05.12.2024", date(2024, 12, 5)),
        ("5.12.2024", date(2024, 12, 5)),
        ("2024-12-05", date(2024, 12, 5)),
        ("05/12/24", date(2024, 12, 5)),
        (" Сьогодні ", TODAY),
        ("вчора", date(2025, 6, 14)),
        ("2014-01-01", date(2014, 1, 1)),
    ],
)
def test_detention_dates_accepted(typed: str, expected: date) -> None:
    assert parse_detention_date(typed, today=TODAY, words=WORDS) == expected


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("31.02.2024", "does not exist"),
        ("16.06.2025", "future"),
        ("31.12.2013", "since 2014"),
        ("soon", "could not read"),
        ("", "could not read"),
    ],
)
def test_detention_dates_refused_with_a_reason(typed: str, reason: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_detention_date(typed, today=TODAY, words=WORDS)
    assert reason in refused.value.msgid


def test_birth_is_a_date_or_an_age() -> None:
    assert parse_birth("21.03.1985", today=TODAY) == Birth(birth_date=date(1985, 3, 21))
    assert parse_birth("~45", today=TODAY) == Birth(age=45)
    for bad in ("0", "200", "01.01.2030", "01.01.1850", "forty"):
        with pytest.raises(Invalid):
            parse_birth(bad, today=TODAY)


def test_text_limits_and_control_characters() -> None:
    assert parse_name("  Ivan\x00 \u202ePetrenko\t") == "Ivan Petrenko"
    with pytest.raises(Invalid) as too_long:
        parse_name("a" * (NAME_LIMIT + 1))
    assert too_long.value.params == {"length": NAME_LIMIT + 1, "limit": NAME_LIMIT}
    with pytest.raises(Invalid):
        parse_name("12345")
    assert parse_text("line one\r\n\n\n\nline two\x1b") == "line one\n\nline two"
    with pytest.raises(Invalid):
        parse_text(" \x07 ")


@given(st.text(max_size=300))
def test_cleaned_text_has_no_control_characters(text: str) -> None:
    cleaned = clean_text(text, multiline=True)
    # Format characters (Cf) such as the zero-width joiner stay: some scripts need them.
    bidi = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
    for ch in cleaned:
        assert ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn")
        assert ch not in bidi


def test_phone_shape() -> None:
    assert parse_phone("+380 (67) 123-45-67") == "+380671234567"
    for bad in ("12345", "call me", "+1234567890123456", "++380671234567"):
        with pytest.raises(Invalid):
            parse_phone(bad)


def test_choices_are_rechecked() -> None:
    assert parse_choice("crimea", Region) is Region.CRIMEA
    with pytest.raises(Invalid):
        parse_choice("atlantis", Region)
