"""SQLite through aiosqlite with one trip to its thread per statement, not four.

aiosqlite runs each sqlite3 call on a thread of its own and hands the result back to the event
loop: a queue put, a thread wake-up, a wake-up of the loop through its self-pipe, a greenlet
switch. SQLAlchemy's aiosqlite adapter makes four such trips for every statement (open a cursor,
execute, fetch the rows, close the cursor), so on a bot that stores every update before handling
it, the hand-offs were a large part of the CPU per update (issue 16: "aiosqlite's thread
hand-off"). The cursor here does the four steps in one function on that thread and keeps the
rows, the description, the row count and the last row id, which is all SQLAlchemy reads of a
buffered cursor.

It is passed to `create_async_engine` as the DBAPI module (`module=`), so the dialect, the
URL (`sqlite+aiosqlite://`), the pool, the transactions and the error types are SQLAlchemy's and
aiosqlite's own. Server-side cursors (`stream()`) keep the adapter's cursor. What it relies on
beyond their public API: aiosqlite's `Connection._execute(fn)` (run `fn` on its thread, in
order with everything else queued there), `Connection._conn` (the sqlite3 connection, used only
inside that function) and `Connection._connection` (the same, or None once closed: only its
`in_transaction` flag is read, and without it every commit and rollback makes its trip as
before), and SQLAlchemy's `AsyncAdapt_dbapi_cursor`, whose buffered-row methods it inherits.
`one_trip_dbapi` checks for them and falls back to the stock adapter.
`tests/storage/test_sqlite_one_trip.py` pins the behaviour.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

log = logging.getLogger(__name__)

Outcome = tuple[Any, list[Any], int, int | None]
"""What one trip brings back: description, rows, row count, last row id."""


def _execute_on_thread(
    connection: sqlite3.Connection, operation: str, parameters: Sequence[Any] | None
) -> Outcome:
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _executemany_on_thread(
    connection: sqlite3.Connection, operation: str, parameters: Sequence[Sequence[Any]]
) -> Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, parameters)
        return None, [], cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


async def _on_thread(
    driver: aiosqlite.Connection, work: Callable[..., Outcome], *args: Any
) -> Outcome:
    """`work(sqlite3_connection, *args)` on aiosqlite's thread, queued after what is there."""
    outcome: Outcome = await driver._execute(work, driver._conn, *args)  # type: ignore[no-untyped-call]
    return outcome


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor: each execute is one trip to aiosqlite's thread, the rows come back
    with it; no sqlite3 cursor outlives the trip."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # none is opened: `close` has nothing to do
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    async def _async_soft_close(self) -> None:
        """The rows are already here and nothing is open on the thread."""

    def _keep(self, outcome: Outcome) -> None:
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            self._keep(await _on_thread(driver, _execute_on_thread, operation, parameters))
        return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            self._keep(
                await _on_thread(driver, _executemany_on_thread, operation, seq_of_parameters)
            )
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """Also no trip for a commit or rollback with no transaction open: sqlite3 does nothing
    then anyway, and the pool rolls back every connection it gets back (after a commit too),
    which was one more trip per transaction and two per read."""

    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # a subclass of the one declared

    def _no_transaction(self) -> bool:
        # Read on the loop's thread while nothing of this connection runs on aiosqlite's
        # thread (SQLAlchemy awaits each call): a flag of the sqlite3 connection, no I/O.
        sqlite = getattr(self._connection, "_connection", None)
        return sqlite is not None and not sqlite.in_transaction

    def commit(self) -> None:
        if not self._no_transaction():
            super().commit()

    def rollback(self) -> None:
        if not self._no_transaction():
            super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI adapter, with connections whose cursors make one trip."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDBAPI | None:
    """The DBAPI module for `create_async_engine(module=...)`; None (use the stock adapter) if
    the installed SQLAlchemy or aiosqlite no longer has what the cursor relies on."""
    base = AsyncAdapt_aiosqlite_cursor
    if not (
        hasattr(base, "_execute_async")
        and hasattr(base, "_executemany_async")
        and hasattr(aiosqlite.Connection, "_execute")
        and hasattr(aiosqlite.Connection, "_conn")
        and hasattr(sqlite3.Connection, "in_transaction")
    ):
        log.warning("SQLite: the one-trip cursor does not fit this SQLAlchemy/aiosqlite; not used")
        return None
    return OneTripDBAPI(aiosqlite, sqlite3)
