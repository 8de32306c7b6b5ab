"""Benchmark: the bot's CPU per update, in its own process, against a bare PTB bot.

The sandbox (the local Bot API server) and the users run in this process; the hotline bot runs
as `python -m bot run` in a process of its own, against the sandbox's URL, on a fresh SQLite
database; then a bare PTB bot (`benchmarks.bare_bot`: no database, same reply texts and buttons)
in its own process. Each kind of update is sent by N users one after another (the next when the
previous got its reply), and the bot process's CPU time (user + system, all its threads, read
from /proc) over the whole run of that kind, once the process is idle again, is divided by N:

- first /start: a user the bot has never seen;
- returning /start: the same users again;
- /status: each user with one case (seeded before);
- report answer: one typed answer (the name) in an open report form.

    python -m benchmarks.cpu_per_update [--users 100]

The ratio is hotline/bare (the goal: at most 1.25). Machine load moves both alike; the load
average is printed beside the figures. A third bot, the bare one with the durable inbox and
nothing else (`benchmarks.bare_bot` with BENCH_INBOX), gives the floor: what storing each update
before it is confirmed, and marking it handled, costs by itself (floor/bare).
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import open_services
from bot.callbacks import REPORT
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.settings import Settings
from storage.crypto import generate_key
from storage.db import make_engine
from storage.migrate import upgrade_to_head
from tests.support.case_factory import make_case

TOKEN = "1000001:BENCH"
ROOT = Path(__file__).resolve().parents[1]
KINDS = ("first_start", "returning_start", "status", "report_answer")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def idle(pid: int, quiet: float = 0.5, limit: float = 20.0) -> None:
    """Until the process has used no CPU for `quiet` seconds (its trailing work is done)."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = cpu_seconds(pid)
        if now == last:
            return
        last = now


async def wait_polling(server: SandboxServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not server.polling:
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("the bot did not start polling")
        await asyncio.sleep(0.05)


async def exchange(server: SandboxServer, user: int, send: Callable[[], Awaitable[Any]]) -> None:
    """Send one update and wait for its first reply."""
    before = len(server.messages(user))
    await send()
    await server.wait_for_messages(user, before + 1, timeout=60)


async def measure(
    server: SandboxServer,
    pid: int,
    users: list[int],
    make: Callable[[int], Callable[[], Awaitable[Any]]],
) -> float:
    """Milliseconds of the process's CPU per update, over one update from each user."""
    await idle(pid)
    started = cpu_seconds(pid)
    for user in users:
        await exchange(server, user, make(user))
    await idle(pid)
    return (cpu_seconds(pid) - started) / len(users) * 1000


def _reply(server: SandboxServer, user: int) -> dict[str, Any]:
    last = server.messages(user)[-1]
    return {"text": last.text, "parse_mode": last.parse_mode, "reply_markup": last.reply_markup}


async def hotline(
    server: SandboxServer, workdir: Path, count: int
) -> tuple[dict[str, float], dict[str, Any]]:
    url = f"sqlite+aiosqlite:///{workdir / 'hotline.db'}"
    key = generate_key()
    settings = Settings(
        bot_token=SecretStr(TOKEN),
        api_base_url=server.base_url,
        database_url=url,
        data_key=SecretStr(key),
    )
    services = await open_services(settings, i18n=I18n())  # migrated before the bot starts
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOTLINE_BOT_TOKEN": TOKEN,
        "HOTLINE_API_BASE_URL": server.base_url,
        "HOTLINE_DATABASE_URL": url,
        "HOTLINE_DATA_KEY": key,
        "HOTLINE_MESSAGES_PER_MINUTE": "100000",
        "HOTLINE_SEND_RATE_PER_SECOND": "1000",
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    profile = os.environ.get("BENCH_PROFILE")  # a file: the bot runs under cProfile
    command = ["-m", "cProfile", "-o", profile] if profile else []
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, outside any timing
        [sys.executable, *command, "-m", "bot", "run"], cwd=workdir, env=env
    )
    figures: dict[str, float] = {}
    replies: dict[str, Any] = {}
    try:
        await wait_polling(server, process)
        warm = [server.add_user(language_code="uk").id for _ in range(5)]
        for user in warm:  # imports, catalogs, first queries
            await exchange(server, user, lambda u=user: server.send_text(u, "/start"))
            await exchange(server, user, lambda u=user: server.send_text(u, "/status"))
        users = [server.add_user(language_code="uk").id for _ in range(count)]
        start = lambda u: lambda: server.send_text(u, "/start")  # noqa: E731
        figures["first_start"] = await measure(server, process.pid, users, start)
        replies["first_start"] = _reply(server, users[0])
        figures["returning_start"] = await measure(server, process.pid, users, start)
        replies["returning_start"] = _reply(server, users[0])
        async with services.sessions() as session, session.begin():
            for user in users:
                await make_case(session, services.cipher, reporter_id=user, keys=services.keys)
        status = lambda u: lambda: server.send_text(u, "/status")  # noqa: E731
        figures["status"] = await measure(server, process.pid, users, status)
        replies["status"] = _reply(server, users[0])
        for user in users:  # into the form, at the name question (not measured)
            await exchange(server, user, lambda u=user: server.send_text(u, "/report"))
            consent = server.messages(user)[-1]
            await exchange(
                server,
                user,
                lambda u=user, m=consent.message_id: server.press(
                    u, m, REPORT.build("consent", "yes")
                ),
            )
            relation = server.messages(user)[-1]
            await exchange(
                server,
                user,
                lambda u=user, m=relation.message_id: server.press(
                    u, m, REPORT.build("a", "relation", "parent")
                ),
            )
        name = lambda u: lambda: server.send_text(u, "Petrenko Ivan Mykolaiovych")  # noqa: E731
        figures["report_answer"] = await measure(server, process.pid, users, name)
        replies["report_answer"] = _reply(server, users[0])
    finally:
        process.terminate()
        process.wait(30)
        await services.engine.dispose()
    return figures, replies


async def bare(
    server: SandboxServer, workdir: Path, count: int, replies: dict[str, Any], *, inbox: bool
) -> dict[str, float]:
    """The bare PTB bot; with `inbox`, with the durable inbox (stored, handled, marked)."""
    path = workdir / "replies.json"
    path.write_text(json.dumps(replies), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_TOKEN": TOKEN,
        "BENCH_BASE_URL": server.base_url,
        "BENCH_REPLIES": str(path),
    }
    if inbox:
        url = f"sqlite+aiosqlite:///{workdir / 'floor.db'}"
        engine = make_engine(url)
        await upgrade_to_head(engine)
        await engine.dispose()
        env |= {"BENCH_INBOX": url, "BENCH_DATA_KEY": generate_key()}
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, outside any timing
        [sys.executable, "-m", "benchmarks.bare_bot"], cwd=workdir, env=env
    )
    figures: dict[str, float] = {}
    try:
        await wait_polling(server, process)
        for user in [server.add_user(language_code="uk").id for _ in range(5)]:
            await exchange(server, user, lambda u=user: server.send_text(u, "/start"))
        users = [server.add_user(language_code="uk").id for _ in range(count)]
        start = lambda u: lambda: server.send_text(u, "/start")  # noqa: E731
        figures["first_start"] = await measure(server, process.pid, users, start)
        figures["returning_start"] = await measure(server, process.pid, users, start)
        status = lambda u: lambda: server.send_text(u, "/status")  # noqa: E731
        figures["status"] = await measure(server, process.pid, users, status)
        name = lambda u: lambda: server.send_text(u, "Petrenko Ivan Mykolaiovych")  # noqa: E731
        figures["report_answer"] = await measure(server, process.pid, users, name)
    finally:
        process.terminate()
        process.wait(30)
    return figures


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        async with SandboxServer() as server:
            ours, replies = await hotline(server, workdir, count)
            # Each bot's long poll is gone with its process; the next one polls.
            base = await bare(server, workdir, count, replies, inbox=False)
            floor = await bare(server, workdir, count, replies, inbox=True)
    print(f"users per kind: {count}; load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'kind':<18}{'hotline ms':>12}{'bare PTB ms':>13}{'bare+inbox ms':>15}"
        f"{'hotline/bare':>14}{'floor/bare':>12}"
    )
    for kind in KINDS:
        print(
            f"{kind:<18}{ours[kind]:12.2f}{base[kind]:13.2f}{floor[kind]:15.2f}"
            f"{ours[kind] / base[kind]:14.2f}{floor[kind] / base[kind]:12.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.users))
