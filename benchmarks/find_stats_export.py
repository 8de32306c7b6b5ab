"""Benchmark: /find by region and status, /stats, and the export of every case, on 100,000 cases.

A database of N cases (default 100,000; each with its own data key, a sealed name and birth
date, a record with an article, a CREATED event, 40% verified, 5% returned) is seeded on SQLite
and on a throw-away PostgreSQL database. Each measurement stands beside a baseline on the same
data in the same run:

- /find region+status: `storage.search.find_cases` (count, first page, tags) against the
  baseline `SELECT count(*) FROM cases` (the whole table counted once);
- /stats: `storage.stats.compute_figures` (the queries) and `jobs.stats_charts.render_charts`
  (six PNGs), against the same baseline;
- export of every case (anonymised CSV, anonymised XLSX, full CSV with every sealed field
  opened): time and peak Python memory (tracemalloc, on for both sides), against the baseline
  of streaming `SELECT * FROM cases` and discarding the rows.

    python -m benchmarks.find_stats_export [--cases 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select

from benchmarks.monitor_fanout import postgres_database
from bot.i18n import I18n
from jobs.export_files import Format, write_export
from jobs.stats_charts import render_charts
from storage import export, search, stats
from storage.codes import new_case_code
from storage.crypto import FieldCipher, generate_key
from storage.db import SessionFactory, make_engine, make_session_factory
from storage.enums import CaseStatus, Custody, EventKind, Region, Visibility
from storage.migrate import upgrade_to_head
from storage.models import Case, CaseEvent, CasePersonal, CaseRecord, DataKey

NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
BATCH = 2000


def _codes(count: int) -> list[str]:
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(new_case_code())
    return list(codes)


async def seed(sessions: SessionFactory, cipher: FieldCipher, count: int) -> None:
    rng = random.Random(15)
    codes = _codes(count)
    statuses = [s for s in CaseStatus]
    for start in range(0, count, BATCH):
        ids = range(start + 1, min(count, start + BATCH) + 1)
        cases, keys, personal, records, events = [], [], [], [], []
        for case_id in ids:
            created = NOW - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
            status = rng.choice(statuses)
            cases.append(
                {
                    "id": case_id,
                    "code": codes[case_id - 1],
                    "status": status,
                    "visibility": rng.choice(list(Visibility)),
                    "region": rng.choice(list(Region)),
                    "custody": rng.choice(list(Custody)),
                    "detention_date": created.date() - timedelta(days=rng.randrange(30)),
                    "created_at": created,
                    "updated_at": created,
                }
            )
            raw = Fernet.generate_key()
            keys.append({"id": case_id, "case_id": case_id, "sealed": cipher.seal(raw.decode())})
            data = Fernet(raw)
            personal.append(
                {
                    "case_id": case_id,
                    "detainee_name": data.encrypt(f"Person {case_id}".encode()),
                    "birth_date": data.encrypt(b"1985-03-21"),
                    "held_in": data.encrypt(b"SIZO-1 Simferopol"),
                }
            )
            records.append(
                {
                    "case_id": case_id,
                    "articles": [{"number": "205.5", "part": 2}],
                    "updated_at": NOW,
                }
            )
            events.append(
                {
                    "case_id": case_id,
                    "kind": EventKind.CREATED,
                    "new_status": "new",
                    "created_at": created,
                }
            )
            if rng.random() < 0.4:
                events.append(
                    {
                        "case_id": case_id, "kind": EventKind.STATUS_CHANGED,
                        "new_status": CaseStatus.VERIFIED,
                        "created_at": created + timedelta(hours=rng.randrange(1, 30 * 24)),
                    }
                )  # fmt: skip
            if rng.random() < 0.05:
                events.append(
                    {
                        "case_id": case_id, "kind": EventKind.STATUS_CHANGED,
                        "new_status": CaseStatus.RETURNED,
                        "created_at": created + timedelta(days=rng.randrange(1, 300)),
                    }
                )  # fmt: skip
        async with sessions() as session, session.begin():
            await session.execute(insert(Case), cases)
            await session.execute(insert(DataKey), keys)
            await session.execute(insert(CasePersonal), personal)
            await session.execute(insert(CaseRecord), records)
            await session.execute(insert(CaseEvent), events)


async def timed(work: Callable[[], Awaitable[Any]], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def with_memory(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(seconds, peak MiB of Python allocations) of one run under tracemalloc."""
    tracemalloc.start()
    try:
        started = time.perf_counter()
        await work()
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / (1 << 20)
    finally:
        tracemalloc.stop()
    return elapsed, peak


async def measure(label: str, url: str, count: int, rounds: int) -> None:
    engine = make_engine(url)
    await upgrade_to_head(engine)
    sessions = make_session_factory(engine)
    key = generate_key()
    cipher = FieldCipher.from_setting(key)
    started = time.perf_counter()
    await seed(sessions, cipher, count)  # data keys sealed by the master key, as in use
    print(f"{label}: seeded {count} cases in {time.perf_counter() - started:.0f} s")

    async def baseline_count() -> None:
        async with sessions() as session:
            await session.scalar(select(func.count()).select_from(Case))

    async def find() -> None:
        criteria = search.CaseFilter(region=Region.CRIMEA, status=CaseStatus.VERIFIED)
        async with sessions() as session:
            await search.find_cases(session, criteria, 0, actor_id=1, now=NOW)

    async def figures() -> stats.Figures:
        async with sessions() as session:
            return await stats.compute_figures(session, now=NOW, timezone="Europe/Kyiv")

    base = await timed(baseline_count, rounds)
    found = await timed(find, rounds)
    print(
        f"{label}: /find region+status {found * 1000:.1f} ms; baseline count(*) of all cases "
        f"{base * 1000:.1f} ms; ratio {found / base:.2f}x"
    )
    queried = await timed(figures, max(1, rounds // 2))
    computed = await figures()
    tr = I18n().get("uk")
    await asyncio.to_thread(render_charts, tr, computed)  # matplotlib's first use loads fonts
    drawn = await timed(lambda: asyncio.to_thread(render_charts, tr, computed), max(1, rounds // 2))
    print(
        f"{label}: /stats queries {queried * 1000:.0f} ms + six charts drawn "
        f"{drawn * 1000:.0f} ms; "
        f"baseline count(*) {base * 1000:.1f} ms; ratio {(queried + drawn) / base:.0f}x "
        f"(queries alone {queried / base:.1f}x)"
    )

    async def stream_all() -> None:
        async with sessions() as session:
            result = await session.stream(select(Case).execution_options(yield_per=1000))
            async for partition in result.partitions():
                for _ in partition:
                    pass

    base_time, base_peak = await with_memory(stream_all)
    print(
        f"{label}: baseline: stream every case row and drop it: {base_time:.1f} s, "
        f"peak {base_peak:.1f} MiB"
    )
    for file_format, anonymised in ((Format.CSV, True), (Format.XLSX, True), (Format.CSV, False)):
        sheet = export.sheet(export.What.CASES, anonymised)
        written: dict[str, int] = {}

        async def run(
            sheet: export.Sheet = sheet,
            file_format: Format = file_format,
            written: dict[str, int] = written,
        ) -> None:
            with tempfile.TemporaryFile() as target:
                written["rows"] = await write_export(sessions, cipher, sheet, file_format, target)
                written["bytes"] = target.tell()

        elapsed, peak = await with_memory(run)
        kind = "anonymised" if anonymised else "full"
        print(
            f"{label}: export {kind} {file_format}: {written['rows']} rows, "
            f"{written['bytes'] / (1 << 20):.1f} MiB file, {elapsed:.1f} s "
            f"({elapsed / base_time:.1f}x baseline), peak {peak:.1f} MiB "
            f"({peak / max(base_peak, 0.01):.1f}x baseline)"
        )
    await engine.dispose()


async def main(count: int, rounds: int) -> None:
    print("command: python -m benchmarks.find_stats_export " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        await measure("SQLite", url, count, rounds)
    async with postgres_database() as pg_url:
        if pg_url is not None:
            await measure("PostgreSQL", pg_url, count, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(main(options.cases, options.rounds))
