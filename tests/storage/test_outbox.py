"""Claiming and settling outbox rows: priority, per-chat order, leases, and giving up."""

from __future__ import annotations

import asyncio
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


# -- ownership: one owner per row, leases renewed while it lives -----------------------------


async def claim_as(
    db: Db, owner: str, now: datetime = NOW, limit: int = 50
) -> list[outbox.ClaimedMessage]:
    async with db.sessions() as session, session.begin():
        return await outbox.claim(
            session, db.cipher, now=now, lease=LEASE, limit=limit, owner=owner
        )


async def test_a_claimed_row_belongs_to_one_owner_until_its_lease_runs_out(db: Db) -> None:
    await queue(db, alert(1, "a1"), alert(2, "b1"))
    mine = await claim_as(db, "first", limit=1)
    theirs = await claim_as(db, "second")
    assert [m.params["key"] for m in mine] == ["a1"]
    assert [m.params["key"] for m in theirs] == ["b1"]
    later = NOW + LEASE * 3
    for step in range(1, 6):  # the first owner lives on, renewing, long past the first lease
        async with db.sessions() as session, session.begin():
            still = await outbox.renew_leases(
                session, owner="first", ids=[mine[0].id], until=NOW + LEASE * step
            )
        assert still == {mine[0].id}
        taken = await claim_as(db, "second", now=NOW + LEASE * step - timedelta(seconds=1))
        assert mine[0].id not in [m.id for m in taken]
    # it stopped renewing (it died): once the lease ran out, the row is another's
    taken = await claim_as(db, "second", now=later + LEASE * 3)
    assert mine[0].id in [m.id for m in taken]
    async with db.sessions() as session, session.begin():  # the first owner learns it lost it
        assert (
            await outbox.renew_leases(session, owner="first", ids=[mine[0].id], until=later)
            == set()
        )


async def test_a_row_another_owner_holds_is_not_settled_by_the_one_that_lost_it(db: Db) -> None:
    await queue(db, alert(1, "a1"))
    (row,) = await claim_as(db, "first")
    (again,) = await claim_as(db, "second", now=NOW + LEASE * 2)  # first's lease ran out
    async with db.sessions() as session, session.begin():
        await outbox.reschedule(session, row.id, not_before=NOW, error="X", owner="first")
        await outbox.mark_dead(session, row.id, reason="Y", owner="first")
        await outbox.release(session, [row.id], owner="first")
        stored = await session.get(OutboxMessage, again.id)
        assert stored is not None
        assert (stored.status, stored.owner) == (OutboxStatus.SENDING, "second")


async def test_racing_claims_never_hand_out_a_row_twice(db: Db) -> None:
    """Two owners claim at the same time, round after round, until the queue is empty: every
    row is handed out exactly once (the UPDATE re-checks `pending`; PostgreSQL also skips locked
    rows). Rounds, not two free loops: on SQLite a fast loop can hold the write lock from one
    claim to the next while the other waits in SQLite's busy handler, and then never races."""
    await queue(db, *[alert(1000 + n, f"r{n}") for n in range(400)])
    got: dict[str, list[int]] = {"first": [], "second": []}

    while True:
        first, second = await asyncio.gather(
            claim_as(db, "first", limit=25), claim_as(db, "second", limit=25)
        )
        if not first and not second:
            break
        got["first"] += [row.id for row in first]
        got["second"] += [row.id for row in second]
    everything = got["first"] + got["second"]
    assert len(everything) == len(set(everything)) == 400
    assert got["first"] and got["second"]


async def test_a_clean_stop_gives_its_rows_back_at_once(db: Db) -> None:
    await queue(db, alert(1, "a1"), alert(2, "b1"))
    rows = await claim_as(db, "first")
    async with db.sessions() as session, session.begin():
        assert await outbox.release(session, [r.id for r in rows], owner="first") == 2
    assert len(await claim_as(db, "second")) == 2


async def test_claim_reads_only_open_rows_however_long_the_history(db: Db) -> None:
    """A chat's delivered history does not stand in the way, and neither do thousands of rows
    queued to one chat ahead of the others (only its first is a candidate)."""
    await queue(db, *[alert(5, f"busy{n}", priority=10) for n in range(600)])
    await queue(db, alert(6, "other", priority=20))
    first = await claim_as(db, "one", limit=5)
    assert sorted(m.params["key"] for m in first) == ["busy0", "other"]


async def test_after_an_outage_backing_off_rows_are_due_at_once(db: Db) -> None:
    await queue(db, alert(1, "a1"), alert(2, "b1"), alert(3, "c1"))
    rows = await claim_as(db, "first")
    async with db.sessions() as session, session.begin():
        for row in rows[:2]:  # network errors
            await outbox.reschedule(
                session, row.id, not_before=NOW + timedelta(minutes=5), error="NetworkError",
                failing_since=NOW, owner="first",
            )  # fmt: skip
        await outbox.reschedule(  # a 429: not an outage, it keeps its time
            session, rows[2].id, not_before=NOW + timedelta(minutes=5), count_attempt=False,
            owner="first",
        )  # fmt: skip
        assert await outbox.retry_failing_now(session, now=NOW) == 2
    again = await claim_as(db, "first")
    assert sorted(m.params["key"] for m in again) == ["a1", "b1"]
    assert all(m.failing_since == NOW for m in again)
