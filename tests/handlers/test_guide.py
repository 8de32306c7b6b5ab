"""The "what to do" guide through the real bot and the sandbox: navigation in four languages
(contents, pages, Back / Contents / Next), the button after a report opening at the pages that fit
its answers, the main menu's button, the hotline's contacts under the money page, an import taking
effect without a restart (audited), a bad import refused, stale buttons answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from telegram import InlineKeyboardMarkup

from bot.callbacks import GUIDE
from bot.cli_commands import guide_import
from bot.guide import Guide, bundled_sources, default_guide_dir, load_guide
from bot.i18n import I18n
from bot.sandbox.html import parse_html
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage
from handlers.guide import guide_button, pages_for_report
from storage.enums import AuditOutcome
from storage.models import AuditEntry, GuideVersion
from tests.support.harness import BotHarness, harness_settings
from tests.support.identity import known_user

GUIDE_FILES = load_guide(bundled_sources())
NAV = {  # the navigation words each language's readers see
    "uk": ("« Назад", "Зміст", "Далі »"),
    "crh": ("« Keri", "Münderece", "İleri »"),
    "en": ("« Back", "Contents", "Next »"),
    "ru": ("« Назад", "Содержание", "Далее »"),
}


def plain(html_text: str) -> str:
    return parse_html(html_text).plain


def labels(message: BotMessage) -> list[str]:
    return [label for row in message.buttons for label, _ in row]


async def reader(bot: BotHarness, language: str | None) -> int:
    assert bot.services is not None
    chat = bot.sandbox.add_user(language_code="en").id
    async with bot.services.sessions() as session, session.begin():
        await known_user(session, bot.services.keys, chat, language)
    return chat


async def turn(bot: BotHarness, chat: int, message: BotMessage, label: str) -> BotMessage:
    """Press the button labelled `label` and return the message once edited."""
    edits = len(message.edits) + 1
    await bot.sandbox.press(chat, message.message_id, message.button_data(label))
    return await bot.sandbox.wait_for_edit(chat, message.message_id, edits=edits)


@pytest.mark.parametrize("language", ["uk", "crh", "en", "ru"])
async def test_navigation_in_each_language(running_bot: BotHarness, language: str) -> None:
    book = GUIDE_FILES.book(language)
    back, contents, after = NAV[language]
    chat = await reader(running_bot, language)
    await running_bot.sandbox.send_text(chat, "/guide")
    toc = await running_bot.sandbox.next_message(chat)
    assert toc.plain == plain(f"<b>{book.title}</b>\n\n{book.intro}")
    assert labels(toc) == [page.title for page in book.pages]
    assert toc.callback_data[0] == GUIDE.build("p", "first_day", "-")

    shown = await turn(running_bot, chat, toc, book.pages[0].title)
    first = book.pages[0]
    assert shown.plain == plain(f"<b>{first.title}</b>\n\n{first.text}\n\n1/10")
    assert labels(shown) == [contents, after]  # no Back on the first page
    assert shown.entities[0]["type"] == "bold"

    shown = await turn(running_bot, chat, shown, after)
    assert shown.plain.startswith(book.pages[1].title) and shown.plain.endswith("2/10")
    assert labels(shown) == [back, contents, after]
    shown = await turn(running_bot, chat, shown, back)
    assert shown.plain.startswith(first.title)
    shown = await turn(running_bot, chat, shown, contents)
    assert labels(shown) == [page.title for page in book.pages]
    shown = await turn(running_bot, chat, shown, book.pages[-1].title)
    assert shown.plain.startswith(book.pages[-1].title) and "10/10" in shown.plain
    assert labels(shown) == [back, contents]  # no Next on the last page
    assert len(running_bot.sandbox.messages(chat)) == 1  # one message, turned like a book


async def test_a_reader_without_a_known_language_reads_ukrainian(running_bot: BotHarness) -> None:
    chat = await reader(running_bot, "de")
    await running_bot.sandbox.send_text(chat, "/guide")
    toc = await running_bot.sandbox.next_message(chat)
    assert labels(toc) == [page.title for page in GUIDE_FILES.book("uk").pages]


async def test_after_a_report_the_guide_opens_at_the_pages_that_fit(
    running_bot: BotHarness,
) -> None:
    """No lawyer, place of detention unknown: the lawyer page, then finding them, then the rest
    in order. The button is the one the report form puts under its last message."""
    chat = await reader(running_bot, "en")
    pages = pages_for_report({"lawyer": "no", "held_in": None, "name": "X"})
    assert pages == ["lawyer", "where"]
    tr = I18n().get("en")
    assert running_bot.application is not None
    filed = await running_bot.application.bot.send_message(
        chat, "Report filed", reply_markup=InlineKeyboardMarkup([[guide_button(tr, pages)]])
    )
    sandbox = running_bot.sandbox
    await sandbox.next_message(chat)
    await sandbox.press(chat, filed.message_id, GUIDE.build("open", "lawyer.where"))
    opened = await sandbox.next_message(chat)  # a new message: the report's stays as it was
    book = GUIDE_FILES.book("en")
    assert opened.plain.startswith("A lawyer") and opened.plain.endswith("1/10")
    assert labels(opened) == ["Contents", "Next »"]
    shown = await turn(running_bot, chat, opened, "Next »")
    assert shown.plain.startswith("Where they are held") and shown.plain.endswith("2/10")
    shown = await turn(running_bot, chat, shown, "Next »")
    assert shown.plain.startswith(book.pages[0].title)  # then the guide from its start
    shown = await turn(running_bot, chat, shown, "« Back")
    assert shown.plain.startswith("Where they are held")


async def test_the_main_menu_opens_the_guide(running_bot: BotHarness) -> None:
    chat = await reader(running_bot, "ru")
    await running_bot.sandbox.send_text(chat, "/start")
    menu = await running_bot.sandbox.next_message(chat)
    assert GUIDE.build("open", "-") in menu.callback_data
    await running_bot.sandbox.press(chat, menu.message_id, GUIDE.build("open", "-"))
    toc = await running_bot.sandbox.next_message(chat)
    assert toc.plain.startswith("Что делать")


@pytest.fixture
async def bot_with_contacts(
    sandbox: SandboxServer, sqlite_database_url: str, data_key: str, i18n: I18n
) -> AsyncIterator[BotHarness]:
    settings = harness_settings(
        sandbox,
        sqlite_database_url,
        data_key,
        contact_phone="+380 44 000 00 00",
        contact_website="https://hotline.example/?a=1&b=<2>",
    )
    bot = BotHarness(sandbox=sandbox, settings=settings, i18n=i18n)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.close()


async def test_the_money_page_shows_the_hotlines_own_contacts(
    bot_with_contacts: BotHarness,
) -> None:
    bot = bot_with_contacts
    chat = await reader(bot, "en")
    await bot.sandbox.send_text(chat, "/guide")
    toc = await bot.sandbox.next_message(chat)
    money = await turn(bot, chat, toc, "We never ask for money")
    assert "Phone: +380 44 000 00 00" in money.plain
    assert "Website: https://hotline.example/?a=1&b=<2>" in money.plain  # escaped, shown as is
    lawyer = await turn(bot, chat, money, "Contents")
    lawyer = await turn(bot, chat, lawyer, "A lawyer")
    assert "Phone:" not in lawyer.plain  # only pages marked `contact = true`


def edited_guide(tmp_path: Path, change: str, into: str, language: str = "en") -> Path:
    source = (default_guide_dir() / f"{language}.toml").read_text(encoding="utf-8")
    assert change in source
    path = tmp_path / f"new-{language}.toml"
    path.write_text(source.replace(change, into, 1), encoding="utf-8")
    return path


async def test_an_import_takes_effect_without_a_restart_and_is_audited(
    running_bot: BotHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chat = await reader(running_bot, "en")
    sandbox = running_bot.sandbox
    await sandbox.send_text(chat, "/guide")
    toc = await sandbox.next_message(chat)
    assert "A lawyer" in labels(toc)
    new = edited_guide(tmp_path, 'title = "A lawyer"', 'title = "Finding a lawyer"')
    assert await guide_import([new], running_bot.settings) == 0
    assert "guide version 1 stored (en changed)" in capsys.readouterr().out
    shown = await turn(running_bot, chat, toc, "A lawyer")  # an old button, same process
    assert shown.plain.startswith("Finding a lawyer")
    shown = await turn(running_bot, chat, shown, "Contents")
    assert "Finding a lawyer" in labels(shown) and "A lawyer" not in labels(shown)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        audit = list(await session.scalars(select(AuditEntry)))
        versions = list(await session.scalars(select(GuideVersion)))
    assert [(a.action, a.outcome, a.detail) for a in audit] == [
        ("guide.import", AuditOutcome.OK, "guide version 1: en")
    ]
    assert len(versions) == 1 and set(versions[0].sources) == {"uk", "crh", "en", "ru"}
    # Importing the same file again stores nothing.
    assert await guide_import([new], running_bot.settings) == 0
    assert "nothing was stored" in capsys.readouterr().out


async def test_an_import_out_of_step_is_refused_and_nothing_changes(
    running_bot: BotHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ru = (default_guide_dir() / "ru.toml").read_text(encoding="utf-8")
    start = ru.index('[[page]]\nid = "visits"')
    end = ru.index("[[page]]", start + 1)
    broken = tmp_path / "ru.toml"
    broken.write_text(ru[:start] + ru[end:], encoding="utf-8")
    assert await guide_import([broken], running_bot.settings) == 1
    out = capsys.readouterr().out
    assert "error: ru: page 'visits' is missing" in out and "nothing was stored" in out
    bad_html = edited_guide(tmp_path, "• Ask to see", "• Ask <b>to see", "en")
    assert await guide_import([bad_html], running_bot.settings) == 1
    assert "not valid Telegram HTML" in capsys.readouterr().out
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        assert list(await session.scalars(select(GuideVersion))) == []
    chat = await reader(running_bot, "ru")
    await running_bot.sandbox.send_text(chat, "/guide")
    toc = await running_bot.sandbox.next_message(chat)
    assert len(labels(toc)) == 10


async def test_stale_and_forged_guide_buttons_are_answered(running_bot: BotHarness) -> None:
    chat = await reader(running_bot, "en")
    sandbox = running_bot.sandbox
    await sandbox.send_text(chat, "/guide")
    toc = await sandbox.next_message(chat)
    query = await sandbox.press(chat, toc.message_id, GUIDE.build("p", "gone", "-"))
    answer = await sandbox.wait_for_callback_answer(query)
    assert answer.text == "This page is no longer in the guide."
    for forged in ("gd:p:<b>", "gd:burn:1", "gd:"):
        query = await sandbox.press(chat, toc.message_id, forged)
        answer = await sandbox.wait_for_callback_answer(query)
        assert answer.text == "This button is no longer valid."
    query = await sandbox.press(chat, toc.message_id, GUIDE.build("open", "zz.<x>"))
    await sandbox.wait_for_callback_answer(query)
    assert (await sandbox.next_message(chat)).plain.startswith("What to do")


def test_the_bundled_guide_is_whole() -> None:
    assert isinstance(GUIDE_FILES, Guide)
    assert GUIDE_FILES.ids == (
        "first_day",
        "search",
        "where",
        "court",
        "lawyer",
        "parcels",
        "visits",
        "register",
        "support",
        "money",
    )
