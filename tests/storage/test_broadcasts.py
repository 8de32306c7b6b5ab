"""Broadcast storage: audiences, a row per recipient, counts from the outbox, pause/cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from storage import broadcasts, outbox
from storage.broadcasts import BadAudience, BadBroadcastState
from storage.enums import (
    AuditOutcome,
    BroadcastStatus,
    MonitorStatus,
    OutboxKind,
    OutboxStatus,
    Role,
    SubscriptionScope,
)
from storage.models import (
    AuditEntry,
    Broadcast,
    Case,
    CaseContact,
    OutboxMessage,
    Subscription,
    User,
)
from storage.outbox import PRIORITY_BROADCAST
from tests.support.databases import Db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STAFF = 500
ADMIN = 9001


@pytest.fixture
async def people(db: Db) -> Db:
    """1-3 families (1 and 2 in Crimea, 3 in Kherson), 4 a blocked family, 5 a region monitor,
    6 a monitor of another region, 7 a newcomer in English, 8 forgotten, 500 staff, 9001 admin."""
    async with db.sessions() as session, session.begin():
        session.add_all(
            [
                User(id=1, language="uk"),
                User(id=2, language="ru"),
                User(id=3, language=None),
                User(id=4, language="uk", blocked=True),
                User(id=5, language="en", role=Role.MONITOR, monitor_status=MonitorStatus.APPROVED),
                User(id=6, language="en", role=Role.MONITOR, monitor_status=MonitorStatus.APPROVED),
                User(id=7, language="en"),
                User(id=8, language="uk", forgotten_at=NOW),
                User(id=STAFF, language="en", role=Role.STAFF),
                User(id=ADMIN, language="uk"),
            ]
        )
        crimea = Case(code="AAAA-1111", status="new", region="crimea")
        kherson = Case(code="BBBB-2222", status="new", region="kherson")
        session.add_all([crimea, kherson])
        await session.flush()
        for user_id, case in ((1, crimea), (2, crimea), (3, kherson), (4, crimea)):
            session.add(CaseContact(case_id=case.id, user_id=user_id))
        session.add(
            Subscription(
                user_id=5, scope=SubscriptionScope.REGION, target="region:crimea", region="crimea"
            )
        )
        session.add(
            Subscription(
                user_id=6, scope=SubscriptionScope.REGION, target="region:donetsk", region="donetsk"
            )
        )
    return db


async def audience(db: Db, kind: str, argument: str | None = None) -> list[int]:
    async with db.sessions() as session:
        return await broadcasts.recipients(
            session, kind, argument, admin_ids={ADMIN}, default_language="uk"
        )


async def test_audiences_exclude_blocked_and_forgotten(people: Db) -> None:
    assert await audience(people, "everyone") == [1, 2, 3, 5, 6, 7, STAFF, ADMIN]
    assert await audience(people, "families") == [1, 2, 3]
    assert await audience(people, "monitors") == [5, 6]
    assert await audience(people, "staff") == [STAFF, ADMIN]
    assert await audience(people, "language", "uk") == [1, 3, ADMIN]  # 3 has no language: uk
    assert await audience(people, "language", "en") == [5, 6, 7, STAFF]
    # Region: monitors following it AND contacts of cases there.
    assert await audience(people, "region", "crimea") == [1, 2, 5]
    assert await audience(people, "region", "kherson") == [3]


@pytest.mark.parametrize(
    ("kind", "argument"),
    [("all", None), ("language", "de"), ("language", None), ("region", "atlantis")],
)
async def test_unknown_audiences_are_refused(people: Db, kind: str, argument: str | None) -> None:
    with pytest.raises(BadAudience):
        await audience(people, kind, argument)


async def send(db: Db, kind: str = "everyone", argument: str | None = None) -> int:
    async with db.sessions() as session, session.begin():
        view = await broadcasts.queue_broadcast(
            session,
            db.cipher,
            author_id=STAFF,
            audience=kind,
            audience_arg=argument,
            text="<b>Hotline hours</b> change",
            progress_chat_id=STAFF,
            progress_message_id=77,
            admin_ids={ADMIN},
            now=NOW,
        )
    return view.id


async def test_queue_one_row_per_recipient_low_priority_deduplicated(people: Db) -> None:
    broadcast_id = await send(people)
    async with people.sessions() as session:
        rows = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.broadcast_id == broadcast_id)
            )
        )
        view = await broadcasts.view(session, broadcast_id)
        audit_rows = list(await session.scalars(select(AuditEntry)))
    assert sorted(row.chat_id for row in rows) == [1, 2, 3, 5, 6, 7, STAFF, ADMIN]
    assert {row.kind for row in rows} == {OutboxKind.BROADCAST}
    assert {row.priority for row in rows} == {PRIORITY_BROADCAST}
    assert {row.dedupe_key for row in rows} == {
        f"broadcast:{broadcast_id}:{row.chat_id}" for row in rows
    }
    params = outbox.open_params(people.cipher, rows[0].payload)
    assert params["text"] == "<b>Hotline hours</b> change"
    assert view.status == BroadcastStatus.SENDING and view.progress_message_id == 77
    assert view.counts.total == 8 and view.counts.pending == 8
    assert [(a.action, a.outcome) for a in audit_rows] == [("broadcast.send", AuditOutcome.OK)]
    assert "Hotline" not in (audit_rows[0].detail or "")


async def test_counts_come_from_outbox_rows(people: Db) -> None:
    broadcast_id = await send(people, "families")
    async with people.sessions() as session, session.begin():
        claimed = await outbox.claim(
            session, people.cipher, now=NOW, lease=timedelta(seconds=30), limit=10
        )
        by_chat = {row.chat_id: row.id for row in claimed}
        await outbox.mark_sent(session, by_chat[1], telegram_message_id=5, now=NOW)
        await outbox.mark_chat_dead(session, 2, reason="Forbidden")
        await outbox.mark_dead(session, by_chat[3], reason="BadRequest:other")
        numbers = await broadcasts.counts(session, broadcast_id)
        assert await broadcasts.mark_done_if_drained(session, broadcast_id)
    assert (numbers.delivered, numbers.blocked, numbers.failed, numbers.pending) == (1, 1, 1, 0)
    assert numbers.total == numbers.done == 3


async def due(db: Db, at: datetime) -> list[int]:
    async with db.sessions() as session, session.begin():
        claimed = await outbox.claim(
            session, db.cipher, now=at, lease=timedelta(seconds=30), limit=100
        )
    return sorted(row.chat_id for row in claimed)


async def test_pause_holds_rows_resume_releases_them(people: Db) -> None:
    broadcast_id = await send(people, "families")
    async with people.sessions() as session, session.begin():
        view = await broadcasts.pause(session, broadcast_id, STAFF, now=NOW)
    assert view.status == BroadcastStatus.PAUSED and view.counts.pending == 3
    assert await due(people, NOW + timedelta(days=365)) == []
    async with people.sessions() as session, session.begin():
        with pytest.raises(BadBroadcastState):
            await broadcasts.pause(session, broadcast_id, STAFF, now=NOW)
    async with people.sessions() as session, session.begin():
        view = await broadcasts.resume(session, broadcast_id, STAFF, now=NOW)
    assert view.status == BroadcastStatus.SENDING
    assert await due(people, NOW) == [1, 2, 3]


async def test_cancel_stops_every_unsent_row(people: Db) -> None:
    broadcast_id = await send(people)
    async with people.sessions() as session, session.begin():
        claimed = await outbox.claim(
            session, people.cipher, now=NOW, lease=timedelta(seconds=30), limit=2
        )
        await outbox.mark_sent(session, claimed[0].id, telegram_message_id=1, now=NOW)
    async with people.sessions() as session, session.begin():
        view = await broadcasts.cancel(session, broadcast_id, STAFF, now=NOW)
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert view.status == BroadcastStatus.CANCELLED
    assert (view.counts.delivered, view.counts.cancelled, view.counts.pending) == (1, 7, 0)
    assert await due(people, NOW + timedelta(hours=1)) == []
    assert actions == ["broadcast.send", "broadcast.cancel"]
    async with people.sessions() as session, session.begin():
        with pytest.raises(BadBroadcastState):
            await broadcasts.resume(session, broadcast_id, STAFF, now=NOW)


async def test_case_alerts_are_claimed_before_a_waiting_broadcast(people: Db) -> None:
    await send(people)
    async with people.sessions() as session, session.begin():
        await outbox.enqueue(
            session, people.cipher, [outbox.Outgoing(7, "event:1:7", "cases.x", {})], now=NOW
        )
    assert [row.chat_id for row in await _claim_one(people)] == [7]


async def _claim_one(db: Db) -> list[outbox.ClaimedMessage]:
    async with db.sessions() as session, session.begin():
        return await outbox.claim(session, db.cipher, now=NOW, lease=timedelta(seconds=30), limit=1)


async def test_thousands_of_recipients_queue_in_one_transaction(db: Db) -> None:
    async with db.sessions() as session, session.begin():
        session.add_all([User(id=10_000 + n, language="en") for n in range(2500)])
    broadcast_id = await send(db)
    async with db.sessions() as session:
        number = await session.scalar(
            select(func.count()).where(OutboxMessage.broadcast_id == broadcast_id)
        )
        view = await broadcasts.view(session, broadcast_id)
    assert number == 2500 and view.counts.total == 2500
    assert view.counts.pending == 2500 and view.status == BroadcastStatus.SENDING


# -- queued a chunk per transaction ----------------------------------------------------------

EVERYONE = [1, 2, 3, 5, 6, 7, STAFF, ADMIN]  # the `people` fixture's audience, in key order


async def create(db: Db) -> int:
    async with db.sessions() as session, session.begin():
        return await broadcasts.create_broadcast(
            session,
            db.cipher,
            author_id=STAFF,
            audience="everyone",
            audience_arg=None,
            text="Hotline hours change",
            now=NOW,
        )


async def rows(db: Db, broadcast_id: int) -> list[OutboxMessage]:
    async with db.sessions() as session:
        found = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.broadcast_id == broadcast_id)
            .order_by(OutboxMessage.chat_id)
        )
        return list(found)


async def queue_all(db: Db, broadcast_id: int, chunks: list[int] | None = None) -> int:
    async def told(chunk: broadcasts.Chunk) -> None:
        if chunks is not None:
            chunks.append(chunk.added)

    return await broadcasts.queue_all(
        db.sessions,
        db.cipher,
        broadcast_id,
        chunk=3,
        admin_ids={ADMIN},
        clock=lambda: NOW,
        after_chunk=told,
    )


async def test_each_chunk_its_own_transaction_every_recipient_once(people: Db) -> None:
    broadcast_id = await create(people)
    chunks: list[int] = []
    assert await queue_all(people, broadcast_id, chunks) == 8
    assert chunks == [3, 3, 2]
    assert [row.chat_id for row in await rows(people, broadcast_id)] == sorted(EVERYONE)
    async with people.sessions() as session:
        made = await session.get(Broadcast, broadcast_id)
        assert made is not None
        assert (made.total, made.queue_open, made.queued_through) == (8, False, max(EVERYONE))
        view = await broadcasts.view(session, broadcast_id)
    assert view.counts.total == view.counts.pending == 8


async def test_continued_after_a_crash_between_chunks(people: Db) -> None:
    broadcast_id = await create(people)
    async with people.sessions() as session, session.begin():
        first = await broadcasts.queue_chunk(
            session, people.cipher, broadcast_id, limit=3, admin_ids={ADMIN}, now=NOW
        )
    assert first == broadcasts.Chunk(3, more=True)
    async with people.sessions() as session:  # what a restart finds
        assert await broadcasts.open_queues(session) == [broadcast_id]
        assert not await broadcasts.mark_done_if_drained(session, broadcast_id)
    assert await queue_all(people, broadcast_id) == 5
    assert await queue_all(people, broadcast_id) == 0  # a second continuation adds nothing
    assert [row.chat_id for row in await rows(people, broadcast_id)] == sorted(EVERYONE)
    async with people.sessions() as session:
        assert await broadcasts.open_queues(session) == []


async def test_paused_or_cancelled_between_chunks(people: Db) -> None:
    paused, cancelled = await create(people), await create(people)
    for broadcast_id in (paused, cancelled):
        async with people.sessions() as session, session.begin():
            await broadcasts.queue_chunk(session, people.cipher, broadcast_id, limit=3, now=NOW)
    async with people.sessions() as session, session.begin():
        await broadcasts.pause(session, paused, STAFF, now=NOW)
        await broadcasts.cancel(session, cancelled, STAFF, now=NOW)
    await queue_all(people, paused)
    await queue_all(people, cancelled)
    held = await rows(people, paused)
    assert len(held) == 8 and {row.not_before for row in held} == {broadcasts.PAUSED_UNTIL}
    assert len(await rows(people, cancelled)) == 3
    async with people.sessions() as session:
        view = await broadcasts.view(session, cancelled)
    assert view.status == BroadcastStatus.CANCELLED and view.counts.cancelled == 3


# -- progress counts: one broadcast's rows, from its index ------------------------------------


async def test_progress_figures_count_only_this_broadcasts_rows(people: Db) -> None:
    history, current = await send(people), await send(people)
    async with people.sessions() as session, session.begin():
        await session.execute(  # an earlier broadcast, all delivered: history to be ignored
            update(OutboxMessage)
            .where(OutboxMessage.broadcast_id == history)
            .values(status=OutboxStatus.SENT, sent_at=NOW - timedelta(seconds=3))
        )
        ids = list(
            await session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.broadcast_id == current)
                .order_by(OutboxMessage.id)
            )
        )
        changes: list[dict[str, object]] = [
            {"status": OutboxStatus.SENT, "sent_at": NOW - timedelta(seconds=10)},
            {"status": OutboxStatus.SENT, "sent_at": NOW - timedelta(seconds=5)},
            {"status": OutboxStatus.DEAD, "last_error": broadcasts.BLOCKED_REASON},
            {"status": OutboxStatus.DEAD, "last_error": "BadRequest:other"},
            {"status": OutboxStatus.CANCELLED, "last_error": "broadcast cancelled"},
            {"status": OutboxStatus.SENDING},
        ]  # and two still pending
        for row_id, values in zip(ids, changes, strict=False):
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values)
            )
    async with people.sessions() as session, session.begin():
        numbers = await broadcasts.counts(session, current)
        rate = await broadcasts.recent_rate(session, current, since=NOW - timedelta(seconds=30))
        assert not await broadcasts.mark_done_if_drained(session, current)
        assert await broadcasts.mark_done_if_drained(session, history)
    assert numbers == broadcasts.Counts(
        total=8, delivered=2, blocked=1, failed=1, cancelled=1, pending=3
    )
    assert rate == pytest.approx(2 / 5)
    async with people.sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids[5:]))
            .values(status=OutboxStatus.SENT, sent_at=NOW)
        )
        assert await broadcasts.mark_done_if_drained(session, current)
        assert (await broadcasts.counts(session, current)).delivered == 5


async def test_progress_counts_read_the_broadcasts_index_alone(people: Db) -> None:
    if people.engine.dialect.name != "sqlite":
        pytest.skip("the plan is SQLite's words; PostgreSQL's depends on its statistics")
    async with people.engine.connect() as connection:
        plan = await connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT status, count(*) FROM outbox WHERE broadcast_id = 1 "
            "GROUP BY status"
        )
        details = " ".join(str(row[-1]) for row in plan)
    assert "COVERING INDEX ix_outbox_broadcast_progress" in details, details
