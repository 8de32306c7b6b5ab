"""A relative's phone taken at a checkpoint (issue 12, points 5-7), through the real bot and the
sandbox: discreet notifications with a Show button whose details delete themselves, even across
a restart; "Hide this chat" from /privacy at any time, after /forget too, deleting everything the
bot sent and what the family wrote; freezing an account, by staff or by five wrong PINs."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from bot.callbacks import FORGET, HIDE, PRIVACY, SHOW
from bot.sandbox.server import SandboxServer
from jobs import deletions
from jobs.delivery import DELIVERY_KEY
from storage import cases, outbox
from storage.enums import CaseStatus, OutboxStatus
from storage.models import AuditEntry, OutboxMessage, User
from storage.outbox import Outgoing
from tests.handlers import report_flow
from tests.security.helpers import NAME
from tests.support.case_factory import make_case
from tests.support.discreet import NOTICE, shown
from tests.support.harness import BotHarness
from tests.support.identity import known_user
from tests.support.waiting import settled, wait_until_idle

ADMIN = 9001
STALE = "This message is no longer available."
CODE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}")


async def _case(bot: BotHarness, family: int) -> str:
    services = bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        await known_user(session, services.keys, ADMIN, "en")
        return await make_case(
            session,
            services.cipher,
            keys=services.keys,
            reporter_id=family,
            status=CaseStatus.UNDER_REVIEW,
            name=NAME,
            language="en",
        )


async def _change(bot: BotHarness, code: str, status: CaseStatus) -> None:
    services = bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        await cases.change_status(
            session,
            services.cipher,
            code,
            status,
            actor_id=services.keys.key(ADMIN),
            now=services.clock(),
        )


async def _sweep_deletions(bot: BotHarness) -> None:
    """Run the deletion job's callback as the JobQueue would."""
    application = bot.application
    assert application is not None and application.job_queue is not None
    (job,) = application.job_queue.get_jobs_by_name(deletions.JOB_NAME)
    await job.run(application)


async def _forged_press(sandbox: SandboxServer, user: int, data: str) -> str:
    """A button press with data of the user's choosing, on a message of their own chat."""
    await sandbox.send_text(user, "/help")
    message = await sandbox.next_message(user)
    query = await sandbox.press(user, message.message_id, data)
    answered = await sandbox.wait_for_callback_answer(query)
    return answered.text or ""


def _user_texts(sandbox: SandboxServer, user: int) -> list[str]:
    """What the user wrote and is still in the chat (a deleted message is gone or marked)."""
    written = sandbox.world.user_messages.get(user, [])
    return [m.text or "" for m in written if not getattr(m, "deleted", False)]


async def test_point5_discreet_push_show_after_restart_details_deleted_after_restart(
    harness: BotHarness,
) -> None:
    await harness.start()
    sandbox = harness.sandbox
    family = sandbox.add_user(language_code="en").id
    stranger = sandbox.add_user(language_code="en").id
    code = await _case(harness, family)
    await _change(harness, code, CaseStatus.VERIFIED)

    push = await sandbox.next_message(family)
    assert push.plain == NOTICE  # no name, no status, no code on the lock screen
    assert NAME not in push.plain and "Verified" not in push.plain and code not in push.plain
    (show,) = push.callback_data
    assert show.startswith(SHOW.head())

    await settled(harness)  # the push is recorded as sent (else it goes out again after the
    await harness.kill()  # kill, as a killed process's would): a crash between push and press
    await harness.start()
    assert await _forged_press(sandbox, stranger, show) == STALE  # only the chat it was sent to
    assert all(NAME not in m.plain for m in sandbox.messages(stranger))

    await sandbox.press(family, push.message_id, show)
    details = await sandbox.next_message(family)
    assert details.protect_content
    assert NAME in details.plain and "Verified" in details.plain and code in details.plain

    await _sweep_deletions(harness)  # not yet due
    assert not sandbox.message(family, details.message_id).deleted
    await wait_until_idle(harness)  # the press is handled (else a crash replays it)
    await harness.kill()  # the deletion is a database row: it survives this
    await harness.start()
    assert harness.services is not None
    later = harness.services.clock() + timedelta(minutes=10, seconds=30)
    harness.services.clock = lambda: later
    await _sweep_deletions(harness)
    assert sandbox.message(family, details.message_id).deleted
    assert not sandbox.message(family, push.message_id).deleted

    assert await _forged_press(sandbox, family, SHOW.bare(999999)) == STALE  # a stale Show says so

    await sandbox.send_text(family, "/privacy")
    settings = await sandbox.next_message(family)
    assert PRIVACY.build("discreet", "off") in settings.callback_data
    await sandbox.press(family, settings.message_id, PRIVACY.build("discreet", "off"))
    assert "off" in (await sandbox.next_message(family)).plain
    await _change(harness, code, CaseStatus.CHARGED)
    plain = await sandbox.next_message(family)  # the family chose details in the push
    assert NAME in plain.plain and "Charged" in plain.plain and not plain.callback_data


async def test_point6_hide_chat_from_privacy_after_forget_deletes_everything_sensitive(
    running_bot: BotHarness,
) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    family = sandbox.add_user(language_code="en").id
    reply = await report_flow.file(sandbox, family, {**report_flow.FULL, "name": NAME})
    found = CODE.search(reply.plain)
    assert found is not None
    code = found.group(0)
    summary = next(m for m in sandbox.messages(family) if NAME in m.plain)
    assert summary.protect_content  # the report summary cannot be forwarded or saved
    assert NAME in _user_texts(sandbox, family)  # the name the family typed

    async with services.sessions() as session, session.begin():
        await known_user(session, services.keys, ADMIN, "en")
        await cases.change_status(
            session,
            services.cipher,
            code,
            CaseStatus.UNDER_REVIEW,
            actor_id=services.keys.key(ADMIN),
            now=services.clock(),
        )
        await cases.request_info(
            session,
            services.cipher,
            code,
            "Which court holds him?",
            actor_id=services.keys.key(ADMIN),
            now=services.clock(),
        )
    status_push = await sandbox.next_message(family)
    question = await shown(sandbox, family, await sandbox.next_message(family))
    assert "Which court holds him?" in question.plain
    await sandbox.send_text(family, "The court in Simferopol")
    await sandbox.next_message(family)  # the acknowledgement
    async with services.sessions() as session, session.begin():
        await cases.send_note(
            session,
            services.cipher,
            code,
            "Hearing moved to Monday",
            monitors=True,
            actor_id=services.keys.key(ADMIN),
            now=services.clock(),
        )
    note_push = await sandbox.next_message(family)
    await settled(running_bot)

    await sandbox.send_text(family, "/forget")
    confirm = await sandbox.next_message(family)
    await sandbox.press(family, confirm.message_id, FORGET.build("yes"))
    await sandbox.wait_for_edit(family, confirm.message_id)

    await sandbox.send_text(family, "/privacy")
    privacy = await sandbox.next_message(family)
    assert HIDE.build("chat") in privacy.callback_data  # at any time, not only after a report
    await sandbox.press(family, privacy.message_id, HIDE.build("chat"))
    await sandbox.wait_for(lambda: sandbox.message(family, note_push.message_id).deleted)
    await sandbox.next_message(family)  # "Done."
    for gone in (summary, status_push, question, note_push, privacy):
        assert sandbox.message(family, gone.message_id).deleted, gone.plain
    visible = [m.plain for m in sandbox.messages(family, include_deleted=False)]
    assert not [text for text in visible if NAME in text or "Which court" in text]
    assert NAME not in _user_texts(sandbox, family)  # the family's own answers, too
    assert "The court in Simferopol" not in _user_texts(sandbox, family)


async def test_point7_freeze_withholds_updates_shows_nothing_and_alerts_staff(
    running_bot: BotHarness,
) -> None:
    sandbox, services, application = (
        running_bot.sandbox,
        running_bot.services,
        running_bot.application,
    )
    assert services is not None and application is not None
    sandbox.add_user(ADMIN, language_code="en")
    family = sandbox.add_user(language_code="en").id
    code = await _case(running_bot, family)
    async with services.sessions() as session, session.begin():  # queued before the freeze
        await outbox.enqueue(
            session,
            services.cipher,
            [
                Outgoing(
                    running_bot.key(family),
                    "t:queued",
                    "cases.public_note",
                    {"code": code, "name": NAME, "note": "queued"},
                    not_before=services.clock() + timedelta(hours=1),
                )
            ],
        )

    await sandbox.send_text(ADMIN, f"/freeze {family}")
    assert "is frozen" in (await sandbox.next_message(ADMIN)).plain
    async with services.sessions() as session, session.begin():
        await session.execute(update(OutboxMessage).values(not_before=services.clock()))
    await application.bot_data[DELIVERY_KEY].drain()  # re-checked when sent, not when queued
    await _change(running_bot, code, CaseStatus.VERIFIED)
    await settled(running_bot)
    async with services.sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.chat_id == services.keys.key(family))
            )
        ).all()
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "user.freeze"))
        ).one()
    assert [row.status for row in rows] == [OutboxStatus.CANCELLED] * 2
    assert (audit.actor_id, audit.target_user_id) == (
        running_bot.key(ADMIN),
        running_bot.key(family),
    )

    await sandbox.send_text(family, "/status")
    listing = await sandbox.next_message(family)
    await sandbox.send_text(family, f"/status {code}")
    lookup = await sandbox.next_message(family)
    await sandbox.send_text(family, "/mydata")
    mydata = await sandbox.next_message(family)
    for shown_text in (listing.plain, lookup.plain, mydata.plain):
        assert NAME not in shown_text and code not in shown_text
    assert "no cases" in listing.plain
    assert all(NAME not in m.plain for m in sandbox.messages(family))  # no update ever came
    await sandbox.wait_for(
        lambda: any("Frozen account" in m.plain for m in sandbox.messages(ADMIN))
    )
    alerts = [m for m in sandbox.messages(ADMIN) if "Frozen account" in m.plain]
    assert len(alerts) == 1 and str(running_bot.key(family)) in alerts[0].plain
    assert code in alerts[0].plain

    # the alert names the user number (the key), which /unfreeze takes as well as the id
    await sandbox.send_text(ADMIN, f"/unfreeze {running_bot.key(family)}")
    await sandbox.wait_for(
        lambda: any("no longer frozen" in m.plain for m in sandbox.messages(ADMIN))
    )
    await sandbox.send_text(family, "/status")
    assert NAME in (await sandbox.next_message(family)).plain


async def test_point7_pin_is_asked_and_five_wrong_pins_freeze_and_alert_staff(
    running_bot: BotHarness,
) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    sandbox.add_user(ADMIN, language_code="en")
    family = sandbox.add_user(language_code="en").id
    code = await _case(running_bot, family)

    await sandbox.send_text(family, "/privacy")
    privacy = await sandbox.next_message(family)
    await sandbox.press(family, privacy.message_id, PRIVACY.build("pin", "set"))
    assert "4 to 8 digits" in (await sandbox.next_message(family)).plain
    await sandbox.send_text(family, "4821")
    assert "same PIN again" in (await sandbox.next_message(family)).plain
    await sandbox.send_text(family, "4821")
    assert "PIN is set" in (await sandbox.next_message(family)).plain
    assert "4821" not in _user_texts(sandbox, family)  # deleted from the chat at once
    async with services.sessions() as session:
        user = await session.get(User, services.keys.key(family))
        assert user is not None and user.pin_hash is not None
        assert b"4821" not in user.pin_hash  # sealed ...
        stored = services.cipher.open(user.pin_hash) or ""
    assert stored.startswith("scrypt1$") and "4821" not in stored  # ... and a salted hash

    await sandbox.send_text(family, "/status")
    assert "PIN" in (await sandbox.next_message(family)).plain
    await sandbox.send_text(family, "4821")
    assert NAME in (await sandbox.next_message(family)).plain

    await _change(running_bot, code, CaseStatus.VERIFIED)
    push = await sandbox.next_message(family)
    await sandbox.press(family, push.message_id, push.callback_data[0])
    assert "PIN" in (await sandbox.next_message(family)).plain  # Show asks for it too
    await sandbox.send_text(family, "4821")
    assert "Verified" in (await sandbox.next_message(family)).plain

    await sandbox.send_text(family, "/mydata")
    assert "PIN" in (await sandbox.next_message(family)).plain
    for left in (4, 3, 2, 1):
        await sandbox.send_text(family, "1111")
        wrong = await sandbox.next_message(family)
        assert "Wrong PIN" in wrong.plain and str(left) in wrong.plain and NAME not in wrong.plain
    await sandbox.send_text(family, "1111")
    assert "no details any more" in (await sandbox.next_message(family)).plain
    await sandbox.wait_for(lambda: any("wrong PINs" in m.plain for m in sandbox.messages(ADMIN)))
    async with services.sessions() as session:
        user = await session.get(User, services.keys.key(family))
        assert user is not None and user.frozen_at is not None
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "user.freeze"))
        ).one()
    assert (audit.actor_id, audit.target_user_id) == (0, running_bot.key(family))

    await sandbox.send_text(family, "/mydata")  # frozen: no PIN asked, nothing shown
    after = await sandbox.next_message(family)
    assert "PIN" not in after.plain and NAME not in after.plain and code not in after.plain

    await sandbox.send_text(family, "/forget")  # the PIN goes with the data, the freeze stays
    confirm = await sandbox.next_message(family)
    await sandbox.press(family, confirm.message_id, FORGET.build("yes"))
    await sandbox.wait_for_edit(family, confirm.message_id)
    async with services.sessions() as session:
        user = await session.get(User, services.keys.key(family))
        assert user is not None and user.pin_hash is None and user.frozen_at is not None
