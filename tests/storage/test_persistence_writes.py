"""What one write of a user's data costs: the upsert alone once the entry's key is known, and
nothing when the data did not change; a key destroyed behind its back (retention) is found
again, not written against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.identity import load_user_keys
from storage.models import DataKey, PersistenceEntry
from storage.persistence import DatabasePersistence
from tests.support.databases import Db

USER = 5_273_019_468


@contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _persistence(db: Db) -> DatabasePersistence:
    async with db.sessions() as session, session.begin():
        keys = await load_user_keys(session, db.cipher)
    return DatabasePersistence(db.sessions, db.cipher, keys)


async def test_a_known_entry_is_written_with_one_statement(db: Db) -> None:
    persistence = await _persistence(db)
    await persistence.update_user_data(USER, {"sensitive": [1]})  # new: a key of its own
    with _statements(db.engine) as seen:
        await persistence.update_user_data(USER, {"sensitive": [1, 2]})
    assert seen == ["INSERT"]  # the upsert, no look-up of its key
    with _statements(db.engine) as seen:
        await persistence.update_user_data(USER, {"sensitive": [1, 2]})
    assert seen == []  # unchanged: not written

    again = await _persistence(db)  # a restart: read when the user's update arrives
    data: dict[str, Any] = {}
    await again.refresh_user_data(USER, data)
    assert data == {"sensitive": [1, 2]}
    with _statements(db.engine) as seen:
        await again.update_user_data(USER, {"sensitive": [1, 2, 3]})
    assert seen == ["INSERT"]


async def test_a_key_destroyed_meanwhile_is_looked_up_again(db: Db) -> None:
    persistence = await _persistence(db)
    await persistence.update_user_data(USER, {"sensitive": [1]})
    async with db.sessions() as session, session.begin():  # as retention does
        await session.execute(delete(DataKey).where(DataKey.case_id.is_(None)))
    await persistence.update_user_data(USER, {"sensitive": [1, 2]})
    async with db.sessions() as session:
        key_id = await session.scalar(select(PersistenceEntry.data_key_id))
        assert key_id is not None and await session.get(DataKey, key_id) is not None
    fresh = await _persistence(db)
    data: dict[str, Any] = {}
    await fresh.refresh_user_data(USER, data)
    assert data == {"sensitive": [1, 2]}
