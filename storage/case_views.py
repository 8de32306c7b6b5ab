"""Reading a case: what staff see on a card and in the inbox. Nothing here changes anything.

`find_case` is the one lookup every operation starts from (`CaseNotFound` for an unknown code).
What happens when a case changes is `storage.cases`; who hears about it, `storage.recipients`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_
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
    id: int = 0

    @property
    def key(self) -> InboxKey:
        return InboxKey(self.created_at, self.id)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class InboxKey:
    """Where a case stands in the inbox's order (oldest first, then by id): a page button
    carries the key of the row next to it, so a page is one index range, however deep."""

    created_at: datetime
    id: int

    @property
    def micros(self) -> int:
        """`created_at` as whole microseconds since 1970 (what a button carries)."""
        return (self.created_at - EPOCH) // timedelta(microseconds=1)

    @classmethod
    def of(cls, micros: int, case_id: int) -> InboxKey:
        """The key a button carried; a forged one out of range is held to the range."""
        micros = min(max(micros, 0), _BEYOND.micros)
        return cls(EPOCH + timedelta(microseconds=micros), min(max(case_id, 0), _BEYOND.id))


_BEYOND = InboxKey(datetime(9999, 12, 31, tzinfo=UTC), 2**62)
"""A key after every case: paging back from it gives the last page."""


@dataclass(frozen=True)
class InboxPage:
    items: list[InboxItem]
    page: int
    """The page's number (from 0) as the buttons counted it; a guide, not an address."""
    pages: int
    total: int
    has_previous: bool = False
    has_next: bool = False

    @property
    def first(self) -> InboxKey | None:
        return self.items[0].key if self.items else None

    @property
    def last(self) -> InboxKey | None:
        return self.items[-1].key if self.items else None


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


async def inbox(
    session: AsyncSession,
    *,
    after: InboxKey | None = None,
    before: InboxKey | None = None,
    page: int = 0,
    page_size: int = 8,
) -> InboxPage:
    """Cases waiting for staff (new, and need_info), oldest first, a page at a time by keyset:
    the page after `after`, or the one before `before`, or the first. `page` is the number the
    button counted; it is corrected at either end. Each waiting status is one range of
    `ix_cases_inbox` (status, created_at, id), merged here: no sort of every waiting case and no
    OFFSET, so the last page costs what the first does. Only the total counts every waiting
    case, from the index alone."""
    total = int(
        await session.scalar(
            select(func.count()).select_from(Case).where(Case.status.in_(INBOX_STATUSES))
        )
        or 0
    )
    pages = max(1, -(-total // page_size))
    if before is not None:
        found = await _inbox_range(session, before, forward=False, limit=page_size + 1)
        if len(found) > page_size:  # more before these: an inner page
            items = found[:page_size][::-1]
            following = before != _BEYOND
            return _page(items, page, pages, total, previous=True, following=following)
        after, page = None, 0  # back at the start (cases before may have left): the first page
    found = await _inbox_range(session, after, forward=True, limit=page_size + 1)
    if not found and after is not None and total:  # everything after it left: the last page
        return await inbox(session, before=_BEYOND, page=pages - 1, page_size=page_size)
    previous = after is not None and await _inbox_any_before(
        session, found[0].key if found else after
    )
    return _page(
        found[:page_size],
        page if previous else 0,
        pages,
        total,
        previous=previous,
        following=len(found) > page_size,
    )


def _page(
    items: list[InboxItem], page: int, pages: int, total: int, *, previous: bool, following: bool
) -> InboxPage:
    number = min(max(page, 1 if previous else 0), pages - 1)
    if not following:
        number = max(number, pages - 1) if previous else 0
    pages = max(pages, number + (2 if following else 1))  # rows joined since it was counted
    return InboxPage(items, number, pages, total, has_previous=previous, has_next=following)


async def _inbox_range(
    session: AsyncSession, start: InboxKey | None, *, forward: bool, limit: int
) -> list[InboxItem]:
    """Up to `limit` waiting cases after `start` (or before it, nearest first), one index range
    per status, merged."""
    key = tuple_(Case.created_at, Case.id)
    found: list[InboxItem] = []
    for status in INBOX_STATUSES:
        query = select(Case).where(Case.status == status)
        if start is not None:
            bound = (start.created_at, start.id)
            query = query.where(key > bound if forward else key < bound)
        if forward:
            query = query.order_by(Case.created_at, Case.id)
        else:
            query = query.order_by(Case.created_at.desc(), Case.id.desc())
        for c in await session.scalars(query.limit(limit)):
            found.append(InboxItem(c.code, c.status, c.region, c.created_at, c.updated_at, c.id))
    found.sort(key=lambda item: item.key, reverse=not forward)
    return found[:limit]


async def _inbox_any_before(session: AsyncSession, key: InboxKey) -> bool:
    """Whether a waiting case comes before `key` (one index probe per status)."""
    for status in INBOX_STATUSES:
        earlier = await session.scalar(
            select(Case.id)
            .where(
                Case.status == status, tuple_(Case.created_at, Case.id) < (key.created_at, key.id)
            )
            .limit(1)
        )
        if earlier is not None:
            return True
    return False
