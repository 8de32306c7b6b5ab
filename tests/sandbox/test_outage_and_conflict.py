"""The sandbox as Telegram misbehaves and polices: an outage (5xx) switched on in process or over
the test API, and 409 Conflict for a second bot instance polling the same token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.error import Conflict, NetworkError
from telegram.request import HTTPXRequest

from bot.sandbox.client import SandboxClient
from bot.sandbox.server import SandboxServer

FAMILY = 1001


async def test_an_outage_answers_502_until_healed(server: SandboxServer, bot: Bot) -> None:
    server.fail_with(502)
    for _ in range(3):
        with pytest.raises(NetworkError) as error:
            await bot.send_message(FAMILY, "lost")
        assert "Bad Gateway" in error.value.message
    assert server.stats.server_errors == 3 and server.messages(FAMILY) == []
    assert (await bot.get_me()).is_bot  # only the send methods are down
    server.heal()
    await bot.send_message(FAMILY, "back")
    assert [m.plain for m in server.messages(FAMILY)] == ["back"]


async def test_faults_are_switched_over_the_test_api(server: SandboxServer, bot: Bot) -> None:
    async with SandboxClient(server.web_url) as client:
        state = await client.set_faults(server_error={"status": 503, "count": 2})
        assert state["server_error"] == {"status": 503, "remaining": 2}
        for _ in range(2):
            with pytest.raises(NetworkError):
                await bot.send_message(FAMILY, "lost")
        await bot.send_message(FAMILY, "third goes through")
        await client.set_faults(server_error={"status": 502})
        with pytest.raises(NetworkError):
            await bot.send_message(FAMILY, "lost")
        state = await client.set_faults(heal=True)
        assert state["server_error"] is None
        await bot.send_message(FAMILY, "healed")
        assert (await client.stats())["server_errors"] == 3


@pytest.fixture
async def second_bot(server: SandboxServer) -> AsyncIterator[Bot]:
    """Another process's Bot on the same token: its own connections."""
    client = Bot(
        "123:ABC",
        base_url=server.base_url,
        request=HTTPXRequest(read_timeout=5, connect_timeout=2),
        get_updates_request=HTTPXRequest(read_timeout=5, connect_timeout=2),
    )
    async with client:
        yield client


async def test_a_second_poller_gets_409_while_the_first_polls(
    server: SandboxServer, bot: Bot, second_bot: Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await server.wait_for(lambda: server.polling)
    with pytest.raises(Conflict) as error:
        await second_bot.get_updates(timeout=1)
    assert "terminated by other getUpdates request" in error.value.message
    assert server.stats.conflicts == 1
    await server.send_text(FAMILY, "hello")  # the first poll is still open and gets it
    updates = await first
    assert [u.message.text for u in updates if u.message] == ["hello"]


async def test_a_poller_that_went_away_holds_nothing(
    server: SandboxServer, bot: Bot, second_bot: Bot
) -> None:
    """A bot killed in the middle of a long poll (its connection closed) does not keep the next
    instance out, and one that polls in turn is not a conflict."""
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await server.wait_for(lambda: server.polling)
    first.cancel()  # httpx closes a connection whose request was cancelled
    with pytest.raises(asyncio.CancelledError):
        await first
    await server.send_text(FAMILY, "after the restart")
    updates = await second_bot.get_updates(timeout=1)
    assert [u.message.text for u in updates if u.message] == ["after the restart"]
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()
    assert server.stats.conflicts == 0
