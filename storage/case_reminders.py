"""Reminders about cases: the family's unanswered question, and staff's list of stale cases.

Both run from `jobs.reminders`; each is keyed in the outbox (`remind:<question>:<chat>`,
`stale:<ISO week>:<chat>`) so running the job again queues nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import CaseStatus, EventKind, OutboxKind
from storage.lifecycle import OPEN
from storage.models import Case, CaseEvent
from storage.outbox import PRIORITY_STAFF, Outgoing, enqueue
from storage.recipients import StaffContacts, all_staff, detainee_name, family_of, staff_desk

T_NEED_INFO_REMINDER = "cases.need_info_reminder"
T_STALE_STAFF = "cases.stale_cases_staff"
STALE_LIST_LIMIT = 40


async def queue_need_info_reminders(
    session: AsyncSession, cipher: FieldCipher, *, now: datetime, days: int
) -> int:
    """One gentle reminder per question a family has left unanswered for `days` days.

    The outbox key ``remind:<question event>:<chat>`` makes it once, however often this runs.
    """
    asked = (
        select(CaseEvent.case_id, func.max(CaseEvent.id).label("event_id"))
        .where(CaseEvent.kind == EventKind.INFO_REQUESTED)
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    rows = await session.execute(
        select(Case, CaseEvent)
        .join(asked, asked.c.case_id == Case.id)
        .join(CaseEvent, CaseEvent.id == asked.c.event_id)
        .where(
            Case.status == CaseStatus.NEED_INFO,
            CaseEvent.created_at <= now - timedelta(days=days),
        )
        .order_by(Case.id)
    )
    queued = 0
    for case, event in rows:
        keyed = await case_cipher(session, cipher, case.id)
        params = {
            "code": case.code,
            "question": keyed.open(event.body),
            "name": await detainee_name(session, keyed, case),
        }
        messages = [
            Outgoing(
                chat,
                f"remind:{event.id}:{chat}",
                T_NEED_INFO_REMINDER,
                params,
                kind=OutboxKind.REMINDER,
                event_id=event.id,
            )
            for chat in await family_of(session, case)
        ]
        queued += await enqueue(session, keyed, messages, now=now)
    return queued


async def queue_stale_case_list(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    now: datetime,
    days: int,
    staff: StaffContacts,
) -> int:
    """Once a week (ISO week in the outbox key), list to staff the open cases with no change
    for `days` days, oldest first."""
    stale = Case.status.in_(sorted(OPEN)) & (Case.updated_at <= now - timedelta(days=days))
    total = int(await session.scalar(select(func.count()).select_from(Case).where(stale)) or 0)
    if total == 0:
        return 0
    codes = list(
        await session.scalars(
            select(Case.code).where(stale).order_by(Case.updated_at).limit(STALE_LIST_LIMIT)
        )
    )
    year, week, _ = now.isocalendar()
    chats = staff_desk(staff) if staff.group_chat_id else await all_staff(session, staff)
    params = {"codes": codes, "total": total, "days": days}
    return await enqueue(
        session,
        cipher,
        [
            Outgoing(
                chat,
                f"stale:{year}-W{week:02d}:{chat}",
                T_STALE_STAFF,
                params,
                kind=OutboxKind.REMINDER,
                priority=PRIORITY_STAFF,
            )
            for chat in chats
        ],
        now=now,
    )
