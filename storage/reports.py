"""Filing a family's report, and what a family (or a stranger with a code) may read back.

`file_report` writes everything in the caller's ONE transaction: the case, its sealed personal
fields, the reporter as a contact, the CREATED event, the staff notices (outbox) and an audit row,
so a crash leaves either a whole report or nothing.

Duplicates are found by a blind index (a keyed hash of the normalised name and date of birth, or
age), never by the name in clear. Anyone who knows a detainee's name and birth date can file a
report, so a report about a person already on file must not tell that it is: it is filed as its
own new case, with its own code, exactly like a first report (same rows, same statements, same
answer), plus a staff-only hint `Case.duplicate_of` that staff see on the card and in the notice.
Staff then merge or link (`storage.relatives`); until they approve the new reporter as family of the
earlier case, the new reporter learns nothing about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, fields
from storage.codes import new_case_code
from storage.crypto import FieldCipher
from storage.data_keys import new_key
from storage.enums import CaseStatus, EventKind, OutboxKind, Role, Visibility
from storage.models import Case, CaseContact, CaseEvent, CasePersonal, DataKey
from storage.outbox import PRIORITY_STAFF, Outgoing, enqueue, event_key
from storage.search import index_case_name
from storage.users import users_with_role

T_STAFF_NEW_REPORT = "reports.staff_new_report"
T_STAFF_CONTACT_JOINED = "reports.staff_contact_joined"  # older rows only: reports no longer join
PUBLICLY_LOOKED_UP = (Visibility.PUBLIC, Visibility.ANONYMOUS)


class ReportLimitReached(Exception):
    """The user filed `reports_per_day` reports in the last 24 hours."""


class Filed(StrEnum):
    NEW_CASE = "new_case"  # also when the person is already on file: see the module's docstring
    ALREADY_REPORTED = "already_reported"  # this user already follows that person's case


@dataclass(frozen=True)
class ReportDraft:
    """The answers of the report form by field key, each already checked by its field's kind
    (`storage.fields`); `file_report` stores each where the registry says."""

    answers: Mapping[str, Any]

    @classmethod
    def of(cls, **answers: Any) -> ReportDraft:
        return cls(dict(answers))

    def but(self, **answers: Any) -> ReportDraft:
        """The same draft with some answers changed (tests compare neighbouring reports)."""
        return ReportDraft({**self.answers, **answers})

    @property
    def detainee_name(self) -> str:
        return str(self.answers[fields.NAME])

    @property
    def birth(self) -> tuple[date | None, int | None]:
        return fields.birth_of(self.answers.get(fields.BIRTH))


@dataclass(frozen=True)
class FiledReport:
    outcome: Filed
    code: str
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
    custody: str | None = None  # where the person stands (`enums.Custody`), kept by staff


@dataclass(frozen=True)
class MyCases:
    cases: list[CaseSummary]  # only cases they reported or were approved on: nothing pending


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

    `birth_text` is what the birth field stores: an ISO date, or "age N on YYYY-MM-DD".
    """
    if not name or not birth_text:
        return None
    if birth_text.startswith("age "):
        age = birth_text.removeprefix("age ").split(" on ", 1)[0]
        return cipher.blind_index(name, f"age {age}")
    return cipher.blind_index(name, birth_text)


def _columns(draft: ReportDraft, today: date) -> dict[str, dict[str, object]]:
    """The answers as column values, by table (unsealed yet); unanswered fields are left to
    the columns' defaults."""
    columns: dict[str, dict[str, object]] = {
        fields.CASES: {},
        fields.PERSONAL: {},
        fields.CONTACTS: {},
    }
    for field in fields.REGISTRY.fields:
        if field.stored is None or field.key not in draft.answers:
            continue
        value = field.kind.column(draft.answers[field.key], today)
        if value is not None or field.stored.sealed:
            columns[field.stored.table][field.stored.column] = value
    return columns


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


async def unused_code(session: AsyncSession) -> str:
    """A random case code no case has yet (codes are random: a collision is retried)."""
    while True:
        code = new_case_code()
        if await session.scalar(select(Case.id).where(Case.code == code)) is None:
            return code


async def _on_file(
    session: AsyncSession, index: str | None, user_id: int
) -> tuple[str | None, str | None]:
    """(the code of the earliest case about this person, the code of this user's own latest case
    about them): one query, whatever the answer, so that its cost tells nothing."""
    if index is None:
        return None, None
    own = (
        (CaseContact.case_id == Case.id)
        & (CaseContact.user_id == user_id)
        & (CaseContact.is_reporter.is_(True) | CaseContact.approved.is_(True))
    )
    rows = (
        await session.execute(
            select(Case.code, CaseContact.id)
            .outerjoin(CaseContact, own)
            .where(Case.person_index == index, Case.merged_into_id.is_(None))
            .order_by(Case.created_at, Case.id)
        )
    ).all()
    earliest = rows[0][0] if rows else None
    mine = [code for code, contact_id in rows if contact_id is not None]
    return earliest, mine[-1] if mine else None


async def file_report(
    session: AsyncSession,
    cipher: FieldCipher,
    reporter_id: int,
    draft: ReportDraft,
    *,
    now: datetime,
    staff: StaffChats,
    reports_per_day: int,
    telegram_name: str | None = None,
    telegram_username: str | None = None,
) -> FiledReport:
    """Store the report as a new case and tell staff (hinting at an earlier case about the same
    person, if any); a user who already follows that person's case is given its code again.

    `telegram_name` and `telegram_username` (as Telegram shows the reporter) are sealed on their
    contact row, so staff can see who is asking before linking them to another family's case."""
    if await reports_in_last_day(session, reporter_id, now=now) >= reports_per_day:
        raise ReportLimitReached
    index = person_index(cipher, draft.detainee_name, *draft.birth)
    earliest, own = await _on_file(session, index, reporter_id)
    if own is not None:
        audit.record(session, actor_id=reporter_id, action="report.repeat", case_code=own, at=now)
        return FiledReport(Filed.ALREADY_REPORTED, own, 0)
    columns = _columns(draft, now.date())
    case = Case(
        code=await unused_code(session),
        status=CaseStatus.NEW,
        person_index=index,
        duplicate_of=earliest,
        reporter_id=reporter_id,
        created_at=now,
        updated_at=now,
        **columns[fields.CASES],
    )
    session.add(case)
    await session.flush()
    # The case's own data key seals everything about it (storage.data_keys); the blind index
    # above stays on the master key, so it is comparable across cases.
    cipher = await new_key(session, cipher, case_id=case.id)
    session.add(CasePersonal(case_id=case.id, **_sealed(cipher, fields.PERSONAL, columns)))
    await index_case_name(session, cipher, case.id, draft.detainee_name)  # for /find by name
    session.add(
        CaseContact(
            case_id=case.id,
            user_id=reporter_id,
            is_reporter=True,
            approved=True,
            telegram_name=cipher.seal(telegram_name),
            telegram_username=cipher.seal(telegram_username),
            created_at=now,
            **_sealed(cipher, fields.CONTACTS, columns),
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


def _sealed(
    cipher: FieldCipher, table: str, columns: dict[str, dict[str, object]]
) -> dict[str, object]:
    """A table's column values, the sealed ones sealed with the case's key."""
    sealed = {f.column for f in fields.REGISTRY.stored_in(table) if f.stored and f.stored.sealed}
    return {
        name: cipher.seal(None if value is None else str(value)) if name in sealed else value
        for name, value in columns[table].items()
    }


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
    """No name in the notice: see bot.texts.messages.reports for why."""
    params = {
        "code": case.code,
        "region": case.region,
        "detention_date": case.detention_date.isoformat() if case.detention_date else None,
    }
    if case.duplicate_of is not None:
        params["duplicate_of"] = case.duplicate_of
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


def _summary_query() -> Select[Any]:
    """A case with everything its family's view needs, in one statement: the sealed name, the
    case's data key and its last public note (a correlated subquery on `case_events.case_id`),
    so /status is one query, not four per case (and opens them under one snapshot)."""
    last_note = (
        select(CaseEvent.body)
        .where(CaseEvent.case_id == Case.id, CaseEvent.public.is_(True), CaseEvent.body.isnot(None))
        .order_by(CaseEvent.id.desc())
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )
    return (
        select(
            Case.code,
            Case.status,
            Case.updated_at.label("changed_at"),
            Case.custody,
            Case.visibility,
            Case.reporter_id,
            CasePersonal.detainee_name.label("sealed_name"),
            DataKey.id.label("key_id"),
            DataKey.sealed.label("sealed_key"),
            last_note.label("sealed_note"),
        )
        .outerjoin(CasePersonal, CasePersonal.case_id == Case.id)
        .outerjoin(DataKey, DataKey.case_id == Case.id)
    )


def _full_summary(cipher: FieldCipher, row: Any) -> CaseSummary:
    """The family's view of a row of `_summary_query` (a case without a data key of its own
    was sealed by the master key)."""
    keyed = (
        cipher.for_data_key(row.key_id, row.sealed_key) if row.key_id is not None else cipher.master
    )
    return CaseSummary(
        code=row.code,
        status=row.status,
        detainee_name=keyed.open(row.sealed_name),
        last_note=keyed.open(row.sealed_note),
        changed_at=row.changed_at,
        custody=row.custody,
    )


# Built once, with bind parameters: composing the statement anew was about a third of a /status.
_CASES_OF = (
    _summary_query()
    .join(CaseContact, CaseContact.case_id == Case.id)
    .where(
        CaseContact.user_id == bindparam("user_id"),
        CaseContact.approved.is_(True) | CaseContact.is_reporter.is_(True),
    )
    .order_by(Case.updated_at.desc(), Case.id.desc())
)
_LOOK_UP = (
    _summary_query()
    .add_columns(CaseContact.is_reporter, CaseContact.approved)
    .outerjoin(
        CaseContact,
        (CaseContact.case_id == Case.id) & (CaseContact.user_id == bindparam("user_id")),
    )
    .where(Case.code == bindparam("code"))
)


async def cases_of(session: AsyncSession, cipher: FieldCipher, user_id: int) -> MyCases:
    """The cases this user reported or was linked to by staff, most recently changed first.
    A link staff have not approved is not mentioned at all (not even counted). One query."""
    rows = await session.execute(_CASES_OF, {"user_id": user_id})
    return MyCases([_full_summary(cipher, row) for row in rows])


async def look_up(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str | None,
    user_id: int,
    *,
    sees_every_case: bool = False,
) -> CaseSummary | None:
    """One case by code, as this user may see it (one query).

    The family (reporter, approved contacts) and staff see it in full; anyone else sees only the
    status and its date, and only of a case the family did not keep staff-only. None otherwise,
    for an unknown code as for a hidden one, so that codes cannot be probed.
    """
    if code is None:
        return None
    row = (await session.execute(_LOOK_UP, {"user_id": user_id, "code": code})).first()
    if row is None:
        return None
    if sees_every_case or row.is_reporter or row.approved or row.reporter_id == user_id:
        return _full_summary(cipher, row)
    if row.visibility not in PUBLICLY_LOOKED_UP:
        return None
    return CaseSummary(row.code, row.status, None, None, row.changed_at, full=False)
