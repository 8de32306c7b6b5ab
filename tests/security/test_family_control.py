"""/mydata shows what is held; /forget erases the user's data but keeps the case without them;
"Hide this chat" deletes the sensitive messages and keeps the case code."""

from __future__ import annotations

import html
import re

from sqlalchemy import func, select

from bot.callbacks import FORGET, HIDE
from handlers.privacy import HIDE_CODE
from storage.enums import SubscriptionScope
from storage.models import (
    AuditEntry,
    Case,
    CaseContact,
    CaseEvent,
    CasePersonal,
    PersistenceEntry,
    Subscription,
    User,
)
from tests.handlers import report_flow
from tests.security.helpers import NAME, PHONE, seed_case
from tests.support.harness import BotHarness
from tests.support.sealed import every_key


async def _seed(bot: BotHarness, user_id: int) -> tuple[str, str]:
    assert bot.services is not None
    async with bot.services.sessions() as session, session.begin():
        erased = await seed_case(
            session, bot.services.cipher, keys=bot.services.keys, reporter_id=user_id
        )
        kept = await seed_case(
            session,
            bot.services.cipher,
            keys=bot.services.keys,
            reporter_id=user_id,
            name="Kept Name",
            kept_for_case=True,
        )
        session.add(
            Subscription(
                user_id=bot.key(user_id),
                scope=SubscriptionScope.CASE,
                target=f"case:{erased}",
            )
        )
    return erased, kept


async def test_mydata_shows_what_is_held_protected(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en")
    await sandbox.send_text(user.id, "/start")
    await sandbox.next_message(user.id)
    erased, kept = await _seed(running_bot, user.id)
    await sandbox.send_text(user.id, "/mydata")
    reply = await sandbox.next_message(user.id)
    assert reply.protect_content
    assert reply.parse_mode == "HTML"
    for expected in (erased, kept, NAME, "Kept Name", PHONE, f"You follow: Case {erased}"):
        assert expected in reply.plain
    assert str(user.id) in reply.plain and "Language: English" in reply.plain
    assert "case:" not in reply.plain and "_" not in reply.plain  # words, not stored codes


async def test_mydata_escapes_stored_values(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en")
    await sandbox.send_text(user.id, "/start")
    await sandbox.next_message(user.id)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session, session.begin():
        await seed_case(
            session,
            running_bot.services.cipher,
            keys=running_bot.services.keys,
            reporter_id=user.id,
            name="<b>A & B</b>",
        )
    await sandbox.send_text(user.id, "/mydata")
    reply = await sandbox.next_message(user.id)
    assert "<b>A & B</b>" in reply.plain  # shown literally: escaped, and the server accepted it
    assert html.escape("<b>A & B</b>") in (reply.text or "")


async def test_forget_erases_the_user_and_keeps_cases_without_them(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    services = running_bot.services
    assert services is not None
    user = sandbox.add_user(language_code="en")
    await sandbox.send_text(user.id, "/mydata")  # user_data now holds sensitive ids (persisted)
    await sandbox.next_message(user.id)
    erased, kept = await _seed(running_bot, user.id)
    await sandbox.send_text(user.id, "/forget")
    question = await sandbox.next_message(user.id)
    assert question.callback_data == [FORGET.build("yes"), FORGET.build("no")]
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PersistenceEntry))
    await sandbox.press(user.id, question.message_id, FORGET.build("yes"))
    await sandbox.wait_for_edit(user.id, question.message_id)

    async with services.sessions() as session:
        assert not (
            await session.scalars(
                select(CaseContact).where(CaseContact.user_id == services.keys.key(user.id))
            )
        ).all()
        assert not (
            await session.scalars(
                select(Subscription).where(Subscription.user_id == services.keys.key(user.id))
            )
        ).all()
        keys = (await session.execute(select(PersistenceEntry.kind, PersistenceEntry.key))).all()
        mine = (str(user.id), str(services.keys.key(user.id)))
        assert not [k for k in keys if any(each in k[1] for each in mine)]
        cases = {c.code: c for c in await session.scalars(select(Case))}
        assert set(cases) == {erased, kept}
        assert all(c.reporter_id is None for c in cases.values())
        assert cases[erased].person_index is None
        erased_personal = await session.get(CasePersonal, cases[erased].id)
        kept_personal = await session.get(CasePersonal, cases[kept].id)
        assert erased_personal is not None and erased_personal.detainee_name is None
        assert erased_personal.health is None
        assert kept_personal is not None
        assert (await every_key(services.sessions, services.cipher)).open(
            kept_personal.detainee_name
        ) == "Kept Name"
        events = (await session.scalars(select(CaseEvent))).all()
        assert all(e.actor_id != services.keys.key(user.id) for e in events)
        assert all(e.body is None for e in events if e.case_id == cases[erased].id)
        # No row keeps them (language, first contact, even their key): see test_telegram_ids.py
        assert await session.get(User, services.keys.key(user.id)) is None
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "forget_user"))
        ).one()
        assert audit.actor_id == 0 and audit.target_user_id is None
        assert str(user.id) not in (audit.detail or "")
    await sandbox.send_text(user.id, "/mydata")
    after = await sandbox.next_message(user.id)
    assert NAME not in after.plain and PHONE not in after.plain and erased not in after.plain


async def test_forget_can_be_declined(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en")
    erased, _ = await _seed(running_bot, user.id)
    await sandbox.send_text(user.id, "/forget")
    question = await sandbox.next_message(user.id)
    await sandbox.press(user.id, question.message_id, FORGET.build("no"))
    await sandbox.wait_for_edit(user.id, question.message_id)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == erased))
        assert case is not None and case.reporter_id == running_bot.key(user.id)


async def test_hide_chat_deletes_sensitive_messages_and_keeps_the_code(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en")
    await sandbox.send_text(user.id, "/start")
    menu = await sandbox.next_message(user.id)
    code, _ = await _seed(running_bot, user.id)
    await sandbox.send_text(user.id, "/mydata")
    first = await sandbox.next_message(user.id)
    await sandbox.send_text(user.id, "/mydata")
    second = await sandbox.next_message(user.id)
    assert running_bot.application is not None
    running_bot.application.user_data[user.id][HIDE_CODE] = code
    await sandbox.press(user.id, second.message_id, HIDE.build("chat"))
    await sandbox.wait_for(lambda: sandbox.message(user.id, second.message_id).deleted)
    final = await sandbox.next_message(user.id)
    assert sandbox.message(user.id, first.message_id).deleted
    assert not sandbox.message(user.id, menu.message_id).deleted
    assert code in final.plain and NAME not in final.plain
    visible = sandbox.messages(user.id, include_deleted=False)
    assert all(NAME not in m.plain for m in visible)


async def test_hide_chat_after_a_real_report_leaves_only_the_code(running_bot: BotHarness) -> None:
    """The offer that follows a filed report: the summary with the answers goes, the code stays."""
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    answers = {**report_flow.FULL, "name": NAME}
    reply = await report_flow.file(sandbox, user, answers)
    found = re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}", reply.plain)
    assert found is not None
    code = found.group(0)
    assert any(NAME in m.plain for m in sandbox.messages(user))  # the summary showed the name
    offer = sandbox.messages(user)[-1]
    assert HIDE.build("chat") in offer.callback_data

    await sandbox.press(user, offer.message_id, HIDE.build("chat"))
    await sandbox.wait_for(
        lambda: all(NAME not in m.plain for m in sandbox.messages(user, include_deleted=False))
    )
    visible = sandbox.messages(user, include_deleted=False)
    assert any(code in m.plain for m in visible)
    assert all(str(report_flow.FULL["phone"]) not in m.plain for m in visible)
