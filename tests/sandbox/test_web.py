"""The web page and the test API it uses, over HTTP."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

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
        answer = await client.send_text(user_id, "yes", reply_to=reply["message_id"])
        replied = server.pending_updates[-1]["message"]["reply_to_message"]
        assert replied["message_id"] == reply["message_id"] and replied["from"]["is_bot"]
        assert answer == server.pending_updates[-1]["message"]["message_id"]
        with pytest.raises(aiohttp.ClientResponseError):
            await client.send_text(user_id, "to nothing", reply_to=999)


async def test_upload_from_the_page_injects_the_right_kind(server: SandboxServer) -> None:
    async def upload(name: str, mime: str, data: bytes, kind: str | None = None) -> int:
        form = aiohttp.FormData()
        form.add_field("user_id", "1001")
        form.add_field("caption", f"about {name}")
        if kind:
            form.add_field("kind", kind)
        form.add_field("file", data, filename=name, content_type=mime)
        async with aiohttp.ClientSession() as session:
            url = f"{server.web_url}sandbox/api/upload"
            async with session.post(url, data=form) as response:
                assert response.status == 200, await response.text()
                return int((await response.json())["message_id"])

    await upload("son.png", "image/png", b"\x89PNG son")
    await upload("letter.pdf", "application/pdf", b"%PDF letter")
    await upload("voice.ogg", "audio/ogg", b"OggS hello")
    await upload("scan.png", "image/png", b"\x89PNG scan", kind="document")
    sent = [u["message"] for u in server.pending_updates]
    assert [("photo" in m, "document" in m, "voice" in m) for m in sent] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
        (False, True, False),
    ]
    assert sent[1]["document"]["file_name"] == "letter.pdf"
    assert sent[1]["document"]["mime_type"] == "application/pdf"
    assert sent[0]["caption"] == "about son.png"
    file_id = sent[2]["voice"]["file_id"]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.base_file_url}x/files/{file_id}") as response:
            assert await response.read() == b"OggS hello"
            assert response.headers["Content-Type"] == "audio/ogg"
        photo_id = sent[0]["photo"][-1]["file_id"]
        async with session.get(f"{server.base_file_url}x/files/{photo_id}") as response:
            assert response.headers["Content-Type"] == "image/png"
        document_id = sent[1]["document"]["file_id"]
        async with session.get(f"{server.base_file_url}x/files/{document_id}") as response:
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["Content-Disposition"] == "attachment"
        form = aiohttp.FormData()
        form.add_field("user_id", "1001")
        async with session.post(f"{server.web_url}sandbox/api/upload", data=form) as response:
            assert response.status == 400


async def test_feed_reports_edits_and_deletions_as_changes(server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as session:

        async def call(method: str, **data: object) -> dict[str, object]:
            url = f"{server.base_url}9:X/{method}"
            async with session.post(url, json=data) as response:
                result: dict[str, object] = await response.json()
                return result

        sent = await call("sendMessage", chat_id=1001, text="secret", protect_content=True)
        bot_id = int(sent["result"]["message_id"])  # type: ignore[index]
        user_id = await server.send_text(1001, "mine")
        async with SandboxClient(server.web_url) as client:
            seen = await client.messages(1001)
            first = {m["message_id"]: m for m in seen["messages"]}
            assert first[bot_id]["protect_content"] and first[bot_id]["text"] == "secret"

            waiting = asyncio.create_task(client.messages(1001, since=seen["seq"], wait=5))
            await call("editMessageText", chat_id=1001, message_id=bot_id, text="changed")
            edited = (await waiting)["messages"]
            assert [(m["message_id"], m["text"], m["edited"]) for m in edited] == [
                (bot_id, "changed", True)
            ]

            since = server.world.seq
            waiting = asyncio.create_task(client.messages(1001, since=since, wait=5))
            await call("deleteMessages", chat_id=1001, message_ids=[bot_id, user_id])
            gone = (await waiting)["messages"]
            assert {(m["message_id"], m["from_bot"], m["deleted"]) for m in gone} == {
                (bot_id, True, True),
                (user_id, False, True),
            }
            assert all(m["text"] == "" for m in gone)  # the content left with the message
            assert "html" not in gone[0] or gone[0]["html"] == ""


async def test_foreign_hosts_and_origins_are_refused(server: SandboxServer) -> None:
    own = f"http://127.0.0.1:{server.port}"
    routes = [
        ("GET", "/"),
        ("GET", "/sandbox/api/personas"),
        ("POST", "/sandbox/api/send"),
        ("POST", "/bot9:X/getMe"),
        ("GET", "/file/botx/files/none"),
    ]
    async with aiohttp.ClientSession() as session:
        for method, path in routes:
            for host in (f"evil.example:{server.port}", "127.0.0.1:1", "localhost"):
                headers = {"Host": host}
                async with session.request(method, own + path, headers=headers) as response:
                    assert response.status == 421, (path, host)
            headers = {"Origin": "http://evil.example"}
            async with session.request(method, own + path, headers=headers) as response:
                assert response.status == 403, path
            async with session.request(method, own + path, headers={"Origin": "null"}) as response:
                assert response.status == 403, path
        for host in (f"localhost:{server.port}", f"[::1]:{server.port}"):
            async with session.get(own + "/sandbox/api/personas", headers={"Host": host}) as ok:
                assert ok.status == 200
        async with session.post(
            own + "/sandbox/api/send",
            json={"user_id": 1001, "text": "/start"},
            headers={"Origin": own},
        ) as same_origin:
            assert same_origin.status == 200
    assert [u["message"]["text"] for u in server.pending_updates] == ["/start"]
