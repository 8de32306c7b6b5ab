"""The fields of a case, as data: one registry entry per field.

A `Field` says where its value is stored (table, column, sealed or not), who may see it, its
label and, if the report form asks it, its question; its `Kind` (how an answer is checked, kept
in the form and shown), its choices, whether it may be left out, whether the form asks it and
whether staff may edit it. What used to be written out in several places is derived from
`REGISTRY`: the report form's questions in order (`REGISTRY.form`) and its version, the mapping
of the form's answers to columns (`storage.reports.file_report`), the personal-field lists
(`REGISTRY.columns(PERSONAL)`), the staff card's lines and /mydata.

Kinds are shared by fields (`TEXT`, `DETENTION_DATE`, `CHOICE`, `Date()`, `ListOf(item)`...): a
field of a known kind is one entry; a new kind of value (a date and time, a sentence in years
and regime) is one class here. Nothing
here knows Telegram or the catalogs: a shown value goes through `Words`, which the bot's
translator satisfies, and labels are msgids translated where they are shown.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Protocol

from storage import field_checks as checks
from storage import record_values
from storage.field_checks import Invalid
from storage.field_words import (
    ACCESS_WORDS,
    CUSTODY_WORDS,
    DATE_WORDS,
    DETAINER_WORDS,
    FLAG_WORDS,
    LAWYER_WORDS,
    REGIME_WORDS,
    REGION_WORDS,
    RELATION_WORDS,
    VISIBILITY_WORDS,
)
from storage.msgids import N_

Json = Any
"""A form answer: what `json` keeps (str, int, None, lists and dicts of them)."""

CASES = "cases"
PERSONAL = "case_personal"
RECORDS = "case_records"
CONTACTS = "case_contacts"
NAME = "name"
BIRTH = "birth"
"""Keys the duplicate check reads (`storage.reports.person_index`)."""


class Audience(StrEnum):
    """Who may see a field's value."""

    FAMILY = "family"  # the family (who told it) and staff
    PUBLIC = "public"  # also monitors, when the family made the case public
    STAFF = "staff"  # staff only


@dataclass(frozen=True)
class Stored:
    """Where a field's value lives: `sealed` columns hold tokens of the case's data key."""

    table: str
    column: str
    sealed: bool = True


class Words(Protocol):
    """What showing a value needs of a translator (`bot.i18n.Translator` has it)."""

    def gettext(self, message: str) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int) -> str: ...

    def format_date(self, value: date) -> str: ...

    def format_datetime(self, value: datetime) -> str: ...


@dataclass(frozen=True)
class Typing:
    """What a typed or tapped answer is checked against: the day, and the words the user may
    type for today and yesterday (their language's and English), given by the handler."""

    today: date
    relative: Mapping[str, Iterable[str]] = field(default_factory=dict)


# -- kinds ---------------------------------------------------------------------------------------


class Kind:
    """How one kind of value is answered, checked, kept in the form, stored and shown.

    By default an answer is a button of the field's choices; subclasses accept typed text
    (`typed`), files (`files`) or extra buttons (`extra`: label msgid, value).
    """

    typed = False
    files = False
    extra: tuple[tuple[str, str], ...] = ()

    def parse(self, text: str, typing: Typing) -> Json:
        """A typed answer, checked; raises `Invalid` with the reason."""
        raise Invalid(N_("Please choose one of the buttons."))

    def tap(self, fld: Field, value: str, typing: Typing, current: Json) -> Json:
        """The answer a tapped button gives (button data can be forged: checked here)."""
        if fld.choices is not None and value in fld.choices:
            return value
        raise Invalid(N_("Please use the buttons."))

    def skip(self, current: Json) -> Json:
        """The answer when the relative taps Skip."""
        return None

    def keeps(self, fld: Field, answer: Json) -> bool:
        """Whether an answer given under an earlier release still fits (carried over)."""
        return True

    def column(self, answer: Json, today: date) -> object:
        """The value its column holds (before sealing)."""
        return answer

    def from_column(self, stored: object) -> Json:
        """A stored (opened) value back in the form's JSON shape (the record keeps these)."""
        if isinstance(stored, date):
            return stored.isoformat()
        return stored

    def show_answer(self, words: Words, fld: Field, answer: Json) -> str:
        """A form answer as the summary shows it."""
        return "—" if answer is None else self.show(words, fld, answer)

    def show(self, words: Words, fld: Field, stored: object) -> str:
        """A stored (opened) value as staff, the family or monitors read it."""
        if fld.choices is not None:
            msgid = fld.choices.get(str(stored))
            return words.gettext(msgid) if msgid else str(stored)
        return str(stored)

    @property
    def name(self) -> str:
        return type(self).__name__


class Choice(Kind):
    """One of the field's choices, tapped."""

    def keeps(self, fld: Field, answer: Json) -> bool:
        return answer is None or fld.choices is None or str(answer) in fld.choices


@dataclass(frozen=True)
class Text(Kind):
    """Free text, cleaned of control characters, at most `limit` characters."""

    limit: int = checks.TEXT_LIMIT
    multiline: bool = True
    letters: bool = False  # a name: must contain letters

    typed = True

    def parse(self, text: str, typing: Typing) -> Json:
        if self.letters:
            return checks.parse_name(text)
        return checks.parse_text(text, limit=self.limit, multiline=self.multiline)


DateCheck = Callable[..., date]


@dataclass(frozen=True)
class Date(Kind):
    """A day, typed (05.12.2024, 2024-12-05, "today") or tapped (the field's choices: today,
    yesterday); kept in the form as an ISO date, stored in a Date column."""

    check: DateCheck = checks.parse_date

    typed = True

    def parse(self, text: str, typing: Typing) -> Json:
        return self.check(text, today=typing.today, words=typing.relative).isoformat()

    def tap(self, fld: Field, value: str, typing: Typing, current: Json) -> Json:
        if fld.choices is None or value not in fld.choices:
            raise Invalid(N_("Please use the buttons."))
        return self.check(value, today=typing.today, words={value: [value]}).isoformat()

    def column(self, answer: Json, today: date) -> object:
        return date.fromisoformat(answer) if isinstance(answer, str) else None

    def show(self, words: Words, fld: Field, stored: object) -> str:
        if isinstance(stored, date):
            return words.format_date(stored)
        try:
            return words.format_date(date.fromisoformat(str(stored)))
        except ValueError:
            return str(stored)


class BirthOrAge(Kind):
    """A date of birth, or an approximate age when the date is not known. In the form
    ``{"date": ISO}`` or ``{"age": N}``; stored as text: the ISO date, or "age N on <day>"."""

    typed = True

    def parse(self, text: str, typing: Typing) -> Json:
        birth = checks.parse_birth(text, today=typing.today)
        if birth.birth_date is not None:
            return {"date": birth.birth_date.isoformat()}
        return {"age": birth.age}

    def keeps(self, fld: Field, answer: Json) -> bool:
        return answer is None or isinstance(answer, dict)

    def column(self, answer: Json, today: date) -> object:
        when, age = birth_of(answer)
        if when is not None:
            return when.isoformat()
        if age is not None:
            return f"age {age} on {today.isoformat()}"
        return None

    def show_answer(self, words: Words, fld: Field, answer: Json) -> str:
        when, age = birth_of(answer)
        if when is not None:
            return words.format_date(when)
        if age is not None:
            return words.gettext("about {age} years old").format(age=age)
        return "—"

    def show(self, words: Words, fld: Field, stored: object) -> str:
        text = str(stored)
        if text.startswith("age ") and " on " in text:
            age, _, day = text.removeprefix("age ").partition(" on ")
            try:
                on = words.format_date(date.fromisoformat(day))
            except ValueError:
                return text
            return words.gettext("about {age} years old on {date}").format(age=age, date=on)
        try:
            return words.format_date(date.fromisoformat(text))
        except ValueError:
            return text


def birth_of(answer: Json) -> tuple[date | None, int | None]:
    """(date of birth, age) of a birth answer."""
    if not isinstance(answer, dict):
        return None, None
    when = answer.get("date")
    age = answer.get("age")
    return (
        date.fromisoformat(when) if isinstance(when, str) else None,
        age if isinstance(age, int) else None,
    )


class Phone(Kind):
    """A phone number, or (the extra button) "contact me here only": answered, no number."""

    typed = True
    extra = ((N_("Contact me here only"), "here"),)

    def parse(self, text: str, typing: Typing) -> Json:
        return checks.parse_phone(text)

    def tap(self, fld: Field, value: str, typing: Typing, current: Json) -> Json:
        if value == "here":
            return None
        raise Invalid(N_("Please use the buttons."))

    def show_answer(self, words: Words, fld: Field, answer: Json) -> str:
        return words.gettext("Contact me here only") if answer is None else str(answer)


FILES_LIMIT = 10


class Files(Kind):
    """Photos and documents, kept by their Telegram file ids, until Done; Skip keeps what was
    sent. Not stored in a column: filing adds them to the reporter's thread."""

    files = True
    extra = ((N_("Done"), "done"),)

    def tap(self, fld: Field, value: str, typing: Typing, current: Json) -> Json:
        if value == "done":
            return self.skip(current)
        raise Invalid(N_("Please use the buttons."))

    def skip(self, current: Json) -> Json:
        return list(current) if isinstance(current, list) else []

    def keeps(self, fld: Field, answer: Json) -> bool:
        return isinstance(answer, list)

    def add(self, current: Json, kind: str, file_id: str) -> list[dict[str, str]] | None:
        """The list with one more file; None when the form takes no more."""
        files = self.skip(current)
        if len(files) >= FILES_LIMIT:
            return None
        return [*files, {"kind": kind, "file_id": file_id}]

    def column(self, answer: Json, today: date) -> object:
        return None

    def show_answer(self, words: Words, fld: Field, answer: Json) -> str:
        count = len(answer) if isinstance(answer, list) else 0
        if not count:
            return "—"
        return words.ngettext("{count} file", "{count} files", count).format(count=count)


class Hearing(Kind):
    """A court hearing: a day and, if known, a time, typed in court time (Moscow time, as the
    courts of occupied Crimea sit); kept as a UTC instant (ISO), shown in court time."""

    typed = True

    def parse(self, text: str, typing: Typing) -> Json:
        return record_values.parse_hearing(text, today=typing.today).isoformat()

    def column(self, answer: Json, today: date) -> object:
        return datetime.fromisoformat(answer).astimezone(UTC) if isinstance(answer, str) else None

    def from_column(self, stored: object) -> Json:
        return stored.isoformat() if isinstance(stored, datetime) else stored

    def show(self, words: Words, fld: Field, stored: object) -> str:
        instant = stored if isinstance(stored, datetime) else datetime.fromisoformat(str(stored))
        local = record_values.court_time(instant)
        if (local.hour, local.minute) == (0, 0):  # the time is not known
            return words.format_date(local.date())
        return words.gettext("{when} (Moscow time)").format(when=words.format_datetime(local))


class Articles(Kind):
    """Articles of the criminal code: `205.5 ч. 2, 275.1` → [{"number", "part"}...]."""

    typed = True

    def parse(self, text: str, typing: Typing) -> Json:
        return [article.as_json() for article in record_values.parse_articles(text)]

    def show(self, words: Words, fld: Field, stored: object) -> str:
        shown = []
        for article in stored if isinstance(stored, list) else []:
            if article.get("part"):
                shown.append(words.gettext("art. {number} part {part}").format(**article))
            else:
                shown.append(words.gettext("art. {number}").format(number=article["number"]))
        return ", ".join(shown)


class Months(Kind):
    """A term of years and months (`12`, `12 6`, `12,5`), kept in months."""

    typed = True

    def parse(self, text: str, typing: Typing) -> Json:
        return record_values.parse_sentence_months(text)

    def show(self, words: Words, fld: Field, stored: object) -> str:
        years, months = divmod(int(str(stored)), 12)
        parts = []
        if years:
            parts.append(words.ngettext("{count} year", "{count} years", years).format(count=years))
        if months:
            parts.append(
                words.ngettext("{count} month", "{count} months", months).format(count=months)
            )
        return " ".join(parts)


class Flags(Kind):
    """Some of the field's choices at once; a button per choice and one for all of them. Kept
    as a list; its column holds the list as JSON (sealed when the field is)."""

    ALL = "all"

    def tap(self, fld: Field, value: str, typing: Typing, current: Json) -> Json:
        if fld.choices is not None and value == self.ALL:
            return list(fld.choices)
        if fld.choices is not None and value in fld.choices:
            return [value]
        raise Invalid(N_("Please use the buttons."))

    def column(self, answer: Json, today: date) -> object:
        return json.dumps(answer) if isinstance(answer, list) else None

    def from_column(self, stored: object) -> Json:
        return json.loads(stored) if isinstance(stored, str) else stored

    def show(self, words: Words, fld: Field, stored: object) -> str:
        flags = self.from_column(stored)
        choices = fld.choices or {}
        return ", ".join(words.gettext(choices.get(f, f)) for f in flags or [])


@dataclass(frozen=True)
class ListOf(Kind):
    """Several values of one kind, typed on separate lines or separated by ";" (articles of the
    criminal code: "205.5 part 2; 275.1"), each checked by `item`; a list in the form, JSON text
    in its column, shown joined by commas."""

    item: Kind = field(default_factory=Text)

    typed = True

    @property
    def name(self) -> str:
        return f"ListOf[{self.item.name}]"

    def parse(self, text: str, typing: Typing) -> Json:
        parts = [part for part in re.split(r"[;\n]", text) if part.strip()]
        if not parts:
            raise Invalid(N_("Please write the answer in words, or use the buttons."))
        return [self.item.parse(part, typing) for part in parts]

    def keeps(self, fld: Field, answer: Json) -> bool:
        return answer is None or (
            isinstance(answer, list) and all(self.item.keeps(fld, one) for one in answer)
        )

    def column(self, answer: Json, today: date) -> object:
        return json.dumps(answer, ensure_ascii=False) if answer else None

    def show_answer(self, words: Words, fld: Field, answer: Json) -> str:
        if not answer:
            return "—"
        return ", ".join(self.item.show_answer(words, fld, one) for one in answer)

    def show(self, words: Words, fld: Field, stored: object) -> str:
        try:
            values = json.loads(str(stored))
        except ValueError:
            return str(stored)
        if not isinstance(values, list):
            return str(stored)
        return ", ".join(self.item.show(words, fld, one) for one in values)


CHOICE = Choice()
NAME_TEXT = Text(limit=checks.NAME_LIMIT, multiline=False, letters=True)
LINE = Text(limit=checks.PLACE_LIMIT, multiline=False)
TEXT = Text()
BIRTH_OR_AGE = BirthOrAge()
DETENTION_DATE = Date(check=checks.parse_detention_date)
PHONE = Phone()
FILES = Files()
DATE = Date()
HEARING = Hearing()
ARTICLES = Articles()
MONTHS = Months()
FLAGS = Flags()


# -- fields --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One field of a case. `question` is asked by the report form when `in_form`; staff may
    change it from the card when `staff_editable`; `fact` fields are compared when staff check
    two reports of one person; `formerly` lists the keys it had in earlier releases (open forms
    carry their answers over)."""

    key: str
    label: str
    kind: Kind
    stored: Stored | None
    audience: Audience = Audience.FAMILY
    question: str | None = None
    choices: Mapping[str, str] | None = None
    optional: bool = True
    in_form: bool = False
    staff_editable: bool = False
    fact: bool = True
    per_row: int = 1
    formerly: tuple[str, ...] = ()

    @property
    def column(self) -> str | None:
        return self.stored.column if self.stored is not None else None


class Registry:
    """The fields in order, and what is derived from them."""

    def __init__(self, fields: Iterable[Field]) -> None:
        self.fields = tuple(fields)
        self._by_key = {f.key: f for f in self.fields}
        self._renamed = {old: f.key for f in self.fields for old in f.formerly}
        _check(self.fields, self._by_key, self._renamed)
        self.form = tuple(f for f in self.fields if f.in_form)
        fingerprint = "|".join(f"{f.key}:{f.kind.name}:{int(f.optional)}" for f in self.form)
        self.version = hashlib.blake2b(fingerprint.encode(), digest_size=6).hexdigest()
        """The form's version: changes whenever a question is added, removed, moved, renamed,
        or changes its kind or whether it may be skipped (`storage.forms.carry_over`)."""

    def get(self, key: str | None) -> Field | None:
        return self._by_key.get(key or "")

    def __getitem__(self, key: str) -> Field:
        return self._by_key[key]

    def current_key(self, key: str) -> str | None:
        """The key a field has now, for a key of this or an earlier release (None: gone)."""
        return key if key in self._by_key else self._renamed.get(key)

    def stored_in(self, table: str) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.stored is not None and f.stored.table == table)

    def columns(self, table: str) -> tuple[str, ...]:
        return tuple(f.stored.column for f in self.stored_in(table) if f.stored is not None)

    def compared(self) -> tuple[Field, ...]:
        """Facts of a report that staff compare between two reports of one person."""
        return tuple(f for f in self.stored_in(CASES) + self.stored_in(PERSONAL) if f.fact)

    def record(self) -> tuple[Field, ...]:
        """The prisoner's record staff keep (storage/record.py): custody and `case_records`."""
        return tuple(
            f
            for f in self.fields
            if f.stored is not None and (f.stored.table == RECORDS or f.key == "custody")
        )

    def by_column(self, table: str, column: str) -> Field | None:
        for f in self.stored_in(table):
            if f.column == column:
                return f
        return None


def _check(
    fields: tuple[Field, ...], by_key: Mapping[str, Field], renamed: Mapping[str, str]
) -> None:
    """A registry a release can rely on: unique keys, former keys unused, form fields asked."""
    if len(by_key) != len(fields):
        raise ValueError("two fields share a key")
    if set(renamed) & set(by_key):
        raise ValueError("a former key is a field's key today")
    for f in fields:
        if f.in_form and f.question is None:
            raise ValueError(f"{f.key}: a form field needs its question")


FIELDS: tuple[Field, ...] = (
    Field("relation", N_("You are"), CHOICE, Stored(CONTACTS, "relation", sealed=False),
          question=N_("Who are you to the detained person?"), choices=RELATION_WORDS,
          optional=False, in_form=True, fact=False, per_row=2),
    Field(NAME, N_("Name"), NAME_TEXT, Stored(PERSONAL, "detainee_name"), Audience.PUBLIC,
          question=N_("What is the detained person's full name? (surname, first name, "
                      "patronymic)"),
          optional=False, in_form=True, staff_editable=True),
    Field(BIRTH, N_("Date of birth"), BIRTH_OR_AGE, Stored(PERSONAL, "birth_date"),
          question=N_("Their date of birth, for example 21.03.1985? If you do not know it, "
                      "write their approximate age, for example 45."),
          in_form=True, staff_editable=True),
    Field("detention_date", N_("Detained on"), DETENTION_DATE,
          Stored(CASES, "detention_date", sealed=False), Audience.PUBLIC,
          question=N_("When were they detained? Write the date, for example 05.12.2024, or "
                      "tap a button."),
          choices=DATE_WORDS, optional=False, in_form=True, staff_editable=True, per_row=2),
    Field("region", N_("Region"), CHOICE, Stored(CASES, "region", sealed=False), Audience.PUBLIC,
          question=N_("Where were they detained?"), choices=REGION_WORDS, optional=False,
          in_form=True, staff_editable=True),
    Field("arrest_place", N_("Place of arrest"), LINE, Stored(PERSONAL, "arrest_place"),
          question=N_("In which town or village, or at what address?"), in_form=True,
          staff_editable=True, formerly=("place",)),
    Field("detained_by", N_("Detained by"), CHOICE, Stored(CASES, "detained_by", sealed=False),
          question=N_("Who detained them?"), choices=DETAINER_WORDS, in_form=True,
          staff_editable=True, per_row=2),
    Field("charges", N_("Accused of"), TEXT, Stored(PERSONAL, "charges"),
          question=N_("What are they accused of, if you know?"), in_form=True,
          staff_editable=True),
    Field("held_in", N_("Held at"), TEXT, Stored(PERSONAL, "held_in"),
          question=N_("Where are they held now, if you know?"), in_form=True,
          staff_editable=True, formerly=("held_at",)),
    Field("lawyer", N_("Lawyer"), CHOICE, Stored(PERSONAL, "lawyer"),
          question=N_("Do they have a lawyer?"), choices=LAWYER_WORDS, in_form=True,
          staff_editable=True),
    Field("health", N_("Health"), TEXT, Stored(PERSONAL, "health"),
          question=N_("Are there any health concerns (illness, medicines they need)?"),
          in_form=True, staff_editable=True),
    Field("documents", N_("Documents"), FILES, None,
          question=N_("Do you have photos or files of papers: the detention protocol, a search "
                      "warrant, court papers? Send them here, one or several, then tap Done. "
                      "Or tap Skip."),
          in_form=True, fact=False),
    Field("phone", N_("Contact"), PHONE, Stored(CONTACTS, "contact_phone"),
          question=N_("How can the hotline reach you? Write a phone number, or tap the button "
                      "to be contacted only here in Telegram."),
          in_form=True, fact=False),
    Field("visibility", N_("Publicity"), CHOICE, Stored(CASES, "visibility", sealed=False),
          question=N_("May the hotline speak about this case publicly?"),
          choices=VISIBILITY_WORDS, in_form=True, fact=False),
    # -- the prisoner's record: kept by staff (storage/record.py), never asked in the form ------
    Field("custody", N_("Custody"), CHOICE, Stored(CASES, "custody", sealed=False),
          Audience.PUBLIC, choices=CUSTODY_WORDS, staff_editable=True, fact=False),
    Field("articles", N_("Articles"), ARTICLES, Stored(RECORDS, "articles", sealed=False),
          Audience.PUBLIC, staff_editable=True, fact=False),
    Field("criminal_case", N_("Criminal case or group"), LINE, Stored(RECORDS, "criminal_case"),
          Audience.PUBLIC, staff_editable=True, fact=False),
    Field("court", N_("Court"), LINE, Stored(RECORDS, "court"), Audience.PUBLIC,
          staff_editable=True, fact=False),
    Field("next_hearing", N_("Next hearing"), HEARING,
          Stored(RECORDS, "next_hearing_at", sealed=False), Audience.PUBLIC,
          staff_editable=True, fact=False),
    Field("hearing_access", N_("Hearing open to the public"), CHOICE,
          Stored(RECORDS, "hearing_access", sealed=False), Audience.PUBLIC,
          choices=ACCESS_WORDS, staff_editable=True, fact=False),
    Field("pretrial_until", N_("Pre-trial detention until"), DATE,
          Stored(RECORDS, "pretrial_until", sealed=False), Audience.PUBLIC,
          staff_editable=True, fact=False),
    Field("sentence_term", N_("Sentence"), MONTHS,
          Stored(RECORDS, "sentence_months", sealed=False), Audience.PUBLIC,
          staff_editable=True, fact=False),
    Field("sentence_regime", N_("Regime"), CHOICE,
          Stored(RECORDS, "sentence_regime", sealed=False), Audience.PUBLIC,
          choices=REGIME_WORDS, staff_editable=True, fact=False),
    Field("detention_place", N_("Place of detention"), LINE, Stored(RECORDS, "detention_place"),
          Audience.PUBLIC, staff_editable=True, fact=False),
    Field("postal_address", N_("Postal address for letters"), TEXT,
          Stored(RECORDS, "postal_address"), Audience.PUBLIC, staff_editable=True, fact=False),
    Field("punishment_cell_since", N_("In a punishment cell since"), DATE,
          Stored(RECORDS, "punishment_cell_since", sealed=False), Audience.PUBLIC,
          staff_editable=True, fact=False),
    Field("health_flags", N_("Health"), FLAGS, Stored(RECORDS, "health_flags"),
          choices=FLAG_WORDS, staff_editable=True, fact=False),
    Field("end_of_term", N_("End of term"), DATE, Stored(RECORDS, "end_of_term", sealed=False),
          Audience.PUBLIC, staff_editable=True, fact=False),
)  # fmt: skip
REGISTRY = Registry(FIELDS)
"""Read it as `fields.REGISTRY` at the time of use (tests swap it for a later release's)."""
