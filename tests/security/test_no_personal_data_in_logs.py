"""No personal data in logs: the bot at DEBUG through the flows that exist (/start, /privacy,
/mydata, free text, hide chat, /forget; the report flow is added when handlers/report.py lands)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging
from tests.security.helpers import NAME, PHONE, seed_case
from tests.support.harness import BotHarness

SECRETS = (NAME, "Бариєв", PHONE, "555 12 34", "астма")


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Production logging at DEBUG (HOTLINE_LOG_LEVEL=DEBUG), captured by caplog."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("DEBUG")
    root.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in ("telegram", "httpx", "httpcore", "apscheduler", "aiosqlite", "asyncio"):
            logging.getLogger(name).setLevel(logging.NOTSET)


def _record_texts(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), repr(record.args)]
    if record.exc_info and record.exc_info[1] is not None:
        texts.append("".join(traceback.format_exception(*record.exc_info)))
    if record.exc_text:
        texts.append(record.exc_text)
    return texts


async def test_no_answer_or_name_in_any_log_record(
    harness: BotHarness, debug_logging: pytest.LogCaptureFixture
) -> None:
    await harness.start()
    sandbox = harness.sandbox
    user = sandbox.add_user(language_code="en")
    assert harness.services is not None
    async with harness.services.sessions() as session, session.begin():
        await seed_case(session, harness.services.cipher, reporter_id=user.id)
    await sandbox.send_text(user.id, "/start")
    await sandbox.next_message(user.id)
    await sandbox.send_text(user.id, f"/start {NAME}")
    await sandbox.next_message(user.id)
    await sandbox.send_text(user.id, f"My son {NAME} was taken, call {PHONE}")
    await sandbox.send_text(user.id, "/privacy")
    await sandbox.wait_for(lambda: any("encrypted" in m.plain for m in sandbox.messages(user.id)))
    await sandbox.send_text(user.id, "/mydata")
    held = await sandbox.wait_for_messages(user.id, 4)
    mydata = held[-1]
    assert NAME in mydata.plain  # the flow really handled the name
    await sandbox.press(user.id, mydata.message_id, "hide:chat")
    await sandbox.wait_for(lambda: sandbox.message(user.id, mydata.message_id).deleted)
    await sandbox.send_text(user.id, "/forget")
    question = await sandbox.wait_for_messages(user.id, 6)
    await sandbox.press(user.id, question[-1].message_id, "forget:yes")
    await sandbox.wait_for_edit(user.id, question[-1].message_id)
    await harness.stop()

    records = debug_logging.records
    assert any(r.levelno == logging.DEBUG for r in records)  # DEBUG really was captured
    assert any("erased" in r.getMessage() for r in records)
    leaks = [
        (record.name, secret)
        for record in records
        for text in _record_texts(record)
        for secret in SECRETS
        if secret in text
    ]
    assert leaks == []
