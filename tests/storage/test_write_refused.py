"""A database that cannot be written, told apart from a bug (storage/db.py): `check_writable`
refuses a read-only database at start, and `write_refused` recognises a write the database
refused while running (locked, full, read-only), on SQLite and on PostgreSQL, with real errors."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import Executable, insert, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import DatabaseUnwritable, check_writable, make_engine, sqlite_file, write_refused
from storage.models import Meta
from tests.support.databases import Db, _plain


async def _error_of(engine: AsyncEngine, *statements: str | Executable) -> DBAPIError:
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(
                    text(statement) if isinstance(statement, str) else statement
                )
    except DBAPIError as error:
        return error
    raise AssertionError("the database took it")


def _set(value: bytes) -> Executable:
    return update(Meta).where(Meta.key == "held").values(value=value)


async def test_a_writable_database_passes(db: Db) -> None:
    await check_writable(db.engine)


async def test_a_read_only_database_is_refused_at_start(db: Db, database_url: str) -> None:
    if db.engine.dialect.name == "sqlite":
        path = sqlite_file(database_url)
        assert path is not None
        read_only = make_engine(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
    else:  # a database whose transactions are read-only (a standby, a read-only setting)
        name = database_url.rpartition("/")[2]
        admin = await asyncpg.connect(_plain(database_url))
        try:
            await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        finally:
            await admin.close()
        read_only = make_engine(database_url)
    try:
        with pytest.raises(DatabaseUnwritable, match=r"^HOTLINE_DATABASE_URL: "):
            await check_writable(read_only)
        # and what it refuses is a refused write, not a bug
        error = await _error_of(read_only, "DELETE FROM meta")
        assert write_refused(error)
    finally:
        await read_only.dispose()


async def test_a_lock_held_too_long_is_a_refused_write(db: Db, database_url: str) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(insert(Meta).values(key="held", value=b"\x00"))
    other = make_engine(database_url)
    try:
        async with db.engine.connect() as holder:
            await holder.execute(_set(b"\x01"))  # SQLite's write lock, PostgreSQL's row lock
            wait_briefly = (
                "PRAGMA busy_timeout=0"
                if db.engine.dialect.name == "sqlite"
                else "SET LOCAL lock_timeout = '10ms'"
            )
            error = await _error_of(other, wait_briefly, _set(b"\x02"))
            await holder.rollback()
    finally:
        await other.dispose()
    assert write_refused(error)


async def test_a_full_disk_is_a_refused_write(sqlite_database_url: str) -> None:
    """SQLite's own limit stands in for a full disk: the same SQLITE_FULL error."""
    engine = make_engine(sqlite_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE filler (data BLOB)"))
        error = await _error_of(
            engine,
            "PRAGMA max_page_count = 1",  # the database already has more pages: no new one
            "INSERT INTO filler VALUES (randomblob(100000))",
        )
    finally:
        await engine.dispose()
    assert "full" in str(error.orig)
    assert write_refused(error)


async def test_a_bug_is_not_a_refused_write(db: Db) -> None:
    twice = insert(Meta).values(key="twice", value=b"\x00")
    duplicate = await _error_of(db.engine, twice, twice)
    assert not write_refused(duplicate)
    missing = await _error_of(db.engine, "SELECT * FROM no_such_table")
    assert not write_refused(missing)
    assert not write_refused(ValueError("database is locked"))
