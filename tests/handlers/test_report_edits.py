"""Issue 16: an edited message is never a new answer or command. An edit of an answer still in
the open form updates that answer (and says so); any other edit is answered that edits are not
read. Each of these took the edit as the current question's answer, or restarted the form,
before `handlers.edits`."""

from __future__ import annotations

from sqlalchemy import select

from bot.callbacks import REPORT
from bot.i18n import I18n
from storage.models import CasePersonal
from tests.handlers.report_flow import FULL, answer, answer_from, begin
from tests.support.harness import BotHarness
from tests.support.sealed import every_key

NOT_READ = "I do not read edited messages"


async def _stored_name(bot: BotHarness) -> str | None:
    services = bot.services
    assert services is not None
    async with services.sessions() as session:
        row = await session.scalar(select(CasePersonal))
        assert row is not None
        return (await every_key(services.sessions, services.cipher)).open(row.detainee_name)


async def test_an_edited_earlier_answer_is_updated_and_the_form_stays(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, user)
    question = await answer(sandbox, user, question, "relation", FULL["relation"])
    name_message = await sandbox.send_text(user, "Petrenko Ivan")
    question = await sandbox.next_message(user)
    question = await answer(sandbox, user, question, "birth", FULL["birth"])
    assert REPORT.build("back", "detention_date") in question.callback_data

    await sandbox.edit_text(user, name_message, "Petrenko Ivan Mykolaiovych")
    reply = await sandbox.next_message(user)
    assert reply.plain.startswith("I changed your answer to “Name”.")
    assert reply.callback_data == question.callback_data  # the date is still the question

    summary = await answer_from(sandbox, user, reply, FULL, start="detention_date")
    assert "Petrenko Ivan Mykolaiovych" in summary.plain
    await sandbox.press(user, summary.message_id, REPORT.build("confirm"))
    assert "Your case code is" in (await sandbox.next_message(user)).plain
    assert await _stored_name(running_bot) == "Petrenko Ivan Mykolaiovych"


async def test_an_edit_at_the_summary_shows_the_summary_with_it(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, user)
    question = await answer(sandbox, user, question, "relation", FULL["relation"])
    name_message = await sandbox.send_text(user, str(FULL["name"]))
    question = await sandbox.next_message(user)
    summary = await answer_from(sandbox, user, question, FULL, start="birth")
    await sandbox.edit_text(user, name_message, "Bondarenko Olha")
    again = await sandbox.next_message(user)
    assert "Bondarenko Olha" in again.plain and REPORT.build("confirm") in again.callback_data
    assert again.protect_content
    await sandbox.press(user, summary.message_id, REPORT.build("confirm"))  # the older summary
    assert "Your case code is" in (await sandbox.next_message(user)).plain
    assert await _stored_name(running_bot) == "Bondarenko Olha"


async def test_an_edit_into_a_command_is_not_read_and_restarts_nothing(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    earlier = await sandbox.send_text(user, "Hello, my son was taken this morning")
    await sandbox.next_message(user)  # the family message's acknowledgement
    question = await begin(sandbox, user)
    question = await answer(sandbox, user, question, "relation", FULL["relation"])
    name_message = await sandbox.send_text(user, str(FULL["name"]))
    question = await sandbox.next_message(user)
    for edited, text in ((earlier, "/report"), (name_message, "/report"), (earlier, "Ivan")):
        await sandbox.edit_text(user, edited, text)
        reply = await sandbox.next_message(user)
        assert reply.plain.startswith(NOT_READ), reply.plain
        assert not reply.callback_data  # no consent asked: the form did not start again
    summary = await answer_from(sandbox, user, question, FULL, start="birth")
    assert str(FULL["name"]) in summary.plain and "/report" not in summary.plain


async def test_an_edit_that_does_not_fit_keeps_the_earlier_answer(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, user)
    question = await answer(sandbox, user, question, "relation", FULL["relation"])
    name_message = await sandbox.send_text(user, str(FULL["name"]))
    question = await sandbox.next_message(user)
    await sandbox.edit_text(user, name_message, "12345")
    reply = await sandbox.next_message(user)
    assert "Please write the person's name in letters." in reply.plain
    assert "Your earlier answer to “Name” is kept." in reply.plain
    summary = await answer_from(sandbox, user, question, FULL, start="birth")
    assert str(FULL["name"]) in summary.plain


async def test_the_edit_is_confirmed_in_the_users_language(
    running_bot: BotHarness, i18n: I18n
) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="uk").id
    question = await begin(sandbox, user)
    question = await answer(sandbox, user, question, "relation", FULL["relation"])
    name_message = await sandbox.send_text(user, str(FULL["name"]))
    await sandbox.next_message(user)
    await sandbox.edit_text(user, name_message, "Петренко Іван")
    reply = await sandbox.next_message(user)
    uk = i18n.get("uk")
    expected = uk.gettext("I changed your answer to “{label}”.").format(label=uk.gettext("Name"))
    assert expected != "I changed your answer to “Name”." and reply.plain.startswith(expected)
