"""Hearing reminders: the day before a hearing, the family and the monitors following a public
case are reminded of it.

The job (jobs/hearings.py) calls `queue_hearing_reminders` every few minutes. From REMIND_AT
(court time) on the day before, each hearing gets one reminder per recipient: the outbox key
``hearing:<case>:<instant>:<chat>`` makes it once across restarts and extra runs, and a hearing
moved to another day is a new instant, so it is reminded again. Families in discreet mode get the
discreet notice (the template is family-facing); monitors only on a public case, only those who
follow every change (storage/subscriptions.record_recipients).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import CaseStatus, OutboxKind
from storage.models import Case, CasePersonal, CaseRecord
from storage.outbox import Outgoing, enqueue
from storage.recipients import family_of
from storage.record_values import COURT_ZONE
from storage.subscriptions import record_recipients

T_HEARING_FAMILY = "record.hearing_reminder"
T_HEARING_MONITOR = "record.hearing_reminder_monitor"
REMIND_AT = time(10, 0)
"""Court time on the day before the hearing from which the reminder goes out."""
FINAL = (CaseStatus.RETURNED, CaseStatus.CLOSED, CaseStatus.DECEASED)


def reminder_due(hearing: datetime, now: datetime) -> bool:
    """From REMIND_AT on the day before (court time) until the hearing starts."""
    local = hearing.astimezone(COURT_ZONE)
    start = datetime.combine(local.date() - timedelta(days=1), REMIND_AT, tzinfo=COURT_ZONE)
    return start <= now < hearing


async def queue_hearing_reminders(
    session: AsyncSession, cipher: FieldCipher, *, now: datetime
) -> int:
    """Queue the reminders due now; returns how many rows were new."""
    rows = await session.execute(
        select(Case, CaseRecord.next_hearing_at)
        .join(CaseRecord, CaseRecord.case_id == Case.id)
        .where(
            CaseRecord.next_hearing_at > now,
            CaseRecord.next_hearing_at <= now + timedelta(days=2),
            Case.merged_into_id.is_(None),
            Case.status.not_in([str(status) for status in FINAL]),
        )
        .order_by(CaseRecord.next_hearing_at, Case.id)
    )
    queued = 0
    for case, hearing in rows.all():
        if hearing is None or not reminder_due(hearing, now):
            continue
        keyed = await case_cipher(session, cipher, case.id)
        personal = await session.get(CasePersonal, case.id)
        name = keyed.open(personal.detainee_name) if personal is not None else None
        params = {"code": case.code, "hearing": hearing.isoformat(), "name": name}
        family = await family_of(session, case)
        monitors = [chat for chat in await record_recipients(session, case) if chat not in family]
        stamp = hearing.strftime("%Y%m%dT%H%M")
        messages = [
            Outgoing(
                chat,
                f"hearing:{case.id}:{stamp}:{chat}",
                template,
                params,
                kind=OutboxKind.REMINDER,
            )
            for chats, template in ((family, T_HEARING_FAMILY), (monitors, T_HEARING_MONITOR))
            for chat in chats
        ]
        queued += await enqueue(session, keyed, messages, now=now)
    return queued
