"""The "what to do" guide as data: read from catalog-like TOML files, checked, kept in step.

Content lives in `locales/guide/<language>.toml` (one file per language, edited by translators,
not code): a `[meta]` table (language, title, intro) and one `[[page]]` per screen (id, title,
text, optional `contact = true` to show the hotline's contacts under it). Everything here is
pure (standard library `tomllib` and the Telegram HTML parser of `bot.sandbox.html`): the bot
loads and checks the files at start, `python -m bot guide import` checks a new version before it
is stored, and `tools/guide_check.py` (make lint) checks the files in the repository, all with
the same rules:

- the four languages have the same pages, in the same order, with the same keys and the same
  `contact` flags;
- nothing is empty; a page's text is valid Telegram HTML of at most 1,000 characters (measured as
  Telegram measures, after the tags); titles are plain text of at most 60 characters;
- Crimean Tatar is written in Latin script (a Cyrillic letter there is a slip).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bot.i18n import LANGUAGES
from bot.sandbox.html import EntityParseError, parse_html, utf16_len

TEXT_LIMIT = 1000
TITLE_LIMIT = 60
PAGE_ID = re.compile(r"^[a-z][a-z0-9_]{0,11}$")
"""Short enough that three of them fit in a button's 64 bytes (`handlers.guide`)."""
META_KEYS = frozenset({"language", "title", "intro"})
PAGE_KEYS = frozenset({"id", "title", "text"})
OPTIONAL_PAGE_KEYS = frozenset({"contact"})
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
REFERENCE_LANGUAGE = "uk"
"""The language the others are compared with (page order, keys)."""


class GuideError(ValueError):
    """The guide cannot be used; `problems` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Page:
    id: str
    title: str
    """Plain text: escaped where shown."""
    text: str
    """Telegram HTML, checked."""
    contact: bool = False


@dataclass(frozen=True)
class Book:
    """The guide in one language."""

    language: str
    title: str
    intro: str
    pages: tuple[Page, ...]

    def page(self, page_id: str) -> Page | None:
        return next((page for page in self.pages if page.id == page_id), None)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(page.id for page in self.pages)


@dataclass(frozen=True)
class Guide:
    """Every language's book; `version` is the imported version (None: the bundled files)."""

    books: Mapping[str, Book]
    version: int | None = None

    def book(self, language: str | None) -> Book:
        """The reader's language, else Ukrainian (every language has every page)."""
        return self.books.get(language or "", self.books[REFERENCE_LANGUAGE])

    @property
    def ids(self) -> tuple[str, ...]:
        return self.books[REFERENCE_LANGUAGE].ids


def default_guide_dir() -> Path:
    """`locales/guide/` of the repository (the package is installed editable, as for i18n)."""
    return Path(__file__).resolve().parent.parent / "locales" / "guide"


def guide_path(directory: Path, language: str) -> Path:
    return directory / f"{language}.toml"


def bundled_sources(directory: Path | None = None) -> dict[str, str]:
    """The TOML source of each language file that exists."""
    folder = directory or default_guide_dir()
    return {
        language: guide_path(folder, language).read_text(encoding="utf-8")
        for language in LANGUAGES
        if guide_path(folder, language).exists()
    }


# -- reading and checking -------------------------------------------------------------------------


def _html_problem(text: str) -> tuple[str | None, int]:
    """Why `text` is not valid Telegram HTML (None if it is), and its length as Telegram counts."""
    try:
        parsed = parse_html(text)
    except EntityParseError as error:
        return f"not valid Telegram HTML ({error.detail})", 0
    return None, utf16_len(parsed.plain)


def _check_string(where: str, value: object, *, html: bool, limit: int) -> list[str]:
    if not isinstance(value, str) or not value.strip():
        return [f"{where}: empty or not a string"]
    if not html:
        if "\n" in value.strip():
            return [f"{where}: must be one line"]
        if len(value.strip()) > limit:
            return [f"{where}: {len(value.strip())} characters, at most {limit}"]
        return []
    problem, length = _html_problem(value.strip())
    if problem is not None:
        return [f"{where}: {problem}"]
    if length > limit:
        return [f"{where}: {length} characters, at most {limit}"]
    return []


def _raw(source: str, origin: str) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        return tomllib.loads(source), []
    except tomllib.TOMLDecodeError as error:
        return None, [f"{origin}: not valid TOML ({error})"]


def read_book(source: str, origin: str) -> tuple[Book | None, list[str]]:
    """One language file: the book, or the problems that stop it from being used."""
    data, problems = _raw(source, origin)
    if data is None:
        return None, problems
    meta = data.get("meta")
    pages = data.get("page")
    if not isinstance(meta, dict):
        return None, [f"{origin}: no [meta] table"]
    if not isinstance(pages, list) or not pages:
        return None, [f"{origin}: no [[page]]"]
    unknown = set(data) - {"meta", "page"}
    if unknown:
        problems.append(f"{origin}: unknown tables {sorted(unknown)}")
    problems += _keys(f"{origin} [meta]", meta, META_KEYS, frozenset())
    language = meta.get("language")
    if language not in LANGUAGES:
        problems.append(f"{origin} [meta] language: {language!r} is not one of {LANGUAGES}")
    problems += _check_string(
        f"{origin} [meta] title", meta.get("title"), html=False, limit=TITLE_LIMIT
    )
    problems += _check_string(
        f"{origin} [meta] intro", meta.get("intro"), html=True, limit=TEXT_LIMIT
    )
    read: list[Page] = []
    for number, page in enumerate(pages, 1):
        if not isinstance(page, dict):
            problems.append(f"{origin} page {number}: not a table")
            continue
        page_id = page.get("id")
        where = f"{origin} page {page_id if isinstance(page_id, str) else number}"
        problems += _keys(where, page, PAGE_KEYS, OPTIONAL_PAGE_KEYS)
        if not isinstance(page_id, str) or not PAGE_ID.match(page_id):
            problems.append(
                f"{where}: id must be a-z, 0-9 or _, at most 12, starting with a letter"
            )
        elif page_id in {known.id for known in read}:
            problems.append(f"{where}: a second page with this id")
        problems += _check_string(
            f"{where} title", page.get("title"), html=False, limit=TITLE_LIMIT
        )
        problems += _check_string(f"{where} text", page.get("text"), html=True, limit=TEXT_LIMIT)
        if not isinstance(page.get("contact", False), bool):
            problems.append(f"{where} contact: must be true or false")
        if problems:
            continue
        read.append(
            Page(
                id=str(page_id),
                title=str(page["title"]).strip(),
                text=str(page["text"]).strip(),
                contact=bool(page.get("contact", False)),
            )
        )
    if language == "crh":
        problems += _latin_only(origin, meta, pages)
    if problems:
        return None, problems
    book = Book(
        language=str(language),
        title=str(meta["title"]).strip(),
        intro=str(meta["intro"]).strip(),
        pages=tuple(read),
    )
    return book, []


def _keys(
    where: str, table: Mapping[str, object], required: frozenset[str], optional: frozenset[str]
) -> list[str]:
    problems = [f"{where}: missing {key!r}" for key in sorted(required - set(table))]
    problems += [
        f"{where}: unknown key {key!r}" for key in sorted(set(table) - required - optional)
    ]
    return problems


def _latin_only(origin: str, meta: Mapping[str, object], pages: list[Any]) -> list[str]:
    strings = [("[meta]", meta.get("title")), ("[meta]", meta.get("intro"))]
    strings += [(f"page {page.get('id')}", page.get(key)) for page in pages for key in PAGE_KEYS]
    return [
        f"{origin} {where}: a Cyrillic letter in Crimean Tatar ({found.group()!r})"
        for where, value in strings
        if isinstance(value, str) and (found := CYRILLIC.search(value))
    ]


def in_step(books: Mapping[str, Book], sources: Mapping[str, str]) -> list[str]:
    """Every language present, with the reference language's pages, order, keys and flags."""
    problems = [
        f"{language}.toml: missing (the guide needs every language)"
        for language in LANGUAGES
        if language not in sources
    ]
    reference = books.get(REFERENCE_LANGUAGE)
    if reference is None:
        return problems
    for language, book in books.items():
        if language == REFERENCE_LANGUAGE:
            continue
        missing = [page for page in reference.ids if page not in book.ids]
        extra = [page for page in book.ids if page not in reference.ids]
        problems += [f"{language}: page {page!r} is missing" for page in missing]
        problems += [f"{language}: page {page!r} is not in {REFERENCE_LANGUAGE}" for page in extra]
        if not missing and not extra and book.ids != reference.ids:
            problems.append(f"{language}: pages are not in the order of {REFERENCE_LANGUAGE}")
        for page in book.pages:
            model = reference.page(page.id)
            if model is not None and model.contact != page.contact:
                problems.append(f"{language}: page {page.id!r} contact differs from uk")
    problems += _same_keys(sources)
    return problems


def _same_keys(sources: Mapping[str, str]) -> list[str]:
    """Each page has the same keys in every language (a key one translator added is a slip)."""
    keys: dict[str, dict[str, frozenset[str]]] = {}
    for language, source in sources.items():
        data, _ = _raw(source, language)
        pages = data.get("page") if data else None
        if isinstance(pages, list):
            keys[language] = {
                str(page.get("id")): frozenset(page) for page in pages if isinstance(page, dict)
            }
    reference = keys.get(REFERENCE_LANGUAGE, {})
    return [
        f"{language}: page {page!r} has keys {sorted(found)}, uk has {sorted(reference[page])}"
        for language, pages in keys.items()
        for page, found in pages.items()
        if page in reference and found != reference[page]
    ]


def check_sources(sources: Mapping[str, str], names: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of a whole guide (one TOML source per language; `names` say which file
    each came from, for the messages)."""
    problems: list[str] = []
    books: dict[str, Book] = {}
    for language, source in sources.items():
        origin = (names or {}).get(language, f"{language}.toml")
        book, found = read_book(source, origin)
        problems += found
        if book is not None and book.language != language:
            problems.append(f"{origin}: [meta] language says {book.language!r}")
        elif book is not None:
            books[language] = book
    return problems + in_step(books, sources)


def load_guide(sources: Mapping[str, str], version: int | None = None) -> Guide:
    """The guide, or GuideError with every problem."""
    problems = check_sources(sources)
    if problems:
        raise GuideError(problems)
    books = {}
    for language, source in sources.items():
        book, _ = read_book(source, language)
        assert book is not None
        books[language] = book
    return Guide(books=books, version=version)


def language_of(source: str, origin: str) -> str:
    """The `[meta] language` of one file (for the import command), or GuideError."""
    data, problems = _raw(source, origin)
    meta = data.get("meta") if data else None
    language = meta.get("language") if isinstance(meta, dict) else None
    if problems or language not in LANGUAGES:
        raise GuideError(problems or [f"{origin}: [meta] language must be one of {LANGUAGES}"])
    return str(language)


# -- reading order --------------------------------------------------------------------------------


def reading_order(all_ids: Iterable[str], first: Iterable[str]) -> list[str]:
    """The pages `first` (those that exist, once each) and then the others in the guide's order."""
    known = list(all_ids)
    front = [page for page in dict.fromkeys(first) if page in known]
    return front + [page for page in known if page not in front]


RECENT_DAYS = 2


def pages_for_report(answers: Mapping[str, Any], *, today: date | None = None) -> list[str]:
    """The guide's pages that fit a report's answers, most pressing first (at most three):
    no lawyer -> the lawyer page first; detained in the last two days (when `today` is given)
    -> the first 24 hours; a lawyer not known -> the lawyer page; where they are held not known
    -> finding them. Pure: the report form passes its draft (`answers["lawyer"]` is "yes", "no",
    "unknown" or None; `detention_date` an ISO date; `held_in` text or None)."""
    pages: list[str] = []
    lawyer = answers.get("lawyer")
    if lawyer == "no":
        pages.append("lawyer")
    detained = answers.get("detention_date")
    if today is not None and isinstance(detained, str):
        try:
            recent = today - date.fromisoformat(detained) <= timedelta(days=RECENT_DAYS)
        except ValueError:
            recent = False
        if recent:
            pages.append("first_day")
    if lawyer in (None, "", "unknown"):
        pages.append("lawyer")
    if not answers.get("held_in"):
        pages.append("where")
    return pages[:3]
