"""Engine and session factory for the embedded SQLite default and for PostgreSQL.

SQLite runs in WAL mode (readers do not block the writer) with foreign keys on and a busy timeout,
set on every new connection because SQLite keeps these per connection.

A seized disk must not give back what was erased: `secure_delete` overwrites freed content with
zeros, the WAL (which still holds old page images until a checkpoint) is kept small by
`journal_size_limit` and emptied by the periodic `wal_checkpoint(TRUNCATE)` of
`jobs.sqlite_maintenance`, and the database file is created readable by its owner only (0600):
SQLite gives its `-wal` and `-shm` files the database file's mode.

A database that cannot be written is an operator's mistake: at start it is one line naming
HOTLINE_DATABASE_URL (`DatabaseUnwritable`, exit code 2), never a traceback or a bot that runs and
fails every write; while running, `write_refused` tells a refused write (a lock held too long, a
full disk, an I/O error) from a bug, so the person is told their action was not saved.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from storage.sqlite_one_trip import one_trip_dbapi

SessionFactory = async_sessionmaker[AsyncSession]

WAL_SIZE_LIMIT = 8 * 1024 * 1024
"""Bytes a WAL file is truncated back to after a checkpoint (`PRAGMA journal_size_limit`)."""
PRIVATE_FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
SQLITE_WRITE_REFUSALS = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "database or disk is full",
    "attempt to write a readonly database",
    "unable to open database file",
)
"""SQLite's words (its error names vary by version) for a write it could not make."""
POSTGRES_WRITE_REFUSALS = frozenset({"25006", "40001", "40P01", "55P03", "57014"})
"""SQLSTATEs of a refused write: read-only transaction, serialization failure, deadlock, lock
not available, statement timeout; and class 53 (insufficient resources: disk full, memory)."""

UNWRITABLE = (
    "HOTLINE_DATABASE_URL: the database cannot be written (a read-only file, folder or disk, a "
    "read-only database user, or a lock held by another program); check its permissions"
)


class DatabaseUnwritable(Exception):
    """The database cannot be written: the message is one line for the operator."""


class SchemaNotCurrent(Exception):
    """The database needs migrations this process does not run (PostgreSQL: `python -m bot
    migrate` first, so two processes never migrate at once): one line for the operator."""


LOCK_WAIT_SECONDS = 30.0
"""How long the start-up check waits for another program's lock before it gives up."""


def write_refused(error: BaseException) -> bool:
    """Whether `error` is the database refusing (or failing) a write, not a bug: the change was
    not saved, and trying again later can work."""
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, DBAPIError):
        return False
    state = getattr(error.orig, "sqlstate", None)
    if isinstance(state, str):
        return state in POSTGRES_WRITE_REFUSALS or state.startswith("53")
    words = str(error.orig).lower()
    return any(refusal in words for refusal in SQLITE_WRITE_REFUSALS)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database or a `file:` URI."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def make_private(path: Path) -> None:
    """Create the database file 0600 (its folder 0700 when new) before SQLite opens it, and take
    group and other access away from an existing file and its companions.

    Raises `DatabaseUnwritable` when the folder or the file cannot be created or written."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE))
        for candidate in (path, *(path.with_name(path.name + end) for end in SQLITE_COMPANIONS)):
            if candidate.exists() and candidate.stat().st_mode & 0o077:
                candidate.chmod(PRIVATE_FILE_MODE)
    except OSError as error:
        raise DatabaseUnwritable(
            f"HOTLINE_DATABASE_URL: cannot write the database file {path} "
            f"({error.strerror or type(error).__name__}); check that the file and its folder "
            "exist and are writable by this user"
        ) from None


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create the engine; for a SQLite file, create it private and set the pragmas."""
    if is_sqlite(url):
        path = sqlite_file(url)
        if path is not None:
            make_private(path)
        if "module" not in kwargs and (one_trip := one_trip_dbapi()) is not None:
            kwargs["module"] = one_trip
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


async def checkpoint_wal(engine: AsyncEngine) -> tuple[int, int, int] | None:
    """`PRAGMA wal_checkpoint(TRUNCATE)`: copy the WAL into the database and empty the WAL file.

    Returns SQLite's (busy, WAL frames, frames checkpointed); None when not on SQLite.
    """
    if engine.dialect.name != "sqlite":
        return None
    async with engine.connect() as connection:
        result = await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        row = tuple(result.one())
    return int(row[0]), int(row[1]), int(row[2])


@contextmanager
def refused_writes_as_unwritable() -> Iterator[None]:
    """At start (migrating, checking): a refused write becomes one `DatabaseUnwritable` line."""
    try:
        yield
    except DBAPIError as error:
        if not write_refused(error):
            raise
        raise DatabaseUnwritable(UNWRITABLE) from None


async def check_writable(engine: AsyncEngine, *, lock_wait: float = LOCK_WAIT_SECONDS) -> None:
    """Make a write that changes nothing (a zero-row DELETE needs the write lock): a read-only
    file, folder, mount or transaction fails here, at start, rather than at every later write.
    A lock held by another program (a backup, a process stopping) is waited out for
    `lock_wait` seconds first: a lock is not a database that cannot be written.

    Raises `DatabaseUnwritable`."""
    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + lock_wait, 0.05
    while True:
        try:
            with refused_writes_as_unwritable():
                async with engine.begin() as connection:
                    await connection.execute(text("DELETE FROM meta WHERE key = 'write-check'"))
            return
        except DatabaseUnwritable as refused:
            if not _locked(refused.__context__) or loop.time() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def _locked(error: BaseException | None) -> bool:
    """A lock held by someone else (SQLite "database is locked", PostgreSQL lock timeouts)."""
    if not isinstance(error, DBAPIError):
        return False
    state = getattr(error.orig, "sqlstate", None)
    if isinstance(state, str):
        return state in ("55P03", "40P01")
    return "locked" in str(error.orig).lower()
