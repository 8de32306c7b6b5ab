"""Abuse limits: a user sending 500 messages gets one calm warning and does not slow another
user's conversation, a whole report included. (Reports per day: settings.reports_per_day, tested
in tests/storage/test_reports.py.)"""

from __future__ import annotations

from bot.callbacks import LANGUAGE
from tests.handlers import report_flow
from tests.support.harness import BotHarness
from tests.support.waiting import wait_until_idle

FLOOD = 500


async def test_flooder_gets_one_warning_and_others_are_served(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    limit = running_bot.settings.messages_per_minute
    flooder = sandbox.add_user(language_code="en")
    calm = sandbox.add_user(language_code="en")
    for _ in range(FLOOD):
        await sandbox.send_text(flooder.id, "/help")
    await sandbox.send_text(calm.id, "/start")
    assert "hotline" in (await sandbox.next_message(calm.id, timeout=10)).plain.lower()
    await sandbox.send_text(calm.id, "/language")
    menu = await sandbox.next_message(calm.id, timeout=10)
    await sandbox.press(calm.id, menu.message_id, LANGUAGE.bare("en"))
    await sandbox.wait_for_edit(calm.id, menu.message_id, timeout=10)
    await sandbox.send_text(calm.id, "/privacy")
    assert "encrypted" in (await sandbox.next_message(calm.id, timeout=10)).plain
    await sandbox.send_text(calm.id, "/mydata")
    assert str(calm.id) in (await sandbox.next_message(calm.id, timeout=10)).plain
    # ... and files a whole report (14 steps, each waiting for its answer) while the flood lasts.
    reply = await report_flow.file(sandbox, calm.id)
    assert "code is" in reply.plain

    await wait_until_idle(running_bot)
    replies = sandbox.messages(flooder.id)
    warnings = [m for m in replies if "very fast" in m.plain]
    assert len(warnings) == 1
    assert len(replies) == limit + 1
