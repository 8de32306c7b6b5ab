"""Benchmark: 5,000 approved monitors follow one region; one status change queues 5,000 alerts.

The status change (`storage.cases.change_status`: case row, event, recipients query, 5,000 sealed
outbox rows, audit) runs in ONE transaction, timed from begin to commit. The baseline, measured in
the same run on the same engine, inserts 5,000 plain rows into a bare table in one transaction, so
the ratio says what the fan-out costs beyond writing that many rows at all. PostgreSQL gets a
throw-away database (as tests/support/databases.py does) and is skipped with a line when
unreachable.

    python -m benchmarks.monitor_fanout [--monitors 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from storage import cases
from storage.codes import new_case_code
from storage.crypto import FieldCipher, generate_key
from storage.db import make_engine, make_session_factory
from storage.enums import CaseStatus, MonitorStatus, Region, Role, SubscriptionScope, Visibility
from storage.migrate import upgrade_to_head
from storage.models import Case, OutboxMessage, Subscription, User

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STAFF = 1
REPORTER = 2

bare = MetaData()
plain_rows = Table(
    "bench_plain", bare, Column("id", Integer, primary_key=True), Column("v", String(80))
)


@asynccontextmanager
async def postgres_database(template: str | None = None) -> AsyncIterator[str | None]:
    """A throw-away PostgreSQL database (a copy of `template` if given); None when the server
    cannot be reached (said in a line)."""
    plain = POSTGRES.replace("+asyncpg", "")
    try:
        admin = await asyncpg.connect(plain, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        print(f"PostgreSQL: skipped, not reachable at {POSTGRES} ({type(error).__name__})")
        yield None
        return
    name = f"hotline_bench_{secrets.token_hex(4)}"
    copied = f' TEMPLATE "{template}"' if template is not None else ""
    await admin.execute(f'CREATE DATABASE "{name}"{copied}')
    await admin.close()
    try:
        yield POSTGRES.rpartition("/")[0] + "/" + name
    finally:
        admin = await asyncpg.connect(plain)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def measure(url: str, monitors: int, rounds: int) -> tuple[float, float]:
    """Median seconds of (fan-out transaction, baseline plain insert)."""
    engine = make_engine(url)
    await upgrade_to_head(engine)
    async with engine.begin() as connection:
        await connection.run_sync(bare.create_all)
    sessions = make_session_factory(engine)
    cipher = FieldCipher.from_setting(generate_key())
    first = 1_000_000
    async with sessions() as session, session.begin():
        session.add_all([User(id=STAFF, role=Role.STAFF), User(id=REPORTER)])
        await session.execute(
            insert(User),
            [
                {"id": first + n, "role": Role.MONITOR, "monitor_status": MonitorStatus.APPROVED}
                for n in range(monitors)
            ],
        )
        await session.execute(
            insert(Subscription),
            [
                {
                    "user_id": first + n,
                    "scope": SubscriptionScope.REGION,
                    "target": "region:crimea",
                    "region": "crimea",
                }
                for n in range(monitors)
            ],
        )
    fanout: list[float] = []
    baseline: list[float] = []
    for _ in range(rounds):
        code = new_case_code()
        async with sessions() as session, session.begin():
            session.add(
                Case(
                    code=code,
                    status=CaseStatus.UNDER_REVIEW,
                    visibility=Visibility.PUBLIC,
                    region=Region.CRIMEA,
                    reporter_id=None,  # no family: every queued row is a monitor alert
                )
            )
        started = time.perf_counter()
        async with sessions() as session, session.begin():
            change = await cases.change_status(
                session, cipher, code, CaseStatus.VERIFIED, actor_id=STAFF, now=NOW
            )
        fanout.append(time.perf_counter() - started)
        assert change.queued == monitors, change.queued
        started = time.perf_counter()
        async with sessions() as session, session.begin():
            for start in range(0, monitors, 500):
                await session.execute(
                    insert(plain_rows),
                    [{"v": f"event:{code}:{n}"} for n in range(start, min(monitors, start + 500))],
                )
        baseline.append(time.perf_counter() - started)
    async with sessions() as session:
        total = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert total == monitors * rounds
    await engine.dispose()
    return statistics.median(fanout), statistics.median(baseline)


def report(label: str, fanout: float, baseline: float, monitors: int) -> None:
    print(
        f"{label}: one status change queued {monitors} alerts in one transaction in "
        f"{fanout * 1000:.0f} ms; baseline {monitors} plain rows {baseline * 1000:.0f} ms; "
        f"ratio {fanout / baseline:.1f}x"
    )


async def main(monitors: int, rounds: int) -> None:
    print("command: python -m benchmarks.monitor_fanout " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        report("SQLite", *await measure(url, monitors, rounds), monitors)
    async with postgres_database() as pg_url:
        if pg_url is not None:
            report("PostgreSQL", *await measure(pg_url, monitors, rounds), monitors)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(main(options.monitors, options.rounds))
