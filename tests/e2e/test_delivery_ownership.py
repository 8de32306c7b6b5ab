"""Two delivery loops on one database (a second process started by mistake), on SQLite and on
PostgreSQL: every row goes out exactly once, a row waiting out a long 429 pause keeps its owner,
and a starting sender never takes another live sender's rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from bot.app import build_application, open_services, start_application, stop_application
from bot.context import HotlineApplication
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.services import Services
from bot.settings import Settings
from jobs.delivery import DELIVERY_KEY, Delivery
from storage import broadcasts, outbox
from storage.enums import OutboxStatus
from storage.models import utcnow
from storage.outbox import Outgoing
from tests.support.harness import BotHarness, harness_settings
from tests.support.identity import known_user
from tests.support.waiting import eventually, outbox_counts

ADMIN = 9001
TEXT = "Legal aid session on Friday"


class Clock:
    """A fixed clock for `services.clock`, moved only by the test (both senders share it)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sender:
    """A second bot process on the same database: its own services and Application, its own
    delivery loop; it does not poll (one poller per token)."""

    services: Services
    application: HotlineApplication

    @property
    def delivery(self) -> Delivery:
        return delivery_of(self.application)


def delivery_of(application: HotlineApplication | None) -> Delivery:
    assert application is not None
    found = application.bot_data[DELIVERY_KEY]
    assert isinstance(found, Delivery)
    return found


@pytest.fixture
async def second_sender(
    i18n: I18n,
) -> AsyncIterator[Callable[[Settings, Clock | None], Awaitable[Sender]]]:
    started: list[Sender] = []

    async def start(settings: Settings, clock: Clock | None = None) -> Sender:
        services = await open_services(settings, i18n=i18n)
        if clock is not None:
            services.clock = clock
        application = build_application(services)
        await start_application(application)
        started.append(Sender(services, application))
        return started[-1]

    yield start
    for sender in started:
        await stop_application(sender.application)
        await sender.services.engine.dispose()


@pytest.fixture
async def first(
    sandbox: SandboxServer, database_url: str, data_key: str, i18n: I18n
) -> AsyncIterator[BotHarness]:
    """The running bot (polling); its settings are the second sender's too."""
    settings = harness_settings(
        sandbox, database_url, data_key, send_rate_per_second=300, delivery_sweep_seconds=0.3
    )
    bot = BotHarness(sandbox=sandbox, settings=settings, i18n=i18n)
    try:
        yield bot
    finally:
        await bot.close()


async def seed(bot: BotHarness, count: int) -> list[int]:
    assert bot.services is not None
    chats = [bot.sandbox.add_user(language_code="en").id for _ in range(count)]
    async with bot.services.sessions() as session, session.begin():
        for chat in chats:
            await known_user(session, bot.services.keys, chat, "en", discreet=False)
    return chats


def receivers(sandbox: SandboxServer, text: str | None = None) -> dict[int, int]:
    counts: dict[int, int] = {}
    for send in sandbox.stats.sends:
        if send.method == "sendMessage" and (text is None or send.text == text):
            counts[send.chat_id] = counts.get(send.chat_id, 0) + 1
    return counts


async def test_two_senders_on_one_database_deliver_1000_recipients_each_once(
    first: BotHarness,
    second_sender: Callable[[Settings, Clock | None], Awaitable[Sender]],
) -> None:
    sandbox = first.sandbox
    sandbox.set_latency(0.002)  # both senders have requests in flight at once
    await first.start()
    second = await second_sender(first.settings, None)
    chats = await seed(first, 1000)
    assert first.services is not None
    async with first.services.sessions() as session, session.begin():
        await broadcasts.queue_broadcast(
            session,
            first.services.cipher,
            author_id=first.key(ADMIN),
            audience="everyone",
            audience_arg=None,
            text=TEXT,
            admin_ids={first.key(ADMIN)},
        )
    await sandbox.wait_for(lambda: set(receivers(sandbox, TEXT)) >= set(chats), timeout=120)

    async def settled() -> bool:
        counts = await outbox_counts(first)
        return counts[OutboxStatus.PENDING] == counts[OutboxStatus.SENDING] == 0

    await eventually(settled, "a settled outbox", within=30)
    got = receivers(sandbox, TEXT)
    twice = sum(n - 1 for n in got.values())
    mine, theirs = delivery_of(first.application).stats.sent, second.delivery.stats.sent
    print(f"\n[two senders] first sent {mine}, second sent {theirs}, sent twice: {twice}")
    assert twice == 0
    assert mine > 0 and theirs > 0, "one sender did all the work: nothing was shared"
    assert (await outbox_counts(first))[OutboxStatus.SENT] == 1000


async def test_a_row_waiting_out_a_long_pause_is_never_taken_by_another_sender(
    sandbox: SandboxServer,
    database_url: str,
    data_key: str,
    i18n: I18n,
    second_sender: Callable[[Settings, Clock | None], Awaitable[Sender]],
) -> None:
    """The first sender holds a batch at its pacer through a long 429 pause (five leases on the
    clock): it renews their leases, so a second sender started meanwhile, sweeping all along,
    sends only the rows nobody holds; when the pause ends the first sends its batch. Each once."""
    lease = 3.0
    settings = harness_settings(
        sandbox,
        database_url,
        data_key,
        send_rate_per_second=30,
        delivery_lease_seconds=lease,
        delivery_sweep_seconds=0.3,
    )
    bot = BotHarness(sandbox=sandbox, settings=settings, i18n=i18n)
    try:
        await bot.start()
        assert bot.services is not None
        clock = Clock()
        bot.services.clock = clock
        holder = delivery_of(bot.application)
        holder.pacer.pause(3600)  # what a RetryAfter with the window full does, for an hour
        chats = await seed(bot, holder.batch + 8)
        async with bot.services.sessions() as session, session.begin():
            await outbox.enqueue(
                session,
                bot.services.cipher,
                [Outgoing(bot.key(c), f"t:{c}", "cases.public_note", {"code": "K"}) for c in chats],
                now=clock(),
            )

        async def holding_a_batch() -> bool:
            return len(holder.held) == holder.batch

        await eventually(holding_a_batch, "the first sender holding its batch")
        held = holder.held
        other = await second_sender(settings, clock)
        await sandbox.wait_for(lambda: len(receivers(sandbox)) == 8, timeout=30)

        for step in range(6):  # 6 x 0.9 leases pass; both senders keep working all along
            drains = other.delivery.stats.drains
            clock.advance(lease * 0.9)
            # A renewal that read the clock before this advance may finish after it: only one
            # that read the advanced clock proves the lease is renewed from now on.
            due = clock() + timedelta(seconds=lease)

            async def renewed_and_swept(drains: int = drains, due: datetime = due) -> bool:
                renewed = holder.stats.renewed_until
                return (
                    renewed is not None
                    and renewed >= due
                    and other.delivery.stats.drains > drains + 1
                )

            await eventually(renewed_and_swept, f"a renewal and sweeps after step {step}")
            assert len(receivers(sandbox)) == 8, "a held row was sent by the other sender"
        assert holder.held == held and holder.stats.lost == 0

        holder.pacer.paused_until = 0.0  # the pause is over
        await sandbox.wait_for(lambda: len(receivers(sandbox)) == len(chats), timeout=30)

        async def settled() -> bool:
            counts = await outbox_counts(bot)
            return counts[OutboxStatus.SENT] == len(chats)

        await eventually(settled, "every row recorded as sent")
        assert set(receivers(sandbox).values()) == {1}
        assert holder.stats.sent == holder.batch and other.delivery.stats.sent == 8
    finally:
        await bot.close()
