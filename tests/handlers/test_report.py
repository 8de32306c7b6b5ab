"""The report conversation through the real bot and the sandbox."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import Case, CaseContact, CasePersonal, OutboxMessage
from tests.handlers.report_flow import FULL, file
from tests.support.harness import BotHarness

ADMIN = 9001


async def test_full_report_is_stored_and_staff_are_told(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    reply = await file(sandbox, user)
    assert "Your case code is" in reply.plain
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session:
        case = await session.scalar(select(Case))
        assert case is not None and case.code in reply.plain
        personal = await session.get(CasePersonal, case.id)
        assert personal is not None
        assert services.cipher.open(personal.detainee_name) == FULL["name"]
        contact = await session.scalar(select(CaseContact))
        assert contact is not None and contact.is_reporter
        staff_rows = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.chat_id == ADMIN)
        )
        assert staff_rows == 1
