"""Monitors through the sandbox with the real Application: asking for access, following, one alert
per event, what each visibility level shows, and a consent change taking effect at once."""

from __future__ import annotations

from sqlalchemy import select

from bot.callbacks import MONITOR
from storage import cases, subscriptions
from storage.enums import AuditOutcome, CaseStatus, MonitorStatus, Region, Role, Visibility
from storage.models import AuditEntry, OutboxMessage, Subscription, User
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness
from tests.support.identity import grant
from tests.support.waiting import settled

ADMIN = 9001
NAME = "Ivan <Petrenko> & Sons"


async def new_case(bot: BotHarness, visibility: Visibility, name: str = NAME) -> str:
    assert bot.services is not None
    async with bot.services.sessions() as session, session.begin():
        return await make_case(
            session,
            bot.services.cipher,
            keys=bot.services.keys,
            reporter_id=4242,
            status=CaseStatus.UNDER_REVIEW,
            visibility=visibility,
            region=Region.CRIMEA,
            name=name,
        )


async def move(bot: BotHarness, code: str, status: CaseStatus) -> int:
    assert bot.services is not None
    async with bot.services.sessions() as session, session.begin():
        change = await cases.change_status(
            session,
            bot.services.cipher,
            code,
            status,
            actor_id=bot.key(ADMIN),
            now=bot.services.clock(),
        )
    return change.event_id


async def test_request_approve_follow_and_one_alert(running_bot: BotHarness) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    sandbox.add_user(ADMIN, language_code="en")
    # first contact, so the admin's row takes Telegram's language (en) and not the default (uk)
    await sandbox.send_text(ADMIN, "/start")
    await sandbox.next_message(ADMIN)
    monitor = sandbox.add_user(language_code="en").id
    stranger = sandbox.add_user(language_code="en").id
    code = await new_case(running_bot, Visibility.PUBLIC)

    await sandbox.send_text(stranger, f"/follow {code}")
    refusal = await sandbox.next_message(stranger)
    assert "approved" in refusal.plain and "/monitor" in refusal.plain
    assert code not in refusal.plain

    await sandbox.send_text(monitor, "/monitor")
    await sandbox.next_message(monitor)
    await sandbox.send_text(monitor, "Crimea <Watch>")
    await sandbox.next_message(monitor)
    await sandbox.send_text(monitor, "documenting detentions")
    assert "sent" in (await sandbox.next_message(monitor)).plain
    request = await sandbox.next_message(ADMIN)
    assert "Crimea <Watch>" in request.plain and str(running_bot.key(monitor)) in request.plain
    await sandbox.press_button(ADMIN, request, "Approve")
    assert "approved" in (await sandbox.next_message(monitor)).plain

    await sandbox.send_text(monitor, f"/follow {code}")
    offer = await sandbox.next_message(monitor)
    await sandbox.press_button(monitor, offer, "All changes")
    assert code in (await sandbox.next_message(monitor)).plain
    await sandbox.send_text(monitor, "/follow region")
    regions = await sandbox.next_message(monitor)
    await sandbox.press_button(monitor, regions, "Crimea")
    offer = await sandbox.next_message(monitor)
    await sandbox.press_button(monitor, offer, "All changes")
    assert "Crimea" in (await sandbox.next_message(monitor)).plain

    event_id = await move(running_bot, code, CaseStatus.VERIFIED)
    alert = await sandbox.next_message(monitor)
    assert code in alert.plain and NAME in alert.plain and "Crimea" in alert.plain
    async with services.sessions() as session:
        rows = list(
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.event_id == event_id,
                    OutboxMessage.chat_id == services.keys.key(monitor),
                )
            )
        )
        user = await session.get(User, services.keys.key(monitor))
        denied = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.actor_id == services.keys.key(stranger),
                AuditEntry.outcome == AuditOutcome.DENIED,
            )
        )
        approved = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "monitor.approve")
        )
        stranger_subs = list(
            await session.scalars(
                select(Subscription).where(Subscription.user_id == services.keys.key(stranger))
            )
        )
    assert len(rows) == 1
    assert user is not None and (user.role, user.monitor_status) == (
        Role.MONITOR,
        MonitorStatus.APPROVED,
    )
    assert denied is not None and denied.action == "monitor.follow"
    assert approved is not None and approved.actor_id == running_bot.key(ADMIN)
    assert stranger_subs == []
    await sandbox.send_text(monitor, "/following")
    listing = await sandbox.next_message(monitor)
    assert code in listing.plain and len(listing.buttons) == 2
    await sandbox.press(monitor, listing.message_id, str(listing.buttons[0][0][1]))
    assert "no longer" in (await sandbox.next_message(monitor)).plain
    async with services.sessions() as session:
        assert len(await subscriptions.subscriptions_of(session, running_bot.key(monitor))) == 1
    # the only messages about the event: one alert, and no other once the outbox is drained
    await settled(running_bot)
    assert sum(code in m.plain and "status" in m.plain for m in sandbox.messages(monitor)) == 1


async def test_visibility_levels_and_consent_change(running_bot: BotHarness) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    sandbox.add_user(ADMIN, language_code="en")
    monitor = sandbox.add_user(language_code="en").id
    await sandbox.send_text(monitor, "/start")
    await sandbox.next_message(monitor)
    async with services.sessions() as session, session.begin():
        user = await session.get(User, services.keys.key(monitor))
        assert user is not None
        user.role, user.monitor_status = Role.MONITOR, MonitorStatus.APPROVED
        await subscriptions.follow_region(session, running_bot.key(monitor), Region.CRIMEA)
    public = await new_case(running_bot, Visibility.PUBLIC, "Olena Public")
    anonymous = await new_case(running_bot, Visibility.ANONYMOUS, "Petro Anonymous")
    hidden = await new_case(running_bot, Visibility.STAFF_ONLY, "Mykola Hidden")
    for code in (hidden, public, anonymous):
        await move(running_bot, code, CaseStatus.VERIFIED)
    named = await sandbox.next_message(monitor)
    assert public in named.plain and "Olena Public" in named.plain and named.protect_content
    unnamed = await sandbox.next_message(monitor)
    assert anonymous in unnamed.plain and "Anonymous" not in unnamed.plain
    assert "Crimea" in unnamed.plain and "Verified" in unnamed.plain

    await sandbox.send_text(ADMIN, f"/visibility {public} anonymous")
    await sandbox.next_message(ADMIN)
    await move(running_bot, public, CaseStatus.CHARGED)
    after = await sandbox.next_message(monitor)
    assert public in after.plain and "Olena" not in after.plain
    await move(running_bot, hidden, CaseStatus.CHARGED)
    await sandbox.send_text(monitor, "/following")  # processed after the alerts were queued
    assert "You follow" in (await sandbox.next_message(monitor)).plain
    await settled(running_bot)  # anything queued for the hidden case would have been sent by now
    assert all(hidden not in m.plain and "Mykola" not in m.plain for m in sandbox.messages(monitor))


async def test_status_lookup_offers_follow_to_approved_monitors_only(
    running_bot: BotHarness,
) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    monitor = sandbox.add_user(language_code="en").id
    family = sandbox.add_user(language_code="en").id
    async with services.sessions() as session, session.begin():
        await grant(session, services.keys, monitor, Role.MONITOR)
    code = await new_case(running_bot, Visibility.ANONYMOUS)

    await sandbox.send_text(monitor, f"/status {code}")
    seen_by_monitor = await sandbox.next_message(monitor)
    assert seen_by_monitor.callback_data == [MONITOR.build("follow", code)]
    await sandbox.press(monitor, seen_by_monitor.message_id, MONITOR.build("follow", code))
    offer = await sandbox.next_message(monitor)
    assert code in offer.plain

    await sandbox.send_text(family, f"/status {code}")
    seen_by_family = await sandbox.next_message(family)
    assert seen_by_family.callback_data == []
