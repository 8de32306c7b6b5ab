"""The report conversation through the real bot and the sandbox."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.callbacks import GUIDE, REPORT
from storage.models import Case, CaseContact, CasePersonal, OutboxMessage
from tests.handlers.report_flow import FULL, REQUIRED, Tap, answer, answer_from, begin, file
from tests.support.harness import BotHarness
from tests.support.sealed import every_key
from tests.support.waiting import wait_until_idle

ADMIN = 9001


async def test_full_report_is_stored_and_staff_are_told(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    reply = await file(sandbox, user)
    assert "Your case code is" in reply.plain
    # the guide, opened at the pages that fit the answers (a lawyer: yes; where held: given)
    guide = GUIDE.parse(reply.callback_data[0]) if reply.callback_data else None
    assert guide is not None and guide.verb == "open"
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session:
        case = await session.scalar(select(Case))
        assert case is not None and case.code in reply.plain
        personal = await session.get(CasePersonal, case.id)
        assert personal is not None
        assert (await every_key(services.sessions, services.cipher)).open(
            personal.detainee_name
        ) == FULL["name"]
        contact = await session.scalar(select(CaseContact))
        assert contact is not None and contact.is_reporter
        staff_rows = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.chat_id == services.keys.key(ADMIN))
        )
        assert staff_rows == 1


async def _cases(bot: BotHarness) -> list[Case]:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        return list(await session.scalars(select(Case)))


async def _personal(bot: BotHarness, case: Case) -> dict[str, str | None]:
    services = bot.services
    assert services is not None
    async with services.sessions() as session:
        row = await session.get(CasePersonal, case.id)
        assert row is not None
        return {
            name: (await every_key(services.sessions, services.cipher)).open(getattr(row, name))
            for name in (
                "detainee_name",
                "birth_date",
                "arrest_place",
                "charges",
                "held_in",
                "health",
            )
        }


async def test_every_field_is_stored(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    await file(sandbox, user)
    [case] = await _cases(running_bot)
    assert (case.region, case.detained_by, case.visibility) == ("crimea", "fsb", "anonymous")
    assert case.detention_date is not None and case.detention_date.isoformat() == "2024-12-05"
    personal = await _personal(running_bot, case)
    assert personal == {
        "detainee_name": FULL["name"],
        "birth_date": "1985-03-21",
        "arrest_place": FULL["arrest_place"],
        "charges": FULL["charges"],
        "held_in": FULL["held_in"],
        "health": FULL["health"],
    }
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        contact = await session.scalar(select(CaseContact))
        assert contact is not None
        assert (await every_key(running_bot.services.sessions, running_bot.services.cipher)).open(
            contact.contact_phone
        ) == "+380671234567"


async def test_every_optional_field_skipped(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    required = {key: FULL[key] for key in REQUIRED}
    reply = await file(sandbox, user, required)
    assert "Your case code is" in reply.plain
    [case] = await _cases(running_bot)
    assert case.visibility == "staff_only" and case.detained_by is None
    assert case.person_index is None  # no birth date or age: no duplicate matching on a name
    personal = await _personal(running_bot, case)
    assert personal["detainee_name"] == FULL["name"]
    assert all(value is None for key, value in personal.items() if key != "detainee_name")


async def test_back_twice_then_answer_again(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, user)
    for key in ("relation", "name", "birth"):
        question = await answer(sandbox, user, question, key, FULL[key])
    assert REPORT.build("back", "detention_date") in question.callback_data
    await sandbox.press(user, question.message_id, REPORT.build("back", "detention_date"))
    question = await sandbox.next_message(user)
    assert REPORT.build("back", "birth") in question.callback_data
    await sandbox.press(user, question.message_id, REPORT.build("back", "birth"))
    question = await sandbox.next_message(user)
    assert REPORT.build("back", "name") in question.callback_data
    question = await answer(sandbox, user, question, "name", "Corrected Name")
    summary = await answer_from(sandbox, user, question, FULL, start="birth")
    assert "Corrected Name" in summary.plain
    await sandbox.press(user, summary.message_id, REPORT.build("confirm"))
    await sandbox.next_message(user)
    [case] = await _cases(running_bot)
    assert (await _personal(running_bot, case))["detainee_name"] == "Corrected Name"


async def test_cancel_midway_stores_nothing(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, user)
    for key in ("relation", "name", "birth"):
        question = await answer(sandbox, user, question, key, FULL[key])
    await sandbox.send_text(user, "/cancel")
    reply = await sandbox.next_message(user)
    assert "Nothing has been stored" in reply.plain
    assert await _cases(running_bot) == []
    # The conversation is over: a date now is not taken as an answer.
    await sandbox.send_text(user, "/report")
    consent = await sandbox.next_message(user)
    assert REPORT.build("consent", "yes") in consent.callback_data


async def test_refusing_consent_stores_nothing(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    await sandbox.send_text(user, "/start report")
    consent = await sandbox.next_message(user)
    await sandbox.press(user, consent.message_id, REPORT.build("consent", "no"))
    reply = await sandbox.next_message(user)
    assert "Nothing has been stored" in reply.plain and "/report" in reply.plain
    assert await _cases(running_bot) == []


async def test_bad_answers_are_explained_and_the_form_continues(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, user)
    question = await answer(sandbox, user, question, "relation", FULL["relation"])
    await sandbox.send_text(user, "x" * 10_000)
    too_long = await sandbox.next_message(user)
    assert "too long" in too_long.plain and "10000" in too_long.plain
    question = await answer(sandbox, user, question, "name", "<b>Ivan</b> & Co\x07")
    question = await answer(sandbox, user, question, "birth", "about")
    assert "could not read" in question.plain  # the reason, then the same question stands
    question = await answer(sandbox, user, question, "birth", "45")
    for bad, reason in (
        ("31.02.2024", "does not exist"),
        ("01.01.2099", "in the future"),
        ("05.12.2010", "since 2014"),
        ("next week", "could not read"),
    ):
        await sandbox.send_text(user, bad)
        assert reason in (await sandbox.next_message(user)).plain
    await sandbox.send_photo(user)
    assert "answer in text" in (await sandbox.next_message(user)).plain
    question = await answer(sandbox, user, question, "detention_date", "yesterday")
    summary = await answer_from(
        sandbox, user, question, {**FULL, "charges": "a & b <script>"}, start="region"
    )
    assert summary.parse_mode == "HTML"
    assert "<b>Ivan</b> & Co" in summary.plain  # shown as typed, so it was escaped
    assert "a & b <script>" in summary.plain
    assert "about 45 years old" in summary.plain
    await sandbox.press(user, summary.message_id, REPORT.build("confirm"))
    await sandbox.next_message(user)
    [case] = await _cases(running_bot)
    personal = await _personal(running_bot, case)
    assert personal["detainee_name"] == "<b>Ivan</b> & Co"  # the bell character was stripped


async def test_edit_from_summary_returns_to_summary(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    summary = await answer_from(sandbox, user, await begin(sandbox, user), FULL)
    await sandbox.press(user, summary.message_id, REPORT.build("edit", "region"))
    question = await sandbox.next_message(user)
    summary = await answer(sandbox, user, question, "region", Tap("kherson"))
    assert "Kherson" in summary.plain and REPORT.build("confirm") in summary.callback_data
    await sandbox.press(user, summary.message_id, REPORT.build("confirm"))
    await sandbox.next_message(user)
    [case] = await _cases(running_bot)
    assert case.region == "kherson"


async def test_restart_in_the_middle_keeps_the_answers(harness: BotHarness) -> None:
    await harness.start()
    sandbox = harness.sandbox
    user = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, user)
    for key in ("relation", "name", "birth", "detention_date"):
        question = await answer(sandbox, user, question, key, FULL[key])
    assert REPORT.build("a", "region", "crimea") in question.callback_data
    # One user's updates are handled in order, flush included: once this reply arrives, the
    # step-4 answer is in the database. Then the crash-like stop, once the sticker is handled too
    # (a crash while it still is would replay it: a second "answer in text").
    await sandbox.send_sticker(user)
    assert "answer in text" in (await sandbox.next_message(user)).plain
    await wait_until_idle(harness)
    await harness.kill()
    await harness.start()
    summary = await answer_from(sandbox, user, question, FULL, start="region")
    await sandbox.press(user, summary.message_id, REPORT.build("confirm"))
    assert "Your case code is" in (await sandbox.next_message(user)).plain
    [case] = await _cases(harness)
    personal = await _personal(harness, case)
    assert personal["detainee_name"] == FULL["name"] and personal["birth_date"] == "1985-03-21"
    assert case.region == "crimea" and str(case.detention_date) == "2024-12-05"


async def test_second_report_of_the_same_person_is_a_new_case_hinted_to_staff(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    first = sandbox.add_user(language_code="en").id
    second = sandbox.add_user(language_code="en").id
    await file(sandbox, first)
    # The same person, typed differently (case and spacing do not matter).
    reply = await file(sandbox, second, {**FULL, "name": "  petrenko  IVAN mykolaiovych"})
    assert "Your case code is" in reply.plain  # as for any first report (tests/security)
    original, joined = await _cases(running_bot)
    assert joined.code in reply.plain and original.code not in reply.plain
    assert (joined.status, joined.duplicate_of, original.duplicate_of) == (
        "new",
        original.code,
        None,
    )
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        contacts = list(await session.scalars(select(CaseContact).order_by(CaseContact.id)))
        templates = list(
            await session.scalars(select(OutboxMessage.template).order_by(OutboxMessage.id))
        )
    assert [(c.case_id, c.user_id, c.is_reporter) for c in contacts] == [
        (original.id, running_bot.key(first), True),
        (joined.id, running_bot.key(second), True),
    ]
    assert templates == ["reports.staff_new_report", "reports.staff_new_report"]


async def test_mydata_and_the_staff_card_show_every_answer(running_bot: BotHarness) -> None:
    """Both are derived from the field registry: a field added there shows in both."""
    sandbox = running_bot.sandbox
    sandbox.add_user(ADMIN, language_code="en")
    user = sandbox.add_user(language_code="en").id
    reply = await file(sandbox, user)
    code = reply.plain.split("case code is ")[1].split(".")[0]
    await sandbox.send_text(user, "/mydata")
    mine = await sandbox.next_message(user)
    await sandbox.send_text(ADMIN, f"/case {code}")
    card = await sandbox.next_message(ADMIN)
    while not card.plain.startswith(f"Case {code}"):  # the new-report notice may come first
        card = await sandbox.next_message(ADMIN)
    for line in (
        "Name: Petrenko Ivan Mykolaiovych",
        "Date of birth: 21 Mar 1985",
        "Place of arrest: Simferopol, Kyivska 12",
        "Accused of: treason (art. 275)",
        "Held at: SIZO-1 Simferopol",
        "Lawyer: Yes, there is a lawyer",
        "Health: asthma, needs an inhaler",
    ):
        assert line in mine.plain and line in card.plain, line
    for line in ("You are: Parent", "Contact: +380671234567", "Region: Crimea"):
        assert line in mine.plain, line
