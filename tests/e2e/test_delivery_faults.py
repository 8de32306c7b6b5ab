"""The delivery job against a misbehaving Telegram (the sandbox): 429s, dropped connections, a user
who blocked the bot, a bot process killed in the middle of sending 200 notifications, an outage
(502 for minutes) that must lose nothing, the retry horizon, and one staff summary of dead rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from jobs.delivery import DELIVERY_KEY, SUMMARY_TEMPLATE, Delivery
from storage import outbox
from storage.enums import OutboxStatus
from storage.models import OutboxMessage, User, utcnow
from storage.outbox import Outgoing
from tests.support.harness import BotHarness, harness_settings
from tests.support.identity import known_user
from tests.support.waiting import eventually, outbox_counts_after_kill, settled

TEMPLATE = "cases.public_note"


async def queue_notes(bot: BotHarness, chats: list[int], per_chat: int = 1) -> None:
    """One committed transaction queuing `per_chat` notes to each chat (wakes the delivery job)."""
    assert bot.services is not None
    async with bot.services.sessions() as session, session.begin():
        keys = bot.services.keys
        for chat in chats:
            # discreet notifications off: these tests read the notes' own text
            await known_user(session, keys, chat, "en", discreet=False)
        await outbox.enqueue(
            session,
            bot.services.cipher,
            [
                Outgoing(
                    keys.key(chat), f"test:{chat}:{n}", TEMPLATE, {"code": f"N{n}", "note": f"{n}"}
                )
                for n in range(per_chat)
                for chat in chats
            ],
            now=bot.services.clock(),
        )


def users(sandbox: SandboxServer, count: int) -> list[int]:
    return [sandbox.add_user(language_code="en").id for _ in range(count)]


def arrived(sandbox: SandboxServer, chats: list[int], per_chat: int = 1) -> bool:
    return all(len(sandbox.messages(chat)) >= per_chat for chat in chats)


async def test_rate_limited_for_a_while_every_message_arrives_once(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    chats = users(sandbox, 5)
    sandbox.force_retry_after(3, retry_after=1)
    await queue_notes(running_bot, chats, per_chat=2)
    await sandbox.wait_for(lambda: arrived(sandbox, chats, 2), timeout=20)
    assert sandbox.stats.status_429 == 3
    assert sandbox.stats.duplicates() == {}
    for chat in chats:  # in order, each once
        assert [m.plain.rsplit("\n", 1)[-1] for m in sandbox.messages(chat)] == ["0", "1"]
    counts = await settled(running_bot)
    assert counts[OutboxStatus.SENT] == 10 and counts[OutboxStatus.DEAD] == 0


async def test_dropped_connections_every_message_arrives_after_recovery(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    chats = users(sandbox, 5)
    sandbox.drop_connections(None)
    await queue_notes(running_bot, chats)
    await sandbox.wait_for(lambda: sandbox.stats.dropped >= 8)
    assert not any(sandbox.messages(chat) for chat in chats)
    sandbox.heal()
    await sandbox.wait_for(lambda: arrived(sandbox, chats), timeout=20)
    assert sandbox.stats.duplicates() == {}
    assert all(len(sandbox.messages(chat)) == 1 for chat in chats)
    assert (await settled(running_bot))[OutboxStatus.SENT] == 5


async def test_blocked_recipient_is_marked_and_never_tried_again(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    blocked, other = users(sandbox, 2)
    sandbox.block_bot(blocked)
    await queue_notes(running_bot, [blocked], per_chat=3)
    await sandbox.wait_for(lambda: sandbox.stats.status_403 >= 1)
    await queue_notes(running_bot, [other])
    await sandbox.next_message(other)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        user = await session.get(User, running_bot.key(blocked))
        assert user is not None and user.blocked
        assert await outbox.pending_for_chat(session, running_bot.key(blocked)) == []
    counts = await settled(running_bot)
    assert counts[OutboxStatus.DEAD] == 3
    assert sandbox.stats.status_403 == 1
    assert sandbox.messages(blocked) == []


@pytest.fixture
async def fast_bot(
    sandbox: SandboxServer, tmp_path: Path, data_key: str, i18n: I18n
) -> AsyncIterator[BotHarness]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    bot = BotHarness(
        sandbox=sandbox,
        # a short lease: rows a killed process held go out again seconds after the restart
        settings=harness_settings(
            sandbox, url, data_key, send_rate_per_second=100, delivery_lease_seconds=5
        ),
        i18n=i18n,
    )
    try:
        yield bot
    finally:
        await bot.close()


async def test_killed_while_sending_200_all_arrive_few_twice(
    fast_bot: BotHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = fast_bot.sandbox
    sandbox.set_latency(0.02)
    await fast_bot.start()
    chats = users(sandbox, 200)
    await queue_notes(fast_bot, chats)
    await sandbox.wait_for(lambda: len(sandbox.stats.sends) >= 60, timeout=20)
    await fast_bot.kill()
    sent_before_restart = len(sandbox.stats.sends)
    counts = await outbox_counts_after_kill(fast_bot)
    in_flight = counts[OutboxStatus.SENDING]
    assert counts[OutboxStatus.SENT] + in_flight + counts[OutboxStatus.PENDING] == 200
    assert counts[OutboxStatus.PENDING] > 0, "the kill came too late to test anything"

    await fast_bot.start()
    await sandbox.wait_for(lambda: arrived(sandbox, chats), timeout=30)
    duplicates = sum(count - 1 for count in sandbox.stats.duplicates().values())
    with capsys.disabled():
        print(
            f"\n[kill test] sent before kill: {sent_before_restart}, in flight at kill: "
            f"{in_flight}, sent twice: {duplicates}"
        )
    assert duplicates <= in_flight
    assert all(len(sandbox.messages(chat)) <= 2 for chat in chats)


async def test_killed_while_a_send_awaits_its_answer_the_row_stays_in_flight(
    fast_bot: BotHarness,
) -> None:
    """A kill -9 leaves a row whose send got no answer `sending`, so it goes out again only
    after its lease (it may have arrived). The in-process kill must too: PTB shields running
    jobs from cancellation, and the closing connection pool used to fail the held send, which
    put the row back in the queue as if Telegram had never seen it (a duplicate at once)."""
    sandbox = fast_bot.sandbox
    await fast_bot.start()
    [chat] = users(sandbox, 1)
    release = sandbox.hold_next_send(chat)
    await queue_notes(fast_bot, [chat])
    await sandbox.next_message(chat)  # carried out; its answer is held
    await fast_bot.kill()
    release.set()
    counts = await outbox_counts_after_kill(fast_bot)
    assert counts[OutboxStatus.SENDING] == 1, counts

    await fast_bot.start()  # after the lease, sent again (it may not have arrived)
    counts = await settled(fast_bot)
    assert counts[OutboxStatus.SENT] == 1
    assert len(sandbox.messages(chat)) == 2


# -- an outage is not a loss; dead rows make one summary ---------------------------------------

ADMIN = 9001


class Clock:
    """A fixed clock for `services.clock`, moved only by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Stopped:
    bot: BotHarness
    clock: Clock

    @property
    def delivery(self) -> Delivery:
        assert self.bot.application is not None
        found = self.bot.application.bot_data[DELIVERY_KEY]
        assert isinstance(found, Delivery)
        return found

    async def rows(self) -> list[OutboxMessage]:
        assert self.bot.services is not None
        async with self.bot.services.sessions() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    async def tried(self, attempts: int) -> None:
        """Until every row failed `attempts` times in all, and is back in the queue."""

        async def failed() -> bool:
            rows = await self.rows()
            return sum(row.attempts for row in rows) >= attempts and all(
                row.status == OutboxStatus.PENDING for row in rows
            )

        await eventually(failed, f"{attempts} failed attempts", within=30)

    async def sweeps(self, count: int) -> None:
        """Until the delivery job swept `count` more times (each drain, then the summary)."""
        target = self.delivery.stats.drains + count

        async def swept() -> bool:
            return self.delivery.stats.drains >= target

        await eventually(swept, f"{count} sweeps", within=30)


@pytest.fixture
async def clocked(
    sandbox: SandboxServer, tmp_path: Path, data_key: str, i18n: I18n
) -> AsyncIterator[Callable[..., Awaitable[Stopped]]]:
    """A bot on a fixed clock that sweeps often; staff (the admin) read English."""
    made: list[BotHarness] = []

    async def make(**settings: object) -> Stopped:
        url = f"sqlite+aiosqlite:///{tmp_path / 'outage.db'}"
        values: dict[str, object] = {"delivery_sweep_seconds": 0.2, **settings}
        bot = BotHarness(sandbox, harness_settings(sandbox, url, data_key, **values), i18n)
        made.append(bot)
        await bot.start()
        assert bot.services is not None
        clock = Clock()
        bot.services.clock = clock
        sandbox.user(ADMIN)
        async with bot.services.sessions() as session, session.begin():
            await known_user(session, bot.services.keys, ADMIN, "en")
        return Stopped(bot, clock)

    yield make
    for bot in made:
        await bot.close()


async def test_a_150_s_outage_loses_nothing_201_arrive_after_it(
    clocked: Callable[..., Awaitable[Stopped]],
) -> None:
    """The Bot API answers 502 for 150 s (on the fixed clock) while 201 notifications wait: they
    are retried with backoff, none dies, staff are not told of anything, and once Telegram
    answers again all 201 go out at once, each once (not at the end of their backoff)."""
    run = await clocked(send_rate_per_second=200)
    sandbox, delivery = run.bot.sandbox, run.delivery
    sandbox.fail_with(502)
    chats = users(sandbox, 201)
    await queue_notes(run.bot, chats)
    await run.tried(201)
    outage_ends = run.clock.now + timedelta(seconds=150)
    while run.clock.now < outage_ends:
        run.clock.advance(seconds=10)
        await delivery.drain(wait=True)  # every row due by now is tried, and fails again
    rows = await run.rows()
    assert {row.status for row in rows} == {OutboxStatus.PENDING}
    assert min(row.attempts for row in rows) >= 8  # the old limit: dead after 8 attempts
    assert all(row.failing_since is not None for row in rows)
    tried = sandbox.stats.server_errors

    sandbox.heal()
    assert run.bot.services is not None
    async with run.bot.services.sessions() as session:
        first_due = await outbox.next_due_at(session)
    assert first_due is not None
    run.clock.now = max(run.clock.now, first_due)  # the first retry after the outage...
    await sandbox.wait_for(lambda: arrived(sandbox, chats), timeout=60)  # ...brings all the rest
    counts = await settled(run.bot)
    assert counts[OutboxStatus.SENT] == 201 and counts[OutboxStatus.DEAD] == 0
    assert sandbox.stats.duplicates() == {}
    assert all(len(sandbox.messages(chat)) == 1 for chat in chats)
    assert sandbox.messages(ADMIN) == []
    print(f"\n[outage 150 s] {tried} sends refused with 502, 201 delivered after, 0 dead")


async def test_a_row_past_the_horizon_dies_and_staff_get_one_summary(
    clocked: Callable[..., Awaitable[Stopped]],
) -> None:
    run = await clocked(delivery_horizon_hours=1)
    sandbox = run.bot.sandbox
    sandbox.fail_with(502)
    early, late = users(sandbox, 2)
    await queue_notes(run.bot, [early])
    await run.tried(1)
    run.clock.advance(minutes=30)
    await queue_notes(run.bot, [late])
    await run.tried(2)  # early's retry and late's first try
    for _ in range(8):  # 40 more minutes of outage: early is past its hour, late is not
        run.clock.advance(minutes=5)
        await run.delivery.drain(wait=True)
    by_chat = {row.chat_id: row for row in await run.rows()}
    dead, waiting = by_chat[run.bot.key(early)], by_chat[run.bot.key(late)]
    assert dead.status == OutboxStatus.DEAD and dead.last_error == "NetworkError:horizon"
    assert waiting.status == OutboxStatus.PENDING
    assert sandbox.messages(ADMIN) == []  # gathered for dead_summary_seconds first

    sandbox.heal()
    run.clock.advance(seconds=61)
    summary = await sandbox.next_message(ADMIN, timeout=30)
    assert "1 message could not be delivered" in summary.plain
    assert "Telegram could not be reached for 1 h: 1" in summary.plain
    assert "N0" in summary.plain  # the case code the note was about
    await sandbox.wait_for(lambda: arrived(sandbox, [late]), timeout=30)  # Telegram is back
    run.clock.advance(seconds=120)
    await run.sweeps(3)
    assert len(sandbox.messages(ADMIN)) == 1
    assert sandbox.messages(early) == []


async def test_three_blocked_recipients_make_one_staff_summary(
    clocked: Callable[..., Awaitable[Stopped]],
) -> None:
    run = await clocked()
    sandbox = run.bot.sandbox
    blocked = users(sandbox, 3)
    fine = users(sandbox, 1)
    for chat in blocked:
        sandbox.block_bot(chat)
    await queue_notes(run.bot, blocked + fine)
    await sandbox.wait_for(lambda: sandbox.stats.status_403 >= 3 and arrived(sandbox, fine))
    counts = await settled(run.bot)
    assert counts[OutboxStatus.DEAD] == 3
    await run.sweeps(3)
    assert sandbox.messages(ADMIN) == []  # a burst is gathered before staff hear of it

    run.clock.advance(seconds=61)
    summary = await sandbox.next_message(ADMIN, timeout=30)
    assert "3 messages could not be delivered" in summary.plain
    assert "the recipient blocked the bot: 3" in summary.plain
    run.clock.advance(seconds=120)
    await run.sweeps(3)
    assert len(sandbox.messages(ADMIN)) == 1
    assert all(row.dead_reported_at is not None for row in await run.rows() if row.dead_at)


async def test_a_summary_that_cannot_be_delivered_makes_no_more_summaries(
    clocked: Callable[..., Awaitable[Stopped]],
) -> None:
    """The only admin blocked the bot too: the summary to them dies, and that death is not
    summarised again (dead notices never breed dead notices)."""
    run = await clocked()
    sandbox = run.bot.sandbox
    sandbox.block_bot(ADMIN)
    (family,) = users(sandbox, 1)
    sandbox.block_bot(family)
    await queue_notes(run.bot, [family])
    await sandbox.wait_for(lambda: sandbox.stats.status_403 >= 1)
    await settled(run.bot)  # dead, at the clock's time
    run.clock.advance(seconds=61)
    await sandbox.wait_for(lambda: sandbox.stats.status_403 >= 2, timeout=30)  # the summary
    await settled(run.bot)
    for _ in range(3):
        run.clock.advance(seconds=61)
        await run.sweeps(2)
    rows = await run.rows()
    summaries = [row for row in rows if row.template == SUMMARY_TEMPLATE]
    assert len(summaries) == 1 and summaries[0].status == OutboxStatus.DEAD
    assert all(row.dead_reported_at is not None for row in rows)
    assert sandbox.stats.status_403 == 2
