"""The whole report conversation in each of the four languages, through the sandbox, and a check
that nothing English reaches a relative who speaks Ukrainian, Crimean Tatar or Russian.

How "English" is recognised (two independent checks, both must pass):

1. Against the catalog. Every msgid in locales/hotline.pot whose translation in the run's
   language differs from the English is cut into fragments at placeholders, HTML tags and
   sentence punctuation; each fragment of three or more words is an English phrase. A bot text
   (message, caption, edited versions, button label) is English if it contains one of these phrases
   or, for short msgids like "Skip" or "Yes", if a line or a button label equals one. A string left
   untranslated (empty or fuzzy: shown in English) or translated by copying the English fails this.
2. Against the words themselves, which also catches English that never went through gettext (a
   string literal in a handler). After removing what legitimately stays as written (the relative's
   own answers, case codes, /commands, "Telegram"), no English stop-word may appear as a word
   ("the", "your", "please", ...), and in the Cyrillic languages (uk, ru) no Latin word of three or
   more letters at all.

The English run is the control: the same checks must find English there, so they are not vacuous.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from bot.callbacks import HIDE, REPORT
from bot.i18n import catalog_path, default_locales_dir, load_catalog
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage
from tests.handlers.report_flow import FULL, ORDER, Tap, begin
from tests.support.harness import BotHarness

CASE_CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}\b")
COMMAND = re.compile(r"/[a-z_]+")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
TAG = re.compile(r"<[^<>]+>")
SENTENCE_BREAK = re.compile(r"[.:;!?()\n\u2022\u00b7\u2026\"\u201c\u201d]|, ")
WORD = re.compile(r"[A-Za-z']+")
LATIN_WORD = re.compile(r"\b[A-Za-z]{3,}\b")
KEPT_AS_WRITTEN = ("Telegram",)
STOP_WORDS = frozenset(
    [
        "the",
        "your",
        "you",
        "please",
        "report",
        "case",
        "cases",
        "detention",
        "detained",
        "status",
        "with",
        "this",
        "that",
        "from",
        "what",
        "when",
        "where",
        "will",
        "have",
        "has",
        "been",
        "send",
        "sent",
        "here",
        "there",
        "they",
        "their",
        "and",
        "for",
        "not",
        "only",
        "which",
        "who",
        "whom",
        "was",
        "were",
        "are",
        "about",
    ]
)
INVALID_DATE = "32.13.2024"


def english_phrases(lang: str) -> tuple[set[str], set[str]]:
    """(phrases of 3+ words, whole short texts) of every msgid this language translates."""
    template = load_catalog(default_locales_dir() / "hotline.pot")
    catalog = load_catalog(catalog_path(default_locales_dir(), lang))
    phrases: set[str] = set()
    whole: set[str] = set()
    for message in template:
        if not message.id:
            continue
        ids = list(message.id) if message.pluralizable else [message.id]
        have = catalog.get(message.id, context=message.context)
        strings = have.string if have is not None else ""
        translations = list(strings) if isinstance(strings, (list, tuple)) else [strings]
        for english in ids:
            if english in translations:
                continue  # written the same in this language (e.g. "Telegram id: {id}")
            plain = TAG.sub(" ", PLACEHOLDER.sub("\n", str(english)))
            for fragment in SENTENCE_BREAK.split(plain):
                words = WORD.findall(fragment)
                if len(words) >= 3:
                    phrases.add(" ".join(words).lower())
                elif words and fragment.strip() == plain.strip():
                    whole.add(" ".join(words).lower())
    return phrases, whole


def texts_of(message: BotMessage) -> Iterator[str]:
    """Every text a relative sees from one message: its versions and its button labels."""
    yield message.plain
    for revision in message.edits:
        yield revision.plain
        yield from (label for row in revision.buttons for label, _ in row)
    yield from (label for row in message.buttons for label, _ in row)


def without_kept_text(text: str) -> str:
    """The text minus what stays as written: the relative's answers, codes, commands."""
    for answer in FULL.values():
        if isinstance(answer, str):
            text = text.replace(answer, " ")
    for kept in KEPT_AS_WRITTEN:
        text = text.replace(kept, " ")
    return COMMAND.sub(" ", CASE_CODE.sub(" ", text))


def english_in(text: str, lang: str, phrases: set[str], whole: set[str]) -> list[str]:
    """What in `text` is English, by the two checks of the module docstring."""
    found: list[str] = []
    normalised = " ".join(WORD.findall(without_kept_text(text))).lower()
    found += [phrase for phrase in phrases if re.search(rf"\b{re.escape(phrase)}\b", normalised)]
    for line in text.splitlines() or [text]:
        words = " ".join(WORD.findall(line)).lower()
        if words in whole and not re.search(r"[^\x00-\x7f]", line):
            found.append(line)
    rest = without_kept_text(text)
    found += [w for w in WORD.findall(rest) if w.lower() in STOP_WORDS]
    if lang in ("uk", "ru"):
        found += LATIN_WORD.findall(rest)
    return found


async def report_in(sandbox: SandboxServer, lang: str) -> list[BotMessage]:
    """/start, the full report (with one invalid date on the way), and /status after it."""
    user = sandbox.add_user(language_code=lang).id
    await sandbox.send_text(user, "/start")
    await sandbox.next_message(user)
    question = await begin(sandbox, user)
    for key in ORDER:
        value = FULL[key]
        if key == "detention_date":
            await sandbox.send_text(user, INVALID_DATE)
            question = await sandbox.next_message(user)  # asked again, politely
        if isinstance(value, Tap):
            data = REPORT.build("a", key, value.value)
            assert data in question.callback_data, (key, question.callback_data)
            await sandbox.press(user, question.message_id, data)
        else:
            await sandbox.send_text(user, value)
        question = await sandbox.next_message(user)
    summary = question
    await sandbox.press(user, summary.message_id, REPORT.build("confirm"))
    filed = await sandbox.next_message(user)
    assert CASE_CODE.search(filed.plain), filed.plain
    offer = await sandbox.next_message(user)
    assert HIDE.build("chat") in offer.callback_data
    await sandbox.send_text(user, "/status")
    status = await sandbox.next_message(user)
    assert CASE_CODE.search(filed.plain).group(0) in status.plain  # type: ignore[union-attr]
    await sandbox.send_text(user, "/help")
    await sandbox.next_message(user)
    return sandbox.messages(user)


@pytest.mark.parametrize("lang", ["uk", "crh", "ru"])
async def test_no_english_reaches_a_relative_in_their_language(
    running_bot: BotHarness, lang: str
) -> None:
    messages = await report_in(running_bot.sandbox, lang)
    phrases, whole = english_phrases(lang)
    english = {
        text: found
        for message in messages
        for text in texts_of(message)
        if (found := english_in(text, lang, phrases, whole))
    }
    assert english == {}
    assert len(messages) >= len(ORDER) + 6  # the whole conversation was seen


async def test_the_english_run_is_recognised_as_english(running_bot: BotHarness) -> None:
    """The control: the checks above find English in the English run, message by message."""
    messages = await report_in(running_bot.sandbox, "en")
    phrases, whole = english_phrases("uk")
    flagged = [
        message
        for message in messages
        if any(english_in(text, "uk", phrases, whole) for text in texts_of(message))
    ]
    assert len(flagged) == len(messages)


def test_an_untranslated_string_would_be_caught() -> None:
    """Each check alone: a long message, a short button label, and English outside the catalog."""
    phrases, whole = english_phrases("ru")
    assert english_in("Please choose one of the buttons.", "ru", phrases, whole)
    assert english_in("Skip", "ru", phrases, whole)
    assert english_in("Дело K7M4-9XQ2: processing", "ru", phrases, whole)
    assert english_in("İş K7M4-9XQ2: your case", "crh", *english_phrases("crh"))
    assert not english_in("Дело K7M4-9XQ2 в Telegram: /status", "ru", phrases, whole)
