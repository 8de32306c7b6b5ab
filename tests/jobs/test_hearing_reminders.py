"""Hearing reminders on a fixed clock (Services.clock), through the real bot: the family of a
case and the monitor following it hear the day before, once, even when the bot is killed and
started again between two runs of the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobs.hearings import run_hearing_reminders
from storage import record, subscriptions
from storage.enums import MonitorStatus, Role, Visibility
from storage.models import User
from storage.record import Tell
from tests.support.case_factory import make_case
from tests.support.discreet import shown
from tests.support.harness import BotHarness
from tests.support.identity import known_user
from tests.support.waiting import settled, wait_until_idle

STAFF = 3001
MONITOR = 3101
HEARING = datetime(2027, 1, 12, 7, 30, tzinfo=UTC)  # 10:30 Moscow time
DAY_BEFORE = datetime(2027, 1, 11, 7, 5, tzinfo=UTC)  # 10:05 Moscow time, the day before


async def test_reminded_the_day_before_once_across_a_restart(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    sandbox.add_user(MONITOR, language_code="en")
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        await known_user(session, services.keys, MONITOR, "en")
        monitor = await session.get(User, services.keys.key(MONITOR))
        assert monitor is not None
        monitor.role, monitor.monitor_status = Role.MONITOR, MonitorStatus.APPROVED
        code = await make_case(
            session, services.cipher, keys=services.keys, reporter_id=family,
            visibility=Visibility.PUBLIC, language="en",
        )  # fmt: skip
        await subscriptions.follow_case(session, services.keys.key(MONITOR), code)
        await record.edit_record(
            session, services.cipher, code, "next_hearing", HEARING.isoformat(),
            tell=Tell.NOBODY, actor_id=STAFF, now=HEARING - timedelta(days=5),
        )  # fmt: skip

    services.clock = lambda: DAY_BEFORE - timedelta(hours=1)
    assert await run_hearing_reminders(services) == 0  # too early
    services.clock = lambda: DAY_BEFORE
    assert await run_hearing_reminders(services) == 2
    reminder = await shown(sandbox, family, await sandbox.next_message(family))
    assert code in reminder.plain and "12 Jan 2027 10:30 (Moscow time)" in reminder.plain
    alert = await sandbox.next_message(MONITOR)
    assert "Reminder" in alert.plain and "Ivan Petrenko" in alert.plain

    await settled(running_bot)  # delivered and recorded: the restart is about the job, not delivery
    await wait_until_idle(running_bot)  # the Show press handled and marked (a crash replays it)
    await running_bot.kill()
    await running_bot.start()
    services = running_bot.services
    assert services is not None
    services.clock = lambda: DAY_BEFORE + timedelta(hours=3)
    assert await run_hearing_reminders(services) == 0  # once, across the restart
    await settled(running_bot)
    assert len(sandbox.messages(family)) == 2  # the notice and its details, nothing more
    assert len(sandbox.messages(MONITOR)) == 1
