"""Pure checks of what staff type into a prisoner's record: no Telegram, no database.

The record holds what the Crimean rights groups' prisoner lists hold: articles of the criminal
code, court, next hearing, sentence, place of detention. Staff type these in a hurry, from court
papers in Russian or a lawyer's message in Ukrainian, so each check accepts the common ways of
writing a value and returns one structured, language-free form that is stored, compared and
rendered in the reader's language later. Every check raises `Invalid` (a msgid and its params)
with the reason, never the typed text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from storage.field_checks import Invalid, clean_text, parse_date
from storage.msgids import N_

MAX_ARTICLES = 8
COURT_ZONE = ZoneInfo("Europe/Simferopol")
"""Courts in occupied Crimea sit on Moscow time: hearing times are typed and shown in it."""
MAX_SENTENCE_YEARS = 30
_ARTICLE = re.compile(
    r"(?<![\d.])(\d{2,3}(?:\.\d{1,2})?)"  # the article: 205.5, 275.1, 278
    r"(?:\s*[,;]?\s*(?:ч\.?|част\w*|part|p\.|qısım|qism)\s*(\d{1,2}))?",  # its part, if given
    re.IGNORECASE,
)
_TIME = re.compile(r"(?:^|\s)(\d{1,2})[:.](\d{2})\s*$")  # a time ends the text: 10:30
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True, order=True)
class Article:
    """An article of the Russian criminal code as applied in occupied Crimea: 205.5 part 2."""

    number: str
    part: int | None = None

    def as_json(self) -> dict[str, object]:
        return {"number": self.number, "part": self.part}

    @classmethod
    def from_json(cls, value: dict[str, object]) -> Article:
        part = value.get("part")
        return cls(str(value["number"]), int(part) if isinstance(part, int) else None)


def parse_articles(text: str) -> list[Article]:
    """`205.5 ч.2, 275.1` → [205.5 part 2, 275.1]; duplicates dropped, order kept."""
    cleaned = clean_text(text)
    found: list[Article] = []
    for number, part in _ARTICLE.findall(cleaned):
        article = Article(number, int(part) if part else None)
        if article not in found:
            found.append(article)
    if not found:
        raise Invalid(N_("I found no article number. Write it like 205.5 part 2, 275.1."))
    if len(found) > MAX_ARTICLES:
        raise Invalid(N_("That is more than {max} articles."), {"max": MAX_ARTICLES})
    return found


def parse_hearing(text: str, *, today: date) -> datetime:
    """`12.01.2027 10:30`, court time (the time is optional: 00:00 means "time not known"); the
    UTC instant. A hearing may be today or later; one in the past is a typing mistake more often
    than not."""
    cleaned = clean_text(text)
    clock = _TIME.search(cleaned)
    at = time(0, 0)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if hour > 23 or minute > 59:
            raise Invalid(N_("Please check the time: write it like 10:30."))
        at = time(hour, minute)
        cleaned = (cleaned[: clock.start()] + cleaned[clock.end() :]).strip()
    day = parse_date(cleaned, today=today)
    if day < today:
        raise Invalid(N_("This date has passed. Please write the date of the next hearing."))
    return datetime.combine(day, at, tzinfo=COURT_ZONE).astimezone(UTC)


def court_time(instant: datetime) -> datetime:
    """A stored UTC instant as the court's wall-clock time."""
    return instant.astimezone(COURT_ZONE)


def parse_record_date(text: str, *, today: date) -> date:
    """A date of the record (detention until, end of term, in a punishment cell since)."""
    return parse_date(clean_text(text), today=today)


def parse_sentence_months(text: str) -> int:
    """A term in months: `12` (years), `12 6` or `12 years 6 months` or `12,5`."""
    numbers = _NUMBER.findall(clean_text(text))
    if not numbers:
        raise Invalid(N_("Write the term in years, for example 12, or 12 6 for 12 years 6 months."))
    years = float(numbers[0].replace(",", "."))
    months = int(numbers[1]) if len(numbers) > 1 and "." not in numbers[1] else 0
    total = round(years * 12) + months
    if not 0 < total <= MAX_SENTENCE_YEARS * 12 or months > 11:
        raise Invalid(N_("Please check the term: between 1 month and {max} years."),
                      {"max": MAX_SENTENCE_YEARS})  # fmt: skip
    return total
