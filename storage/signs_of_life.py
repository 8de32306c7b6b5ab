"""Signs of life, and the silence alarm that watches for their absence.

Crimean Solidarity reports letters held back for months: silence itself is news. A family (or
staff) logs each letter, call, visit or lawyer's visit with one tap; the card shows the newest.
A daily job (jobs/silence.py) flags to staff, and to the monitors following a public case, each
detained person not heard of for more than N days, once per period of N days: the outbox key
names the case, the last sign (so a new sign starts the count again) and the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import CaseStatus, Custody, OutboxKind, SignOfLife, Visibility
from storage.models import Case, CaseContact, CasePersonal, SignOfLifeEntry
from storage.outbox import PRIORITY_STAFF, Outgoing, enqueue
from storage.subscriptions import record_recipients

T_SILENCE_STAFF = "record.silence_staff"
T_SILENCE_MONITOR = "record.silence_monitor"
HELD = (Custody.PRE_TRIAL, Custody.COLONY, Custody.IN_TRANSIT, Custody.UNKNOWN)
"""Custody in which silence means danger (house arrest or freedom is not watched)."""
HELD_STATUSES = (
    CaseStatus.VERIFIED, CaseStatus.CHARGED, CaseStatus.SENTENCED, CaseStatus.TRANSFERRED,
)  # fmt: skip
"""Where custody is not recorded yet, these statuses mean the person is held."""


class NotYourCase(LookupError):
    """The code names no case this user may log a sign of life on (the same for a missing one)."""


@dataclass(frozen=True)
class LastSign:
    kind: str
    on_date: date


async def _case_for(session: AsyncSession, code: str, user_id: int, *, staff: bool) -> Case:
    case = await session.scalar(select(Case).where(Case.code == code.strip().upper()))
    if case is None or case.merged_into_id is not None:
        raise NotYourCase(code)
    if staff or case.reporter_id == user_id:
        return case
    contact = await session.scalar(
        select(CaseContact.id).where(
            CaseContact.case_id == case.id,
            CaseContact.user_id == user_id,
            CaseContact.approved.is_(True),
        )
    )
    if contact is None:
        raise NotYourCase(code)
    return case


async def log_sign(
    session: AsyncSession,
    code: str,
    kind: SignOfLife,
    on_date: date,
    *,
    user_id: int,
    staff: bool,
    now: datetime,
) -> int:
    """Log a sign of life; a family member only on their own case (reporter or approved)."""
    case = await _case_for(session, code, user_id, staff=staff)
    entry = SignOfLifeEntry(
        case_id=case.id, kind=kind, on_date=on_date, logged_by=user_id, by_staff=staff,
        created_at=now,
    )  # fmt: skip
    session.add(entry)
    await session.flush()
    audit.record(
        session, actor_id=user_id if staff else 0, action="case.sign_of_life",
        case_code=case.code, detail=str(kind), at=now,
    )  # fmt: skip
    return entry.id


async def logged_by(session: AsyncSession, entry_id: int, user_id: int) -> bool:
    """Whether this user logged that sign of life (only they may correct its day)."""
    entry = await session.get(SignOfLifeEntry, entry_id)
    return entry is not None and entry.logged_by == user_id


async def redate_sign(
    session: AsyncSession, entry_id: int, on_date: date, *, user_id: int
) -> LastSign:
    """Correct the day of a sign this user logged (the one-tap log assumes today)."""
    entry = await session.get(SignOfLifeEntry, entry_id)
    if entry is None or entry.logged_by != user_id:
        raise NotYourCase(str(entry_id))
    entry.on_date = on_date
    return LastSign(entry.kind, on_date)


async def last_sign(session: AsyncSession, case_id: int) -> LastSign | None:
    row = (
        await session.execute(
            select(SignOfLifeEntry.kind, SignOfLifeEntry.on_date)
            .where(SignOfLifeEntry.case_id == case_id)
            .order_by(SignOfLifeEntry.on_date.desc(), SignOfLifeEntry.id.desc())
            .limit(1)
        )
    ).first()
    return LastSign(row[0], row[1]) if row is not None else None


async def queue_silence_alarms(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    now: datetime,
    days: int,
    staff_chats: list[int],
) -> int:
    """Flag each held person not heard of for `days` days or more, once per `days`."""
    newest = (
        select(SignOfLifeEntry.case_id, func.max(SignOfLifeEntry.on_date).label("last"))
        .group_by(SignOfLifeEntry.case_id)
        .subquery()
    )
    held = Case.custody.in_([str(c) for c in HELD]) | (
        Case.custody.is_(None) & Case.status.in_([str(s) for s in HELD_STATUSES])
    )
    rows = await session.execute(
        select(Case, newest.c.last)
        .outerjoin(newest, newest.c.case_id == Case.id)
        .where(held, Case.merged_into_id.is_(None))
        .order_by(Case.id)
    )
    today = now.date()
    queued = 0
    for case, last in rows.all():
        since = last or case.created_at.date()
        silent = (today - since).days
        if silent < days:
            continue
        period = silent // days
        params: dict[str, object] = {"code": case.code, "days": silent, "since": since.isoformat()}
        messages = [
            Outgoing(
                chat, f"silence:{case.id}:{since.isoformat()}:{period}:{chat}", T_SILENCE_STAFF,
                params, kind=OutboxKind.STAFF_ALERT, priority=PRIORITY_STAFF,
            )
            for chat in staff_chats
        ]  # fmt: skip
        keyed = await case_cipher(session, cipher, case.id)
        if case.visibility == Visibility.PUBLIC:
            personal = await session.get(CasePersonal, case.id)
            name = keyed.open(personal.detainee_name) if personal is not None else None
            messages += [
                Outgoing(
                    chat, f"silence:{case.id}:{since.isoformat()}:{period}:{chat}",
                    T_SILENCE_MONITOR, {**params, "name": name}, kind=OutboxKind.CASE_ALERT,
                )
                for chat in await record_recipients(session, case)
                if chat not in staff_chats
            ]  # fmt: skip
        queued += await enqueue(session, keyed, messages, now=now)
    return queued


@dataclass(frozen=True)
class LettersView:
    """What a letter writer needs: where the person is held and the postal address."""

    code: str
    name: str | None  # for the family and staff; for a monitor only on a public case
    detention_place: str | None
    postal_address: str | None
    last: LastSign | None  # the family's and staff's view only
    may_log: bool


async def letters_view(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    user_id: int,
    *,
    staff: bool,
    monitor: bool,
) -> LettersView:
    """The letters page of a case for this reader: its family and staff (with the last sign of
    life and the buttons to log one), or an approved monitor on a public case (the address only:
    letter-writing projects write to political prisoners). Anything else: NotYourCase."""
    from storage.models import CaseRecord

    try:
        case = await _case_for(session, code, user_id, staff=staff)
        family_view = True
    except NotYourCase:
        public = await session.scalar(select(Case).where(Case.code == code.strip().upper()))
        if public is None or not monitor or public.visibility != Visibility.PUBLIC:
            raise
        case, family_view = public, False
    keyed = await case_cipher(session, cipher, case.id)
    record = await session.get(CaseRecord, case.id)
    personal = await session.get(CasePersonal, case.id)
    return LettersView(
        code=case.code,
        name=keyed.open(personal.detainee_name) if personal is not None else None,
        detention_place=keyed.open(record.detention_place) if record is not None else None,
        postal_address=keyed.open(record.postal_address) if record is not None else None,
        last=await last_sign(session, case.id) if family_view else None,
        may_log=family_view,
    )
