"""The urgent path through the real bot and the sandbox: a family reports what is happening now
in at most five answers, the staff on call get the alert within one delivery cycle, the first of
two who presses "I'll take it" owns it (the other sees who took it), the family sees each step in
plain words, an alert nobody takes goes to the admins on a fixed clock, and a family member can
neither take a case nor post a step by any path.

The delivery sweep is set to an hour here: whatever arrives was sent by the delivery run that
the commit itself woke, i.e. within one delivery cycle.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.callbacks import DUTY, REPORT, URGENT
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage
from jobs.urgent_escalation import run_escalation
from storage.codes import CODE_ALPHABET
from storage.enums import AuditOutcome, CaseStatus, EventKind, Role
from storage.models import (
    AuditEntry,
    Case,
    CaseEvent,
    CasePersonal,
    OnCall,
    OnCallShift,
    UrgentCase,
)
from storage.users import set_language
from tests.handlers.report_flow import FULL, ORDER, SKIP, answer
from tests.support.discreet import shown
from tests.support.harness import BotHarness, harness_settings
from tests.support.identity import grant, known_user
from tests.support.waiting import settled, wait_until_idle

ADMIN = 9001
OLENA, PETRO = 3001, 3002
CODE = re.compile(rf"[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}")
PLACE = "Simferopol, Kyivska 12"
PHONE = "+380 67 123 45 67"
KYIV = ZoneInfo("Europe/Kyiv")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=KYIV).astimezone(UTC)


@pytest.fixture
async def urgent_bot(
    sandbox: SandboxServer, sqlite_database_url: str, data_key: str, i18n: I18n
) -> AsyncIterator[BotHarness]:
    """The real bot whose outbox is swept only hourly: messages go out on the commit's wake-up."""
    bot = BotHarness(
        sandbox=sandbox,
        settings=harness_settings(
            sandbox, sqlite_database_url, data_key, delivery_sweep_seconds=3600
        ),
        i18n=i18n,
    )
    try:
        await bot.start()
        sandbox.add_user(OLENA, first_name="Olena", language_code="en")
        sandbox.add_user(PETRO, first_name="Petro", language_code="en")
        sandbox.add_user(ADMIN, first_name="Admin", language_code="en")
        assert bot.services is not None
        async with bot.services.sessions() as session, session.begin():
            for staff in (OLENA, PETRO):
                await grant(session, bot.services.keys, staff, Role.STAFF)
                await set_language(session, bot.key(staff), "en")
            await known_user(session, bot.services.keys, ADMIN, "en")
        yield bot
    finally:
        await bot.close()


async def go_on_call(sandbox: SandboxServer, *staff: int) -> None:
    for member in staff:
        await sandbox.send_text(member, "/oncall on")
        reply = await sandbox.next_message(member)
        assert "You are on call now" in reply.plain, reply.plain


async def report_urgently(
    sandbox: SandboxServer, family: int, *, entry: str = "button"
) -> tuple[str, int, list[BotMessage]]:
    """Five answers: the first screen's button, where, what, by whom, contact. Returns the case
    code, how many answers were given, and the family's last two messages (the confirmation,
    then the advice with its buttons)."""
    answers = 0
    if entry == "button":
        await sandbox.send_text(family, "/start")
        menu = await sandbox.next_message(family)
        await sandbox.press(family, menu.message_id, URGENT.build("start"))
    else:
        await sandbox.send_text(family, entry)
    answers += 1
    intro = await sandbox.next_message(family)
    assert intro.reply_keyboard is not None  # the "share my location" button
    where = await sandbox.next_message(family)
    assert "Where is it happening" in where.plain
    await sandbox.send_text(family, PLACE)
    answers += 1
    what = await sandbox.next_message(family)
    await sandbox.press(family, what.message_id, URGENT.build("a", "what", "detention"))
    answers += 1
    by = await sandbox.next_message(family)
    await sandbox.press(family, by.message_id, URGENT.build("a", "by", "fsb"))
    answers += 1
    contact = await sandbox.next_message(family)
    assert URGENT.build("now", "contact") not in contact.callback_data  # the last question
    await sandbox.send_text(family, PHONE)
    answers += 1
    done = [await sandbox.next_message(family) for _ in range(2)]
    found = CODE.search(done[0].plain)
    assert found is not None, done[0].plain
    return found.group(0), answers, done


async def alert_in(sandbox: SandboxServer, chat: int, code: str) -> BotMessage:
    await sandbox.wait_for(
        lambda: any(
            code in m.plain and DUTY.build("take", code) in m.callback_data
            for m in sandbox.messages(chat)
        )
    )
    return [m for m in sandbox.messages(chat) if code in m.plain][-1]


async def test_urgent_report_in_five_answers_reaches_those_on_call(urgent_bot: BotHarness) -> None:
    sandbox = urgent_bot.sandbox
    await go_on_call(sandbox, OLENA, PETRO)
    family = sandbox.add_user(language_code="en").id

    code, answers, (confirmation, advice) = await report_urgently(sandbox, family)

    assert answers <= 5
    assert "has been alerted" in confirmation.plain and confirmation.protect_content
    assert confirmation.remove_keyboard  # the location button goes away
    for words in ("Do not sign anything without a lawyer", "Article 51", "number plates"):
        assert words in advice.plain
    assert "During a search" not in advice.plain  # a detention: the part that fits
    assert advice.button_data("Complete the full report") == "menu:report"
    assert advice.button_data("Hide this chat") == "hide:chat"
    for staff in (OLENA, PETRO):
        alert = await alert_in(sandbox, staff, code)
        assert "A detention" in alert.plain and "FSB" in alert.plain
        assert "Simferopol" not in alert.plain and "380" not in alert.plain  # shown on taking
    await settled(urgent_bot)
    assert not any(code in m.plain for m in sandbox.messages(ADMIN))  # not on call: not paged
    assert urgent_bot.services is not None
    async with urgent_bot.services.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == code))
        assert case is not None and case.status == CaseStatus.NEW
        personal = await session.get(CasePersonal, case.id)
        row = await session.get(UrgentCase, case.id)
    assert personal is not None and personal.detainee_name is None
    assert row is not None and row.what == "detention" and row.taken_by is None


async def test_the_first_take_owns_it_and_the_family_sees_each_step(
    urgent_bot: BotHarness,
) -> None:
    sandbox = urgent_bot.sandbox
    await go_on_call(sandbox, OLENA, PETRO)
    family = sandbox.add_user(language_code="en").id
    code, _, _ = await report_urgently(sandbox, family)
    alerts = {staff: await alert_in(sandbox, staff, code) for staff in (OLENA, PETRO)}

    presses = {
        staff: await sandbox.press(staff, alerts[staff].message_id, DUTY.build("take", code))
        for staff in (OLENA, PETRO)
    }  # both pressed before either is answered
    answered = {staff: await sandbox.wait_for_callback_answer(q) for staff, q in presses.items()}
    owners = [s for s, a in answered.items() if "It is yours" in (a.text or "")]
    assert len(owners) == 1, [a.text for a in answered.values()]
    owner = owners[0]
    other = PETRO if owner == OLENA else OLENA
    owner_name = "Olena" if owner == OLENA else "Petro"
    assert answered[other].show_alert and f"Already taken by {owner_name}" in (
        answered[other].text or ""
    )
    # the other's alert loses its button and says who took it
    edited = await sandbox.wait_for_edit(other, alerts[other].message_id)
    assert DUTY.build("take", code) not in edited.callback_data
    assert f"Already taken by {owner_name}" in edited.plain
    # the owner gets the details, protected, with the step buttons
    await sandbox.wait_for(
        lambda: any("you took it" in m.plain and m.protect_content for m in sandbox.messages(owner))
    )
    details = next(m for m in sandbox.messages(owner) if "you took it" in m.plain)
    assert PLACE in details.plain and "+380671234567" in details.plain
    assert DUTY.build("step", code, "lawyer_on_way") in details.callback_data
    assert urgent_bot.services is not None
    async with urgent_bot.services.sessions() as session:
        owned = await session.scalar(
            select(UrgentCase.taken_by).join(Case).where(Case.code == code)
        )
    assert owned == urgent_bot.key(owner)

    # the family sees that someone is on it (discreetly: "Show" first)
    first_step = await shown(sandbox, family, await sandbox.next_message(family))
    assert "working on it now" in first_step.plain and code in first_step.plain

    query = await sandbox.press(
        owner, details.message_id, DUTY.build("step", code, "lawyer_on_way")
    )
    assert (await sandbox.wait_for_callback_answer(query)).text == "Sent to the family."
    second_step = await shown(sandbox, family, await sandbox.next_message(family))
    assert "A lawyer is on the way." in second_step.plain
    await sandbox.wait_for_edit(owner, details.message_id)
    assert "A lawyer is on the way." in sandbox.message(owner, details.message_id).plain

    # the other cannot post a step on the owner's case
    refused = await sandbox.press(
        other, alerts[other].message_id, DUTY.build("step", code, "lawyer_there")
    )
    answer = await sandbox.wait_for_callback_answer(refused)
    assert answer.show_alert and f"{owner_name} took this case" in (answer.text or "")
    # and is told, besides, who took it
    await sandbox.wait_for(
        lambda: any(f"was taken by {owner_name}" in m.plain for m in sandbox.messages(other))
    )
    await settled(urgent_bot)
    # the path (menu, intro, four questions, confirmation, advice), then two steps (each a
    # discreet notice and what Show gave), no more
    assert len(sandbox.messages(family)) == 8 + 2 * 2


async def test_an_alert_nobody_takes_goes_to_the_admins_on_a_fixed_clock(
    urgent_bot: BotHarness,
) -> None:
    sandbox = urgent_bot.sandbox
    services = urgent_bot.services
    assert services is not None
    now = [MONDAY_10]
    services.clock = lambda: now[0]
    await go_on_call(sandbox, OLENA)
    family = sandbox.add_user(language_code="en").id
    code, _, _ = await report_urgently(sandbox, family)
    await alert_in(sandbox, OLENA, code)
    await settled(urgent_bot)
    assert not any(code in m.plain for m in sandbox.messages(ADMIN))

    now[0] = MONDAY_10 + timedelta(minutes=9)
    assert await run_escalation(services) == []
    now[0] = MONDAY_10 + timedelta(minutes=10)
    assert await run_escalation(services) == [code]
    assert await run_escalation(services) == []  # once per period
    admin_alert = await alert_in(sandbox, ADMIN, code)
    assert "Nobody has taken this alert for 10 minutes" in admin_alert.plain
    await sandbox.wait_for(
        lambda: sum(code in m.plain for m in sandbox.messages(OLENA)) == 2  # sent again
    )
    # the admin takes it from the escalated alert; the family hears it
    query = await sandbox.press(ADMIN, admin_alert.message_id, DUTY.build("take", code))
    assert "It is yours" in ((await sandbox.wait_for_callback_answer(query)).text or "")
    step = await shown(sandbox, family, await sandbox.next_message(family))
    assert "working on it now" in step.plain
    now[0] = MONDAY_10 + timedelta(minutes=30)
    assert await run_escalation(services) == []  # taken: nobody is paged again
    async with services.sessions() as session:
        kinds = list(await session.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))
    assert kinds == [EventKind.CREATED, EventKind.URGENT_ESCALATED, EventKind.URGENT_TAKEN]


async def test_schedules_and_nobody_on_call(urgent_bot: BotHarness) -> None:
    sandbox = urgent_bot.sandbox
    services = urgent_bot.services
    assert services is not None
    now = [MONDAY_10]
    services.clock = lambda: now[0]
    family = sandbox.add_user(language_code="en").id
    # nobody on call: the admins are paged at once
    code, _, _ = await report_urgently(sandbox, family)
    assert code in (await sandbox.next_message(ADMIN)).plain
    # an admin sets Olena's weekly shift; on Monday at 10 in Kyiv she is on call, not the admin
    await sandbox.send_text(ADMIN, f"/oncall schedule {OLENA} mon-fri 09-18")
    reply = await sandbox.next_message(ADMIN)
    assert "mon-fri 09:00-18:00" in reply.plain, reply.plain
    await sandbox.send_text(ADMIN, f"/oncall schedule {family} daily 00-24")
    assert "is not staff" in (await sandbox.next_message(ADMIN)).plain
    await sandbox.send_text(OLENA, "/oncall")
    overview = await sandbox.next_message(OLENA)
    assert "on call now, by your shift" in overview.plain and "mon-fri" in overview.plain
    second = sandbox.add_user(language_code="en").id
    code_two, _, _ = await report_urgently(sandbox, second, entry="/urgent")
    assert code_two in (await sandbox.next_message(OLENA)).plain
    await settled(urgent_bot)
    assert not any(code_two in m.plain for m in sandbox.messages(ADMIN))
    # /oncall off during her shift: off for this shift
    await sandbox.send_text(OLENA, "/oncall off")
    assert "off call until" in (await sandbox.next_message(OLENA)).plain
    async with services.sessions() as session:
        shifts = await session.scalar(select(func.count()).select_from(OnCallShift))
    assert shifts == 1


async def test_a_shared_location_and_send_now(urgent_bot: BotHarness) -> None:
    sandbox = urgent_bot.sandbox
    await go_on_call(sandbox, OLENA)
    family = sandbox.add_user(language_code="en").id
    await sandbox.send_text(family, "/start urgent")  # the deep link
    await sandbox.next_message(family)  # the intro
    await sandbox.next_message(family)  # where?
    await sandbox.send_location(family, 44.952117, 34.102417)
    what = await sandbox.next_message(family)
    await sandbox.press(family, what.message_id, URGENT.build("now", "what"))
    confirmation = await sandbox.next_message(family)
    found = CODE.search(confirmation.plain)
    assert found is not None
    advice = await sandbox.next_message(family)
    assert "During a search" in advice.plain and "taken away" in advice.plain  # not said: both
    alert = await alert_in(sandbox, OLENA, found.group(0))
    query = await sandbox.press(OLENA, alert.message_id, DUTY.build("take", found.group(0)))
    await sandbox.wait_for_callback_answer(query)
    await sandbox.wait_for(
        lambda: any("44.95212, 34.10242" in m.plain for m in sandbox.messages(OLENA))
    )
    # a button of the finished path is answered, and changes nothing
    stale = await sandbox.press(family, what.message_id, URGENT.build("a", "what", "search"))
    assert "no longer valid" in ((await sandbox.wait_for_callback_answer(stale)).text or "")


async def test_cancel_sends_nothing(urgent_bot: BotHarness) -> None:
    sandbox = urgent_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    await sandbox.send_text(family, "/urgent")
    await sandbox.next_message(family)
    await sandbox.next_message(family)
    await sandbox.send_text(family, PLACE)
    await sandbox.next_message(family)
    await sandbox.send_text(family, "/cancel")
    assert "Nothing was sent" in (await sandbox.next_message(family)).plain
    await wait_until_idle(urgent_bot)
    assert urgent_bot.services is not None
    async with urgent_bot.services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 0


async def test_a_family_member_cannot_take_or_post_steps(urgent_bot: BotHarness) -> None:
    sandbox = urgent_bot.sandbox
    await go_on_call(sandbox, OLENA)
    family = sandbox.add_user(language_code="en").id
    code, _, (confirmation, _) = await report_urgently(sandbox, family)
    await alert_in(sandbox, OLENA, code)
    intruder = sandbox.add_user(language_code="en").id
    await sandbox.send_text(intruder, "/start")
    menu = await sandbox.next_message(intruder)
    for person, message in ((family, confirmation), (intruder, menu)):
        for data in (
            DUTY.build("take", code),
            DUTY.build("step", code, "lawyer_told"),
            DUTY.build("step", code, "done"),
            DUTY.build("on"),
        ):
            query = await sandbox.press(person, message.message_id, data)
            answer = await sandbox.wait_for_callback_answer(query)
            assert answer.show_alert and "only for the hotline" in (answer.text or ""), data
        for text in ("/oncall on", "/oncall", f"/oncall schedule {person} daily 00-24"):
            await sandbox.send_text(person, text)
            await sandbox.wait_for(
                lambda person=person: "only for the hotline" in sandbox.messages(person)[-1].plain
            )
    await wait_until_idle(urgent_bot)
    assert urgent_bot.services is not None
    async with urgent_bot.services.sessions() as session:
        row = await session.scalar(select(UrgentCase).join(Case).where(Case.code == code))
        kinds = list(await session.scalars(select(CaseEvent.kind)))
        switches = await session.scalar(select(func.count()).select_from(OnCall))
        denied = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.outcome == AuditOutcome.DENIED,
                AuditEntry.actor_id.in_([urgent_bot.key(family), urgent_bot.key(intruder)]),
            )
        )
    assert row is not None and row.taken_by is None and row.last_step is None
    assert kinds == [EventKind.CREATED]
    assert switches == 1  # Olena's own
    assert denied == 2 * (4 + 3)


@pytest.mark.parametrize(
    ("language", "advice_words", "step_words"),
    [
        ("uk", "Нічого не підписуйте без адвоката", "отримав ваш сигнал"),
        ("crh", "Advokatsız iç bir şeyge imza atmañız", "haberiñizni aldı"),
        ("ru", "Ничего не подписывайте без адвоката", "получил ваш сигнал"),
    ],
)
async def test_the_family_reads_the_advice_and_the_steps_in_their_language(
    urgent_bot: BotHarness, language: str, advice_words: str, step_words: str
) -> None:
    sandbox = urgent_bot.sandbox
    await go_on_call(sandbox, OLENA)
    family = sandbox.add_user(language_code="en").id
    assert urgent_bot.services is not None
    async with urgent_bot.services.sessions() as session, session.begin():
        await known_user(session, urgent_bot.services.keys, family, language)
    await sandbox.send_text(family, "/urgent")
    await sandbox.next_message(family)
    where = await sandbox.next_message(family)
    await sandbox.press(family, where.message_id, URGENT.build("now", "where"))
    confirmation = await sandbox.next_message(family)
    advice = await sandbox.next_message(family)
    assert advice_words in advice.plain
    found = CODE.search(confirmation.plain)
    assert found is not None
    alert = await alert_in(sandbox, OLENA, found.group(0))
    assert "What: ?" in alert.plain  # nothing was said: the alert went anyway
    await sandbox.press(OLENA, alert.message_id, DUTY.build("take", found.group(0)))
    notice = await sandbox.next_message(family)
    assert len(notice.callback_data) == 1 and notice.callback_data[0].startswith("show:")
    await sandbox.press(family, notice.message_id, notice.callback_data[0])
    step = await sandbox.next_message(family)
    assert step_words in step.plain and step.protect_content


async def test_hide_this_chat_leaves_only_the_code(urgent_bot: BotHarness) -> None:
    sandbox = urgent_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code, _, (_, advice) = await report_urgently(sandbox, family)
    await sandbox.press(family, advice.message_id, "hide:chat")
    left = await sandbox.next_message(family)
    assert left.plain == f"Your case code is {code}."
    await wait_until_idle(urgent_bot)
    kept = [m for m in sandbox.messages(family, include_deleted=False) if m is not left]
    assert not any(code in m.plain or "Article 51" in m.plain for m in kept)
    answers = sandbox.world.user_messages.get(family, [])
    place = [m for m in answers if m.text in (PLACE, PHONE)]
    assert len(place) == 2 and all(m.deleted for m in place)  # the family's own answers too


async def test_a_restart_in_the_middle_loses_no_answer(urgent_bot: BotHarness) -> None:
    sandbox = urgent_bot.sandbox
    await go_on_call(sandbox, OLENA)
    family = sandbox.add_user(language_code="en").id
    await sandbox.send_text(family, "/urgent")
    await sandbox.next_message(family)
    await sandbox.next_message(family)
    await sandbox.send_text(family, PLACE)
    what = await sandbox.next_message(family)
    await wait_until_idle(urgent_bot)
    await urgent_bot.stop()
    await urgent_bot.start()
    await sandbox.press(family, what.message_id, URGENT.build("a", "what", "search"))
    by = await sandbox.next_message(family)
    assert "Who is doing it?" in by.plain
    await sandbox.press(family, by.message_id, URGENT.build("now", "by"))
    confirmation = await sandbox.next_message(family)
    found = CODE.search(confirmation.plain)
    assert found is not None
    alert = await alert_in(sandbox, OLENA, found.group(0))
    assert "A search" in alert.plain
    await sandbox.press(OLENA, alert.message_id, DUTY.build("take", found.group(0)))
    await sandbox.wait_for(lambda: any(PLACE in m.plain for m in sandbox.messages(OLENA)))


async def test_the_full_report_starts_from_the_urgent_answers(urgent_bot: BotHarness) -> None:
    """ "Complete the full report" keeps where, by whom, the day and the phone: not asked again,
    shown on the summary, filed; the urgent case knows its full report and staff see the link."""
    sandbox = urgent_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code, _, (_, advice) = await report_urgently(sandbox, family)

    await sandbox.press(family, advice.message_id, advice.button_data("Complete the full report"))
    consent = await sandbox.next_message(family)
    assert f"urgent help (case {code}) is kept" in consent.plain
    await sandbox.press(family, consent.message_id, REPORT.build("consent", "yes"))
    question = await sandbox.next_message(family)
    kept = {"detention_date", "arrest_place", "detained_by", "phone"}
    asked = []
    for key in [key for key in ORDER if key not in kept]:
        backs = [REPORT.parse(data) for data in question.callback_data]
        asked += [p.args[0] for p in backs if p is not None and p.verb == "back"]
        question = await answer(sandbox, family, question, key, FULL.get(key, SKIP))
    summary = question
    assert REPORT.build("confirm") in summary.callback_data, summary.plain
    assert PLACE in summary.plain and "FSB" in summary.plain and "+380671234567" in summary.plain
    assert not kept & set(asked[1:])  # "back" on each question names the one asked before it
    await sandbox.press(family, summary.message_id, REPORT.build("confirm"))
    filed = await sandbox.next_message(family)
    full_code = CODE.search(filed.plain)
    assert full_code is not None and full_code.group(0) != code, filed.plain

    assert urgent_bot.services is not None
    async with urgent_bot.services.sessions() as session:
        urgent_case = await session.scalar(select(Case).where(Case.code == code))
        full = await session.scalar(select(Case).where(Case.code == full_code.group(0)))
        assert urgent_case is not None and full is not None
        row = await session.get(UrgentCase, urgent_case.id)
    assert row is not None and row.report_code == full.code
    assert full.duplicate_of == code and full.detained_by == "fsb"
    assert full.detention_date == urgent_case.detention_date is not None

    await sandbox.send_text(family, "/report")  # a later report starts empty
    consent = await sandbox.next_message(family)
    assert "urgent help" not in consent.plain
