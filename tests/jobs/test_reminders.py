"""Reminders with a fixed clock (Services.clock): a family waiting in need_info hears once, staff
get the weekly list of stale cases once a week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobs.reminders import run_reminders
from storage import cases
from storage.enums import CaseStatus
from tests.support.case_factory import make_case
from tests.support.discreet import shown
from tests.support.harness import BotHarness

ADMIN = 9001
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


async def test_reminders_follow_the_clock(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    sandbox.user(ADMIN)
    family = sandbox.add_user(language_code="en").id
    services = running_bot.services
    assert services is not None
    now = [START]
    services.clock = lambda: now[0]
    async with services.sessions() as session, session.begin():
        code = await make_case(
            session,
            services.cipher,
            keys=services.keys,
            reporter_id=family,
            status=CaseStatus.UNDER_REVIEW,
            language="en",
            created_at=START - timedelta(days=60),
        )
        await cases.request_info(
            session, services.cipher, code, "Which court?", actor_id=ADMIN, now=START
        )
    await sandbox.next_message(family)  # the question itself

    now[0] = START + timedelta(days=2)
    assert await run_reminders(services) == (0, 0)
    now[0] = START + timedelta(days=3, hours=1)
    assert await run_reminders(services) == (1, 0)
    assert await run_reminders(services) == (0, 0)  # once
    reminder = await shown(sandbox, family, await sandbox.next_message(family))
    assert "reminder" in reminder.plain and "Which court?" in reminder.plain

    async with services.sessions() as session, session.begin():
        other = await make_case(
            session,
            services.cipher,
            keys=services.keys,
            reporter_id=family,
            status=CaseStatus.VERIFIED,
            created_at=START - timedelta(days=40),
        )
    now[0] = START + timedelta(days=4)
    assert await run_reminders(services) == (0, 1)
    assert await run_reminders(services) == (0, 0)  # once a week
    stale = await sandbox.next_message(ADMIN)
    assert f"/case {other}" in stale.plain and code not in stale.plain
    now[0] = START + timedelta(days=8)
    assert await run_reminders(services) == (0, 1)
