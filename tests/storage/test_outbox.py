"""Claiming and settling outbox rows: priority, per-chat order, leases, and giving up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from storage import outbox
from storage.enums import OutboxKind, OutboxStatus
from storage.models import OutboxMessage, User
from storage.outbox import Outgoing
from tests.support.databases import Db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def alert(chat_id: int, key: str, **options: object) -> Outgoing:
    return Outgoing(chat_id, key, "t", {"key": key}, **options)  # type: ignore[arg-type]


async def queue(db: Db, *messages: Outgoing) -> None:
    async with db.sessions() as session, session.begin():
        await outbox.enqueue(session, db.cipher, messages, now=NOW)


async def claim(db: Db, now: datetime = NOW, limit: int = 50) -> list[outbox.ClaimedMessage]:
    async with db.sessions() as session, session.begin():
        return await outbox.claim(session, db.cipher, now=now, lease=LEASE, limit=limit)


async def test_case_alerts_go_before_broadcasts_and_one_chat_in_order(db: Db) -> None:
    async with db.sessions() as session, session.begin():
        session.add(User(id=2, language="en"))
    await queue(
        db,
        alert(1, "b1", kind=OutboxKind.BROADCAST, priority=outbox.PRIORITY_BROADCAST),
        alert(1, "a1"),
        alert(1, "a2"),
        alert(2, "a3"),
    )
    first = await claim(db)
    assert [(m.chat_id, m.params["key"], m.language) for m in first] == [
        (1, "a1", None),
        (2, "a3", "en"),
    ]
    assert await claim(db) == []  # a2 waits behind a1, in flight
    async with db.sessions() as session, session.begin():
        await outbox.mark_sent(session, first[0].id, telegram_message_id=77, now=NOW)
    assert [m.params["key"] for m in await claim(db)] == ["a2"]


async def test_backoff_holds_the_chat_and_lease_expiry_reclaims(db: Db) -> None:
    await queue(db, alert(1, "a1"), alert(1, "a2"))
    (first,) = await claim(db)
    async with db.sessions() as session, session.begin():
        await outbox.reschedule(
            session, first.id, not_before=NOW + timedelta(seconds=10), error="NetworkError"
        )
    assert await claim(db) == []  # a2 must not overtake a1
    (again,) = await claim(db, now=NOW + timedelta(seconds=11))
    assert (again.id, again.attempts) == (first.id, 1)
    assert await claim(db, now=NOW + timedelta(seconds=12)) == []
    (reclaimed,) = await claim(db, now=NOW + timedelta(seconds=11) + LEASE * 2)
    assert reclaimed.id == first.id


async def test_dead_rows_release_the_chat_and_counts(db: Db) -> None:
    await queue(db, alert(1, "a1"), alert(1, "a2"), alert(2, "b1"), alert(2, "b2"))
    claimed = await claim(db)
    async with db.sessions() as session, session.begin():
        await outbox.mark_dead(session, claimed[0].id, reason="BadRequest")
        assert await outbox.mark_chat_dead(session, 2, reason="Forbidden") == 2
    assert [m.params["key"] for m in await claim(db)] == ["a2"]
    async with db.sessions() as session:
        counts = await outbox.counts(session)
        reasons = list(
            await session.scalars(select(OutboxMessage.last_error).order_by(OutboxMessage.id))
        )
    assert counts[OutboxStatus.DEAD] == 3 and counts[OutboxStatus.SENDING] == 1
    assert reasons == ["BadRequest", None, "Forbidden", "Forbidden"]


async def test_requeue_expired_leases(db: Db) -> None:
    await queue(db, alert(1, "a1"))
    await claim(db)
    async with db.sessions() as session, session.begin():
        assert await outbox.requeue_expired_leases(session, now=NOW) == 0
        assert await outbox.requeue_expired_leases(session, now=NOW + LEASE * 2) == 1
        counts = await outbox.counts(session)
    assert counts[OutboxStatus.PENDING] == 1


async def test_rate_limit_reschedule_does_not_count_as_an_attempt(db: Db) -> None:
    await queue(db, alert(1, "a1"))
    (first,) = await claim(db)
    async with db.sessions() as session, session.begin():
        await outbox.reschedule(
            session, first.id, not_before=NOW + timedelta(seconds=3), count_attempt=False
        )
    (again,) = await claim(db, now=NOW + timedelta(seconds=3))
    assert again.attempts == 0
