"""A monitor is not staff, seen through the real bot (the mutant `is_staff` counting monitors
survived every other test; tests/mutants.py)."""

from __future__ import annotations

from storage.enums import Role
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness
from tests.support.identity import grant

HIDDEN = "I cannot show a case with this code"
DESK_ONLY = "Staff answer families from the desk"


async def test_a_monitor_sees_a_staff_only_case_as_a_stranger_does(
    running_bot: BotHarness,
) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    family = sandbox.add_user(language_code="en").id
    monitor = sandbox.add_user(language_code="en").id
    async with services.sessions() as session, session.begin():
        code = await make_case(session, services.cipher, reporter_id=family, keys=services.keys)
        await grant(session, services.keys, monitor, Role.MONITOR)
    await sandbox.send_text(monitor, f"/status {code}")
    seen = await sandbox.next_message(monitor)
    await sandbox.send_text(monitor, "/status K7M4-9XQ2")
    wrong = await sandbox.next_message(monitor)
    assert HIDDEN in seen.plain and seen.text == wrong.text
    assert "Ivan Petrenko" not in seen.plain

    # and what a monitor writes goes to the staff, as a family's words do
    await sandbox.send_text(monitor, "Is there news about the trial?")
    answer = await sandbox.next_message(monitor)
    assert DESK_ONLY not in answer.plain, answer.plain
