"""`python -m bot deliver` workers, each a real process on one PostgreSQL database, sending a
broadcast to the sandbox with Telegram's flood limits on: together they keep to the one rate
(the sandbox answers no 429 and never counts more than the rate in a sliding second), each
recipient gets the message once, and when a worker dies mid-broadcast the others send its rows.
On SQLite the command is refused with one line."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bot.app import open_services
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.services import Services
from storage import broadcasts
from storage.crypto import generate_key
from storage.enums import OutboxStatus
from storage.models import OutboxMessage
from tests.support.databases import fresh_postgres_database
from tests.support.harness import free_port, harness_settings
from tests.support.identity import known_user
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Legal aid session on Friday"
RATE = 25
STARTED = re.compile(r"delivery worker (\w+) is running")
STOPPED = re.compile(r"delivery worker (\w+) stopped: (\d+) sent")


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def owner(self) -> str | None:
        found = STARTED.search(self.text())
        return found.group(1) if found else None

    def sent(self) -> int:
        found = STOPPED.search(self.text())
        assert found is not None, self.text()[-2000:]
        return int(found.group(2))


@dataclass
class Setup:
    sandbox: SandboxServer
    services: Services
    env: dict[str, str]
    folder: Path
    workers: list[Worker]

    def start_worker(self, **extra: str) -> Worker:
        log = self.folder / f"worker{len(self.workers)}.log"
        settings = {f"HOTLINE_{key.upper()}": value for key, value in extra.items()}
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "deliver"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **self.env, **settings},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.workers.append(Worker(process, log))
        return self.workers[-1]


@pytest.fixture
async def setup(sandbox: SandboxServer, data_key: str, tmp_path: Path) -> AsyncIterator[Setup]:
    async with fresh_postgres_database() as url:
        settings = harness_settings(sandbox, url, data_key, send_rate_per_second=RATE)
        services = await open_services(settings, i18n=I18n())
        env = {
            "HOTLINE_BOT_TOKEN": settings.bot_token.get_secret_value(),  # type: ignore[union-attr]
            "HOTLINE_API_BASE_URL": sandbox.base_url,
            "HOTLINE_DATABASE_URL": url,
            "HOTLINE_DATA_KEY": data_key,
            "HOTLINE_SEND_RATE_PER_SECOND": str(RATE),
            "HOTLINE_DELIVERY_LEASE_SECONDS": "3",
            "HOTLINE_DELIVERY_SWEEP_SECONDS": "0.3",
            "HOTLINE_LOG_LEVEL": "INFO",
        }
        found = Setup(sandbox, services, env, tmp_path, [])
        try:
            yield found
        finally:
            for worker in found.workers:
                if worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait()
            await services.engine.dispose()


async def started(workers: list[Worker]) -> None:
    async def running() -> bool:
        return all(worker.owner is not None for worker in workers)

    await eventually(running, "the workers running", within=120)


async def stop(worker: Worker) -> None:
    """SIGTERM, and wait for the exit without blocking the sandbox's event loop (the worker's
    last requests must be answered)."""
    worker.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(worker.process.wait, 60)
    assert code == 0, worker.text()[-2000:]


async def queue_broadcast(setup: Setup, recipients: int) -> list[int]:
    sandbox, services = setup.sandbox, setup.services
    chats = [sandbox.add_user(language_code="en").id for _ in range(recipients)]
    async with services.sessions() as session, session.begin():
        for chat in chats:
            await known_user(session, services.keys, chat, "en", discreet=False)
    async with services.sessions() as session, session.begin():
        await broadcasts.queue_broadcast(
            session,
            services.cipher,
            author_id=1,
            audience="everyone",
            audience_arg=None,
            text=TEXT,
        )
    return chats


def received(sandbox: SandboxServer) -> Counter[int]:
    return Counter(send.chat_id for send in sandbox.stats.sends if send.text == TEXT)


def busiest_second(sandbox: SandboxServer) -> int:
    """The most broadcast messages that arrived in any sliding second (the flood window)."""
    times = sorted(send.at for send in sandbox.stats.sends if send.text == TEXT)
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def settled_and_leases_out(setup: Setup) -> None:
    """Nothing pending or in flight. A row a dead worker sent and did not record stays "sending"
    until its lease runs out and another worker sends it again, so once no row is pending or
    sending every duplicate has gone out; the workers are stopped (each waits for its requests)
    before anything is counted."""

    async def done() -> bool:
        async with setup.services.sessions() as session:
            statuses = (await session.scalars(select(OutboxMessage.status))).all()
        return not any(s in (OutboxStatus.PENDING, OutboxStatus.SENDING) for s in statuses)

    await eventually(done, "a settled outbox", within=120)


@pytest.mark.postgres
async def test_two_workers_together_keep_to_one_rate_and_send_each_once(setup: Setup) -> None:
    """Two worker processes, each allowed the whole rate on its own, share it through the
    database: the sandbox's flood limiter (RATE a second, one a second per chat) answers no 429,
    no sliding second holds more than RATE, and each of 300 recipients gets the message once,
    from both workers."""
    sandbox = setup.sandbox
    sandbox.set_flood_limits(RATE, 1)
    ports = [free_port(), free_port()]
    workers = [setup.start_worker(metrics_port=str(port)) for port in ports]
    await started(workers)
    chats = await queue_broadcast(setup, 300)
    await sandbox.wait_for(lambda: set(received(sandbox)) >= set(chats), timeout=120)
    await settled_and_leases_out(setup)
    counted = [await _sent_by_metrics(port) for port in ports]  # each worker's own /metrics
    for worker in workers:
        await stop(worker)
    got = received(sandbox)
    sent = [worker.sent() for worker in workers]
    print(f"\n[two workers] sent {sent}, busiest second {busiest_second(sandbox)}")
    assert sandbox.stats.status_429 == 0
    assert busiest_second(sandbox) <= RATE
    assert set(got.values()) == {1} and len(got) == len(chats)
    assert all(count > 0 for count in sent), "one worker did all the work: nothing was shared"
    assert counted == sent


async def _sent_by_metrics(port: int) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as answer,
    ):
        text = await answer.text()
    return round(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "hotline_outbox_sends_total" and sample.labels["outcome"] == "sent"
        )
    )


@pytest.mark.postgres
@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
async def test_the_other_worker_finishes_the_rows_of_one_that_died(
    setup: Setup, kill: signal.Signals
) -> None:
    """Mid-broadcast one of two workers is stopped (SIGTERM: it gives its unsent rows back at
    once) or killed (SIGKILL: its rows come back when their lease runs out); the other sends
    them. Nobody is left out. Stopped: nobody gets the message twice. Killed: only a message
    the dead worker had sent and not yet recorded can go out again, so any duplicate is one of
    the rows it held when it died."""
    sandbox = setup.sandbox
    sandbox.set_flood_limits(RATE, 1)
    dying, other = setup.start_worker(), setup.start_worker()
    await started([dying, other])
    chats = await queue_broadcast(setup, 250)
    await sandbox.wait_for(lambda: len(received(sandbox)) >= 60, timeout=60)
    dying.process.send_signal(kill)
    await asyncio.to_thread(dying.process.wait, 60)
    async with setup.services.sessions() as session:
        held = set(
            (
                await session.scalars(
                    select(OutboxMessage.chat_id).where(
                        OutboxMessage.owner == dying.owner,
                        OutboxMessage.status == OutboxStatus.SENDING,
                    )
                )
            ).all()
        )
    await sandbox.wait_for(lambda: set(received(sandbox)) >= set(chats), timeout=120)
    await settled_and_leases_out(setup)
    await stop(other)
    got = received(sandbox)
    twice = {chat for chat, count in got.items() if count > 1}
    print(f"\n[{kill.name}] held at death {len(held)}, sent twice {len(twice)}")
    assert set(got) == set(chats)
    assert sandbox.stats.status_429 == 0
    assert other.sent() > 0
    if kill == signal.SIGTERM:
        assert twice == set()
        assert held == set(), "a stopped worker gives its rows back"
    else:
        by_key = {setup.services.keys.key(chat): chat for chat in chats}
        assert twice <= {by_key[key] for key in held}, "a row nobody held went out twice"


def test_deliver_on_sqlite_is_refused_with_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOTLINE_BOT_TOKEN": "1000001:TEST",
        "HOTLINE_DATA_KEY": generate_key(),
        "HOTLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "deliver"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs PostgreSQL" in lines[0], done.stderr
