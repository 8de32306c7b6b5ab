"""The SQLite engine's cursor (`storage/sqlite_one_trip.py`): one trip to aiosqlite's thread per
statement, and everything SQLAlchemy reads of a cursor still right."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import make_engine
from storage.sqlite_one_trip import OneTripCursor


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'one-trip.db'}")
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
        )
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions sent to aiosqlite's thread, in order."""
    sent: list[str] = []
    original: Callable[..., Any] = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return sent


async def test_a_select_is_one_trip_and_its_rows_come_back(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')"))
    async with engine.connect() as connection:
        trips.clear()
        result = await connection.execute(
            text("SELECT id, v FROM t WHERE id > :n ORDER BY id"), {"n": 1}
        )
        # The stock adapter made four: cursor, execute, fetchall, close.
        assert trips == ["_execute_on_thread"]
        assert list(result.keys()) == ["id", "v"]
        assert result.all() == [(2, "b"), (3, "c")]


async def test_a_transaction_is_a_trip_a_statement_and_one_for_the_commit(
    engine: AsyncEngine, trips: list[str]
) -> None:
    """The stock adapter also rolled back every connection given back to the pool (one more
    trip after each commit, two after each read); with no transaction open that is a no-op."""
    async with engine.begin() as connection:
        await connection.execute(text("SELECT 1"))  # the pool's first connection is made
    trips.clear()
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (v) VALUES ('w')"))
    assert trips == ["_execute_on_thread", "commit"]
    trips.clear()
    async with engine.connect() as connection:
        await connection.execute(text("SELECT v FROM t"))
    assert trips == ["_execute_on_thread"]
    trips.clear()
    async with engine.connect() as connection:  # a transaction left open is rolled back
        await connection.execute(text("INSERT INTO t (v) VALUES ('gone')"))
    assert trips == ["_execute_on_thread", "rollback"]
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT v FROM t"))).scalars().all() == ["w"]


async def test_rowcount_lastrowid_returning_and_executemany(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO t (v) VALUES ('x')"))
        assert inserted.lastrowid == 1
        many = await connection.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": "y"}, {"v": "z"}]
        )
        assert many.rowcount == 2
        returned = await connection.execute(
            text("UPDATE t SET v = v || '!' WHERE id > 1 RETURNING id, v")
        )
        assert sorted(returned.all()) == [(2, "y!"), (3, "z!")]
        changed = await connection.execute(text("DELETE FROM t WHERE id < 3"))
        assert changed.rowcount == 2


async def test_errors_are_sqlalchemys_and_the_transaction_rolls_back(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (v) VALUES ('same')"))

    async def both() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t (v) VALUES ('other')"))
            await connection.execute(text("INSERT INTO t (v) VALUES ('same')"))

    with pytest.raises(IntegrityError):
        await both()
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT v FROM t"))).scalars().all() == ["same"]


async def test_streaming_keeps_a_server_side_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": str(n)} for n in range(50)]
        )
    async with engine.connect() as connection:
        streamed = await connection.stream(text("SELECT v FROM t ORDER BY id"))
        assert [row.v async for row in streamed] == [str(n) for n in range(50)]


async def test_the_engine_for_a_sqlite_file_uses_it(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)  # type: ignore[union-attr]
