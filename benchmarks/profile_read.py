"""Benchmark: the profile read every update starts with, as `touch_user` (the ORM loads the
user's whole row) and as `known_profile` (one prebuilt read of the columns a profile needs),
beside a baseline in the same run: a transaction that reads nothing but `SELECT 1`.

    python -m benchmarks.profile_read [--reads 2000]

Rounds alternate the three, so a machine that speeds up or slows down moves them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text

from storage.crypto import FieldCipher, generate_key
from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade_to_head
from storage.users import known_profile, touch_user

USER = 5_273_019_468
ROUNDS = 3


async def main(reads: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
        await upgrade_to_head(engine)
        sessions = make_session_factory(engine)
        cipher = FieldCipher([generate_key()])

        async def sealed(_: object) -> bytes:
            return b"sealed"

        async def baseline() -> None:
            async with sessions() as session, session.begin():
                await session.execute(text("SELECT 1"))

        async def touch() -> None:
            async with sessions() as session, session.begin():
                await touch_user(
                    session,
                    USER,
                    first_language="uk",
                    sealed_telegram_id=sealed,
                    new_user_sealing=lambda: cipher.new_data_key_sealing(str(USER)),
                )

        async def known() -> None:
            async with sessions() as session, session.begin():
                if await known_profile(session, USER, first_language="uk") is None:
                    raise RuntimeError("the user should be known")

        await touch()  # the user exists from here on
        runs: dict[str, Callable[[], Awaitable[None]]] = {
            "baseline: SELECT 1 in a transaction": baseline,
            "touch_user (ORM, whole row)": touch,
            "known_profile (prebuilt, columns)": known,
        }
        cpu = dict.fromkeys(runs, 0.0)
        for _ in range(ROUNDS):
            for label, run in runs.items():
                for _ in range(reads // 10):  # warm
                    await run()
                started = time.process_time()
                for _ in range(reads):
                    await run()
                cpu[label] += time.process_time() - started
        await engine.dispose()
    base = cpu["baseline: SELECT 1 in a transaction"]
    for label, spent in cpu.items():
        per_read = spent / (reads * ROUNDS) * 1e6
        print(f"{label:<40} {per_read:6.0f} µs CPU per read  {spent / base:5.2f}x baseline")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    asyncio.run(main(parser.parse_args().reads))
