"""No personal data in logs: the bot at DEBUG through the flows that exist (/start, /privacy,
/mydata, free text, hide chat, /forget; the report flow is added when handlers/report.py lands)."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterator

import pytest

from bot.callbacks import CASE, FORGET, HIDE, SHOW
from bot.logs import configure_logging
from bot.sandbox.state import BotMessage
from tests.handlers import report_flow
from tests.security.helpers import NAME, PHONE, seed_case
from tests.support.harness import BotHarness

SECRETS = (NAME, "Бариєв", PHONE, "555 12 34", "астма")
CODE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}")


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
        await seed_case(
            session, harness.services.cipher, keys=harness.services.keys, reporter_id=user.id
        )
    await sandbox.send_text(user.id, "/start")
    await sandbox.next_message(user.id)
    await sandbox.send_text(user.id, f"/start {NAME}")
    await sandbox.next_message(user.id)
    await sandbox.send_text(user.id, f"My son {NAME} was taken, call {PHONE}")
    await sandbox.wait_for_messages(user.id, 3)  # acknowledged: it went to the staff desk
    await sandbox.send_text(user.id, "/privacy")
    await sandbox.wait_for(lambda: any("encrypted" in m.plain for m in sandbox.messages(user.id)))
    await sandbox.send_text(user.id, "/mydata")
    held = await sandbox.wait_for_messages(user.id, 5)
    mydata = held[-1]
    assert NAME in mydata.plain  # the flow really handled the name
    await sandbox.press(user.id, mydata.message_id, HIDE.build("chat"))
    await sandbox.wait_for(lambda: sandbox.message(user.id, mydata.message_id).deleted)
    await sandbox.send_text(user.id, "/forget")
    question = await sandbox.wait_for_messages(user.id, 7)
    await sandbox.press(user.id, question[-1].message_id, FORGET.build("yes"))
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


async def test_report_and_staff_flows_log_no_answer(
    harness: BotHarness, debug_logging: pytest.LogCaptureFixture
) -> None:
    """A full report, then staff verify it, write a note to the family and mark the return."""
    await harness.start()
    sandbox = harness.sandbox
    family = sandbox.add_user(language_code="en").id
    staff = 9001  # an admin from the harness settings
    sandbox.add_user(staff, language_code="en")
    answers = {**report_flow.FULL, "name": NAME, "phone": PHONE, "health": "астма"}
    reply = await report_flow.file(sandbox, family, answers)
    found = CODE.search(reply.plain)
    assert found is not None
    code = found.group(0)

    await sandbox.wait_for(lambda: any(code in m.plain for m in sandbox.messages(staff)))
    await sandbox.send_text(staff, f"/case {code}")
    await sandbox.wait_for(
        lambda: any(
            CASE.build("st", code, "under_review") in m.callback_data
            for m in sandbox.messages(staff)
        )
    )
    card = next(m for m in sandbox.messages(staff) if m.callback_data and NAME in m.plain)
    seen = len(sandbox.messages(staff))
    assert NAME in card.plain  # staff really saw the name the family typed
    await sandbox.press(staff, card.message_id, CASE.build("st", code, "under_review"))
    confirm = (await sandbox.wait_for_messages(staff, seen + 1))[-1]
    await sandbox.press(staff, confirm.message_id, CASE.build("ok", code, "under_review"))
    await sandbox.wait_for_messages(staff, seen + 2)
    await sandbox.press(staff, card.message_id, CASE.build("note", code))
    await sandbox.wait_for_messages(staff, seen + 3)
    await sandbox.send_text(staff, f"{NAME} was seen by a lawyer, call {PHONE}")
    await sandbox.wait_for_messages(staff, seen + 4)
    await sandbox.press(staff, card.message_id, CASE.build("st", code, "returned"))
    confirm = (await sandbox.wait_for_messages(staff, seen + 5))[-1]
    await sandbox.press(staff, confirm.message_id, CASE.build("ok", code, "returned"))

    # Discreet notifications (the default): Show each, so the details go through the bot too.
    def notices() -> list[BotMessage]:
        return [
            m
            for m in sandbox.messages(family)
            if any(d.startswith(SHOW.head()) for d in m.callback_data)
        ]

    await sandbox.wait_for(lambda: len(notices()) >= 3)
    for notice in notices():
        await sandbox.press(family, notice.message_id, notice.callback_data[0])
    await sandbox.wait_for(lambda: sum(1 for m in sandbox.messages(family) if code in m.plain) >= 4)
    await harness.stop()

    records = debug_logging.records
    assert any(r.levelno == logging.DEBUG for r in records)
    assert any(code in r.getMessage() for r in records)  # codes are what the logs name
    leaks = [
        (record.name, secret)
        for record in records
        for text in _record_texts(record)
        for secret in SECRETS
        if secret in text
    ]
    assert leaks == []
