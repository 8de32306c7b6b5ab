"""Webhook mode: updates without Telegram's secret token header, or with a wrong one, are refused
(403) and never processed; with the right one they are."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest

from bot.app import build_application, open_services, start_application, stop_application
from tests.support.harness import BotHarness

SECRET = "s3cret-token_123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": user_id, "type": "private", "first_name": "T"},
            "from": {"id": user_id, "is_bot": False, "first_name": "T", "language_code": "en"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


@pytest.mark.parametrize("header", [None, "wrong-token"])
async def test_webhook_refuses_a_missing_or_wrong_secret(
    harness: BotHarness, header: str | None
) -> None:
    sandbox = harness.sandbox
    user = sandbox.add_user(language_code="en")
    services = await open_services(harness.settings, i18n=harness.i18n)
    application = build_application(services)
    port = _free_port()
    await start_application(application)
    try:
        assert application.updater is not None
        await application.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="telegram",
            webhook_url="https://hotline.example/telegram",
            secret_token=SECRET,
        )
        url = f"http://127.0.0.1:{port}/telegram"
        async with aiohttp.ClientSession() as http:
            headers = {} if header is None else {"X-Telegram-Bot-Api-Secret-Token": header}
            async with http.post(url, json=_update(1, user.id, "/privacy"), headers=headers) as r:
                assert r.status == 403
            right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with http.post(url, json=_update(2, user.id, "/help"), headers=right) as r:
                assert r.status == 200
        reply = await sandbox.next_message(user.id)
        assert "/privacy" in reply.plain and "What I can do" in reply.plain
        assert len(sandbox.messages(user.id)) == 1  # the refused /privacy was never answered
    finally:
        await stop_application(application)
        await services.engine.dispose()
