"""Benchmark: what one outbox claim costs as the delivered history grows.

Delivered rows stay in the `outbox` table until retention (30 days by default), so a claim that
walks them gets slower every day the bot runs. This seeds a small and a large history of sent
rows (10,000 and 200,000 by default, spread over 5,000 recipients) and times `outbox.claim` of
30 rows (the delivery job's batch at 30/s): with 300 rows pending, with none pending, and with
5,000 pending (a broadcast under way), on SQLite and on PostgreSQL (a throw-away database;
skipped with a line when unreachable). Statistics are NOT refreshed after seeding (no ANALYZE),
as in a bot whose outbox just grew. Beside each claim, in the same run, a baseline: reading the
same number of rows by primary key. The figures that matter are the ratios: large history /
small history (flat is about 1) and claim / baseline.

    python -m benchmarks.outbox_claim [--small 10000] [--large 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import insert, select, update

from benchmarks.monitor_fanout import postgres_database
from storage import outbox
from storage.crypto import FieldCipher, generate_key
from storage.db import SessionFactory, make_engine, make_session_factory
from storage.enums import OutboxKind, OutboxStatus
from storage.migrate import upgrade_to_head
from storage.models import OutboxMessage, User

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RECIPIENTS = 5_000
PENDING = 300
BUSY_PENDING = 5_000
BATCH = 30
OWNER = "bench"


@dataclass(frozen=True)
class Figures:
    """Median milliseconds."""

    claim: float
    idle: float
    busy: float
    baseline: float


def _row(number: int, status: OutboxStatus, when: datetime) -> dict[str, object]:
    return {
        "dedupe_key": f"bench:{number}",
        "chat_id": 1 + number % RECIPIENTS,
        "kind": OutboxKind.BROADCAST,
        "priority": 100,
        "template": "broadcasts.message",
        "payload": None,
        "status": status,
        "attempts": 0,
        "not_before": when,
        "created_at": when,
        "sent_at": when if status == OutboxStatus.SENT else None,
    }


async def insert_rows(
    sessions: SessionFactory, first: int, count: int, status: OutboxStatus, when: datetime
) -> None:
    for start in range(first, first + count, 20_000):
        rows = [_row(n, status, when) for n in range(start, min(first + count, start + 20_000))]
        async with sessions() as session, session.begin():
            await session.execute(insert(OutboxMessage), rows)


async def claim_once(sessions: SessionFactory, cipher: FieldCipher) -> tuple[float, list[int]]:
    started = time.perf_counter()
    async with sessions() as session, session.begin():
        claimed = await outbox.claim(
            session,
            cipher,
            now=NOW,
            lease=timedelta(seconds=60),
            limit=BATCH,
            owner=OWNER,
            recover=False,  # as the delivery job claims (orphans are recovered by its sweep)
        )
    return time.perf_counter() - started, [row.id for row in claimed]


async def read_by_id(sessions: SessionFactory, ids: list[int]) -> float:
    """The baseline: the same number of rows, read by primary key in one short transaction."""
    started = time.perf_counter()
    async with sessions() as session, session.begin():
        rows = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))
    assert len(rows) == len(ids)
    return time.perf_counter() - started


async def set_status(sessions: SessionFactory, old: OutboxStatus, new: OutboxStatus) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == old)
            .values(status=new, lease_until=None, owner=None)
        )


async def claims(sessions: SessionFactory, cipher: FieldCipher, rounds: int) -> list[float]:
    """Claim batches until PENDING rows were taken, `rounds` times (released in between)."""
    seconds: list[float] = []
    for _ in range(rounds):
        for _ in range(PENDING // BATCH):
            took, ids = await claim_once(sessions, cipher)
            assert len(ids) == BATCH, len(ids)
            seconds.append(took)
        await set_status(sessions, OutboxStatus.SENDING, OutboxStatus.PENDING)
    return seconds


async def measure(url: str, sent: int, rounds: int) -> Figures:
    engine = make_engine(url)
    await upgrade_to_head(engine)
    sessions = make_session_factory(engine)
    cipher = FieldCipher.from_setting(generate_key())
    try:
        async with sessions() as session, session.begin():
            await session.execute(insert(User), [{"id": n} for n in range(1, RECIPIENTS + 1)])
        await insert_rows(sessions, 0, sent, OutboxStatus.SENT, NOW - timedelta(days=1))
        await insert_rows(sessions, sent, PENDING, OutboxStatus.PENDING, NOW)
        claimed = await claims(sessions, cipher, rounds)
        _, ids = await claim_once(sessions, cipher)
        baseline = [await read_by_id(sessions, ids) for _ in range(len(claimed))]
        await set_status(sessions, OutboxStatus.SENDING, OutboxStatus.SENT)
        await set_status(sessions, OutboxStatus.PENDING, OutboxStatus.SENT)
        idle = [(await claim_once(sessions, cipher))[0] for _ in range(rounds * 4)]
        await insert_rows(sessions, sent + PENDING, BUSY_PENDING, OutboxStatus.PENDING, NOW)
        busy = await claims(sessions, cipher, rounds)
        return Figures(
            *(statistics.median(values) * 1000 for values in (claimed, idle, busy, baseline))
        )
    finally:
        await engine.dispose()


@asynccontextmanager
async def sqlite_database(folder: str, size: int) -> AsyncIterator[str | None]:
    yield f"sqlite+aiosqlite:///{Path(folder) / f'claim{size}.db'}"


async def compare(
    name: str,
    database: Callable[[int], AbstractAsyncContextManager[str | None]],
    small: int,
    large: int,
    rounds: int,
) -> None:
    results: dict[int, Figures] = {}
    for size in (small, large):
        async with database(size) as url:
            if url is None:
                return
            results[size] = await measure(url, size, rounds)
    s, g = results[small], results[large]
    print(
        f"{name}: claim of {BATCH} with {PENDING} pending: {s.claim:.2f} ms at {small:,} sent "
        f"rows, {g.claim:.2f} ms at {large:,} (ratio {g.claim / s.claim:.2f}); "
        f"baseline (the same rows by primary key) {s.baseline:.2f} / {g.baseline:.2f} ms, "
        f"claim/baseline {s.claim / s.baseline:.1f} / {g.claim / g.baseline:.1f}"
    )
    print(
        f"{name}: nothing pending: {s.idle:.2f} ms, {g.idle:.2f} ms (ratio {g.idle / s.idle:.2f});"
        f" {BUSY_PENDING:,} pending (a broadcast): {s.busy:.2f} ms, {g.busy:.2f} ms "
        f"(ratio {g.busy / s.busy:.2f}; against {PENDING} pending: {g.busy / g.claim:.2f})"
    )


async def run(small: int, large: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        await compare("SQLite", partial(sqlite_database, folder), small, large, rounds)
    await compare("PostgreSQL", lambda _size: postgres_database(), small, large, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(run(options.small, options.large, options.rounds))


if __name__ == "__main__":
    main()
