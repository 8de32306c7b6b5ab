"""Filing a family's report, and what a family (or a stranger with a code) may read back.

`file_report` writes everything in the caller's ONE transaction: the case, its sealed personal
fields, the reporter as a contact, the CREATED event, the staff notices (outbox) and an audit row,
so a crash leaves either a whole report or nothing.

Duplicates are found by a blind index (a keyed hash of the normalised name and date of birth, or
age), never by the name in clear. A report about a person already on file joins that case as
another, *unapproved* contact and staff are told. The new reporter is not given the existing case's
code until staff link them: otherwise anyone who knows a name and a birth date could learn, by
filing a report, that the person was detained and follow the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.codes import new_case_code
from storage.crypto import FieldCipher
from storage.enums import CaseStatus, EventKind, OutboxKind, Role, Visibility
from storage.models import Case, CaseContact, CaseEvent, CasePersonal
from storage.outbox import PRIORITY_STAFF, Outgoing, enqueue, event_key
from storage.users import users_with_role

T_STAFF_NEW_REPORT = "reports.staff_new_report"
T_STAFF_CONTACT_JOINED = "reports.staff_contact_joined"
PUBLICLY_LOOKED_UP = (Visibility.PUBLIC, Visibility.ANONYMOUS)


class ReportLimitReached(Exception):
    """The user filed `reports_per_day` reports in the last 24 hours."""


class Filed(StrEnum):
    NEW_CASE = "new_case"
    JOINED = "joined"  # linked to someone else's case, waiting for staff to approve
    ALREADY_REPORTED = "already_reported"  # this user already follows that person's case


@dataclass(frozen=True)
class ReportDraft:
    """The answers of the report conversation, already checked (see handlers.report_fields)."""

    relation: str | None
    detainee_name: str
    detention_date: date | None
    region: str
    birth_date: date | None = None
    age: int | None = None
    place: str | None = None
    detained_by: str | None = None
    charges: str | None = None
    held_at: str | None = None
    lawyer: str | None = None
    health: str | None = None
    phone: str | None = None
    visibility: str = Visibility.STAFF_ONLY


@dataclass(frozen=True)
class FiledReport:
    outcome: Filed
    code: str | None  # None when JOINED: the code is given when staff link the reporter
    queued: int


@dataclass(frozen=True)
class StaffChats:
    """Where staff hear about new reports: the staff group, else every staff member and admin."""

    group_chat_id: int | None = None
    admin_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class CaseSummary:
    """One case as its own family sees it in /status."""

    code: str
    status: str
    detainee_name: str | None
    last_note: str | None
    changed_at: datetime
    full: bool = True  # False: a stranger's view (status word and date only)


@dataclass(frozen=True)
class MyCases:
    cases: list[CaseSummary]
    waiting_for_link: int  # reports that joined another family's case, not yet approved


def person_index(
    cipher: FieldCipher, name: str, birth_date: date | None, age: int | None
) -> str | None:
    """The duplicate-detection key; None without a birth date or age (a name alone is too
    common to join two families' reports on)."""
    if birth_date is not None:
        return cipher.blind_index(name, birth_date.isoformat())
    if age is not None:
        return cipher.blind_index(name, f"age {age}")
    return None


def person_index_from_stored(
    cipher: FieldCipher, name: str | None, birth_text: str | None
) -> str | None:
    """The same key recomputed from the stored (opened) fields, as key rotation needs it.

    `birth_text` is what `_birth_text` sealed: an ISO date, or "age N on YYYY-MM-DD".
    """
    if not name or not birth_text:
        return None
    if birth_text.startswith("age "):
        age = birth_text.removeprefix("age ").split(" on ", 1)[0]
        return cipher.blind_index(name, f"age {age}")
    return cipher.blind_index(name, birth_text)


def _birth_text(draft: ReportDraft, today: date) -> str | None:
    if draft.birth_date is not None:
        return draft.birth_date.isoformat()
    if draft.age is not None:
        return f"age {draft.age} on {today.isoformat()}"
    return None


async def staff_chats(session: AsyncSession, staff: StaffChats) -> list[int]:
    if staff.group_chat_id is not None:
        return [staff.group_chat_id]
    chats = list(await users_with_role(session, Role.STAFF)) + sorted(staff.admin_ids)
    return list(dict.fromkeys(chats))


async def reports_in_last_day(session: AsyncSession, user_id: int, *, now: datetime) -> int:
    """New cases and joined reports this user filed in the last 24 hours."""
    since = now - timedelta(days=1)
    count = await session.scalar(
        select(func.count())
        .select_from(CaseContact)
        .where(
            CaseContact.user_id == user_id,
            CaseContact.created_at >= since,
            CaseContact.is_reporter.is_(True) | CaseContact.approved.is_(False),
        )
    )
    return int(count or 0)


async def _unused_code(session: AsyncSession) -> str:
    while True:
        code = new_case_code()
        if await session.scalar(select(Case.id).where(Case.code == code)) is None:
            return code


async def _existing_case(session: AsyncSession, index: str | None) -> Case | None:
    if index is None:
        return None
    return await session.scalar(
        select(Case)
        .where(Case.person_index == index, Case.merged_into_id.is_(None))
        .order_by(Case.created_at.desc(), Case.id.desc())
        .limit(1)
    )


def _joined_summary(draft: ReportDraft) -> str:
    """What the second family said, kept (sealed) on the event so staff lose nothing."""
    parts = [
        ("relation", draft.relation),
        ("detention date", draft.detention_date.isoformat() if draft.detention_date else None),
        ("region", draft.region),
        ("place", draft.place),
        ("detained by", draft.detained_by),
        ("charges", draft.charges),
        ("held at", draft.held_at),
        ("lawyer", draft.lawyer),
        ("health", draft.health),
    ]
    return "Another report about this person: " + "; ".join(
        f"{label}: {value}" for label, value in parts if value
    )


async def file_report(
    session: AsyncSession,
    cipher: FieldCipher,
    reporter_id: int,
    draft: ReportDraft,
    *,
    now: datetime,
    staff: StaffChats,
    reports_per_day: int,
) -> FiledReport:
    """Store the report (or join it to the case already on file) and tell staff."""
    if await reports_in_last_day(session, reporter_id, now=now) >= reports_per_day:
        raise ReportLimitReached
    index = person_index(cipher, draft.detainee_name, draft.birth_date, draft.age)
    existing = await _existing_case(session, index)
    if existing is not None:
        return await _join(session, cipher, existing, reporter_id, draft, now=now, staff=staff)
    case = Case(
        code=await _unused_code(session),
        status=CaseStatus.NEW,
        visibility=draft.visibility,
        region=draft.region,
        detained_by=draft.detained_by,
        detention_date=draft.detention_date,
        person_index=index,
        reporter_id=reporter_id,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    await session.flush()
    session.add(
        CasePersonal(
            case_id=case.id,
            detainee_name=cipher.seal(draft.detainee_name),
            birth_date=cipher.seal(_birth_text(draft, now.date())),
            place=cipher.seal(draft.place),
            charges=cipher.seal(draft.charges),
            held_at=cipher.seal(draft.held_at),
            lawyer=cipher.seal(draft.lawyer),
            health=cipher.seal(draft.health),
        )
    )
    session.add(
        CaseContact(
            case_id=case.id,
            user_id=reporter_id,
            relation=draft.relation,
            is_reporter=True,
            approved=True,
            contact_phone=cipher.seal(draft.phone),
            created_at=now,
        )
    )
    event = CaseEvent(
        case_id=case.id,
        kind=EventKind.CREATED,
        new_status=CaseStatus.NEW,
        actor_id=reporter_id,
        created_at=now,
    )
    session.add(event)
    await session.flush()
    queued = await _tell_staff(session, cipher, case, event, T_STAFF_NEW_REPORT, staff, now=now)
    audit.record(session, actor_id=reporter_id, action="report.file", case_code=case.code, at=now)
    return FiledReport(Filed.NEW_CASE, case.code, queued)


async def _join(
    session: AsyncSession,
    cipher: FieldCipher,
    case: Case,
    reporter_id: int,
    draft: ReportDraft,
    *,
    now: datetime,
    staff: StaffChats,
) -> FiledReport:
    contact = await session.scalar(
        select(CaseContact).where(
            CaseContact.case_id == case.id, CaseContact.user_id == reporter_id
        )
    )
    if contact is not None:
        audit.record(
            session,
            actor_id=reporter_id,
            action="report.repeat",
            case_code=case.code,
            at=now,
        )
        visible = contact.is_reporter or contact.approved
        if visible:
            return FiledReport(Filed.ALREADY_REPORTED, case.code, 0)
        return FiledReport(Filed.JOINED, None, 0)
    session.add(
        CaseContact(
            case_id=case.id,
            user_id=reporter_id,
            relation=draft.relation,
            is_reporter=False,
            approved=False,
            contact_phone=cipher.seal(draft.phone),
            created_at=now,
        )
    )
    event = CaseEvent(
        case_id=case.id,
        kind=EventKind.CONTACT_LINKED,
        public=False,
        body=cipher.seal(_joined_summary(draft)),
        actor_id=reporter_id,
        created_at=now,
    )
    session.add(event)
    case.updated_at = now
    await session.flush()
    queued = await _tell_staff(session, cipher, case, event, T_STAFF_CONTACT_JOINED, staff, now=now)
    audit.record(
        session,
        actor_id=reporter_id,
        action="report.join",
        case_code=case.code,
        target_user_id=reporter_id,
        at=now,
    )
    return FiledReport(Filed.JOINED, None, queued)


async def _tell_staff(
    session: AsyncSession,
    cipher: FieldCipher,
    case: Case,
    event: CaseEvent,
    template: str,
    staff: StaffChats,
    *,
    now: datetime,
) -> int:
    """No name in the notice: see jobs.messages.reports for why."""
    params = {
        "code": case.code,
        "region": case.region,
        "detention_date": case.detention_date.isoformat() if case.detention_date else None,
    }
    return await enqueue(
        session,
        cipher,
        [
            Outgoing(
                chat,
                event_key(event.id, chat),
                template,
                params,
                kind=OutboxKind.STAFF_ALERT,
                priority=PRIORITY_STAFF,
                event_id=event.id,
            )
            for chat in await staff_chats(session, staff)
        ],
        now=now,
    )


# -- reading back ------------------------------------------------------------------------------


async def _last_public_note(session: AsyncSession, cipher: FieldCipher, case_id: int) -> str | None:
    body = await session.scalar(
        select(CaseEvent.body)
        .where(CaseEvent.case_id == case_id, CaseEvent.public.is_(True), CaseEvent.body.isnot(None))
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )
    return cipher.open(body)


async def _full_summary(session: AsyncSession, cipher: FieldCipher, case: Case) -> CaseSummary:
    personal = await session.get(CasePersonal, case.id)
    return CaseSummary(
        code=case.code,
        status=case.status,
        detainee_name=cipher.open(personal.detainee_name) if personal is not None else None,
        last_note=await _last_public_note(session, cipher, case.id),
        changed_at=case.updated_at,
    )


async def cases_of(session: AsyncSession, cipher: FieldCipher, user_id: int) -> MyCases:
    """The cases this user reported or was linked to by staff, most recently changed first."""
    rows = await session.execute(
        select(Case, CaseContact.approved, CaseContact.is_reporter)
        .join(CaseContact, CaseContact.case_id == Case.id)
        .where(CaseContact.user_id == user_id)
        .order_by(Case.updated_at.desc(), Case.id.desc())
    )
    summaries: list[CaseSummary] = []
    waiting = 0
    for case, approved, is_reporter in rows:
        if approved or is_reporter:
            summaries.append(await _full_summary(session, cipher, case))
        else:
            waiting += 1
    return MyCases(summaries, waiting)


async def look_up(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str | None,
    user_id: int,
    *,
    sees_every_case: bool = False,
) -> CaseSummary | None:
    """One case by code, as this user may see it.

    The family (reporter, approved contacts) and staff see it in full; anyone else sees only the
    status and its date, and only of a case the family did not keep staff-only. None otherwise,
    for an unknown code as for a hidden one, so that codes cannot be probed.
    """
    if code is None:
        return None
    case = await session.scalar(select(Case).where(Case.code == code))
    if case is None:
        return None
    if sees_every_case:
        return await _full_summary(session, cipher, case)
    contact = await session.scalar(
        select(CaseContact).where(CaseContact.case_id == case.id, CaseContact.user_id == user_id)
    )
    if contact is not None and (contact.is_reporter or contact.approved):
        return await _full_summary(session, cipher, case)
    if case.reporter_id == user_id:
        return await _full_summary(session, cipher, case)
    if case.visibility not in PUBLICLY_LOOKED_UP:
        return None
    return CaseSummary(case.code, case.status, None, None, case.updated_at, full=False)
