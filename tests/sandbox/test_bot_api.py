"""Bot API answers and faults as PTB sees them: errors must map to PTB's exception types."""

from __future__ import annotations

import warnings

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.sandbox.server import SandboxServer

FAMILY = 1001


def _seconds(err: RetryAfter) -> float:
    """PTB 22 gives int or timedelta depending on PTB_TIMEDELTA."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = err.retry_after
    return value if isinstance(value, int | float) else value.total_seconds()


async def test_get_me_uses_the_token_id(bot: Bot) -> None:
    assert bot.id == 123
    assert (await bot.get_me()).is_bot


async def test_flood_limit_gives_retry_after(server: SandboxServer, bot: Bot) -> None:
    server.set_flood_limits(overall_per_second=None, per_chat_per_second=1, group_per_minute=None)
    server.clock = lambda: 100.0
    await bot.send_message(FAMILY, "one")
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(FAMILY, "two")
    assert _seconds(err.value) == 1
    assert server.stats.status_429 == 1
    server.clock = lambda: 101.0
    await bot.send_message(FAMILY, "three")
    assert [m.plain for m in server.messages(FAMILY)] == ["one", "three"]


async def test_forced_retry_after(server: SandboxServer, bot: Bot) -> None:
    server.force_retry_after(1, retry_after=7)
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(FAMILY, "hi")
    assert _seconds(err.value) == 7
    await bot.send_message(FAMILY, "hi")


async def test_dropped_connection_is_a_network_error(server: SandboxServer, bot: Bot) -> None:
    server.drop_connections(1)
    with pytest.raises((NetworkError, TimedOut)):
        await bot.send_message(FAMILY, "lost")
    assert server.messages(FAMILY) == []
    await bot.send_message(FAMILY, "delivered")
    server.drop_connections(None)
    with pytest.raises((NetworkError, TimedOut)):
        await bot.send_message(FAMILY, "lost")
    server.heal()
    await bot.send_message(FAMILY, "after heal")
    assert server.stats.dropped == 2


async def test_blocked_and_unknown_users(server: SandboxServer, bot: Bot) -> None:
    server.block_bot(FAMILY)
    with pytest.raises(Forbidden, match=r"(?i)blocked"):
        await bot.send_message(FAMILY, "hi")
    assert server.stats.status_403 == 1
    server.unblock_bot(FAMILY)
    await bot.send_message(FAMILY, "hi")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "hi")


async def test_bad_html_and_lengths(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(FAMILY, "a < b", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(FAMILY, "x" * 4097)
    await bot.send_message(FAMILY, "&lt;" * 4096, parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(FAMILY, "<b></b>", parse_mode="HTML")


async def test_unknown_method_is_404(server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}123:ABC/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        async with session.post(
            f"{server.base_url}123:ABC/SENDMESSAGE", json={"chat_id": FAMILY, "text": "json"}
        ) as response:
            assert (await response.json())["result"]["text"] == "json"


async def test_commands_per_scope_and_language(server: SandboxServer, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Почати")], language_code="uk")
    await bot.set_my_commands(
        [BotCommand("help", "Help")], scope=BotCommandScopeAllPrivateChats(), language_code="en"
    )
    assert server.commands_for(language_code="uk") == [
        {"command": "start", "description": "Почати"}
    ]
    assert server.commands_for({"type": "all_private_chats"}, "en")[0]["command"] == "help"
    assert server.commands_for(language_code="en") == []
    got = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="en")
    assert got[0].command == "help"
    await bot.delete_my_commands(language_code="uk")
    assert server.commands_for(language_code="uk") == []


async def test_edit_delete_and_keyboards(server: SandboxServer, bot: Bot) -> None:
    sent = await bot.send_message(
        FAMILY, "pick", reply_markup=ReplyKeyboardMarkup([["A", "B"]]), protect_content=True
    )
    stored = server.message(FAMILY, sent.message_id)
    assert stored.reply_keyboard == [["A", "B"]]
    assert stored.protect_content
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("pick", FAMILY, sent.message_id)
    await bot.edit_message_text("picked", FAMILY, sent.message_id)
    await bot.send_message(FAMILY, "gone", reply_markup=ReplyKeyboardRemove())
    assert server.world.chats[FAMILY].reply_keyboard is None
    assert await bot.delete_message(FAMILY, sent.message_id)
    assert server.message(FAMILY, sent.message_id).deleted
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("again", FAMILY, sent.message_id)


async def test_photo_document_and_files(server: SandboxServer, bot: Bot) -> None:
    photo = await bot.send_photo(FAMILY, b"\x89PNG fake", caption="<i>pic</i>", parse_mode="HTML")
    assert photo.caption == "pic"
    document = await bot.send_document(FAMILY, b"hello", filename="a.txt")
    assert document.document is not None and document.document.file_name == "a.txt"
    again = await bot.send_document(FAMILY, document.document.file_id)
    assert again.document is not None
    file = await bot.get_file(document.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"hello"
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(FAMILY, b"x", caption="c" * 1025)


async def test_webhook_and_get_chat(server: SandboxServer, bot: Bot) -> None:
    await bot.set_webhook("https://example.org/hook")
    assert (await bot.get_webhook_info()).url == "https://example.org/hook"
    with pytest.raises(Exception, match=r"(?i)webhook is active"):
        await bot.get_updates()
    await bot.delete_webhook()
    chat = await bot.get_chat(FAMILY)
    assert chat.type == "private"
    assert await bot.send_chat_action(FAMILY, "typing")
    assert await bot.close()
    assert await bot.log_out()


async def test_get_updates_offset_and_long_poll(server: SandboxServer, bot: Bot) -> None:
    await server.send_text(FAMILY, "one")
    await server.send_text(FAMILY, "two")
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["one", "two"]
    again = await bot.get_updates(offset=updates[0].update_id + 1, timeout=0)
    assert [u.update_id for u in again] == [updates[1].update_id]
    assert await bot.get_updates(offset=updates[1].update_id + 1, timeout=0) == ()
    await server.send_photo(FAMILY, caption="/start")
    await server.send_sticker(FAMILY)
    await server.edit_text(FAMILY, 1, "edited")
    kinds = await bot.get_updates(offset=updates[1].update_id + 1, timeout=1)
    assert kinds[0].message is not None and kinds[0].message.photo
    assert kinds[1].message is not None and kinds[1].message.sticker is not None
    assert kinds[2].edited_message is not None


async def test_forged_callback_and_inaccessible_message(server: SandboxServer, bot: Bot) -> None:
    query_id = await server.press(FAMILY, 999, "forged:data")
    updates = await bot.get_updates(timeout=0)
    query = updates[0].callback_query
    assert query is not None and query.data == "forged:data" and query.id == query_id
    assert await query.answer("ok")
    assert server.answered_callbacks[0].text == "ok"
    with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
        await query.answer("twice")


async def test_the_bot_reacts_to_a_users_message(server: SandboxServer, bot: Bot) -> None:
    sent = await server.send_text(FAMILY, "thank you")
    assert await bot.set_message_reaction(FAMILY, sent, "👍")
    message = server.world.find_user_message(FAMILY, sent)
    assert message is not None and message.reactions == ["👍"]
    with pytest.raises(BadRequest):
        await bot.set_message_reaction(FAMILY, sent + 99, "👍")
