"""Benchmark: the bot's CPU per update, in its own process, against a bare PTB bot.

Three bots, each in a process of its own and each polling a sandbox (a local Bot API server)
of its own; the sandboxes and the users run in this process:

- the hotline: `python -m bot run` on a fresh SQLite database;
- the bare bot (`benchmarks.bare_bot`): PTB alone, no database, the hotline's reply texts and
  buttons (taken from a pilot user's run through the hotline first);
- the floor: the bare bot with the durable inbox and nothing else (`benchmarks.bare_bot` with
  BENCH_INBOX): what storing each update before it is confirmed, and marking it handled, costs
  by itself, the least any bot that loses no update pays on this stack.

Each kind of update is sent by N users per bot, the bots taking turns user by user (each next
update when the previous reply arrived), so a machine that speeds up or slows down moves the
three alike. A bot's CPU time (user + system, all its threads, read from /proc) over the run of
that kind, once it is idle again, is divided by N:

- first /start: a user the bot has never seen;
- returning /start: the same users again;
- /status: each user with one case (seeded before);
- report answer: one typed answer (the name) in an open report form.

    python -m benchmarks.cpu_per_update [--users 100]

hotline/bare is the issue's ratio (the goal: at most 1.25); floor/bare is the part of it the
durable inbox takes by itself. The load average is printed beside the figures.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import open_services
from bot.callbacks import REPORT
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.services import Services
from bot.settings import Settings
from storage.crypto import generate_key
from storage.db import make_engine
from storage.migrate import upgrade_to_head
from tests.support.case_factory import make_case

TOKEN = "1000001:BENCH"
ROOT = Path(__file__).resolve().parents[1]
KINDS = ("first_start", "returning_start", "status", "report_answer")
NAME = "Petrenko Ivan Mykolaiovych"
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


@dataclass
class Bot:
    """One bot under measurement: its own sandbox (the Telegram it polls) and process."""

    name: str
    server: SandboxServer
    process: subprocess.Popen[bytes] | None = None
    users: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


async def measure(
    bots: list[Bot], make: Callable[[Bot, int], Callable[[], Awaitable[Any]]]
) -> dict[str, float]:
    """Milliseconds of each bot's CPU per update, over one update from each of its users. The
    bots take turns, user by user: a machine that speeds up or slows down moves them alike."""
    for bot in bots:
        await idle(bot.pid)
    started = {bot.name: cpu_seconds(bot.pid) for bot in bots}
    for turn in range(len(bots[0].users)):
        for bot in bots:
            user = bot.users[turn]
            await exchange(bot.server, user, make(bot, user))
    for bot in bots:
        await idle(bot.pid)
    return {
        bot.name: (cpu_seconds(bot.pid) - started[bot.name]) / len(bot.users) * 1000 for bot in bots
    }


def _reply(server: SandboxServer, user: int) -> dict[str, Any]:
    last = server.messages(user)[-1]
    return {"text": last.text, "parse_mode": last.parse_mode, "reply_markup": last.reply_markup}


async def start_hotline(bot: Bot, workdir: Path) -> Services:
    """The hotline bot as `python -m bot run` on a fresh SQLite file; its services (in this
    process) seed cases."""
    url = f"sqlite+aiosqlite:///{workdir / 'hotline.db'}"
    key = generate_key()
    settings = Settings(
        bot_token=SecretStr(TOKEN),
        api_base_url=bot.server.base_url,
        database_url=url,
        data_key=SecretStr(key),
    )
    services = await open_services(settings, i18n=I18n())  # migrated before the bot starts
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOTLINE_BOT_TOKEN": TOKEN,
        "HOTLINE_API_BASE_URL": bot.server.base_url,
        "HOTLINE_DATABASE_URL": url,
        "HOTLINE_DATA_KEY": key,
        "HOTLINE_MESSAGES_PER_MINUTE": "100000",
        "HOTLINE_SEND_RATE_PER_SECOND": "1000",
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    profile = os.environ.get("BENCH_PROFILE")  # a file: the bot runs under cProfile
    command = ["-m", "cProfile", "-o", profile] if profile else []
    bot.process = subprocess.Popen(  # noqa: ASYNC220 - started once, outside any timing
        [sys.executable, *command, "-m", "bot", "run"], cwd=workdir, env=env
    )
    await wait_polling(bot.server, bot.process)
    return services


async def seed_cases(services: Services, users: list[int]) -> None:
    async with services.sessions() as session, session.begin():
        for user in users:
            await make_case(session, services.cipher, reporter_id=user, keys=services.keys)


async def open_report_forms(bot: Bot, users: list[int]) -> None:
    """Into the form, at the name question (not measured)."""
    server = bot.server
    for user in users:
        await exchange(server, user, lambda u=user: server.send_text(u, "/report"))
        consent = server.messages(user)[-1]
        await exchange(
            server,
            user,
            lambda u=user, m=consent.message_id: server.press(u, m, REPORT.build("consent", "yes")),
        )
        relation = server.messages(user)[-1]
        await exchange(
            server,
            user,
            lambda u=user, m=relation.message_id: server.press(
                u, m, REPORT.build("a", "relation", "parent")
            ),
        )


async def hotline_replies(bot: Bot, services: Services) -> dict[str, Any]:
    """One pilot user through every kind: the replies the bare bots give, and a warm-up."""
    server = bot.server
    replies: dict[str, Any] = {}
    pilot = server.add_user(language_code="uk").id
    for kind in ("first_start", "returning_start"):
        await exchange(server, pilot, lambda: server.send_text(pilot, "/start"))
        replies[kind] = _reply(server, pilot)
    await seed_cases(services, [pilot])
    await exchange(server, pilot, lambda: server.send_text(pilot, "/status"))
    replies["status"] = _reply(server, pilot)
    await open_report_forms(bot, [pilot])
    await exchange(server, pilot, lambda: server.send_text(pilot, NAME))
    replies["report_answer"] = _reply(server, pilot)
    return replies


async def start_bare(bot: Bot, workdir: Path, replies: dict[str, Any], *, inbox: bool) -> None:
    """The bare PTB bot; with `inbox`, with the durable inbox (stored, handled, marked)."""
    path = workdir / "replies.json"
    path.write_text(json.dumps(replies), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_TOKEN": TOKEN,
        "BENCH_BASE_URL": bot.server.base_url,
        "BENCH_REPLIES": str(path),
    }
    if inbox:
        url = f"sqlite+aiosqlite:///{workdir / 'floor.db'}"
        engine = make_engine(url)
        await upgrade_to_head(engine)
        await engine.dispose()
        env |= {"BENCH_INBOX": url, "BENCH_DATA_KEY": generate_key()}
    bot.process = subprocess.Popen(  # noqa: ASYNC220 - started once, outside any timing
        [sys.executable, "-m", "benchmarks.bare_bot"], cwd=workdir, env=env
    )
    await wait_polling(bot.server, bot.process)


def _sends(text: str) -> Callable[[Bot, int], Callable[[], Awaitable[Any]]]:
    return lambda bot, user: lambda: bot.server.send_text(user, text)


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        async with SandboxServer() as one, SandboxServer() as two, SandboxServer() as three:
            hotline, bare, floor = Bot("hotline", one), Bot("bare", two), Bot("floor", three)
            bots = [hotline, bare, floor]
            services = None
            try:
                services = await start_hotline(hotline, workdir)
                replies = await hotline_replies(hotline, services)
                await start_bare(bare, workdir, replies, inbox=False)
                await start_bare(floor, workdir, replies, inbox=True)
                for bot in (bare, floor):  # imports and first requests
                    warm = bot.server.add_user(language_code="uk").id
                    await exchange(
                        bot.server, warm, lambda b=bot, u=warm: b.server.send_text(u, "/start")
                    )
                for bot in bots:
                    bot.users = [bot.server.add_user(language_code="uk").id for _ in range(count)]
                figures = {"first_start": await measure(bots, _sends("/start"))}
                figures["returning_start"] = await measure(bots, _sends("/start"))
                await seed_cases(services, hotline.users)
                figures["status"] = await measure(bots, _sends("/status"))
                await open_report_forms(hotline, hotline.users)
                figures["report_answer"] = await measure(bots, _sends(NAME))
            finally:
                for bot in bots:
                    bot.stop()
                if services is not None:
                    await services.engine.dispose()
    print(f"users per kind: {count}; load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'kind':<18}{'hotline ms':>12}{'bare PTB ms':>13}{'bare+inbox ms':>15}"
        f"{'hotline/bare':>14}{'floor/bare':>12}"
    )
    for kind in KINDS:
        ours, base, least = (figures[kind][name] for name in ("hotline", "bare", "floor"))
        print(
            f"{kind:<18}{ours:12.2f}{base:13.2f}{least:15.2f}"
            f"{ours / base:14.2f}{least / base:12.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.users))
