"""Families get discreet notifications by default: the push says only that there is news, and
its Show button sends the details. Tests that check the details press Show first."""

from __future__ import annotations

from bot.callbacks import SHOW
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage

NOTICE = "There is news about your case."


async def shown(sandbox: SandboxServer, chat: int, push: BotMessage) -> BotMessage:
    """Check `push` is a discreet notice, press its Show button, return the details sent."""
    assert push.plain == NOTICE, push.plain
    assert len(push.callback_data) == 1 and push.callback_data[0].startswith(SHOW.head())
    await sandbox.press(chat, push.message_id, push.callback_data[0])
    return await sandbox.next_message(chat)
