"""Benchmark: one broadcast to N users through the sandbox with Telegram's flood limits on.

Reports the sustained send rate as a fraction of the configured limit, the 429 answers, the CPU
time of this process against the wall time (the bot and the sandbox share it), and peak memory.

    python -m benchmarks.broadcast_rate --users 3000 --rate 30
    python -m benchmarks.broadcast_rate --users 5000 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from bot.app import build_application, open_services, start_application, stop_application
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.settings import Settings
from storage import broadcasts
from storage.crypto import generate_key
from storage.models import User

TOKEN = "1000001:BENCH"
TEXT = "Benchmark announcement"


async def run(users: int, rate: float) -> None:
    server = SandboxServer()
    await server.start()
    server.set_flood_limits(rate, 1)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            bot_token=SecretStr(TOKEN),
            api_base_url=server.base_url,
            database_url=f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
            data_key=SecretStr(generate_key()),
            send_rate_per_second=rate,
        )
        services = await open_services(settings, i18n=I18n())
        chats = [server.add_user(language_code="en").id for _ in range(users)]
        async with services.sessions() as session, session.begin():
            keys = services.keys  # rows as first contact makes them: user key, sealed id
            session.add_all(
                [
                    User(id=keys.key(chat), telegram_id=keys.seal(chat), language="en")
                    for chat in chats
                ]
            )
        application = build_application(services)
        await start_application(application)
        cpu0, wall0 = time.process_time(), time.perf_counter()
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

        def sent() -> int:
            return sum(1 for s in server.stats.sends if s.text == TEXT)

        await server.wait_for(lambda: sent() >= users, timeout=users / rate * 3 + 60)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        times = sorted(s.at for s in server.stats.sends if s.text == TEXT)
        sustained = (len(times) - 1) / (times[-1] - times[0])
        await stop_application(application)
        await services.engine.dispose()
    await server.stop()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"users {users}, limit {rate:g}/s: queued in {queued:.2f}s, all sent in {wall:.1f}s")
    print(f"sustained rate {sustained:.1f}/s = {sustained / rate:.3f} of the limit")
    print(f"429 answers: {server.stats.status_429}, sent twice: {len(times) - users}")
    print(f"CPU {cpu:.1f}s of {wall:.1f}s wall ({cpu / wall:.0%}; bot and sandbox in one process)")
    print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=30.0)
    options = parser.parse_args()
    asyncio.run(run(options.users, options.rate))


if __name__ == "__main__":
    main()
