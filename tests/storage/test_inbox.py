"""The inbox table: updates stored sealed, once, handled in order, then reduced to their id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from storage import inbox
from storage.models import DataKey, InboxUpdate
from storage.privacy import purge_expired
from tests.support.databases import Db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FAMILY = 5_273_019_468


def update(update_id: int, text: str = "my son was taken") -> tuple[int, str]:
    message = {"message_id": update_id, "from": {"id": FAMILY}, "text": text}
    return update_id, json.dumps({"update_id": update_id, "message": message})


async def store(db: Db, *updates: tuple[int, str], now: datetime = NOW) -> list[int]:
    async with db.sessions() as session, session.begin():
        return await inbox.store(session, db.cipher, updates, now=now)


async def pending(db: Db) -> list[inbox.StoredUpdate]:
    async with db.sessions() as session:
        return await inbox.pending(session, db.cipher)


async def mark(db: Db, *update_ids: int) -> int:
    async with db.sessions() as session, session.begin():
        return await inbox.mark_handled(session, db.cipher, update_ids)


async def test_stored_sealed_each_with_its_own_key_and_read_back_in_order(db: Db) -> None:
    assert await store(db, update(7), update(5, "second")) == [7, 5]
    waiting = await pending(db)
    assert [stored.update_id for stored in waiting] == [7, 5]  # arrival order, not update_id
    assert json.loads(waiting[1].data or "")["message"]["text"] == "second"
    async with db.sessions() as session:
        rows = (await session.execute(select(InboxUpdate.payload, InboxUpdate.data_key_id))).all()
    assert len({key for _, key in rows}) == 2
    for payload, _ in rows:
        assert b"son" not in payload and str(FAMILY).encode() not in payload
        assert not db.cipher.master.can_open(payload)  # a data key's, not the master key's


async def test_an_update_stored_again_is_not_stored_twice(db: Db) -> None:
    assert await store(db, update(1)) == [1]
    assert await store(db, update(1), update(2)) == [1, 2]  # 1 still waits: it is handed back
    assert await mark(db, 1) == 1
    assert await store(db, update(1), update(3)) == [3]  # 1 was handled: a copy is ignored
    assert [stored.update_id for stored in await pending(db)] == [2, 3]


async def test_handled_keeps_only_the_id_and_destroys_the_key(db: Db) -> None:
    await store(db, update(1))
    async with db.sessions() as session:
        key_id = await session.scalar(select(InboxUpdate.data_key_id))
    assert await mark(db, 1) == 1
    assert await mark(db, 1) == 0
    async with db.sessions() as session:
        row = (await session.execute(select(InboxUpdate))).scalar_one()
        assert (row.update_id, row.payload, row.data_key_id) == (1, None, None)
        assert await session.get(DataKey, key_id) is None
    assert await pending(db) == []


async def test_handled_ids_are_forgotten_after_a_day_waiting_ones_never(db: Db) -> None:
    await store(db, update(1), update(2))
    await mark(db, 1)
    async with db.sessions() as session, session.begin():
        assert await inbox.forget_handled(session, now=NOW + timedelta(hours=23)) == 0
        assert await inbox.forget_handled(session, now=NOW + inbox.KEEP_HANDLED * 3) == 1
    async with db.sessions() as session:
        assert await inbox.count_pending(session) == 1


async def test_retention_keeps_the_key_of_an_update_still_waiting(db: Db) -> None:
    """A draft's key nobody uses goes with retention; an update waiting since then is not one."""
    await store(db, update(1), now=NOW - timedelta(days=400))
    async with db.sessions() as session, session.begin():
        await purge_expired(session, now=NOW, draft_days=30, outbox_days=30, audit_days=30)
    [stored] = await pending(db)
    assert stored.data is not None
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DataKey)) == 1
