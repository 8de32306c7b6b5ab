"""Delivery rules that once had no test: each of these kills a hand-made mutant that every other
deterministic test let through (tests/mutants.py applies them; tests/README.md lists them).

The bot is the real one, polling the sandbox; its outbox sweep runs hourly, so whatever goes out
here goes out on a wake-up (or not at all)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from jobs.dead_letters import DEAD_LETTER_TEMPLATE, SUMMARY_TEMPLATE, report_dead
from jobs.delivery import DELIVERY_KEY, Delivery
from storage import outbox
from storage.enums import OutboxKind, OutboxStatus
from storage.models import OutboxMessage
from storage.outbox import PRIORITY_STAFF, Outgoing, open_params
from storage.recipients import StaffContacts
from tests.support.databases import Db
from tests.support.harness import BotHarness, harness_settings
from tests.support.identity import known_user
from tests.support.sealed import every_key
from tests.support.waiting import eventually

HOUR = 3600
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADMIN = 9001
FAMILY = 100


@pytest.fixture
async def quiet_bot(
    sandbox: SandboxServer, sqlite_database_url: str, data_key: str, i18n: I18n
) -> AsyncIterator[BotHarness]:
    """The real bot, one send a second, its outbox swept hourly (the first sweep an hour after
    start: PTB's interval job ignores `first=0.0`)."""
    bot = BotHarness(
        sandbox=sandbox,
        settings=harness_settings(
            sandbox,
            sqlite_database_url,
            data_key,
            delivery_sweep_seconds=HOUR,
            send_rate_per_second=1,
        ),
        i18n=i18n,
    )
    try:
        await bot.start()
        yield bot
    finally:
        await bot.close()


def delivery_of(bot: BotHarness) -> Delivery:
    assert bot.application is not None
    delivery = bot.application.bot_data[DELIVERY_KEY]
    assert isinstance(delivery, Delivery)
    return delivery


async def queue_note(bot: BotHarness, telegram_id: int, key: str) -> int:
    """Queue one note to a known user (committed: the commit is what may wake delivery)."""
    services = bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        user = await known_user(session, services.keys, telegram_id, "en")
        await outbox.enqueue(
            session, services.cipher, [Outgoing(user, key, "cases.public_note", {"code": "K"})]
        )
        row_id = await session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)
        )
    assert isinstance(row_id, int)
    return row_id


async def row_status(bot: BotHarness, row_id: int) -> str:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        row = await session.get(OutboxMessage, row_id)
        assert row is not None
        return row.status


async def test_a_commit_wakes_delivery(quiet_bot: BotHarness) -> None:
    """A queued alert goes out because its commit woke delivery, not at the next sweep (an
    hour away here; a few seconds in production, which is why nothing else noticed)."""
    family = quiet_bot.sandbox.add_user(language_code="en").id
    await queue_note(quiet_bot, family, "t:woken")
    await quiet_bot.sandbox.next_message(family)


async def test_a_429_with_the_window_full_pauses_every_send(quiet_bot: BotHarness) -> None:
    """A RetryAfter while the bot's whole window is in use is the bot's overall limit: every
    send waits it out, not only the refused row (the next chat's send would be refused too,
    and Telegram lengthens the pause for a bot that keeps knocking)."""
    sandbox, delivery = quiet_bot.sandbox, delivery_of(quiet_bot)
    first = sandbox.add_user(language_code="en").id
    other = sandbox.add_user(language_code="en").id
    sandbox.force_retry_after(1, retry_after=HOUR)
    refused = await queue_note(quiet_bot, first, "t:refused")

    async def rescheduled() -> bool:
        return delivery.stats.rescheduled == 1

    await eventually(rescheduled, "the refused row rescheduled")
    loop = asyncio.get_running_loop()
    assert delivery.pacer.paused_until > loop.time() + HOUR / 2  # everything waits
    waiting = await queue_note(quiet_bot, other, "t:waits")

    async def held() -> bool:
        return waiting in delivery.held

    await eventually(held, "the other chat's row claimed")
    assert sandbox.stats.sends_to(other) == []  # it waits at the pacer while paused
    delivery.pacer.paused_until = 0.0  # the pause is over
    await sandbox.next_message(other)
    assert await row_status(quiet_bot, refused) == OutboxStatus.PENDING  # due in an hour


async def test_a_stopping_application_sends_nothing_more(quiet_bot: BotHarness) -> None:
    """Once the Application stops, a row still waiting for its turn is given back to the queue
    (for the next start, or another process), never sent by the stopping one."""
    sandbox, delivery = quiet_bot.sandbox, delivery_of(quiet_bot)
    application = quiet_bot.application
    assert application is not None
    family = sandbox.add_user(language_code="en").id
    delivery.pacer.pause(HOUR)  # the row will wait at the pacer
    row_id = await queue_note(quiet_bot, family, "t:stopping")

    async def held() -> bool:
        return row_id in delivery.held

    await eventually(held, "the row waiting at the pacer")
    stopping = asyncio.create_task(quiet_bot.stop())

    async def stopped_running() -> bool:
        return not application.running

    await eventually(stopped_running, "the Application stopping")
    delivery.pacer.paused_until = 0.0  # its turn comes while the Application stops
    await stopping
    assert sandbox.stats.sends_to(family) == []
    assert await row_status(quiet_bot, row_id) == OutboxStatus.PENDING


async def test_a_dead_summary_never_breeds_another_summary(db: Db) -> None:
    """Staff who blocked the bot make the summary of dead rows die too: that dead notice (and
    one of the older one-per-row notices) is marked reported without a summary of its own, or
    every summary would breed the next one for ever."""
    staff = StaffContacts(frozenset({ADMIN}), None)

    def notice(key: str, template: str) -> Outgoing:
        return Outgoing(
            ADMIN, key, template, {"code": "K7M4-9XQ2"},
            kind=OutboxKind.STAFF_ALERT, priority=PRIORITY_STAFF,
        )  # fmt: skip

    async def kill_pending() -> None:
        async with db.sessions() as session, session.begin():
            pending = await session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING)
            )
            for row_id in list(pending):
                await outbox.mark_dead(session, row_id, reason="Forbidden", now=NOW)

    async def summaries() -> list[OutboxMessage]:
        async with db.sessions() as session:
            found = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.template == SUMMARY_TEMPLATE)
                .order_by(OutboxMessage.id)
            )
            return list(found)

    async with db.sessions() as session, session.begin():
        await outbox.enqueue(
            session,
            db.cipher,
            [
                Outgoing(FAMILY, "family", "cases.public_note", {"code": "K7M4-9XQ2"}),
                notice("summary", SUMMARY_TEMPLATE),
                notice("one-per-row", DEAD_LETTER_TEMPLATE),
            ],
            now=NOW,
        )
    await kill_pending()
    later = NOW + timedelta(minutes=1)
    told = await report_dead(
        db.sessions, db.cipher, staff, now=later, gather=timedelta(0), horizon_hours=24
    )
    assert told == 1  # the family's row; not the two staff notices
    new = [row for row in await summaries() if row.status == OutboxStatus.PENDING]
    assert len(new) == 1
    assert open_params(await every_key(db.sessions, db.cipher), new[0].payload)["count"] == 1
    await kill_pending()  # the admin still blocks the bot: this summary dies as well
    again = await report_dead(
        db.sessions, db.cipher, staff, now=later + timedelta(minutes=1),
        gather=timedelta(0), horizon_hours=24,
    )  # fmt: skip
    assert again == 0
    assert all(row.status == OutboxStatus.DEAD for row in await summaries())
    async with db.sessions() as session:
        assert (
            await outbox.unreported_dead(session, db.cipher, died_before=later + timedelta(hours=1))
            == []
        )


async def test_a_429_on_a_reply_pauses_the_outbox_too(quiet_bot: BotHarness) -> None:
    """Replies and delivery share one pacer: a RetryAfter met by a reply with the window full
    pauses every send (then the reply is retried and arrives)."""
    sandbox, delivery = quiet_bot.sandbox, delivery_of(quiet_bot)
    family = sandbox.add_user(language_code="en").id
    assert delivery.pacer.paused_until == 0.0
    sandbox.force_retry_after(1, retry_after=1, methods=["sendMessage"])
    await sandbox.send_text(family, "/help")

    async def paused() -> bool:
        return delivery.pacer.paused_until > 0.0  # a moment in the loop's time: set once paused

    await eventually(paused, "the whole pacer paused by the reply's 429")
    assert sandbox.stats.status_429 == 1
    assert "/privacy" in (await sandbox.next_message(family)).plain
