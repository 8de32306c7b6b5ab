"""The delivery job against a misbehaving Telegram (the sandbox): 429s, dropped connections, a user
who blocked the bot, and a bot process killed in the middle of sending 200 notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from storage import outbox
from storage.db import make_engine, make_session_factory
from storage.enums import OutboxStatus
from storage.models import User
from storage.outbox import Outgoing
from tests.support.harness import BotHarness, harness_settings
from tests.support.identity import known_user
from tests.support.waiting import settled

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
        settings=harness_settings(sandbox, url, data_key, send_rate_per_second=100),
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

    engine = make_engine(fast_bot.settings.database_url)
    try:
        async with make_session_factory(engine)() as session:
            counts = await outbox.counts(session)
    finally:
        await engine.dispose()
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
