"""Delivery details that need no fault injection: backoff, giving up, bad requests."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from jobs.delivery import DELIVERY_KEY, Delivery, backoff_seconds
from storage import outbox
from storage.enums import OutboxStatus
from storage.models import OutboxMessage
from storage.outbox import Outgoing
from tests.support.harness import BotHarness
from tests.support.identity import key_of, known_user
from tests.support.waiting import eventually, settled

ADMIN = 9001
SECRET_NOTE = "SECRET-NOTE-5f2"


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    rng = random.Random(4)
    delays = [backoff_seconds(attempt, rng) for attempt in range(1, 12)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(delay <= 300 for delay in delays)
    assert delays[5] > delays[0] * 8
    assert len({round(backoff_seconds(3, rng), 6) for _ in range(20)}) > 1  # jitter


async def test_unknown_chat_is_a_dead_row_with_a_reason_free_of_data(
    running_bot: BotHarness,
) -> None:
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        stranger = await known_user(session, services.keys, 424242)  # Telegram does not know it
        await outbox.enqueue(
            session,
            services.cipher,
            [Outgoing(stranger, "t:1", "cases.public_note", {"code": "X", "note": "secret"})],
        )
    counts = await settled(running_bot)
    assert counts[OutboxStatus.DEAD] == 1
    async with services.sessions() as session:
        row = await session.get(OutboxMessage, 1)
    assert row is not None and row.last_error == "BadRequest:chat_not_found"


async def test_a_recipient_whose_telegram_id_is_not_known_is_cancelled_not_sent(
    running_bot: BotHarness,
) -> None:
    """A user key with no user row (gone since the row was queued): nothing to send to."""
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        await outbox.enqueue(
            session,
            services.cipher,
            [Outgoing(key_of(services, 515151), "t:3", "cases.public_note", {"code": "X"})],
        )
    counts = await settled(running_bot)
    assert counts[OutboxStatus.CANCELLED] == 1
    async with services.sessions() as session:
        row = await session.get(OutboxMessage, 1)
    assert row is not None and row.last_error == "recipient unknown"
    assert running_bot.sandbox.stats.sends_to(515151) == []


async def test_network_give_up_past_the_horizon_tells_staff_without_the_text(
    harness: BotHarness,
) -> None:
    """A row failing with network errors since longer than the horizon is dead at its next
    failure; staff read the case code in the summary, never the note."""
    harness.settings = harness.settings.model_copy(update={"dead_summary_seconds": 0})
    await harness.start()
    sandbox = harness.sandbox
    sandbox.user(ADMIN)
    family = sandbox.add_user(language_code="en").id
    services = harness.services
    assert services is not None
    sandbox.drop_connections(None)
    async with services.sessions() as session, session.begin():
        await known_user(session, services.keys, family, "en")
        # the summary is rendered in the admin's language: English, so the words can be checked
        await known_user(session, services.keys, ADMIN, "en")
        await outbox.enqueue(
            session,
            services.cipher,
            [
                Outgoing(
                    key_of(services, family),
                    "t:2",
                    "cases.public_note",
                    {"code": "K7M4-9XQ2", "note": SECRET_NOTE},
                )
            ],
        )
        # as if Telegram had been unreachable for the whole horizon already
        horizon = timedelta(hours=services.settings.delivery_horizon_hours)
        await session.execute(
            update(OutboxMessage).values(failing_since=services.clock() - horizon, attempts=40)
        )
    await sandbox.wait_for(lambda: sandbox.stats.dropped >= 1)
    sandbox.heal()
    notice = await sandbox.next_message(ADMIN)
    assert "K7M4-9XQ2" in notice.plain and "1 message could not be delivered" in notice.plain
    assert "Telegram could not be reached for 24 h: 1" in notice.plain
    assert SECRET_NOTE not in notice.plain and SECRET_NOTE not in notice.text
    assert sandbox.messages(family) == []
    async with services.sessions() as session:
        row = await session.get(OutboxMessage, 1)
    assert row is not None and row.status == OutboxStatus.DEAD
    assert row.last_error is not None and row.last_error.endswith(":horizon")


@pytest.mark.parametrize(
    "busy",
    [
        OperationalError("UPDATE outbox", {}, sqlite3.OperationalError("locked")),
        PoolTimeout("QueuePool limit reached"),
        RuntimeError("anything else"),
    ],
    ids=["sqlite-locked", "pool-timeout", "any-other-error"],
)
async def test_a_send_is_recorded_even_when_the_database_is_busy_at_first(
    running_bot: BotHarness, monkeypatch: pytest.MonkeyPatch, busy: Exception
) -> None:
    """SQLite's lock held past its timeout, a connection pool exhausted (not a DBAPIError), or
    any other error while recording a batch of sends: the batch is retried, so the row does not
    stay `sending` and go out a second time after its lease."""
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    family = sandbox.add_user(language_code="en").id
    real_mark_sent = outbox.mark_sent_many
    failures = [busy] * 2

    async def busy_then_real(*args: object, **kwargs: object) -> int:
        if failures:
            raise failures.pop()
        return await real_mark_sent(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "mark_sent_many", busy_then_real)
    async with services.sessions() as session, session.begin():
        key = await known_user(session, services.keys, family, "en")
        await outbox.enqueue(
            session,
            services.cipher,
            [Outgoing(key, "t:busy", "cases.public_note", {"code": "K7M4-9XQ2", "note": "n"})],
        )
    counts = await settled(running_bot)
    assert failures == []
    assert counts[OutboxStatus.SENT] == 1
    assert len(sandbox.stats.sends_to(family)) == 1


async def test_a_row_whose_lease_was_lost_is_never_sent_by_its_old_owner(
    harness: BotHarness,
) -> None:
    """A stall longer than the lease: another sender took the row meanwhile. The old owner
    learns it at its next renewal and drops the row instead of sending it a second time."""
    harness.settings = harness.settings.model_copy(update={"delivery_lease_seconds": 3})
    await harness.start()
    sandbox, services = harness.sandbox, harness.services
    assert services is not None and harness.application is not None
    delivery = harness.application.bot_data[DELIVERY_KEY]
    assert isinstance(delivery, Delivery)
    delivery.pacer.pause(3600)  # the row waits at the pacer
    family = sandbox.add_user(language_code="en").id
    async with services.sessions() as session, session.begin():
        key = await known_user(session, services.keys, family, "en")
        await outbox.enqueue(
            session, services.cipher, [Outgoing(key, "t:lost", "cases.public_note", {"code": "K"})]
        )

    async def held() -> bool:
        return len(delivery.held) == 1

    await eventually(held, "the row held at the pacer")
    (row_id,) = delivery.held
    async with services.sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row_id).values(owner="another")
        )

    async def noticed() -> bool:
        return delivery.stats.lost == 1

    await eventually(noticed, "the renewal noticing the lost lease")
    delivery.pacer.paused_until = 0.0

    async def dropped() -> bool:
        return row_id not in delivery.held

    await eventually(dropped, "the old owner dropping the row")
    assert sandbox.stats.sends_to(family) == []
    async with services.sessions() as session:
        row = await session.get(OutboxMessage, row_id)
    assert row is not None and (row.status, row.owner) == (OutboxStatus.SENDING, "another")
