"""/mydata and /forget find a user's persistence entries by the owner index (issue 16): the
right entries, and no scan of everyone's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.identity import UserKeys, load_user_keys
from storage.models import PersistenceEntry, User, utcnow
from storage.persistence import DatabasePersistence
from storage.privacy import forget_user, held_data
from tests.support.databases import Db

A, B = 5_273_019_468, 6_100_200_300
GROUP = -100_123


async def _persistence(db: Db) -> tuple[DatabasePersistence, UserKeys]:
    async with db.sessions() as session, session.begin():
        keys = await load_user_keys(session, db.cipher)
        for telegram_id in (A, B):
            session.add(User(id=keys.key(telegram_id), language="en"))
    return DatabasePersistence(db.sessions, db.cipher, keys), keys


async def _store_both(persistence: DatabasePersistence) -> None:
    for user in (A, B):
        await persistence.update_user_data(user, {"hide_code": "K7M4-9XQ2"})
        await persistence.update_chat_data(user, {"seen": 1})
        await persistence.update_conversation("urgent", (user, user), "PLACE")
        await persistence.update_conversation("broadcast", (GROUP, user), "TEXT")
    await persistence.update_chat_data(GROUP, {"group": True})


async def _rows(db: Db) -> set[tuple[str, str]]:
    async with db.sessions() as session:
        return {
            (k, key)
            for k, key in await session.execute(select(PersistenceEntry.kind, PersistenceEntry.key))
        }


async def test_forget_erases_that_users_entries_only(db: Db) -> None:
    persistence, keys = await _persistence(db)
    await _store_both(persistence)
    before = await _rows(db)
    assert len(before) == 9
    async with db.sessions() as session:
        held = await held_data(session, db.cipher, keys.key(A))
    assert held is not None and held.has_draft
    async with db.sessions() as session, session.begin():
        result = await forget_user(session, db.cipher, keys.key(A), now=utcnow())
    assert result.persistence_removed == 4  # user data, private chat, two conversations
    after = await _rows(db)
    gone = before - after
    assert {kind for kind, _ in gone} == {"user", "chat", "conv:urgent", "conv:broadcast"}
    assert all(str(keys.key(A)) in key for _, key in gone)
    assert not any(str(keys.key(A)) in key for _, key in after)
    assert sum(str(keys.key(B)) in key for _, key in after) == 4
    assert ("chat", str(GROUP)) in after  # a group's data is nobody's
    async with db.sessions() as session:
        held_b = await held_data(session, db.cipher, keys.key(B))
    assert held_b is not None and held_b.has_draft


@contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_mydata_and_forget_search_the_owner_index_not_the_table(
    db: Db, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the query plan is read with SQLite's EXPLAIN QUERY PLAN")
    persistence, keys = await _persistence(db)
    await _store_both(persistence)
    with _statements(db.engine) as seen:
        async with db.sessions() as session:
            await held_data(session, db.cipher, keys.key(A))
        async with db.sessions() as session, session.begin():
            await forget_user(session, db.cipher, keys.key(A), now=utcnow())
    touching = [(sql, params) for sql, params in seen if " persistence" in sql]
    by_owner = [sql for sql, _ in touching if "persistence.owner = ?" in sql]
    assert len(by_owner) == 2  # one look-up for /mydata, one delete for /forget
    async with db.engine.connect() as connection:
        for sql, params in touching:  # their data keys' entries go by the data key index
            plan = " / ".join(
                str(row[-1])
                for row in await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
            assert "SEARCH persistence USING" in plan, plan
            assert "SCAN persistence" not in plan, plan
            if sql in by_owner:
                assert "ix_persistence_owner" in plan, plan
    async with db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(PersistenceEntry)
            .where(PersistenceEntry.owner.is_(None))
        )
        assert count == 1  # only the group's chat data has no owner


async def test_a_users_data_is_read_by_key_in_one_query(db: Db, database_url: str) -> None:
    """When the user's update arrives: their entry and their private chat's, one search of the
    primary key, whatever the number of other users' entries."""
    persistence, _ = await _persistence(db)
    await _store_both(persistence)
    fresh, _ = await _persistence_again(db)
    with _statements(db.engine) as seen:
        chat: dict[str, Any] = {}
        user: dict[str, Any] = {}
        await fresh.refresh_chat_data(A, chat)
        await fresh.refresh_user_data(A, user)
    assert chat == {"seen": 1} and user == {"hide_code": "K7M4-9XQ2"}
    reads = [(sql, params) for sql, params in seen if "FROM persistence" in sql]
    assert len(reads) == 1
    if database_url.startswith("sqlite"):
        async with db.engine.connect() as connection:
            sql, params = reads[0]
            plan = " / ".join(
                str(row[-1])
                for row in await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
        assert "SEARCH persistence USING" in plan and "SCAN persistence" not in plan, plan


async def _persistence_again(db: Db) -> tuple[DatabasePersistence, UserKeys]:
    async with db.sessions() as session:
        keys = await load_user_keys(session, db.cipher)
    return DatabasePersistence(db.sessions, db.cipher, keys), keys
