"""Benchmark: the "flat at scale" table (issue 16) on SQLite and PostgreSQL, each figure beside a
baseline query measured in the same run on the same database.

A database seeded by `benchmarks.seed_scale` (by default 100,000 cases, 50,000 family users,
5,000 monitors with digests due, 1,000,000 delivered outbox rows, half of them past retention)
is measured for:

- `/status` of a family: `storage.reports.cases_of` (the storage call the handler makes, in a
  session of its own as the handler opens one) for random family members, p50/p99; baseline:
  a primary-key read of a case (`session.get`) in a fresh session, p50/p99;
- the digest job: `jobs.digests.run_digests` once for every due monitor (`--digest-monitors`
  keeps only the first N digests enabled: the code before issue 16 needs ~0.2 s a monitor);
  baseline: `SELECT count(*) FROM cases`;
- retention: `jobs.retention.run_retention` over the expired delivered rows while a family's
  write (a user row touched and a reply queued, one transaction) starts every 20 ms: the
  longest and p99 write, against the same writer alone just before; baseline: the same
  `count(*)`.

PostgreSQL gets a throw-away database and is skipped with a line when unreachable. To measure
two versions of the code on the same data, seed once and pass the copies:

    python -m benchmarks.seed_scale --url sqlite+aiosqlite:////tmp/seed.db --data-key KEY ...
    python -m benchmarks.scale_table --data-key KEY --seeded-sqlite /tmp/seed.db \\
        --seeded-postgres hotline_seed      (a seeded database, used as a template)

Without `--seeded-*` it seeds its own databases (sizes: --cases, --users, --monitors,
--delivered, --events).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import OperationalError

from benchmarks.monitor_fanout import postgres_database
from benchmarks.seed_scale import NOW, seed, shown_arguments
from bot.app import open_services
from bot.services import Services
from bot.settings import Settings
from jobs.digests import run_digests
from jobs.retention import run_retention
from storage.crypto import generate_key
from storage.digests import due_digests
from storage.enums import OutboxKind, OutboxStatus, Role
from storage.models import Case, DigestSetting, OutboxMessage, User
from storage.reports import cases_of

WRITE_EVERY = 0.02


def p(values: list[float], q: int) -> float:
    """The q-th percentile, in milliseconds."""
    if len(values) < 2:
        return values[0] * 1000 if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


async def timings(work: Callable[[], Awaitable[Any]], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return times


async def count_cases(services: Services) -> float:
    async def count() -> None:
        async with services.sessions() as session:
            await session.scalar(select(func.count()).select_from(Case))

    return statistics.median(await timings(count, 3)) * 1000


async def measure_status(services: Services, family: list[int], rounds: int) -> None:
    rng = random.Random(1)
    cases = int(await _scalar(services, select(func.max(Case.id))))

    async def status() -> None:
        async with services.sessions() as session:
            await cases_of(session, services.cipher, rng.choice(family))

    async def by_key() -> None:
        async with services.sessions() as session:
            await session.get(Case, rng.randrange(1, cases + 1))

    await timings(status, 20)  # warm the pool and the caches alike
    await timings(by_key, 20)
    mine: list[float] = []
    base: list[float] = []
    for _ in range(rounds):  # alternating, so a busy spell of the machine weighs on both alike
        mine += await timings(status, 1)
        base += await timings(by_key, 1)
    print(
        f"  /status (storage.reports.cases_of, {rounds} families): p50 {p(mine, 50):.2f} ms, "
        f"p99 {p(mine, 99):.2f} ms; baseline primary-key read of a case: p50 "
        f"{p(base, 50):.2f} ms, p99 {p(base, 99):.2f} ms",
        flush=True,
    )


async def _scalar(services: Services, query: Any) -> Any:
    async with services.sessions() as session:
        return await session.scalar(query)


async def measure_digests(services: Services, monitors: int | None) -> None:
    if monitors is not None:
        async with services.sessions() as session, session.begin():
            keep = (
                select(DigestSetting.user_id).order_by(DigestSetting.user_id).limit(monitors)
            ).scalar_subquery()
            await session.execute(
                update(DigestSetting)
                .where(DigestSetting.user_id.not_in(keep))
                .values(enabled=False)
                .execution_options(synchronize_session=False)
            )
    async with services.sessions() as session:
        due = len(await due_digests(session, NOW))
    base = await count_cases(services)
    started, cpu = time.perf_counter(), time.process_time()
    parts = await run_digests(services)
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"  digest job: {due} monitors, {parts} parts queued in {took:.2f} s "
        f"(CPU of this process, database threads included: {cpu:.2f} s) "
        f"({took / max(due, 1) * 1000:.1f} ms a monitor); baseline count(*) of cases "
        f"{base:.1f} ms",
        flush=True,
    )


async def _writer(
    services: Services,
    family: list[int],
    stop: asyncio.Event,
    waits: list[float],
    refused: list[float],
) -> None:
    """A family's write every WRITE_EVERY seconds: their row touched and a reply queued. A
    write refused after SQLite's busy timeout (10 s) counts with the time it waited."""
    rng, number = random.Random(2), 0
    while not stop.is_set():
        user = rng.choice(family)
        number += 1
        started = time.perf_counter()
        try:
            await _family_write(services, user, number)
        except OperationalError:  # SQLite's busy timeout ran out: the write was refused
            refused.append(time.perf_counter() - started)
        waits.append(time.perf_counter() - started)
        await asyncio.sleep(WRITE_EVERY)


async def _family_write(services: Services, user: int, number: int) -> None:
    async with services.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == user).values(last_seen_at=NOW))
        await session.execute(
            insert(OutboxMessage).values(
                dedupe_key=f"bench-reply:{time.time_ns()}:{number}",
                chat_id=user,
                kind=OutboxKind.CASE_ALERT,
                priority=0,
                template="bench.reply",
                status=OutboxStatus.SENT,
                attempts=1,
                not_before=NOW,
                created_at=NOW,
            )
        )


async def measure_retention(services: Services, family: list[int]) -> None:
    base = await count_cases(services)
    alone: list[float] = []
    stop = asyncio.Event()
    writer = asyncio.create_task(_writer(services, family, stop, alone, []))
    await asyncio.sleep(10)
    stop.set()
    await writer
    during: list[float] = []
    refused: list[float] = []
    stop = asyncio.Event()
    writer = asyncio.create_task(_writer(services, family, stop, during, refused))
    started = time.perf_counter()
    result = await run_retention(services)
    took = time.perf_counter() - started
    stop.set()
    await writer
    batches = getattr(result, "batches", 1)
    print(
        f"  retention: {result.outbox_rows} outbox rows in {took:.1f} s ({batches} "
        f"transactions); a family's write meanwhile: max {max(during) * 1000:.0f} ms, p99 "
        f"{p(during, 99):.0f} ms, p50 {p(during, 50):.1f} ms, "
        f"{sum(wait > 0.1 for wait in during)} of {len(during)} writes over 100 ms, "
        f"{len(refused)} refused (database is locked); the "
        f"same writer alone: max {max(alone) * 1000:.0f} ms, p99 {p(alone, 99):.0f} ms, "
        f"{sum(wait > 0.1 for wait in alone)} of {len(alone)} over 100 ms; "
        f"baseline count(*) of cases {base:.1f} ms",
        flush=True,
    )


async def measure(label: str, url: str, key: str, options: argparse.Namespace) -> None:
    print(f"{label}:", flush=True)
    settings = Settings(  # type: ignore[call-arg]
        database_url=url, data_key=SecretStr(key), outbox_retention_days=30
    )
    services = await open_services(settings)
    services.clock = lambda: NOW
    try:
        family = list(
            await _all(services, select(User.id).where(User.role == Role.FAMILY).order_by(User.id))
        )
        if not family:
            started = time.perf_counter()
            seeded = await seed(
                services.sessions,
                services.cipher,
                services.keys,
                cases=options.cases,
                users=options.users,
                monitors=options.monitors,
                delivered=options.delivered,
                events=options.events,
                report=True,
            )
            family = seeded.family
            print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
        counts = {
            model.__tablename__: int(
                await _scalar(services, select(func.count()).select_from(model))
            )
            for model in (Case, User, DigestSetting, OutboxMessage)
        }
        print(f"  rows: {counts}", flush=True)
        if "status" in options.parts:
            await measure_status(services, family, options.rounds)
        if "digests" in options.parts:
            await measure_digests(services, options.digest_monitors)
        if "retention" in options.parts:
            await measure_retention(services, family)
    finally:
        await services.engine.dispose()


async def _all(services: Services, query: Any) -> list[Any]:
    async with services.sessions() as session:
        return list(await session.scalars(query))


async def main(options: argparse.Namespace) -> None:
    print("command: python -m benchmarks.scale_table " + " ".join(shown_arguments()))
    key = options.data_key or generate_key()
    if options.engine in ("both", "sqlite"):
        with tempfile.TemporaryDirectory() as directory:
            target = Path(directory) / "scale.db"
            if options.seeded_sqlite:
                shutil.copyfile(options.seeded_sqlite, target)
            await measure("SQLite", f"sqlite+aiosqlite:///{target}", key, options)
    if options.engine in ("both", "postgres"):
        async with postgres_database(options.seeded_postgres or None) as url:
            if url is not None:
                await measure("PostgreSQL", url, key, options)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("both", "sqlite", "postgres"), default="both")
    parser.add_argument("--data-key", help="the key the seeded databases were sealed with")
    parser.add_argument("--seeded-sqlite", help="a SQLite file seeded by benchmarks.seed_scale")
    parser.add_argument("--seeded-postgres", help="a PostgreSQL database seeded likewise")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--monitors", type=int, default=5_000)
    parser.add_argument("--delivered", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1000, help="/status calls measured")
    parser.add_argument(
        "--parts", default="status,digests,retention", help="which measurements, comma-separated"
    )
    parser.add_argument(
        "--digest-monitors", type=int, help="only the first N monitors' digests enabled"
    )
    asyncio.run(main(parser.parse_args()))
