"""The staff console through the real bot and the sandbox: the family hears each change in order,
non-staff are refused whatever they send, and moves outside the lifecycle are refused."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from bot.callbacks import CASE, FORGET, INBOX
from bot.texts.messages import render
from storage.enums import AuditOutcome, CaseStatus, Role
from storage.models import AuditEntry, Case, CaseEvent, CasePersonal
from storage.users import set_language
from tests.support.case_factory import make_case
from tests.support.discreet import shown
from tests.support.harness import BotHarness
from tests.support.identity import grant, known_user

ADMIN = 9001
STAFF = 3001


async def seed_case(
    bot: BotHarness, family: int, status: CaseStatus = CaseStatus.UNDER_REVIEW, language: str = "en"
) -> str:
    services = bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        await grant(session, services.keys, STAFF, Role.STAFF)
        # The staff console is checked in English: without this, staff and admin would get the
        # default language (uk), and the English words asserted below would not appear.
        await set_language(session, services.keys.key(STAFF), "en")
        await known_user(session, services.keys, ADMIN, "en")
        return await make_case(
            session,
            services.cipher,
            keys=services.keys,
            reporter_id=family,
            status=status,
            language=language,
        )


async def case_status(bot: BotHarness, code: str) -> str:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        return str(await session.scalar(select(Case.status).where(Case.code == code)))


async def test_verify_note_returned_reach_the_family_in_order(
    running_bot: BotHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = running_bot.sandbox
    sandbox.user(ADMIN)
    family = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family, language="en")

    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)
    assert code in card.plain and "Ivan Petrenko" in card.plain
    assert "Crimea" in card.plain and "under_review" not in card.plain  # words, not stored codes
    buttons = card.callback_data
    assert CASE.build("st", code, "verified") in buttons
    assert CASE.build("st", code, "charged") not in buttons  # not allowed from under_review

    await sandbox.press(STAFF, card.message_id, CASE.build("st", code, "verified"))
    confirm = await sandbox.next_message(STAFF)
    pressed = time.monotonic()
    await sandbox.press(STAFF, confirm.message_id, CASE.build("ok", code, "verified"))
    await sandbox.next_message(STAFF)
    first = await sandbox.next_message(family)
    latencies = [first.sent_at - pressed]

    await sandbox.press(STAFF, card.message_id, CASE.build("note", code))
    await sandbox.next_message(STAFF)  # the prompt
    pressed = time.monotonic()
    await sandbox.send_text(STAFF, "The lawyer visited him today & he is well.")
    await sandbox.next_message(STAFF)
    second = await sandbox.next_message(family)
    latencies.append(second.sent_at - pressed)

    await sandbox.press(STAFF, card.message_id, CASE.build("st", code, "returned"))
    confirm = await sandbox.next_message(STAFF)
    pressed = time.monotonic()
    await sandbox.press(STAFF, confirm.message_id, CASE.build("ok", code, "returned"))
    await sandbox.next_message(STAFF)
    third = await sandbox.next_message(family)
    latencies.append(third.sent_at - pressed)
    with capsys.disabled():
        print("\n[staff->family latency, s]", ", ".join(f"{value:.3f}" for value in latencies))

    # Discreet by default: each push says only that there is news; Show gives the details.
    first = await shown(sandbox, family, first)
    second = await shown(sandbox, family, second)
    third = await shown(sandbox, family, third)

    tr = running_bot.i18n.get("en")
    params = {"code": code, "name": "Ivan Petrenko", "old": "under_review", "note": None}
    assert first.text == render("cases.status_changed", tr, {**params, "new": "verified"}).text
    assert "Verified" in first.plain
    assert (
        second.text
        == render(
            "cases.public_note",
            tr,
            {**params, "note": "The lawyer visited him today & he is well."},
        ).text
    )
    assert "&amp;" not in second.plain and "& he is well" in second.plain
    assert third.text == render("cases.returned", tr, {**params, "new": "returned"}).text
    assert first.protect_content and second.protect_content and third.protect_content
    assert len(sandbox.messages(family)) == 6
    # the return home also reaches every staff member and admin
    for chat in (ADMIN, STAFF):
        await sandbox.wait_for(
            lambda chat=chat: any("is home" in m.plain for m in sandbox.messages(chat)), timeout=10
        )
    assert await case_status(running_bot, code) == CaseStatus.RETURNED


async def test_non_staff_is_refused_and_audited(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    intruder = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family, status=CaseStatus.NEW)

    await sandbox.send_text(intruder, "/inbox")
    refusal = await sandbox.next_message(intruder)
    assert "only for the hotline" in refusal.plain
    await sandbox.send_text(intruder, f"/case {code}")
    refusal = await sandbox.next_message(intruder)
    assert "Ivan" not in refusal.plain
    for data in (
        CASE.build("show", code),
        CASE.build("st", code, "under_review"),
        CASE.build("ok", code, "closed"),
    ):
        query = await sandbox.press(intruder, refusal.message_id, data)
        answered = await sandbox.wait_for_callback_answer(query)
        assert answered.show_alert and "only for the hotline" in (answered.text or "")
    await sandbox.send_text(intruder, f"/grant {intruder} staff")
    await sandbox.next_message(intruder)

    assert await case_status(running_bot, code) == CaseStatus.NEW
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        denied = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.actor_id == running_bot.key(intruder))
            )
        )
        events = list(await session.scalars(select(CaseEvent.kind)))
    assert [entry.outcome for entry in denied] == [AuditOutcome.DENIED] * 6
    assert [entry.case_code for entry in denied][1:5] == [code] * 4
    assert events == ["created"]
    assert len(sandbox.messages(family)) == 0


async def test_moves_outside_the_lifecycle_are_refused_clearly(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family, status=CaseStatus.RETURNED)
    closed = await seed_case(running_bot, family, status=CaseStatus.CLOSED)

    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)
    assert not [data for data in card.callback_data if data.startswith(CASE.head("st") + code)]
    await sandbox.press(STAFF, card.message_id, CASE.build("ok", code, "charged"))  # forged
    refusal = await sandbox.next_message(STAFF)
    assert "final" in refusal.plain
    await sandbox.press(STAFF, card.message_id, CASE.build("ok", closed, "verified"))
    refusal = await sandbox.next_message(STAFF)
    assert "closed" in refusal.plain and "reopen" in refusal.plain
    await sandbox.press(STAFF, card.message_id, CASE.build("ok", closed, "under_review"))
    reopened = await sandbox.next_message(STAFF)
    assert "Under review" in reopened.plain
    assert await case_status(running_bot, code) == CaseStatus.RETURNED
    assert await case_status(running_bot, closed) == CaseStatus.UNDER_REVIEW


async def test_question_and_family_answer(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family)
    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)
    await sandbox.press(STAFF, card.message_id, CASE.build("ask", code))
    await sandbox.next_message(STAFF)
    await sandbox.send_text(STAFF, "Which court <b>?")
    await sandbox.next_message(STAFF)
    question = await shown(sandbox, family, await sandbox.next_message(family))
    assert "Which court <b>?" in question.plain
    assert await case_status(running_bot, code) == CaseStatus.NEED_INFO

    await sandbox.send_text(family, "The district court")
    thanks = await sandbox.next_message(family)
    assert code in thanks.plain
    assert await case_status(running_bot, code) == CaseStatus.UNDER_REVIEW
    notice = await sandbox.next_message(STAFF)  # the desk heard of the answer (no text in it)
    assert code in notice.plain and "district" not in notice.plain
    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)
    assert "answer from the family" in card.plain and "Family messages: 1 unread" in card.plain
    await sandbox.press(STAFF, card.message_id, card.button_data("Messages"))
    thread = await sandbox.next_message(STAFF)
    assert "The district court" in thread.plain  # read in the conversation, in private


async def test_inbox_pages_and_grant(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    codes = [await seed_case(running_bot, family, status=CaseStatus.NEW) for _ in range(10)]
    await sandbox.send_text(STAFF, "/inbox")
    page = await sandbox.next_message(STAFF)
    assert "10 cases" in page.plain
    shown = [data for data in page.callback_data if data.startswith(CASE.head("show"))]
    assert shown == [CASE.build("show", code) for code in codes[:8]]
    assert page.callback_data[-1].startswith(INBOX.head("n"))
    await sandbox.press(STAFF, page.message_id, page.callback_data[-1])
    edited = await sandbox.wait_for_edit(STAFF, page.message_id)
    assert [d for row in edited.buttons for _, d in row if d.startswith(CASE.head("show"))] == [
        CASE.build("show", code) for code in codes[8:]
    ]

    newcomer = sandbox.add_user(language_code="en").id
    # first contact before the grant, so the newcomer's row takes Telegram's language (en)
    await sandbox.send_text(newcomer, "/inbox")
    assert "only for the hotline" in (await sandbox.next_message(newcomer)).plain
    await sandbox.send_text(ADMIN, f"/grant {newcomer} staff")
    await sandbox.next_message(ADMIN)
    await sandbox.send_text(newcomer, "/inbox")
    assert "10 cases" in (await sandbox.next_message(newcomer)).plain
    await sandbox.send_text(ADMIN, f"/revoke {newcomer}")
    await sandbox.next_message(ADMIN)
    await sandbox.send_text(newcomer, "/inbox")
    assert "only for the hotline" in (await sandbox.next_message(newcomer)).plain


async def test_keep_marks_details_that_survive_the_reporters_forget(
    running_bot: BotHarness,
) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    family = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family)

    await sandbox.send_text(family, f"/keep {code} on")  # a family member may not
    await sandbox.next_message(family)
    await sandbox.send_text(STAFF, f"/keep {code} on")
    assert "kept" in (await sandbox.next_message(STAFF)).plain
    await sandbox.send_text(STAFF, "/keep nonsense")
    assert "/keep" in (await sandbox.next_message(STAFF)).plain

    async with services.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == code))
        assert case is not None
        personal = await session.get(CasePersonal, case.id)
        audits = (
            await session.scalars(select(AuditEntry).where(AuditEntry.case_code == code))
        ).all()
    assert personal is not None and personal.kept_for_case is True
    assert {(a.actor_id, a.action, a.outcome) for a in audits} >= {
        (running_bot.key(STAFF), "case.keep", AuditOutcome.OK),
        (running_bot.key(family), "case.keep", AuditOutcome.DENIED),
    }

    await sandbox.send_text(family, "/forget")  # the reporter erases their data ...
    question = await sandbox.next_message(family)
    await sandbox.press(family, question.message_id, FORGET.build("yes"))
    await sandbox.wait_for_edit(family, question.message_id)
    async with services.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == code))
        assert case is not None
        personal = await session.get(CasePersonal, case.id)
    assert case.reporter_id is None  # ... and leaves the case without their identity,
    assert personal is not None and personal.detainee_name is not None  # but the details stay


async def test_staff_seeing_a_case_through_status_is_audited(running_bot: BotHarness) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    family = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family)
    await sandbox.send_text(STAFF, f"/status {code}")
    assert "Ivan Petrenko" in (await sandbox.next_message(STAFF)).plain
    async with services.sessions() as session:
        views = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.case_code == code, AuditEntry.action == "case.view"
                )
            )
        ).all()
    assert [(v.actor_id, v.outcome) for v in views] == [(running_bot.key(STAFF), AuditOutcome.OK)]


async def test_every_refusal_has_one_wording_and_an_audit_row(running_bot: BotHarness) -> None:
    """Whichever action started it, a refused operation is answered by the same sentence for the
    same reason (handlers/staff_operation.py), changes nothing, and is audited as refused."""
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    family = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family)
    missing = "ZZZZ-ZZZZ"
    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)

    async def said(text_or_button: str) -> str:
        if CASE.parse(text_or_button) is None:
            await sandbox.send_text(STAFF, text_or_button)
        else:
            await sandbox.press(STAFF, card.message_id, text_or_button)
        return (await sandbox.next_message(STAFF)).plain

    no_such_case = f"No case has the code {missing}."
    assert await said(f"/keep {missing} on") == no_such_case
    assert await said(f"/visibility {missing} public") == no_such_case
    assert await said(CASE.build("ok", missing, "verified")) == no_such_case
    # Only an old or forged button skips the question (need_info) or the reason (closed).
    assert await said(CASE.build("ok", code, "need_info")) == "This button is no longer valid."
    assert await said(CASE.build("ok", code, "closed")) == "This button is no longer valid."
    assert "(Under review → Charged)" in await said(CASE.build("ok", code, "charged"))
    await sandbox.press(STAFF, card.message_id, CASE.build("merge", code))
    await sandbox.next_message(STAFF)  # the prompt
    assert await said(code) == "A case cannot be merged into itself."

    assert await case_status(running_bot, code) == CaseStatus.UNDER_REVIEW
    async with services.sessions() as session:
        refused = (
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.outcome == AuditOutcome.REFUSED)
            )
        ).all()
        events = (await session.scalars(select(CaseEvent.kind))).all()
    assert refused == [
        "case.keep",
        "case.visibility",
        "case.status",
        "case.status",
        "case.status",
        "case.status",
        "case.merge",
    ]
    assert events == ["created"]


async def test_texts_with_html_characters_arrive_as_written(running_bot: BotHarness) -> None:
    """Every text is sent as HTML (the default parse mode): a usage line naming `<user id>`,
    and an admin's prepared answer with `<`, `&` and quotes, read exactly as written."""
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    await seed_case(running_bot, family)
    for text, expected in (
        ("/grant", "Usage: /grant <user id> staff|monitor"),
        ("/revoke", "Usage: /revoke <user id>"),
    ):
        await sandbox.send_text(ADMIN, text)
        assert (await sandbox.next_message(ADMIN)).plain == expected
    await sandbox.send_text(STAFF, "/freeze")
    assert (await sandbox.next_message(STAFF)).plain == "Usage: /freeze <user id>"
    await sandbox.send_text(ADMIN, '/answers set greet en Hello <b>friend</b> & "you"')
    await sandbox.next_message(ADMIN)
    await sandbox.send_text(ADMIN, "/answers")
    listing = await sandbox.next_message(ADMIN)
    assert 'en: Hello <b>friend</b> & "you"' in listing.plain
