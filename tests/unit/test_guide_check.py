"""tools/guide_check.py (make lint) keeps the guide's four languages in step, and `bot.guide`
reads and checks the files the same way for the bot and the import command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from bot.callbacks import MAX_BYTES
from bot.guide import (
    GuideError,
    bundled_sources,
    default_guide_dir,
    load_guide,
    pages_for_report,
    reading_order,
)
from handlers.guide import decode_first, encode_first, page_screen

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "guide_check.py"


@pytest.fixture
def guide_dir(tmp_path: Path) -> Path:
    """A copy of locales/guide/ to break."""
    folder = tmp_path / "guide"
    shutil.copytree(default_guide_dir(), folder)
    return folder


def run_check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), str(folder)], capture_output=True, text=True, check=False
    )


def drop_page(folder: Path, language: str, page: str) -> None:
    path = folder / f"{language}.toml"
    source = path.read_text(encoding="utf-8")
    start = source.index(f'[[page]]\nid = "{page}"')
    end = source.find("[[page]]", start + 1)
    path.write_text(source[:start] + (source[end:] if end != -1 else ""), encoding="utf-8")


def replace(folder: Path, language: str, old: str, new: str) -> None:
    path = folder / f"{language}.toml"
    source = path.read_text(encoding="utf-8")
    assert old in source, old
    path.write_text(source.replace(old, new, 1), encoding="utf-8")


def test_the_repository_guide_passes() -> None:
    result = run_check(default_guide_dir())
    assert result.returncode == 0, result.stdout
    assert "in step" in result.stdout


def test_the_check_catches_a_missing_page(guide_dir: Path) -> None:
    drop_page(guide_dir, "crh", "parcels")
    result = run_check(guide_dir)
    assert result.returncode == 1
    assert "crh: page 'parcels' is missing" in result.stdout


@pytest.mark.parametrize(
    ("language", "old", "new", "problem"),
    [
        ("ru", 'id = "court"', 'id = "courts"', "ru: page 'court' is missing"),
        ("en", 'title = "A lawyer"', 'title = ""', "page lawyer title: empty"),
        ("uk", "• Одразу запишіть", "• <b>Одразу запишіть", "not valid Telegram HTML"),
        ("en", "Be calm, firm and polite.", "Be calm. " + "x" * 400, "characters, at most 1000"),
        ("crh", 'title = "Advokat"', 'title = "Адвокат"', "a Cyrillic letter in Crimean Tatar"),
        ("en", 'id = "money"\n', 'id = "money"\nnote = "x"\n', "unknown key 'note'"),
        ("ru", "contact = true\n", "", "page 'money' contact differs from uk"),
        ("en", 'language = "en"', 'language = "ru"', "[meta] language says 'ru'"),
        ("uk", 'title = "Адвокат"\n', 'title = "Адвокат\\nі суд"\n', "must be one line"),
    ],
)
def test_the_check_catches(
    guide_dir: Path, language: str, old: str, new: str, problem: str
) -> None:
    replace(guide_dir, language, old, new)
    result = run_check(guide_dir)
    assert result.returncode == 1
    assert problem in result.stdout, result.stdout


def test_pages_out_of_order_and_a_missing_language(guide_dir: Path) -> None:
    source = (guide_dir / "en.toml").read_text(encoding="utf-8")
    start = source.index('[[page]]\nid = "money"')
    money = source[start:]
    drop_page(guide_dir, "en", "money")
    first = (guide_dir / "en.toml").read_text(encoding="utf-8").index("[[page]]")
    text = (guide_dir / "en.toml").read_text(encoding="utf-8")
    (guide_dir / "en.toml").write_text(text[:first] + money + "\n" + text[first:], "utf-8")
    (guide_dir / "ru.toml").unlink()
    output = run_check(guide_dir).stdout
    assert "en: pages are not in the order of uk" in output
    assert "ru.toml: missing" in output


def test_a_broken_guide_does_not_load() -> None:
    sources = bundled_sources()
    sources["en"] = sources["en"].replace("[meta]", "[meta", 1)
    with pytest.raises(GuideError) as raised:
        load_guide(sources)
    assert any("not valid TOML" in problem for problem in raised.value.problems)


def test_titles_are_escaped_and_texts_kept_as_html() -> None:
    from bot.i18n import I18n

    sources = bundled_sources()
    for language in sources:
        sources[language] = sources[language].replace(
            'id = "lawyer"\ntitle = "', 'id = "lawyer"\ntitle = "<Tom & Jerry> ', 1
        )
    book = load_guide(sources).book("en")
    screen = page_screen(I18n().get("en"), book, "lawyer", [], ["Phone: <1> & 2"])
    assert screen.text.startswith("<b>&lt;Tom &amp; Jerry&gt; A lawyer</b>")
    assert "Phone:" not in screen.text  # the lawyer page shows no contacts


@pytest.mark.parametrize(
    ("answers", "today", "expected"),
    [
        ({"lawyer": "no", "held_in": None}, None, ["lawyer", "where"]),
        ({"lawyer": "yes", "held_in": "SIZO-1"}, None, []),
        ({"lawyer": "unknown", "held_in": "SIZO-1"}, None, ["lawyer"]),
        ({"lawyer": None}, None, ["lawyer", "where"]),
        (
            {"lawyer": "no", "detention_date": "2026-03-01"},
            date(2026, 3, 2),
            ["lawyer", "first_day", "where"],
        ),
        ({"lawyer": "yes", "held_in": "x", "detention_date": "2026-01-01"}, date(2026, 3, 2), []),
        ({"lawyer": "yes", "held_in": "x", "detention_date": "bad"}, date(2026, 3, 2), []),
    ],
)
def test_pages_for_report(
    answers: dict[str, object], today: date | None, expected: list[str]
) -> None:
    assert pages_for_report(answers, today=today) == expected


def test_the_first_pages_always_fit_a_button() -> None:
    data = encode_first(["abcdefghijkl", "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"])
    assert decode_first(data) == ["abcdefghijkl", "bbbbbbbbbbbb", "cccccccccccc"]
    assert len(f"gd:p:abcdefghijkl:{data}".encode()) <= MAX_BYTES
    assert encode_first(["bad id!", "lawyer"]) == "lawyer"
    assert encode_first([]) == "-" and decode_first("-") == []
    assert reading_order(["a", "b", "c", "d"], ["c", "x", "a", "c"]) == ["c", "a", "b", "d"]
