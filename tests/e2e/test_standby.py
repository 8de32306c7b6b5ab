"""A hot standby on PostgreSQL (issue 16): two `python -m bot run` processes on one database, one
the leader (it holds an advisory lock on a connection of its own), the other waiting. The leader
is killed with SIGKILL in the middle of a report and of a broadcast: the standby takes over, the
conversation goes on, nothing is lost, every message arrives once.

Once, with one exception no bot can avoid: a message that reached Telegram from a leader killed
before it recorded the send goes out again from the new leader (the Bot API cannot be asked
whether a message went out). The broadcast test checks that every duplicate is such a message:
received before the kill, not recorded as sent by then.

The processes are real, the sandbox (Telegram) runs in the test process; every wait is for an
event (a log line, a message, a row), with generous timeouts; takeover times are printed, not
asserted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from sqlalchemy import func, select

from bot.app import open_services
from bot.callbacks import REPORT
from bot.i18n import I18n
from bot.leadership import (
    EXIT_LEADERSHIP_LOST,
    LEADER_LINE,
    LOCK_KEY,
    STANDBY_LINE,
    PostgresLeadership,
    current_role,
)
from bot.sandbox.server import SandboxServer
from bot.services import Services
from storage import broadcasts
from storage.enums import OutboxStatus
from storage.models import Case, CasePersonal, OutboxMessage, utcnow
from tests.handlers.report_flow import FULL, answer, answer_from, begin
from tests.support.databases import fresh_postgres_database
from tests.support.harness import WEBHOOK_SECRET, WEBHOOK_URL, free_port, harness_settings
from tests.support.identity import known_user
from tests.support.processes import BotProcess, bot_env
from tests.support.sealed import every_key
from tests.support.waiting import eventually

pytestmark = pytest.mark.postgres

RUNNING = "bot is running (polling)"
RUNNING_WEBHOOK = "bot is running (webhook)"
ADMIN = 9001
TEXT = "Legal aid session on Friday"
RECIPIENTS = 300
KILL_AFTER = 100


class Cluster:
    """Bot processes on one PostgreSQL database, and the test's own services on it."""

    def __init__(
        self, sandbox: SandboxServer, url: str, data_key: str, cwd: Path, services: Services
    ) -> None:
        self.sandbox = sandbox
        self.url = url
        self.services = services
        self.cwd = cwd
        self.env = bot_env(
            sandbox,
            url,
            data_key,
            admin_ids=str(ADMIN),
            leader_check_seconds="0.5",
            delivery_sweep_seconds="0.3",
            send_rate_per_second="60",
            # Long leases: the rows a killed leader held come back by the takeover alone.
            delivery_lease_seconds="600",
        )
        self.processes: list[BotProcess] = []
        self.args: tuple[str, ...] = ("run",)
        self.running = RUNNING

    def webhook(self) -> None:
        """From now on processes take updates by webhook, each on the same port (one host,
        behind one reverse proxy): only the leader listens."""
        port = free_port()
        self.args = ("run", "--webhook")
        self.running = RUNNING_WEBHOOK
        self.env.update(
            HOTLINE_WEBHOOK_URL=WEBHOOK_URL,
            HOTLINE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            HOTLINE_WEBHOOK_PORT=str(port),
        )
        self.sandbox.webhook_target = f"http://127.0.0.1:{port}/telegram"

    async def start(self, name: str, **extra: str) -> BotProcess:
        env = {**self.env, **{f"HOTLINE_{key.upper()}": value for key, value in extra.items()}}
        process = await BotProcess.start(name, env, self.cwd, *self.args)
        self.processes.append(process)
        return process

    async def leader(self, name: str, **extra: str) -> BotProcess:
        process = await self.start(name, **extra)
        await process.wait_for_line(LEADER_LINE)
        await process.wait_for_line(self.running)
        return process

    async def standby(self, name: str, **extra: str) -> BotProcess:
        process = await self.start(name, **extra)
        await process.wait_for_line(STANDBY_LINE)
        return process

    async def close(self) -> None:
        for process in self.processes:
            await process.stop()
            print(f"--- {process.name} (exit {process.process.returncode}):\n{process.output}")
        await self.services.engine.dispose()


@pytest.fixture
async def cluster(
    sandbox: SandboxServer, data_key: str, i18n: I18n, tmp_path: Path
) -> AsyncIterator[Cluster]:
    async with fresh_postgres_database() as url:
        settings = harness_settings(sandbox, url, data_key, admin_ids=frozenset({ADMIN}))
        services = await open_services(settings, i18n=i18n)  # migrates the fresh database
        running = Cluster(sandbox, url, data_key, tmp_path, services)
        try:
            yield running
        finally:
            await running.close()


async def take_over(killed: BotProcess, standby: BotProcess, running: str = RUNNING) -> None:
    """Kill the leader with SIGKILL; once the standby says it leads and runs, print how long
    that took."""
    started = time.monotonic()
    await killed.kill()
    await standby.wait_for_line(LEADER_LINE)
    await standby.wait_for_line(running)
    print(f"\n[standby] {standby.name} took over in {time.monotonic() - started:.1f} s")


@asynccontextmanager
async def table_locked(url: str, table: str) -> AsyncIterator[asyncpg.Connection]:
    """Another session holds `table` against writes (reads go on) until the block ends."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with connection.transaction():
            await connection.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            yield connection
    finally:
        await connection.close()


async def write_waiting_on(connection: asyncpg.Connection, table: str) -> bool:
    waiting = await connection.fetchval(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass", table
    )
    return bool(waiting)


async def test_killed_mid_report_the_standby_carries_the_conversation_on(
    cluster: Cluster,
) -> None:
    sandbox = cluster.sandbox
    first = await cluster.leader("first")
    second = await cluster.standby("second")
    family = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, family)
    for key in ("relation", "name"):
        question = await answer(sandbox, family, question, key, FULL[key])

    # Kill 1: the next question is out, the handler has not finished (the sandbox holds the
    # send's answer, as if the process died right after sending).
    release = sandbox.hold_next_send(family)
    await sandbox.send_text(family, str(FULL["birth"]))
    question = await sandbox.next_message(family, timeout=60)
    assert REPORT.build("a", "detention_date", "today") in question.callback_data
    await take_over(first, second)
    release.set()
    third = await cluster.standby("third")
    question = await answer(sandbox, family, question, "detention_date", FULL["detention_date"])
    assert REPORT.build("a", "region", "crimea") in question.callback_data

    # Kill 2: the answer is stored in the inbox and confirmed; its handler waits for the
    # database (another session holds the form's table), nothing of it is written yet.
    async with table_locked(cluster.url, "report_forms") as lock:
        await sandbox.press(family, question.message_id, REPORT.build("a", "region", "crimea"))
        await eventually(
            lambda: write_waiting_on(lock, "report_forms"), "the answer waiting to be saved", 60
        )
        await sandbox.wait_for(lambda: not sandbox.pending_updates, timeout=60)  # confirmed
        await second.kill()
    await third.wait_for_line(LEADER_LINE)
    question = await sandbox.next_message(family, timeout=60)  # the third one replayed it
    print(f"[standby] {third.name}: {[line for line in third.lines if 'replaying' in line]}")
    summary = await answer_from(sandbox, family, question, FULL, start="arrest_place")
    await sandbox.press(family, summary.message_id, REPORT.build("confirm"))
    reply = await sandbox.next_message(family, timeout=60)
    assert "code is" in reply.plain

    texts = [message.plain for message in sandbox.messages(family)]
    assert len(texts) == len(set(texts)), texts  # no question twice, none missing below
    services = cluster.services
    opener = await every_key(services.sessions, services.cipher)
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1
        personal = await session.scalar(select(CasePersonal))
        assert personal is not None
        assert opener.open(personal.detainee_name) == FULL["name"]
        assert opener.open(personal.birth_date) == "1985-03-21"  # as stored
        assert opener.open(personal.held_in) == FULL["held_in"]
    await sandbox.wait_for(lambda: not sandbox.pending_updates, timeout=60)
    for process in (first, second):
        assert process.process.returncode == -9


def receivers(sandbox: SandboxServer) -> dict[int, int]:
    counts: dict[int, int] = {}
    for send in sandbox.stats.sends:
        if send.method == "sendMessage" and send.text == TEXT:
            counts[send.chat_id] = counts.get(send.chat_id, 0) + 1
    return counts


async def sent_before(services: Services, moment: datetime) -> set[int]:
    """The user keys whose broadcast row was recorded as sent before `moment`."""
    async with services.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage.chat_id).where(
                OutboxMessage.broadcast_id.is_not(None),
                OutboxMessage.status == OutboxStatus.SENT,
                OutboxMessage.sent_at < moment,
            )
        )
        return set(rows)


async def test_killed_mid_broadcast_the_standby_finishes_it_each_recipient_once(
    cluster: Cluster,
) -> None:
    sandbox = cluster.sandbox
    services = cluster.services
    chats = [sandbox.add_user(language_code="en").id for _ in range(RECIPIENTS)]
    async with services.sessions() as session, session.begin():
        for chat in chats:
            await known_user(session, services.keys, chat, "en", discreet=False)
    first = await cluster.leader("first")
    second = await cluster.standby("second")
    async with services.sessions() as session, session.begin():
        await broadcasts.queue_broadcast(
            session,
            services.cipher,
            author_id=services.keys.key(ADMIN),
            audience="everyone",
            audience_arg=None,
            text=TEXT,
            admin_ids={services.keys.key(ADMIN)},
        )
    await sandbox.wait_for(lambda: len(receivers(sandbox)) >= KILL_AFTER, timeout=120)
    await first.kill()
    killed_at = utcnow()
    before_kill = receivers(sandbox)
    await take_over(first, second)  # already dead: this waits for the second to lead

    await sandbox.wait_for(lambda: set(receivers(sandbox)) >= set(chats), timeout=120)

    async def settled() -> bool:
        async with services.sessions() as session:
            still_open = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
            )
        return still_open == 0

    await eventually(settled, "every broadcast row settled", within=60)
    got = receivers(sandbox)
    recorded = await sent_before(services, killed_at)
    in_flight = {chat for chat in before_kill if services.keys.key(chat) not in recorded}
    twice = {chat for chat, count in got.items() if count > 1}
    recovered = [line for line in second.lines if "previous leader was sending" in line]
    print(
        f"[standby] {len(before_kill)} received before the kill, {len(recorded)} recorded; "
        f"sent but unrecorded at the kill: {len(in_flight)}; received twice: {len(twice)}; "
        f"{recovered}"
    )
    assert set(got) >= set(chats)
    assert twice <= in_flight, "a message went out twice that the killed leader had recorded"
    assert max(got.values()) <= 2
    assert (await sent_before(services, utcnow())) >= {services.keys.key(c) for c in chats}


async def test_a_leader_that_loses_its_lock_connection_stops_and_the_standby_leads(
    cluster: Cluster,
) -> None:
    """PostgreSQL ends the leader's lock session (a restart, an operator, a network cut): the
    leader can no longer know it leads, so it stops with one line and exit code 4, and the
    standby serves. Its /healthz says "standby" while it waits, "leader" once it leads."""
    sandbox = cluster.sandbox
    first = await cluster.leader("first")
    port = free_port()
    second = await cluster.standby("second", metrics_port=str(port))
    assert (await _health(port))["role"] == "standby"
    connection = await asyncpg.connect(
        cluster.url.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        ended = await connection.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await connection.close()
    assert ended
    line = await first.wait_for_line("leader lock lost")
    assert "its connection failed" in line
    assert await first.stop() == EXIT_LEADERSHIP_LOST, first.output
    assert "Traceback" not in first.output
    await second.wait_for_line(LEADER_LINE)
    await second.wait_for_line(RUNNING)
    assert (await _health(port))["role"] == "leader"
    family = sandbox.add_user(language_code="en").id
    await sandbox.send_text(family, "/help")
    assert "/privacy" in (await sandbox.next_message(family, timeout=60)).plain


async def _health(port: int) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/healthz") as answer,
    ):
        assert answer.status == 200, await answer.text()
        body: dict[str, object] = await answer.json()
        return body


async def test_by_webhook_the_standby_takes_the_updates_the_killed_leader_left(
    cluster: Cluster,
) -> None:
    """Webhook mode: the leader is killed right after sending the next question; the standby
    then listens on the same address, and Telegram's next post (the next answer) reaches it."""
    sandbox = cluster.sandbox
    cluster.webhook()
    first = await cluster.leader("first")
    second = await cluster.standby("second")
    family = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, family)
    question = await answer(sandbox, family, question, "relation", FULL["relation"])
    release = sandbox.hold_next_send(family)
    await sandbox.send_text(family, str(FULL["name"]))
    question = await sandbox.next_message(family, timeout=60)  # the birth question, from first
    await take_over(first, second, RUNNING_WEBHOOK)
    release.set()
    summary = await answer_from(sandbox, family, question, FULL, start="birth")
    await sandbox.press(family, summary.message_id, REPORT.build("confirm"))
    assert "code is" in (await sandbox.next_message(family, timeout=60)).plain
    texts = [message.plain for message in sandbox.messages(family)]
    assert len(texts) == len(set(texts)), texts
    async with cluster.services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_the_role_reads_standby_while_another_leads_then_leader(data_key: str) -> None:
    """`current_role()` (read by the metrics): "standby" while another session holds the lock,
    "leader" once it is freed and taken, "single" after this one let go."""
    async with fresh_postgres_database() as url:
        other = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
            stop = asyncio.Event()
            place = PostgresLeadership(url, check_seconds=0.1, stop=stop)
            try:
                leading = asyncio.create_task(place.wait_until_leader())
                await eventually(_true(lambda: current_role() == "standby"), "standby", 30)
                assert not leading.done()
                await other.execute("SELECT pg_advisory_unlock_all()")
                assert await asyncio.wait_for(leading, 30)
                assert current_role() == "leader"
            finally:
                await place.close()
            assert current_role() == "single"
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)  # freed
        finally:
            await other.close()


def _true(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked
