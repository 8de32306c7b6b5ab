"""Issue 16: the report form's state and answers are one row, written before the next question
is sent; a button of an earlier question asks the current one again; a draft of the PTB
conversation of earlier releases carries over."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.callbacks import REPORT
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from storage import forms
from storage.forms import State
from storage.models import (
    Case,
    CaseContact,
    CasePersonal,
    DataKey,
    PersistenceEntry,
    ReportForm,
)
from storage.persistence import DatabasePersistence
from tests.handlers.report_flow import FULL, answer, answer_from, begin
from tests.support.harness import BotHarness, harness_settings
from tests.support.sealed import every_key


async def _personal(bot: BotHarness) -> dict[str, str | None]:
    services = bot.services
    assert services is not None
    opener = await every_key(services.sessions, services.cipher)
    async with services.sessions() as session:
        row = await session.scalar(select(CasePersonal))
        assert row is not None
        return {
            name: opener.open(getattr(row, name))
            for name in ("detainee_name", "birth_date", "arrest_place", "held_in")
        }


async def test_killed_right_after_the_next_question_the_next_answer_continues(
    harness: BotHarness,
) -> None:
    """The birth answer's reply (the date question) reaches the relative, and at that instant
    the process stops: nothing after the send runs, nothing is flushed. A new process on the
    same database takes the relative's tap on that question."""
    await harness.start()
    sandbox = harness.sandbox
    user = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, user)
    for key in ("relation", "name"):
        question = await answer(sandbox, user, question, key, FULL[key])
    release = sandbox.hold_next_send(user)
    await sandbox.send_text(user, str(FULL["birth"]))
    question = await sandbox.next_message(user)  # shown: the bot is now stuck in that send
    assert REPORT.build("a", "detention_date", "today") in question.callback_data
    frozen = await harness.freeze()
    try:
        await harness.start()
        summary = await answer_from(sandbox, user, question, FULL, start="detention_date")
        await sandbox.press(user, summary.message_id, REPORT.build("confirm"))
        assert "Your case code is" in (await sandbox.next_message(user)).plain
    finally:
        release.set()
        await frozen.bury()
    personal = await _personal(harness)
    assert personal["detainee_name"] == FULL["name"] and personal["birth_date"] == "1985-03-21"


async def test_state_and_answers_are_one_row_and_go_when_the_form_ends(
    running_bot: BotHarness,
) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    user = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, user)
    question = await answer(sandbox, user, question, "relation", FULL["relation"])
    question = await answer(sandbox, user, question, "name", FULL["name"])
    async with services.sessions() as session:
        form = await forms.load(session, services.cipher, running_bot.key(user))
        row = await session.get(ReportForm, running_bot.key(user))
        assert row is not None and b"Petrenko" not in row.answers  # sealed
        key_id = row.data_key_id
        conversations = await session.scalar(
            select(func.count())
            .select_from(PersistenceEntry)
            .where(PersistenceEntry.kind.like("conv:%"))
        )
    assert form is not None and form.version == forms.new_form().version
    assert (form.state, form.step) == (State.QUESTION, "birth")
    assert form.answers == {"relation": "parent", "name": FULL["name"]}
    assert conversations == 0  # no PTB conversation state any more
    await sandbox.send_text(user, "/cancel")
    assert "Nothing has been stored" in (await sandbox.next_message(user)).plain
    async with services.sessions() as session:
        assert await session.get(ReportForm, running_bot.key(user)) is None
        assert await session.get(DataKey, key_id) is None  # its copies cannot be opened


async def test_a_button_of_an_earlier_question_asks_the_current_one_again(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    first = await begin(sandbox, user)
    question = await answer(sandbox, user, first, "relation", FULL["relation"])
    question = await answer(sandbox, user, question, "name", FULL["name"])
    query = await sandbox.press(user, first.message_id, REPORT.build("a", "relation", "friend"))
    answered = await sandbox.wait_for_callback_answer(query)
    assert answered.text == "This button belongs to an earlier question."
    asked = await sandbox.next_message(user)
    assert asked.plain == question.plain and asked.callback_data == question.callback_data
    summary = await answer_from(sandbox, user, asked, FULL, start="birth")
    assert "Parent" in summary.plain and "Friend" not in summary.plain


async def test_a_draft_of_the_release_before_carries_over(
    sandbox: SandboxServer, sqlite_database_url: str, data_key: str, i18n: I18n
) -> None:
    """A relative at "Town or address?" (key `place`) when the bot is upgraded: their next
    answer is that question's, stored as `arrest_place`, and every earlier answer stays."""
    bot = BotHarness(
        sandbox=sandbox,
        settings=harness_settings(sandbox, sqlite_database_url, data_key),
        i18n=i18n,
    )
    user = sandbox.add_user(language_code="en").id
    try:
        await bot.start()
        await sandbox.send_text(user, "/start")
        await sandbox.next_message(user)
        await bot.stop()
        services = bot.services
        assert services is not None
        legacy = {
            "relation": "parent",
            "name": FULL["name"],
            "birth": None,
            "age": 45,
            "detention_date": "2024-12-05",
            "region": "crimea",
            "_at": "place",
        }
        persistence = DatabasePersistence(services.sessions, services.cipher, services.keys)
        await persistence.update_user_data(user, {"report": legacy})
        await persistence.update_conversation("report", (user, user), 6)
        await bot.start()
        await sandbox.send_text(user, "Simferopol")
        question = await sandbox.next_message(user)
        assert REPORT.build("a", "detained_by", "fsb") in question.callback_data
        summary = await answer_from(sandbox, user, question, FULL, start="detained_by")
        assert "about 45 years old" in summary.plain and "Simferopol" in summary.plain
        await sandbox.press(user, summary.message_id, REPORT.build("confirm"))
        assert "Your case code is" in (await sandbox.next_message(user)).plain
        personal = await _personal(bot)
        assert personal["detainee_name"] == FULL["name"]
        assert personal["arrest_place"] == "Simferopol"
        assert (personal["birth_date"] or "").startswith("age 45 on ")
        async with services.sessions() as session:
            case = await session.scalar(select(Case))
            contact = await session.scalar(select(CaseContact))
        assert case is not None and case.region == "crimea"
        assert contact is not None and contact.relation == "parent"
    finally:
        await bot.close()
