"""Issue 13: a release that changes the report form carries every open form over.

Relatives stand at every place of the form (consent, each question, the summary, a question
reopened from the summary) under release N. The bot is killed and started again under release
N+1, whose registry has a question inserted. Each relative then goes on from the message they
last saw, answering with other values than before, and files. The case must hold the release-N
value of every question answered before the restart: an answer lost (and asked again) would
hold the second value, or be missing.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select

from bot.callbacks import REPORT
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage
from storage import fields
from storage.fields import TEXT, Field, Registry
from storage.models import Case, CaseContact, CasePersonal
from tests.handlers.report_flow import FULL, ORDER, Tap, answer, begin
from tests.support.harness import BotHarness, harness_settings
from tests.support.sealed import every_key

SECOND: dict[str, str | Tap] = {
    "relation": Tap("spouse"),
    "name": "Bondarenko Olha Petrivna",
    "birth": "02.02.1990",
    "detention_date": "06.12.2024",
    "region": Tap("kherson"),
    "arrest_place": "Henichesk",
    "detained_by": Tap("police"),
    "charges": "sabotage",
    "held_in": "SIZO-2",
    "lawyer": Tap("no"),
    "health": "none known",
    "documents": Tap("done"),
    "phone": "+380 50 111 22 33",
    "visibility": Tap("public"),
    "known_as": "Olia",
}
"""What relatives answer after the restart."""
STORED = {
    "relation": ("contact", "relation", {"parent", "spouse"}),
    "name": ("personal", "detainee_name", None),
    "birth": ("personal", "birth_date", {"21.03.1985": "1985-03-21", "02.02.1990": "1990-02-02"}),
    "detention_date": ("case", "detention_date", None),
    "region": ("case", "region", None),
    "arrest_place": ("personal", "arrest_place", None),
    "detained_by": ("case", "detained_by", None),
    "charges": ("personal", "charges", None),
    "held_in": ("personal", "held_in", None),
    "lawyer": ("personal", "lawyer", None),
    "health": ("personal", "health", None),
    "phone": ("contact", "contact_phone", None),
    "visibility": ("case", "visibility", None),
}
KNOWN_AS = Field(
    "known_as",
    "Known as",
    TEXT,
    None,
    question="Is the person known by another name?",
    optional=False,
    in_form=True,
)
PLACES = ["consent", *ORDER, "summary", "reopened"]


def inserted(after: str) -> Registry:
    """Release N+1: a required question after `after`."""
    order = list(fields.FIELDS)
    index = next(i for i, f in enumerate(order) if f.key == after) + 1
    return Registry([*order[:index], KNOWN_AS, *order[index:]])


def moved_and_inserted_first() -> Registry:
    """Release N+1, another shape: an optional question first, "detained by" before region."""
    order = [f for f in fields.FIELDS if f.key != "detained_by"]
    region = next(i for i, f in enumerate(order) if f.key == "region")
    order.insert(region, fields.REGISTRY["detained_by"])
    return Registry([replace(KNOWN_AS, optional=True), *order])


async def _reach(sandbox: SandboxServer, user: int, place: str) -> BotMessage:
    """Under release N, answer with FULL up to `place`; returns the message last seen."""
    if place == "consent":
        await sandbox.send_text(user, "/report")
        return await sandbox.next_message(user)
    question = await begin(sandbox, user)
    upto = len(ORDER) if place in ("summary", "reopened") else ORDER.index(place)
    for key in ORDER[:upto]:
        question = await answer(sandbox, user, question, key, FULL[key])
    if place == "reopened":
        await sandbox.press(user, question.message_id, REPORT.build("edit", "charges"))
        question = await sandbox.next_message(user)
    return question


def _answered_before(place: str) -> set[str]:
    if place == "consent":
        return set()
    if place == "summary":
        return set(ORDER)
    if place == "reopened":
        return set(ORDER) - {"charges"}
    return set(ORDER[: ORDER.index(place)])


def _key_of(question: BotMessage) -> str:
    backs = [REPORT.parse(data) for data in question.callback_data]
    keys = [p.args[0] for p in backs if p is not None and p.verb == "back"]
    assert len(keys) == 1, (question.plain, question.callback_data)
    return keys[0]


async def _finish(sandbox: SandboxServer, user: int, seen: BotMessage) -> None:
    """From the message last seen, answer with SECOND whatever is asked, and confirm."""
    message = seen
    for _ in range(3 * len(PLACES)):
        if REPORT.build("consent", "yes") in message.callback_data:
            await sandbox.press(user, message.message_id, REPORT.build("consent", "yes"))
            message = await sandbox.next_message(user)
        elif REPORT.build("confirm") in message.callback_data:
            await sandbox.press(user, message.message_id, REPORT.build("confirm"))
            message = await sandbox.next_message(user)
            if "Your case code is" in message.plain:
                await sandbox.next_message(user)  # the offer to hide the chat
                return
        else:
            key = _key_of(message)
            message = await answer(sandbox, user, message, key, SECOND[key])
    raise AssertionError(f"the form did not finish: {message.plain}")


def _expected(key: str, value: str | Tap) -> object:
    _, _, words = STORED[key]
    if isinstance(value, Tap):
        return value.value
    if key == "detention_date":
        day, month, year = (int(part) for part in value.split("."))
        return date(year, month, day)
    if key == "phone":
        return value.replace(" ", "")
    if isinstance(words, dict):
        return words[value]
    return value


async def _stored(bot: BotHarness, code_of_user: int) -> dict[str, object]:
    services = bot.services
    assert services is not None
    opener = await every_key(services.sessions, services.cipher)
    async with services.sessions() as session:
        contact = await session.scalar(
            select(CaseContact).where(CaseContact.user_id == bot.key(code_of_user))
        )
        assert contact is not None
        case = await session.get(Case, contact.case_id)
        personal = await session.get(CasePersonal, contact.case_id)
    rows = {"case": case, "personal": personal, "contact": contact}
    values: dict[str, object] = {}
    for key, (table, column, _) in STORED.items():
        raw = getattr(rows[table], column)
        values[key] = opener.open(raw) if isinstance(raw, bytes) else raw
    return values


@pytest.mark.parametrize(
    "release",
    [pytest.param(lambda: inserted("region"), id="required-question-inserted"),
     pytest.param(moved_and_inserted_first, id="optional-first-and-one-moved")],
)  # fmt: skip
async def test_every_open_form_finishes_after_a_release_changes_the_questions(
    sandbox: SandboxServer,
    sqlite_database_url: str,
    data_key: str,
    i18n: I18n,
    monkeypatch: pytest.MonkeyPatch,
    release: object,
) -> None:
    bot = BotHarness(
        sandbox=sandbox,
        settings=harness_settings(
            sandbox, sqlite_database_url, data_key, messages_per_minute=1000, reports_per_day=50
        ),
        i18n=i18n,
    )
    users = {place: sandbox.add_user(language_code="en").id for place in PLACES}
    try:
        await bot.start()
        seen = await asyncio.gather(*(_reach(sandbox, users[p], p) for p in PLACES))
        await bot.kill()
        assert callable(release)
        monkeypatch.setattr(fields, "REGISTRY", release())
        await bot.start()
        await asyncio.gather(
            *(_finish(sandbox, users[p], m) for p, m in zip(PLACES, seen, strict=True))
        )
        for place in PLACES:
            before = _answered_before(place)
            stored = await _stored(bot, users[place])
            expected = {
                key: _expected(key, (FULL if key in before else SECOND)[key]) for key in STORED
            }
            assert stored == expected, place
    finally:
        await bot.close()
