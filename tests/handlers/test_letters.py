"""/letters through the real bot and the sandbox: the family sees the address from the record,
the letter rules and the last sign of life, logs a sign with one tap (and corrects its day);
a stranger sees nothing; a monitor sees a public case's address only; silence is flagged to staff
on a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.letters import LIFE
from jobs.silence import run_silence_alarms
from storage import record
from storage.enums import MonitorStatus, Role, SignOfLife, Visibility
from storage.models import User
from storage.record import Tell
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness
from tests.support.identity import grant, known_user

STAFF = 3001
MONITOR = 3101
NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
ADDRESS = "295000, Simferopol, Kyivska 1 & Co"


async def seed(bot: BotHarness, family: int, visibility: Visibility) -> str:
    services = bot.services
    assert services is not None
    services.clock = lambda: NOW
    async with services.sessions() as session, session.begin():
        await grant(session, services.keys, STAFF, Role.STAFF)
        await known_user(session, services.keys, MONITOR, "en")
        monitor = await session.get(User, services.keys.key(MONITOR))
        assert monitor is not None
        monitor.role, monitor.monitor_status = Role.MONITOR, MonitorStatus.APPROVED
        code = await make_case(
            session, services.cipher, keys=services.keys, reporter_id=family,
            visibility=visibility, language="en", created_at=NOW - timedelta(days=40),
        )  # fmt: skip
        for key, value in (
            ("postal_address", ADDRESS),
            ("detention_place", "SIZO-1"),
            ("custody", "pre_trial"),
        ):
            await record.edit_record(
                session, services.cipher, code, key, value, tell=Tell.NOBODY,
                actor_id=services.keys.key(STAFF), now=NOW,
            )  # fmt: skip
        return code


async def test_family_reads_the_address_and_logs_a_sign_of_life(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code = await seed(running_bot, family, Visibility.STAFF_ONLY)
    await sandbox.send_text(family, "/letters")
    page = await sandbox.next_message(family)
    assert ADDRESS in page.plain and "SIZO-1" in page.plain and "Write in Russian" in page.plain
    assert "<code>295000, Simferopol, Kyivska 1 &amp; Co</code>" in page.text  # escaped
    assert "Last sign of life: none logged yet" in page.plain and page.protect_content
    letter = LIFE.build("log", code, SignOfLife.LETTER)
    assert letter in page.callback_data
    await sandbox.press(family, page.message_id, letter)
    noted = await sandbox.next_message(family)
    assert "Noted: a letter, 10 Jan 2027" in noted.plain
    await sandbox.press(family, noted.message_id, noted.callback_data[0])
    await sandbox.next_message(family)  # asks for the date
    await sandbox.send_text(family, "31.12.2030")
    assert "future" in (await sandbox.next_message(family)).plain
    await sandbox.send_text(family, "06.01.2027")
    assert "a letter, 6 Jan 2027" in (await sandbox.next_message(family)).plain
    await sandbox.send_text(family, f"/letters {code}")
    again = await sandbox.next_message(family)
    assert "Last sign of life: a letter, 6 Jan 2027" in again.plain
    await sandbox.send_text(STAFF, f"/case {code}")  # the card shows the last sign of life
    card = await sandbox.next_message(STAFF)
    assert "06.01.2027" in card.plain  # staff read Ukrainian (the default)

    services = running_bot.services
    assert services is not None
    services.clock = lambda: NOW + timedelta(days=25)
    assert await run_silence_alarms(services) == 0  # 29 days since the letter of the 6th
    services.clock = lambda: NOW + timedelta(days=26)
    assert await run_silence_alarms(services) > 0  # 30 days: staff (no monitor: staff-only)
    assert await run_silence_alarms(services) == 0  # once
    alarm = await sandbox.next_message(STAFF)
    assert code in alarm.plain and "Немає ознак життя" in alarm.plain  # staff language: uk


async def test_strangers_see_nothing_and_monitors_only_a_public_address(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    stranger = sandbox.add_user(language_code="en").id
    sandbox.add_user(MONITOR, language_code="en")
    public = await seed(running_bot, family, Visibility.PUBLIC)
    anonymous = await seed(running_bot, family, Visibility.ANONYMOUS)
    await sandbox.send_text(stranger, f"/letters {public}")
    assert "cannot show letters" in (await sandbox.next_message(stranger)).plain
    start = await sandbox.send_text(stranger, "/start")
    await sandbox.next_message(stranger)
    query = await sandbox.press(stranger, start, LIFE.build("log", public, SignOfLife.CALL))
    await sandbox.wait_for_callback_answer(query)
    assert "cannot show letters" in (await sandbox.next_message(stranger)).plain
    await sandbox.press(stranger, start, LIFE.build("date", 1))  # someone else's sign, forged
    assert "no longer valid" in (await sandbox.next_message(stranger)).plain
    await sandbox.send_text(MONITOR, f"/letters {public}")
    page = await sandbox.next_message(MONITOR)
    assert ADDRESS in page.plain and page.callback_data == []
    assert "Last sign of life" not in page.plain
    await sandbox.send_text(MONITOR, f"/letters {anonymous}")
    assert "cannot show letters" in (await sandbox.next_message(MONITOR)).plain
