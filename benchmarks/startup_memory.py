"""Benchmark: start-up time and resident memory of `python -m bot run`, small vs large database.

Two fresh SQLite databases are seeded, one with `--small` users and one with `--large` (each
user: a users row, their user data and their private chat's data in the persistence table, as a
family who reported keeps them: the case code "Hide this chat" leaves, the last search's
filter). For each, the bot runs in its own process against the sandbox (in this process): the
start-up time is from the process's launch until its first getUpdates long poll is open, the
memory its resident set size (VmRSS) then and two seconds later. Flat is a ratio near 1.

    python -m benchmarks.startup_memory [--small 1000] [--large 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import insert

from bot.app import open_services
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.settings import Settings
from storage.crypto import generate_key
from storage.identity import envelope, persistence_row_key
from storage.models import PersistenceEntry, User, utcnow

try:  # run against an earlier release too (before/after), which had no owner column
    from storage.identity import persistence_owner
except ImportError:  # pragma: no cover
    persistence_owner = None  # type: ignore[assignment]

TOKEN = "1000001:BENCH"
ROOT = Path(__file__).resolve().parents[1]
FIRST_ID = 5_000_000_000
CHUNK = 5_000


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def seed(url: str, key: str, users: int) -> None:
    """`users` users, each with user data and chat data stored (sealed with the master key, as
    entries written before per-entry keys are: read the same way)."""
    settings = Settings(bot_token=SecretStr(TOKEN), database_url=url, data_key=SecretStr(key))
    services = await open_services(settings, i18n=I18n())
    keys, cipher, now = services.keys, services.cipher, utcnow()
    try:
        for start in range(FIRST_ID, FIRST_ID + users, CHUNK):
            ids = range(start, min(start + CHUNK, FIRST_ID + users))
            people, entries = [], []
            for telegram_id in ids:
                user_key = keys.key(telegram_id)
                people.append(
                    {"id": user_key, "telegram_id": keys.seal(telegram_id), "language": "uk"}
                )
                for kind, value in (
                    ("user", {"hide_code": "K7M4-9XQ2", "find": {"status": "held", "page": 2}}),
                    ("chat", {"seen": True}),
                ):
                    row_key = persistence_row_key(keys, kind, telegram_id)
                    text = json.dumps(envelope(telegram_id, value), sort_keys=True)
                    entry = {
                        "kind": kind,
                        "key": row_key,
                        "data": cipher.seal(text),
                        "updated_at": now,
                    }
                    if persistence_owner is not None:
                        entry["owner"] = persistence_owner(row_key)
                    entries.append(entry)
            async with services.sessions() as session, session.begin():
                await session.execute(insert(User), people)
                await session.execute(insert(PersistenceEntry), entries)
    finally:
        await services.engine.dispose()


async def start_once(
    server: SandboxServer, url: str, key: str, workdir: Path
) -> tuple[float, float, float]:
    """(seconds to the first long poll, RSS MB then, RSS MB two seconds later)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOTLINE_BOT_TOKEN": TOKEN,
        "HOTLINE_API_BASE_URL": server.base_url,
        "HOTLINE_DATABASE_URL": url,
        "HOTLINE_DATA_KEY": key,
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    began = time.perf_counter()
    process = subprocess.Popen(  # noqa: ASYNC220 - the launch is what is timed
        [sys.executable, "-m", "bot", "run"], cwd=workdir, env=env
    )
    try:
        while not server.polling:
            if process.poll() is not None:
                raise RuntimeError(f"the bot exited with {process.returncode}")
            await asyncio.sleep(0.01)
        started = time.perf_counter() - began
        rss = _rss_mb(process.pid)
        await asyncio.sleep(2)
        return started, rss, _rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(60)
        await server.wait_for(lambda: not server.polling, timeout=60)  # its long poll gone


async def main(small: int, large: int, rounds: int) -> None:
    results: dict[int, list[tuple[float, float, float]]] = {small: [], large: []}
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        urls: dict[int, tuple[str, str]] = {}
        for size in (small, large):
            url = f"sqlite+aiosqlite:///{workdir / f'users-{size}.db'}"
            key = generate_key()
            seeded = time.perf_counter()
            await seed(url, key, size)
            print(f"seeded {size:,} users in {time.perf_counter() - seeded:.1f} s", flush=True)
            urls[size] = (url, key)
        async with SandboxServer() as server:
            for _ in range(rounds):  # alternating, so machine load falls on both alike
                for size in (small, large):
                    results[size].append(await start_once(server, *urls[size], workdir))
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {rounds} starts each")
    print(f"{'users':>10}{'start-up s':>12}{'RSS MB':>10}{'RSS +2 s':>10}")
    medians = {}
    for size in (small, large):
        columns = list(zip(*results[size], strict=True))
        medians[size] = [sorted(column)[len(column) // 2] for column in columns]
        started, rss, later = medians[size]
        print(f"{size:>10,}{started:12.2f}{rss:10.1f}{later:10.1f}")
    s, b = medians[small], medians[large]
    print(
        f"ratio large/small: start-up {b[0] / s[0]:.2f}, RSS {b[1] / s[1]:.2f}, "
        f"RSS +2 s {b[2] / s[2]:.2f} (flat = 1)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.small, arguments.large, arguments.rounds))
