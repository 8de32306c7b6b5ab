"""Benchmark: the staff inbox's last page, and queueing a large broadcast, before and after.

Inbox: `--cases` cases (a `--waiting` share of them new or need_info, the rest further on), then
the inbox's first and last page, each timed `--repeat` times: BEFORE is the old query (count,
sort every waiting case, OFFSET to the page) on the old schema (no `ix_cases_inbox`), then with
the index, and AFTER is `storage.case_views.inbox` (keyset: the page after a key). Beside them, a
baseline in the same run: one case read by its primary key.

Broadcast: `--users` users, one broadcast to everyone, queued BEFORE in one transaction
(`queue_broadcast`, what the Send button did) and AFTER as the Send button does now
(`create_broadcast`, then `queue_all`: a chunk of `QUEUE_CHUNK` per transaction). Meanwhile a
second writer (its own sqlite3 connection in a thread, busy timeout 10 s, as the bot's) writes a
row every 20 ms; its longest wait for the write lock is how long a family's write would wait.
On PostgreSQL writers do not queue behind one lock: only the queueing time is shown.

    python -m benchmarks.staff_inbox_broadcast_queue --cases 100000 --users 98000 [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import broadcasts, case_views
from storage.case_views import INBOX_STATUSES, InboxKey
from storage.codes import CODE_ALPHABET
from storage.crypto import FieldCipher, generate_key
from storage.db import SessionFactory, make_engine, make_session_factory
from storage.enums import CaseStatus, Region
from storage.migrate import upgrade_to_head
from storage.models import Case, User
from tests.support.databases import fresh_postgres_database, postgres_reachable

START = datetime(2024, 1, 1, tzinfo=UTC)
AUTHOR = 1
PAGE = 8


def _code(number: int) -> str:
    letters = []
    for _ in range(8):
        number, digit = divmod(number, len(CODE_ALPHABET))
        letters.append(CODE_ALPHABET[digit])
    return "".join(letters[:4]) + "-" + "".join(letters[4:])


async def seed_cases(sessions: SessionFactory, cases: int, waiting: float) -> float:
    """`cases` case rows (a `waiting` share in the inbox), in batches; returns seconds taken."""
    began = time.perf_counter()
    chance = random.Random(16)
    others = [CaseStatus.UNDER_REVIEW, CaseStatus.VERIFIED, CaseStatus.CLOSED]
    for first in range(0, cases, 10_000):
        rows = []
        for number in range(first, min(cases, first + 10_000)):
            waits = chance.random() < waiting
            status = chance.choice(INBOX_STATUSES) if waits else chance.choice(others)
            when = START + timedelta(seconds=number * 30 + chance.randrange(30))
            rows.append(
                {
                    "code": _code(number),
                    "status": status,
                    "visibility": "staff_only",
                    "region": Region.CRIMEA,
                    "created_at": when,
                    "updated_at": when,
                }
            )
        async with sessions() as session, session.begin():
            await session.execute(insert(Case), rows)
    return time.perf_counter() - began


async def timed(repeat: int, work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(median, worst) seconds of `repeat` runs."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await work()
        times.append(time.perf_counter() - began)
    return statistics.median(times), max(times)


async def old_inbox(sessions: SessionFactory, page: int) -> list[str]:
    """What `case_views.inbox` was: count, then sort every waiting case and skip to the page."""
    async with sessions() as session:
        waiting = Case.status.in_(INBOX_STATUSES)
        await session.scalar(select(func.count()).select_from(Case).where(waiting))
        rows = await session.scalars(
            select(Case)
            .where(waiting)
            .order_by(Case.created_at, Case.id)
            .offset(page * PAGE)
            .limit(PAGE)
        )
        return [case.code for case in rows]


async def inbox_figures(engine: AsyncEngine, sessions: SessionFactory, repeat: int) -> None:
    if engine.dialect.name == "postgresql":  # what autovacuum does to a live table
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE cases"))
    async with sessions() as session:
        total = int(
            await session.scalar(
                select(func.count()).select_from(Case).where(Case.status.in_(INBOX_STATUSES))
            )
            or 0
        )
        last = max(0, -(-total // PAGE) - 1)
        before_last = (
            await session.execute(
                select(Case.created_at, Case.id)
                .where(Case.status.in_(INBOX_STATUSES))
                .order_by(Case.created_at, Case.id)
                .offset(last * PAGE - 1)
                .limit(1)
            )
        ).one()
    key = InboxKey(before_last[0], before_last[1])

    async def by_key() -> None:
        async with sessions() as session:
            await session.get(Case, 1)

    async def first_after() -> None:
        async with sessions() as session:
            await case_views.inbox(session)

    async def last_after() -> None:
        async with sessions() as session:
            page = await case_views.inbox(session, after=key, page=last)
            assert not page.has_next and page.items

    async def count_alone() -> None:
        async with sessions() as session:
            await session.scalar(
                select(func.count()).select_from(Case).where(Case.status.in_(INBOX_STATUSES))
            )

    print(f"  inbox: {total} waiting cases, {last + 1} pages of {PAGE}")
    base, _ = await timed(repeat, by_key)
    rows = [("baseline: one case by primary key", base, base)]
    async with engine.begin() as connection:
        await connection.execute(text("DROP INDEX ix_cases_inbox"))
    for name, page in (("first", 0), ("last", last)):
        median, worst = await timed(repeat, lambda page=page: old_inbox(sessions, page))  # type: ignore[misc]
        rows.append((f"BEFORE, old schema: {name} page (OFFSET)", median, worst))
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE INDEX ix_cases_inbox ON cases (status, created_at, id)")
        )
        if engine.dialect.name == "postgresql":
            await connection.execute(text("ANALYZE cases"))
        else:
            await connection.execute(text("ANALYZE"))
    median, worst = await timed(repeat, lambda: old_inbox(sessions, last))
    rows.append(("old query with the new index: last page", median, worst))
    for name, work in (("first", first_after), ("last", last_after)):
        median, worst = await timed(repeat, work)
        rows.append((f"AFTER, keyset: {name} page", median, worst))
    median, worst = await timed(repeat, count_alone)
    rows.append(("of which the total (count of waiting cases)", median, worst))
    for name, median, worst in rows:
        print(
            f"    {name:44} median {median * 1000:8.2f} ms  max {worst * 1000:8.2f} ms"
            f"  ({median / base:7.1f}x baseline)"
        )


class Writer:
    """A second writer on the SQLite file: one small write every 20 ms, its waits noted."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.waits: list[float] = []
        self.refused = 0  # writes that gave up: "database is locked" after the busy timeout
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        connection.execute("PRAGMA busy_timeout=10000")
        try:
            while not self.stop.is_set():
                began = time.perf_counter()
                try:
                    connection.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:  # locked for longer than the busy timeout
                    self.refused += 1
                    self.waits.append(time.perf_counter() - began)
                    continue
                connection.execute("UPDATE meta SET key = key WHERE 1 = 0")
                connection.execute("COMMIT")
                self.waits.append(time.perf_counter() - began)
                time.sleep(0.02)
        finally:
            connection.close()

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


async def queue_figures(
    engine: AsyncEngine, sessions: SessionFactory, users: int, sqlite_path: str | None
) -> None:
    cipher = FieldCipher([generate_key()])
    async with sessions() as session, session.begin():
        first = int(await session.scalar(select(func.coalesce(func.max(User.id), 0))) or 0) + 1
    for start in range(first, first + users, 10_000):
        rows = [
            {"id": i, "language": "en", "blocked": False, "discreet": True}
            for i in range(start, min(first + users, start + 10_000))
        ]
        async with sessions() as session, session.begin():
            await session.execute(insert(User), rows)
    async with sessions() as session:
        audience = len(await broadcasts.recipients(session, "everyone"))
    print(f"  broadcast to {audience} users")

    async def one_transaction() -> None:
        async with sessions() as session, session.begin():
            await broadcasts.queue_broadcast(
                session,
                cipher,
                author_id=AUTHOR,
                audience="everyone",
                audience_arg=None,
                text="Benchmark announcement",
            )

    chunks: list[int] = []

    async def in_chunks() -> None:
        async with sessions() as session, session.begin():
            broadcast_id = await broadcasts.create_broadcast(
                session,
                cipher,
                author_id=AUTHOR,
                audience="everyone",
                audience_arg=None,
                text="Benchmark announcement",
            )

        async def counted(chunk: broadcasts.Chunk) -> None:
            chunks.append(chunk.added)

        await broadcasts.queue_all(sessions, cipher, broadcast_id, after_chunk=counted)

    for name, work in (
        ("BEFORE: one transaction", one_transaction),
        (f"AFTER: {broadcasts.QUEUE_CHUNK} per transaction", in_chunks),
    ):
        if sqlite_path is None:
            began = time.perf_counter()
            await work()
            print(f"    {name:36} {time.perf_counter() - began:6.2f} s")
            continue
        with Writer(sqlite_path) as writer:
            await asyncio.sleep(0.2)
            began = time.perf_counter()
            await work()
            took = time.perf_counter() - began
            await asyncio.sleep(0.2)
        waits = sorted(writer.waits)
        print(
            f"    {name:36} {took:6.2f} s; the other writer: {len(waits)} writes, "
            f"median wait {statistics.median(waits) * 1000:6.1f} ms, "
            f"max {waits[-1] * 1000:7.1f} ms, {writer.refused} refused (database is locked)"
        )
    print(f"    ({len(chunks)} chunk transactions after the create)")


async def measure(url: str, options: argparse.Namespace, sqlite_path: str | None) -> None:
    engine = make_engine(url)
    try:
        await upgrade_to_head(engine)
        sessions = make_session_factory(engine)
        print(f"{engine.dialect.name}:")
        seconds = await seed_cases(sessions, options.cases, options.waiting)
        print(f"  seeded {options.cases} cases in {seconds:.1f}s")
        await inbox_figures(engine, sessions, options.repeat)
        await queue_figures(engine, sessions, options.users, sqlite_path)
    finally:
        await engine.dispose()


async def main(options: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "bench.db")
        await measure(f"sqlite+aiosqlite:///{path}", options, path)
    if options.postgres:
        reason = await postgres_reachable()
        if reason is not None:
            print(f"postgresql: skipped, not reachable ({reason})")
            return
        async with fresh_postgres_database() as url:
            await measure(url, options, None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--waiting", type=float, default=0.5, help="share of cases in the inbox")
    parser.add_argument("--users", type=int, default=98_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres", action="store_true")
    asyncio.run(main(parser.parse_args()))
