"""Benchmark: N users send /start through the sandbox; replies per second, ours vs a bare PTB bot.

Both bots run in this process against their own in-process sandbox server, over HTTP, one after the
other, so the ratio compares like with like on this machine. The baseline is the smallest PTB bot
that answers /start (no database, no persistence, no rate limiter); the hotline bot does all its
real work (profile load and user creation in SQLite, persistence flush, translation).

    python -m benchmarks.start_replies [--users 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes

from bot.app import build_application, open_services, start_application, stop_application
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.settings import Settings
from storage.crypto import generate_key

TOKEN = "1000001:BENCH"
Starter = Callable[[SandboxServer], Awaitable[Callable[[], Awaitable[None]]]]


async def _echo_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text("Hello!")


async def start_baseline(server: SandboxServer) -> Callable[[], Awaitable[None]]:
    application = ApplicationBuilder().token(TOKEN).base_url(server.base_url).build()
    application.add_handler(CommandHandler("start", _echo_start))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.0, timeout=1)

    async def stop() -> None:
        await _stop(application)

    return stop


async def _stop(application: Application) -> None:  # type: ignore[type-arg]
    assert application.updater is not None
    await application.updater.stop()
    await application.stop()
    await application.shutdown()


def hotline_starter(workdir: Path, rate: float) -> Starter:
    """The hotline bot with its outgoing rate limit (PTB's AIORateLimiter) set to `rate`."""

    async def start(server: SandboxServer) -> Callable[[], Awaitable[None]]:
        settings = Settings(
            send_rate_per_second=rate,
            bot_token=SecretStr(TOKEN),
            api_base_url=server.base_url,
            database_url=f"sqlite+aiosqlite:///{workdir}/bench-{time.monotonic_ns()}.db",
            data_key=SecretStr(generate_key()),
            messages_per_minute=1000,
        )
        services = await open_services(settings, i18n=I18n())
        application = build_application(services)
        await start_application(application)
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=1)

        async def stop() -> None:
            await stop_application(application)
            await services.engine.dispose()

        return stop

    return start


async def replies_per_second(starter: Starter, users: int) -> float:
    """Start a bot on a fresh sandbox, have `users` users send /start at once, time all replies."""
    async with SandboxServer() as server:
        stop = await starter(server)
        try:
            ids = [server.add_user(language_code="uk").id for _ in range(users)]
            began = time.perf_counter()
            await asyncio.gather(*(server.send_text(user_id, "/start") for user_id in ids))
            await asyncio.gather(
                *(server.wait_for_messages(user_id, 1, timeout=120) for user_id in ids)
            )
            elapsed = time.perf_counter() - began
        finally:
            await stop()
    return users / elapsed


async def main(users: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        unthrottled = hotline_starter(Path(directory), rate=1000)
        production = hotline_starter(Path(directory), rate=30)
        await replies_per_second(unthrottled, 20)  # warm-up: imports, migrations, catalogs
        await replies_per_second(start_baseline, 20)
        baseline: list[float] = []
        ours: list[float] = []
        limited: list[float] = []
        for _ in range(rounds):
            baseline.append(await replies_per_second(start_baseline, users))
            ours.append(await replies_per_second(unthrottled, users))
            limited.append(await replies_per_second(production, users))
    base, mine = statistics.median(baseline), statistics.median(ours)
    print(f"users per round: {users}, rounds: {rounds} (medians)")
    print(f"bare PTB echo bot:                    {base:8.1f} replies/s")
    print(f"hotline bot, rate limit 1000/s:       {mine:8.1f} replies/s")
    print(f"ratio hotline/baseline:               {mine / base:8.2f}")
    print(
        f"hotline bot, Telegram's 30/s limit:   {statistics.median(limited):8.1f} replies/s"
        " (the limiter, not the code, sets this)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.users, arguments.rounds))
