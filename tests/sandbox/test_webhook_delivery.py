"""The sandbox posts updates to a set webhook as Telegram does: in order, one at a time, with the
secret token; an update the bot did not answer 200 is posted again, and only a 200 confirms it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot

from bot.sandbox.server import SandboxServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeBot:
    """A webhook endpoint answering each post with the next status of `statuses` (then 200)."""

    statuses: list[int] = field(default_factory=list)
    posts: list[tuple[int, str | None]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        update: dict[str, Any] = await request.json()
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        self.posts.append((int(update["update_id"]), secret))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[FakeBot, str]]:
    fake = FakeBot()
    app = web.Application()
    app.router.add_post("/telegram", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake, f"http://127.0.0.1:{port}/telegram"
    finally:
        await runner.cleanup()


async def test_posts_in_order_again_until_200_and_only_then_confirms(
    server: SandboxServer, bot: Bot, endpoint: tuple[FakeBot, str]
) -> None:
    fake, url = endpoint
    fake.statuses = [500, 503]  # the first update is refused twice
    user = server.add_user().id
    await server.send_text(user, "one")
    await server.send_text(user, "two")
    await bot.set_webhook("https://hotline.example/telegram", secret_token="s3cret")
    assert len(server.pending_updates) == 2  # no target yet: nothing posted, nothing lost
    server.webhook_target = url
    await server.wait_for_updates_consumed()
    assert fake.posts == [(1, "s3cret"), (1, "s3cret"), (1, "s3cret"), (2, "s3cret")]
    assert server.webhook_pusher.failures == 2
    assert server.world.handed_out == 2


async def test_a_bot_that_is_down_gets_the_update_once_it_is_back(
    server: SandboxServer, bot: Bot
) -> None:
    await bot.set_webhook("https://hotline.example/telegram")
    port = free_port()
    server.webhook_target = f"http://127.0.0.1:{port}/telegram"  # nobody listens there yet
    user = server.add_user().id
    await server.send_text(user, "are you there?")
    await server.wait_for(lambda: server.webhook_pusher.failures >= 2)
    assert len(server.pending_updates) == 1

    fake = FakeBot()
    app = web.Application()
    app.router.add_post("/telegram", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await server.wait_for_updates_consumed()
        assert fake.posts == [(1, None)]
    finally:
        await runner.cleanup()
