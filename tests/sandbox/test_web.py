"""The web page and the test API it uses, over HTTP."""

from __future__ import annotations

import asyncio

import aiohttp

from bot.sandbox.client import SandboxClient
from bot.sandbox.server import SandboxServer

MARKUP = '{"inline_keyboard":[[{"text":"Go","callback_data":"go"}]]}'


async def test_page_is_served(server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(server.web_url) as response:
        assert response.status == 200
        assert "sandbox/api" in await response.text()


async def test_round_trip_through_the_test_api(server: SandboxServer) -> None:
    async with SandboxClient(server.web_url) as client:
        personas = await client.personas()
        assert personas == {"family": 1001, "monitor": 2001, "staff": 3001}
        user_id = await client.create_user("New", "crh")
        assert server.world.users[user_id].language_code == "crh"
        message_id = await client.send_text(user_id, "/start")
        update = server.pending_updates[-1]["message"]
        assert update["entities"][0] == {"type": "bot_command", "offset": 0, "length": 6}
        assert update["message_id"] == message_id

        async def bot_replies() -> None:  # the bot, answering over the Bot API
            async with aiohttp.ClientSession() as session:
                await session.post(
                    f"{server.base_url}9:X/sendMessage",
                    data={
                        "chat_id": str(user_id),
                        "text": "<b>Hi</b>",
                        "parse_mode": "HTML",
                        "reply_markup": MARKUP,
                    },
                )

        seen = await client.messages(user_id)
        waiting = asyncio.create_task(client.messages(user_id, since=seen["seq"], wait=5))
        await bot_replies()
        data = await waiting
        reply = next(m for m in data["messages"] if m["from_bot"])
        assert reply["html"] == "<b>Hi</b>"
        assert reply["buttons"] == [[{"text": "Go", "data": "go"}]]
        query_id = await client.press(user_id, reply["message_id"], "go")
        assert server.pending_updates[-1]["callback_query"]["id"] == query_id
