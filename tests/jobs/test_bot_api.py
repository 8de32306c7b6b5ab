"""The workers' lean Bot API client against the sandbox: a message goes out with its buttons and
protection, and each kind of refusal becomes the PTB error the delivery job acts on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.sandbox.server import SandboxServer
from jobs.bot_api import LeanBot
from jobs.delivery import retry_after_seconds
from tests.support.harness import TEST_TOKEN


@pytest.fixture
async def lean(sandbox: SandboxServer) -> AsyncIterator[LeanBot]:
    bot = LeanBot(sandbox.base_url, TEST_TOKEN, connections=4)
    try:
        yield bot
    finally:
        await bot.close()


async def test_a_message_goes_out_as_html_with_its_buttons(
    sandbox: SandboxServer, lean: LeanBot
) -> None:
    chat = sandbox.add_user(language_code="en").id
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Show", callback_data="show:1")]])
    sent = await lean.send_message(
        chat, "<b>Hello</b> &amp; welcome", reply_markup=markup, protect_content=True
    )
    (message,) = sandbox.messages(chat)
    assert sent.message_id == message.message_id
    assert message.plain == "Hello & welcome"
    assert message.protect_content
    assert message.buttons == [[("Show", "show:1")]]


async def test_refusals_become_the_errors_delivery_acts_on(
    sandbox: SandboxServer, lean: LeanBot
) -> None:
    chat = sandbox.add_user(language_code="en").id
    sandbox.force_retry_after(1, 7)
    with pytest.raises(RetryAfter) as retry:
        await lean.send_message(chat, "x")
    assert retry_after_seconds(retry.value) == 7
    sandbox.fail_with(502, 1)
    with pytest.raises(NetworkError):
        await lean.send_message(chat, "x")
    sandbox.drop_connections(1)
    with pytest.raises(NetworkError):
        await lean.send_message(chat, "x")
    with pytest.raises(BadRequest):
        await lean.send_message(123456789, "x")  # a chat that does not exist
    sandbox.block_bot(chat)
    with pytest.raises(Forbidden):
        await lean.send_message(chat, "x")
