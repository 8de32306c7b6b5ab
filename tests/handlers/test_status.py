"""/status through the real bot: the family sees the case in full, a stranger with the code sees
the status word only, and a wrong code gets the same answer as a hidden one."""

from __future__ import annotations

from sqlalchemy import select

from bot.callbacks import STATUS
from storage.models import Case
from tests.handlers.report_flow import FULL, Tap, file
from tests.support.harness import BotHarness

HIDDEN = "I cannot show a case with this code"


async def _code(bot: BotHarness) -> str:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        return str(await session.scalar(select(Case.code)))


async def test_reporter_stranger_and_wrong_code(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    reporter = sandbox.add_user(language_code="en").id
    stranger = sandbox.add_user(language_code="en").id
    await file(sandbox, reporter)  # visibility: anonymous
    code = await _code(running_bot)

    await sandbox.send_text(reporter, "/status")
    listing = await sandbox.next_message(reporter)
    assert code in listing.plain and "Received" in listing.plain
    assert FULL["name"] in listing.plain and listing.protect_content
    assert STATUS.build("show", code) in listing.callback_data
    await sandbox.press(reporter, listing.message_id, STATUS.build("show", code))
    details = await sandbox.next_message(reporter)
    assert FULL["name"] in details.plain and "received the report" in details.plain

    await sandbox.send_text(stranger, f"/status {code.lower().replace('-', '')}")
    seen = await sandbox.next_message(stranger)
    assert code in seen.plain and "Received" in seen.plain
    assert FULL["name"] not in seen.plain

    await sandbox.send_text(stranger, "/status K7M4-9XQ2")
    wrong = await sandbox.next_message(stranger)
    await sandbox.send_text(stranger, "/status nonsense")
    malformed = await sandbox.next_message(stranger)
    assert HIDDEN in wrong.plain and wrong.text == malformed.text

    await sandbox.press(stranger, listing.message_id, STATUS.build("show", code))  # forged button
    forged = await sandbox.next_message(stranger)
    assert FULL["name"] not in forged.plain


async def test_staff_only_case_looks_like_a_wrong_code(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    reporter = sandbox.add_user(language_code="en").id
    stranger = sandbox.add_user(language_code="en").id
    await file(sandbox, reporter, {**FULL, "visibility": Tap("staff_only")})
    code = await _code(running_bot)
    await sandbox.send_text(stranger, f"/status {code}")
    hidden = await sandbox.next_message(stranger)
    await sandbox.send_text(stranger, "/status K7M4-9XQ2")
    wrong = await sandbox.next_message(stranger)
    assert HIDDEN in hidden.plain and hidden.text == wrong.text


async def test_lookups_by_code_are_limited(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    prober = sandbox.add_user(language_code="en").id
    assert running_bot.services is not None
    limit = running_bot.services.lookup_limiter.limit
    for _ in range(limit):
        await sandbox.send_text(prober, "/status K7M4-9XQ2")
        assert HIDDEN in (await sandbox.next_message(prober)).plain
    await sandbox.send_text(prober, "/status K7M4-9XQ3")
    assert "wait" in (await sandbox.next_message(prober)).plain


async def test_no_cases_yet(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    await sandbox.send_text(user, "/status")
    assert "no cases yet" in (await sandbox.next_message(user)).plain
