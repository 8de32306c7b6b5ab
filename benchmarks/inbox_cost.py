"""Benchmark: what the durable inbox adds per update, on the database it runs on.

Stores N updates (one per transaction, as a webhook does, and 100 per transaction, as a polled
batch is) and marks them handled (one per transaction, as after an update that wrote nothing,
alone, and together), beside a baseline in the same run: one empty write transaction per update,
the least any durable step costs through SQLAlchemy. On SQLite a reference line stores the same
update by hand (plain sqlite3 calls, one trip to aiosqlite's thread): what is left without
SQLAlchemy's machinery.

    python -m benchmarks.inbox_cost [--updates 2000] [--postgres]

With --postgres it runs on a throw-away database next to the test one (as the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text

from storage import inbox
from storage.crypto import FieldCipher, generate_key
from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade_to_head
from storage.models import utcnow
from tests.support.databases import fresh_postgres_database

UPDATE = {
    "message": {
        "message_id": 1,
        "date": 1796194776,
        "chat": {"id": 5273019468, "type": "private", "first_name": "Olena"},
        "from": {"id": 5273019468, "is_bot": False, "first_name": "Olena", "language_code": "uk"},
        "text": "They took my son at 5 this morning, we do not know where he is held",
    }
}


async def _timed(label: str, count: int, run: Callable[[], Awaitable[None]]) -> None:
    """Wall time (what a user waits, loaded machines included) and this process's CPU time
    (its own threads, aiosqlite's included; the server's for PostgreSQL is not)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    wall_us = (time.perf_counter() - wall) / count * 1e6
    cpu_us = (time.process_time() - cpu) / count * 1e6
    print(f"{label:<40} {wall_us:8.0f} µs wall {cpu_us:8.0f} µs CPU per update")


def _store_by_hand(
    connection: sqlite3.Connection, update_id: int, sealed_key: bytes, payload: bytes
) -> None:
    day = utcnow().strftime("%Y-%m-%d 00:00:00.000000")
    try:
        key_id = connection.execute(
            "INSERT INTO data_keys (sealed, created_at) VALUES (?, ?) RETURNING id",
            (sealed_key, day),
        ).fetchone()[0]
        connection.execute(
            "INSERT INTO inbox (update_id, payload, data_key_id, received_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (update_id) DO NOTHING RETURNING update_id",
            (update_id, payload, key_id, day),
        ).fetchall()
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


async def main(updates: int, postgres: bool) -> None:
    if postgres:
        async with fresh_postgres_database() as url:
            await measure(url, updates)
        return
    with tempfile.TemporaryDirectory() as folder:
        await measure(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}", updates)


async def measure(url: str, updates: int) -> None:
    engine = make_engine(url)
    await upgrade_to_head(engine)
    sessions = make_session_factory(engine)
    cipher = FieldCipher([generate_key()])
    first = 10_000_000 + int(time.time())
    ids = list(range(first, first + updates))
    data = [(i, json.dumps({"update_id": i, **UPDATE})) for i in ids]

    async def empty_writes() -> None:
        for _ in ids:
            async with sessions() as session, session.begin():
                await session.execute(text("UPDATE meta SET key = key WHERE 1 = 0"))

    async def store_each(rows: list[tuple[int, str]]) -> None:
        for row in rows:
            async with sessions() as session, session.begin():
                await inbox.store(session, cipher, [row], now=utcnow())

    async def store_batches(rows: list[tuple[int, str]]) -> None:
        for start in range(0, len(rows), 100):
            async with sessions() as session, session.begin():
                await inbox.store(session, cipher, rows[start : start + 100], now=utcnow())

    async def mark_each(marked: list[int]) -> None:
        for update_id in marked:
            async with sessions() as session, session.begin():
                await inbox.mark_handled(session, cipher, [update_id])

    async def mark_batches(marked: list[int]) -> None:
        for start in range(0, len(marked), 100):
            async with sessions() as session, session.begin():
                await inbox.mark_handled(session, cipher, marked[start : start + 100])

    async def store_each_by_hand(rows: list[tuple[int, str]]) -> None:
        """The same store as plain sqlite3 calls in one trip to aiosqlite's thread: the least a
        durable store costs on this driver, SQLAlchemy's machinery left out (a reference only)."""
        for update_id, text_ in rows:
            sealed_key, payload = cipher.new_data_key_sealing(text_)
            async with engine.connect() as connection:
                raw = (await connection.get_raw_connection()).driver_connection
                await raw._execute(_store_by_hand, raw._conn, update_id, sealed_key, payload)

    half = updates // 2
    print(f"{engine.dialect.name}, {updates} updates")
    await _timed("baseline: an empty write transaction", updates, empty_writes)
    if engine.dialect.name == "sqlite":
        by_hand = [(i + updates, text_) for i, text_ in data[:half]]
        await _timed(
            "reference: store by hand, one trip", half, lambda: store_each_by_hand(by_hand)
        )
    await _timed("store, one per transaction (webhook)", half, lambda: store_each(data[:half]))
    await _timed("store, 100 per transaction (polling)", half, lambda: store_batches(data[half:]))
    await _timed("mark, one per transaction", half, lambda: mark_each(ids[:half]))
    await _timed("mark, 100 per transaction", half, lambda: mark_batches(ids[half:]))
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.updates, arguments.postgres))
