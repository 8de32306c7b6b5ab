"""Benchmark: one broadcast to N users, every part in its own process, with flood limits on.

The sandbox (Telegram, with its flood limits: `--rate`/s overall, one a second per chat) runs in
a process of its own and counts every message when it arrives. The senders are separate
processes too: with `--workers 0` the bot itself (`python -m bot run`, polling the sandbox),
with `--workers N` N `python -m bot deliver` workers sharing the outbox and the rate on
PostgreSQL (no bot process). This process only seeds the database, queues the broadcast and
watches.

Reported: the sustained rate (first to last arrival) as a fraction of the limit, the most
arrivals in any sliding second, the 429 answers, the CPU time of each process against the wall
time, their peak memory, and the messages sent twice, counted once the outbox has settled and
every lease has run out (a row that went out and was not recorded would go out again only then).

    python -m benchmarks.broadcast_rate --users 1500 --rate 30 --workers 0
    python -m benchmarks.broadcast_rate --users 10000 --rate 1000 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from pydantic import SecretStr

from bot.app import open_services
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.settings import Settings
from storage import broadcasts, outbox
from storage.crypto import generate_key
from storage.enums import OutboxStatus
from storage.models import User

TOKEN = "1000001:BENCH"
TEXT = "Benchmark announcement"
ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get(
    "HOTLINE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


# -- the sandbox, in its own process ---------------------------------------------------------------


class BenchSandbox(SandboxServer):
    """The sandbox with two routes for this benchmark: make users, and what arrived."""

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.router.add_post("/bench/users", self._bench_users)
        app.router.add_get("/bench/arrivals", self._bench_arrivals)
        return app

    async def _bench_users(self, request: web.Request) -> web.Response:
        count = int((await request.json())["count"])
        ids = [self.add_user(language_code="en").id for _ in range(count)]
        return web.json_response({"ids": ids})

    async def _bench_arrivals(self, request: web.Request) -> web.Response:
        times = sorted(send.at for send in self.stats.sends if send.text == TEXT)
        chats = Counter(send.chat_id for send in self.stats.sends if send.text == TEXT)
        busiest, start = 0, 0
        for end, at in enumerate(times):  # arrivals in (at - 1 s, at]: the flood limiter's window
            while times[start] <= at - 1.0:
                start += 1
            busiest = max(busiest, end - start + 1)
        return web.json_response(
            {
                "sent": len(times),
                "chats": len(chats),
                "twice": sum(count - 1 for count in chats.values()),
                "first": times[0] if times else None,
                "last": times[-1] if times else None,
                "busiest_second": busiest,
                "status_429": self.stats.status_429,
            }
        )


async def serve_sandbox(rate: float) -> None:
    """`--serve-sandbox`: run until SIGTERM, the port on the first line of stdout."""
    server = BenchSandbox()
    await server.start()
    server.set_flood_limits(rate, 1)
    print(json.dumps({"port": server.port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


# -- processes -------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    cpu0: float = 0.0

    def cpu(self) -> float:
        return cpu_seconds(self.popen.pid) - self.cpu0


def spawn(name: str, args: list[str], env: dict[str, str], log: Path) -> Process:
    profile = os.environ.get("BENCH_PROFILE")  # a folder: each sender runs under cProfile
    if profile and name != "sandbox":
        args = ["cProfile", "-o", str(Path(profile) / f"{name}.prof"), "-m", *args]
    popen = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE if name == "sandbox" else log.open("wb"),
        stderr=log.open("ab") if name == "sandbox" else subprocess.STDOUT,
    )
    return Process(name, popen)


def stop(process: Process) -> None:
    if process.popen.poll() is None:
        process.popen.send_signal(signal.SIGTERM)
        try:
            process.popen.wait(30)
        except subprocess.TimeoutExpired:
            process.popen.kill()


# -- the run ---------------------------------------------------------------------------------------


async def fresh_postgres() -> tuple[str, str]:
    name = f"bench_{secrets.token_hex(5)}"
    plain = POSTGRES.replace("postgresql+asyncpg://", "postgresql://", 1)
    admin = await asyncpg.connect(plain)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{POSTGRES.rpartition('/')[0]}/{name}", name


async def drop_postgres(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run(options: argparse.Namespace) -> None:
    users, rate, workers = options.users, options.rate, options.workers
    folder = Path(tempfile.mkdtemp(prefix="broadcast_rate_"))
    sandbox = spawn(
        "sandbox",
        ["benchmarks.broadcast_rate", "--serve-sandbox", "--rate", str(rate)],
        {},
        folder / "sandbox.log",
    )
    assert sandbox.popen.stdout is not None
    port = json.loads(sandbox.popen.stdout.readline())["port"]
    base = f"http://127.0.0.1:{port}"
    postgres = options.database == "postgres"
    url, dbname = (
        (await fresh_postgres()) if postgres else (f"sqlite+aiosqlite:///{folder / 'bench.db'}", "")
    )
    key = generate_key()
    settings = Settings(
        bot_token=SecretStr(TOKEN),
        api_base_url=f"{base}/bot",
        database_url=url,
        data_key=SecretStr(key),
        send_rate_per_second=rate,
    )
    processes: list[Process] = []
    try:
        services = await open_services(settings, i18n=I18n())
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/bench/users", json={"count": users}) as answer:
                chats = (await answer.json())["ids"]

            async def arrivals() -> dict[str, Any]:
                async with http.get(f"{base}/bench/arrivals") as answer:
                    found: dict[str, Any] = await answer.json()
                    return found

            async with services.sessions() as session, session.begin():
                keys = services.keys  # rows as first contact makes them: user key, sealed id
                session.add_all(
                    [User(id=keys.key(c), telegram_id=keys.seal(c), language="en") for c in chats]
                )
            env = {
                "HOTLINE_BOT_TOKEN": TOKEN,
                "HOTLINE_API_BASE_URL": f"{base}/bot",
                "HOTLINE_DATABASE_URL": url,
                "HOTLINE_DATA_KEY": key,
                "HOTLINE_SEND_RATE_PER_SECOND": str(rate),
                "HOTLINE_DELIVERY_LEASE_SECONDS": str(options.lease),
                "HOTLINE_DELIVERY_SWEEP_SECONDS": "0.5",
                "HOTLINE_LOG_LEVEL": "WARNING",
            }
            if workers == 0:
                processes.append(spawn("bot", ["bot", "run"], env, folder / "bot.log"))
            for number in range(workers):
                log = folder / f"worker{number}.log"
                processes.append(spawn(f"worker{number}", ["bot", "deliver"], env, log))
            await asyncio.sleep(options.warmup)  # every process started and idle
            for process in [sandbox, *processes]:
                process.cpu0 = cpu_seconds(process.popen.pid)
            wall0 = time.perf_counter()
            async with services.sessions() as session, session.begin():
                await broadcasts.queue_broadcast(
                    session,
                    services.cipher,
                    author_id=1,
                    audience="everyone",
                    audience_arg=None,
                    text=TEXT,
                )
            queued = time.perf_counter() - wall0
            deadline = time.monotonic() + users / rate * 4 + 120
            while (await arrivals())["chats"] < users:
                if time.monotonic() > deadline:
                    raise SystemExit(f"not every user got the broadcast; logs in {folder}")
                await asyncio.sleep(0.2)
            wall = time.perf_counter() - wall0
            cpu = {process.name: process.cpu() for process in [sandbox, *processes]}
            load = os.getloadavg()
            while True:  # the outbox settles: nothing pending, nothing in flight
                async with services.sessions() as session:
                    counts = await outbox.counts(session)
                if counts[OutboxStatus.PENDING] == counts[OutboxStatus.SENDING] == 0:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(options.lease + 2)  # any lease that could still run out has
            seen = await arrivals()
        await services.engine.dispose()
        peaks = {process.name: peak_mb(process.popen.pid) for process in [sandbox, *processes]}
    finally:
        for process in processes:
            stop(process)
        stop(sandbox)
        if postgres:
            await drop_postgres(dbname)
    span = seen["last"] - seen["first"]
    sustained = (seen["sent"] - 1) / span if span > 0 else 0.0
    senders = "the bot process" if workers == 0 else f"{workers} deliver worker(s)"
    engine = "PostgreSQL" if postgres else "SQLite"
    print(f"users {users}, limit {rate:g}/s, {senders}, {engine}")
    print(f"queued in {queued:.2f}s, all arrived {wall:.1f}s after queuing")
    print(f"sustained rate {sustained:.1f}/s = {sustained / rate:.3f} of the limit")
    print(f"most arrivals in one sliding second: {seen['busiest_second']}")
    print(f"429 answers: {seen['status_429']}, sent twice (after leases ran out): {seen['twice']}")
    print(f"outbox after settling: {dict((str(k), v) for k, v in counts.items() if v)}")
    for name, seconds in cpu.items():
        print(
            f"  {name}: CPU {seconds:.1f}s of {wall:.1f}s wall ({seconds / wall:.0%}),"
            f" peak {peaks[name]:.0f} MB"
        )
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=0, help="0: the bot process sends")
    parser.add_argument(
        "--database",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="workers need PostgreSQL",
    )
    parser.add_argument("--lease", type=float, default=10.0, help="delivery lease, seconds")
    parser.add_argument(
        "--warmup", type=float, default=6.0, help="seconds for the processes to start"
    )
    parser.add_argument("--serve-sandbox", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_sandbox:
        asyncio.run(serve_sandbox(options.rate))
        return
    if options.workers and options.database != "postgres":
        parser.error("--workers needs --database postgres")
    asyncio.run(run(options))


if __name__ == "__main__":
    main()
