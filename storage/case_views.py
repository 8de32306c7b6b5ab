"""Reading a case: what staff see on a card and in the inbox. Nothing here changes anything.

`find_case` is the one lookup every operation starts from (`CaseNotFound` for an unknown code).
What happens when a case changes is `storage.cases`; who hears about it, `storage.recipients`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import fields, relatives
from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import CaseStatus
from storage.lifecycle import allowed_next
from storage.models import Case, CaseContact, CaseEvent, CasePersonal
from storage.signs_of_life import LastSign, last_sign
from storage.statuses import ROWS

PERSONAL_FIELDS = fields.REGISTRY.columns(fields.PERSONAL)
"""The sealed personal columns (`storage.fields`), opened for the card."""
INBOX_STATUSES = tuple(row.status for row in ROWS if row.inbox)
"""The statuses whose cases wait in the staff inbox (new, and need_info)."""


class CaseNotFound(LookupError):
    """No case has this code (the message is the code only)."""


@dataclass(frozen=True)
class EventView:
    id: int
    kind: str
    old_status: str | None
    new_status: str | None
    public: bool
    body: str | None
    actor_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class ContactView:
    user_id: int
    relation: str | None
    is_reporter: bool
    approved: bool
    phone: str | None
    via: str | None = None  # a candidate's own case (storage.relatives), shown to staff only


@dataclass(frozen=True)
class StaffCaseView:
    """Everything about a case, decrypted, for staff eyes only."""

    code: str
    status: str
    visibility: str
    region: str
    detained_by: str | None
    detention_date: date | None
    reporter_id: int | None
    merged_into: str | None
    closed_reason: str | None
    created_at: datetime
    updated_at: datetime
    personal: dict[str, str | None]
    contacts: list[ContactView]
    events: list[EventView]
    allowed_next: list[CaseStatus] = field(default_factory=list)
    duplicate_of: str | None = None  # staff-only hint: an earlier case about the same person
    record: dict[str, Any] = field(default_factory=dict)  # the prisoner's record, by field key
    group: str | None = None  # the group of co-defendants, by name
    last_sign: LastSign | None = None  # the newest sign of life


@dataclass(frozen=True)
class InboxItem:
    code: str
    status: str
    region: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class InboxPage:
    items: list[InboxItem]
    page: int
    pages: int
    total: int


async def find_case(session: AsyncSession, code: str) -> Case:
    """The case with this code, or `CaseNotFound`."""
    case = await session.scalar(select(Case).where(Case.code == code))
    if case is None:
        raise CaseNotFound(code)
    return case


async def case_for_staff(
    session: AsyncSession, cipher: FieldCipher, code: str
) -> StaffCaseView | None:
    """The full case with personal fields, contacts and history opened; None if no such code."""
    case = await session.scalar(select(Case).where(Case.code == code))
    if case is None:
        return None
    master, cipher = cipher, await case_cipher(session, cipher, case.id)
    personal_row = await session.get(CasePersonal, case.id)
    personal = {
        name: cipher.open(getattr(personal_row, name)) if personal_row is not None else None
        for name in PERSONAL_FIELDS
    }
    contacts = (
        await session.scalars(
            select(CaseContact).where(CaseContact.case_id == case.id).order_by(CaseContact.id)
        )
    ).all()
    events = (
        await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
    ).all()
    merged_into = (
        await session.scalar(select(Case.code).where(Case.id == case.merged_into_id))
        if case.merged_into_id is not None
        else None
    )
    listed = {c.user_id for c in contacts}
    waiting: list[ContactView] = []
    for candidate in await relatives.candidates(session, case):
        if candidate.user_id in listed:
            continue
        row = await session.get(CaseContact, candidate.contact_id)
        theirs = await case_cipher(session, master, row.case_id) if row is not None else master
        waiting.append(
            ContactView(
                candidate.user_id,
                row.relation if row is not None else None,
                False,
                False,
                theirs.open(row.contact_phone) if row is not None else None,
                via=candidate.via_code,
            )
        )
    from storage.record import read_record  # the record reads the fields registry and recipients

    record = await read_record(session, master, case)
    return StaffCaseView(
        record=record.values,
        group=record.group_name,
        last_sign=await last_sign(session, case.id),
        code=case.code,
        status=case.status,
        visibility=case.visibility,
        region=case.region,
        detained_by=case.detained_by,
        detention_date=case.detention_date,
        reporter_id=case.reporter_id,
        merged_into=merged_into,
        closed_reason=case.closed_reason,
        created_at=case.created_at,
        updated_at=case.updated_at,
        personal=personal,
        contacts=[
            ContactView(
                c.user_id, c.relation, c.is_reporter, c.approved, cipher.open(c.contact_phone)
            )
            for c in contacts
        ]
        + waiting,
        events=[
            EventView(
                e.id,
                e.kind,
                e.old_status,
                e.new_status,
                e.public,
                cipher.open(e.body),
                e.actor_id,
                e.created_at,
            )
            for e in events
        ],
        allowed_next=allowed_next(case.status),
        duplicate_of=case.duplicate_of,
    )


async def inbox(session: AsyncSession, page: int = 0, page_size: int = 8) -> InboxPage:
    """Cases waiting for staff (new, and need_info), oldest first."""
    waiting = Case.status.in_(INBOX_STATUSES)
    total = int(await session.scalar(select(func.count()).select_from(Case).where(waiting)) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)
    rows = await session.scalars(
        select(Case)
        .where(waiting)
        .order_by(Case.created_at, Case.id)
        .offset(page * page_size)
        .limit(page_size)
    )
    items = [InboxItem(c.code, c.status, c.region, c.created_at, c.updated_at) for c in rows]
    return InboxPage(items=items, page=page, pages=pages, total=total)
