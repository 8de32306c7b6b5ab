"""What happens when staff change a case: the one place to read it.

Every mutating operation here runs inside the caller's transaction (``async with sessions() as s,
s.begin()``) and writes, together: the case row, a `CaseEvent`, one outbox row per recipient, and
an audit row. So a crash can never leave a change without its notifications, nor a notification
without its change, and the same event can never be queued twice to one chat (the outbox key is
``event:<event id>:<chat id>``).

Who hears about what:
- the family (the reporter and contacts staff approved): status changes, public notes, questions,
  merges, and the return home;
- subscribed monitors (`storage.subscriptions.monitor_recipients`): status changes and public
  notes of cases that are not staff-only, with the detainee's name only if the case is public;
- every staff member and admin: the return home. (A family's own messages, answers to questions
  included, are `storage.threads`.)

Permission checks happen in `handlers.guard` before these functions run; these functions enforce
the lifecycle (`storage.lifecycle`) and record who did it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, fields, relatives
from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import CaseStatus, EventKind, OutboxKind, Role
from storage.lifecycle import OPEN, allowed_next, check_transition
from storage.models import Case, CaseContact, CaseEvent, CasePersonal, User
from storage.outbox import PRIORITY_CASE_ALERT, PRIORITY_STAFF, Outgoing, enqueue, event_key
from storage.subscriptions import monitor_alerts, monitor_may_hear, monitor_recipients
from storage.users import users_with_role

PERSONAL_FIELDS = fields.REGISTRY.columns(fields.PERSONAL)
CLOSE_REASONS = ("duplicate", "withdrawn", "rejected")
INBOX_STATUSES = (CaseStatus.NEW, CaseStatus.NEED_INFO)

T_STATUS = "cases.status_changed"
T_NOTE = "cases.public_note"
T_INFO = "cases.info_requested"
T_RETURNED = "cases.returned"
T_RETURNED_STAFF = "cases.returned_staff"
T_MERGED = "cases.merged"
T_LINKED = "cases.contact_linked"


class CaseNotFound(LookupError):
    """No case has this code (the message is the code only)."""


class CaseRefused(ValueError):
    """An operation that is not a status move but is still not possible (merge into itself...)."""

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


@dataclass(frozen=True)
class StaffContacts:
    """Where staff hear things: admins (from settings) and the staff group chat, if any."""

    admin_ids: frozenset[int] = frozenset()
    group_chat_id: int | None = None


@dataclass(frozen=True)
class Change:
    """What an operation did, for the handler's answer."""

    code: str
    old_status: str
    new_status: str
    event_id: int
    queued: int


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


# -- reading -------------------------------------------------------------------------------------


async def _case(session: AsyncSession, code: str) -> Case:
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
    return StaffCaseView(
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


async def family_of(session: AsyncSession, case: Case) -> list[int]:
    """The reporter and approved contacts who can still be reached, reporter first."""
    rows = await session.execute(
        select(CaseContact.user_id, CaseContact.is_reporter)
        .join(User, User.id == CaseContact.user_id)
        .where(
            CaseContact.case_id == case.id,
            (CaseContact.approved.is_(True)) | (CaseContact.is_reporter.is_(True)),
            User.blocked.is_(False),
            User.forgotten_at.is_(None),
        )
        .order_by(CaseContact.is_reporter.desc(), CaseContact.id)
    )
    family = [user_id for user_id, _ in rows]
    if case.reporter_id is not None and case.reporter_id not in family:
        reporter = await session.get(User, case.reporter_id)
        if reporter is not None and not reporter.blocked and reporter.forgotten_at is None:
            family.insert(0, case.reporter_id)
    return family


async def all_staff(session: AsyncSession, staff: StaffContacts) -> list[int]:
    """Every staff member and admin, and the staff group: who hears about a return home."""
    chats = list(await users_with_role(session, Role.STAFF))
    chats += sorted(staff.admin_ids)
    if staff.group_chat_id is not None:
        chats.append(staff.group_chat_id)
    return list(dict.fromkeys(chats))


def staff_desk(staff: StaffContacts) -> list[int]:
    """Where routine staff notices go: the staff group, or the admins when there is none."""
    if staff.group_chat_id is not None:
        return [staff.group_chat_id]
    return sorted(staff.admin_ids)


# -- writing -------------------------------------------------------------------------------------


async def _name(session: AsyncSession, cipher: FieldCipher, case: Case) -> str | None:
    personal = await session.get(CasePersonal, case.id)
    if personal is None or personal.detainee_name is None:
        return None
    return (await case_cipher(session, cipher, case.id)).open(personal.detainee_name)


def _event(
    session: AsyncSession,
    cipher: FieldCipher,
    case: Case,
    kind: EventKind,
    *,
    actor_id: int | None,
    now: datetime,
    old: str | None = None,
    new: str | None = None,
    public: bool = False,
    body: str | None = None,
) -> CaseEvent:
    """`cipher` is the case's (`case_cipher`): it seals the body."""
    assert body is None or cipher.key_id is not None, "an event body is sealed with the case key"
    event = CaseEvent(
        case_id=case.id,
        kind=kind,
        old_status=old,
        new_status=new,
        public=public,
        body=cipher.seal(body) if body else None,
        actor_id=actor_id,
        created_at=now,
    )
    session.add(event)
    case.updated_at = now
    return event


async def _notify(
    session: AsyncSession,
    cipher: FieldCipher,
    case: Case,
    event: CaseEvent,
    template: str,
    params: dict[str, Any],
    *,
    now: datetime,
    family: bool = True,
    monitors: bool = True,
    staff: Iterable[int] = (),
    staff_template: str | None = None,
) -> int:
    """Queue the event to the family (with the name), monitors (name only if public), staff."""
    await session.flush()
    messages: list[Outgoing] = []
    name = await _name(session, cipher, case)
    if family:
        family_params = {**params, "name": name}
        messages += [
            Outgoing(chat, event_key(event.id, chat), template, family_params, event_id=event.id)
            for chat in await family_of(session, case)
        ]
    if monitors:
        note = params.get("note")
        messages += await monitor_alerts(session, case, event, name=name, note=note)
    messages += [
        Outgoing(
            chat,
            event_key(event.id, chat),
            staff_template or template,
            {"code": case.code, "status": case.status},
            kind=OutboxKind.STAFF_ALERT,
            priority=PRIORITY_STAFF if staff_template != T_RETURNED_STAFF else PRIORITY_CASE_ALERT,
            event_id=event.id,
        )
        for chat in staff
    ]
    return await enqueue(session, cipher, messages, now=now)


async def change_status(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    new_status: CaseStatus,
    *,
    actor_id: int,
    now: datetime,
    staff: StaffContacts = StaffContacts(),
    public_note: str | None = None,
    closed_reason: str | None = None,
    action: str = "case.status",
) -> Change:
    """Move a case along the lifecycle (raises `TransitionRefused` outside it) and tell everyone
    who should know; a return home also goes to all staff."""
    case = await _case(session, code)
    cipher = await case_cipher(session, cipher, case.id)
    old = case.status
    check_transition(old, new_status)
    case.status = new_status
    case.closed_reason = closed_reason if new_status == CaseStatus.CLOSED else None
    event = _event(
        session,
        cipher,
        case,
        EventKind.STATUS_CHANGED,
        actor_id=actor_id,
        now=now,
        old=old,
        new=new_status,
        public=True,
        body=public_note,
    )
    returned = new_status == CaseStatus.RETURNED
    params = {"code": case.code, "old": old, "new": str(new_status), "note": public_note}
    queued = await _notify(
        session,
        cipher,
        case,
        event,
        T_RETURNED if returned else T_STATUS,
        params,
        now=now,
        staff=await all_staff(session, staff) if returned else (),
        staff_template=T_RETURNED_STAFF,
    )
    audit.record(
        session,
        actor_id=actor_id,
        action=action,
        case_code=case.code,
        detail=f"{old}->{new_status}",
        at=now,
    )
    return Change(case.code, old, new_status, event.id, queued)


async def mark_returned(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    *,
    actor_id: int,
    now: datetime,
    staff: StaffContacts = StaffContacts(),
    public_note: str | None = None,
) -> Change:
    """The moment families wait for: home, in government-controlled territory."""
    return await change_status(
        session,
        cipher,
        code,
        CaseStatus.RETURNED,
        actor_id=actor_id,
        now=now,
        staff=staff,
        public_note=public_note,
        action="case.returned",
    )


async def close_case(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    reason: str,
    *,
    actor_id: int,
    now: datetime,
    public_note: str | None = None,
) -> Change:
    if reason not in CLOSE_REASONS:
        raise CaseRefused(code, "unknown close reason")
    return await change_status(
        session,
        cipher,
        code,
        CaseStatus.CLOSED,
        actor_id=actor_id,
        now=now,
        public_note=public_note,
        closed_reason=reason,
        action="case.close",
    )


async def reopen(
    session: AsyncSession, cipher: FieldCipher, code: str, *, actor_id: int, now: datetime
) -> Change:
    """The only way out of `closed`: back to review."""
    return await change_status(
        session,
        cipher,
        code,
        CaseStatus.UNDER_REVIEW,
        actor_id=actor_id,
        now=now,
        action="case.reopen",
    )


async def keep_for_case(
    session: AsyncSession, code: str, keep: bool, *, actor_id: int, now: datetime
) -> str:
    """Staff mark the detainee's details as needed for the case, so they survive the reporter's
    /forget (without the reporter's identity); unmarking lets /forget erase them again."""
    case = await _case(session, code)
    personal = await session.get(CasePersonal, case.id)
    if personal is None:
        raise CaseRefused(case.code, "no_personal_data")
    personal.kept_for_case = keep
    audit.record(
        session,
        actor_id=actor_id,
        action="case.keep" if keep else "case.unkeep",
        case_code=case.code,
        at=now,
    )
    return case.code


@dataclass(frozen=True)
class NoteReaders:
    """Who reads a note on a case: how many family members and how many monitors."""

    code: str
    family: int
    monitors: int
    monitors_may_read: bool  # the case is public: a note for family and monitors reaches them
    event_id: int = 0  # once sent


def monitors_may_read_notes(visibility: str) -> bool:
    return monitor_may_hear(visibility, EventKind.PUBLIC_NOTE)


async def note_readers(
    session: AsyncSession, code: str, *, monitors: bool, new_status: str | None = None
) -> NoteReaders:
    """Who would read a note sent now (with `monitors`, the case's subscribed monitors too), so
    staff are told before they write it. With `new_status`: a note sent with that status change
    (monitors who get the change read its note too, on a public case)."""
    case = await _case(session, code)
    family = len(await family_of(session, case))
    followers = 0
    if monitors and monitors_may_read_notes(case.visibility):
        kind = EventKind.STATUS_CHANGED if new_status else EventKind.PUBLIC_NOTE
        probe = CaseEvent(case_id=case.id, kind=kind, new_status=new_status)
        followers = len(await monitor_recipients(session, case, probe))
    return NoteReaders(case.code, family, followers, monitors_may_read_notes(case.visibility))


async def send_note(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    text: str,
    *,
    monitors: bool,
    actor_id: int,
    now: datetime,
) -> NoteReaders:
    """A note for the family; with `monitors`, also for the monitors who follow the case (only a
    public case's notes reach them). Without it the note is a FAMILY_NOTE, which no monitor alert
    or digest carries, even if the case is made public later. Returns who it was queued to."""
    case = await _case(session, code)
    cipher = await case_cipher(session, cipher, case.id)
    event = _event(
        session,
        cipher,
        case,
        EventKind.PUBLIC_NOTE if monitors else EventKind.FAMILY_NOTE,
        actor_id=actor_id,
        now=now,
        public=True,
        body=text,
    )
    await session.flush()
    name = await _name(session, cipher, case)
    params = {"code": case.code, "note": text, "name": name}
    family = [
        Outgoing(chat, event_key(event.id, chat), T_NOTE, params, event_id=event.id)
        for chat in await family_of(session, case)
    ]
    followers = await monitor_alerts(session, case, event, name=name, note=text) if monitors else []
    await enqueue(session, cipher, family + followers, now=now)
    audit.record(
        session,
        actor_id=actor_id,
        action="case.public_note" if monitors else "case.family_note",
        case_code=case.code,
        detail=f"family {len(family)}, monitors {len(followers)}",
        at=now,
    )
    return NoteReaders(
        case.code,
        len(family),
        len(followers),
        monitors_may_read_notes(case.visibility),
        event.id,
    )


async def add_public_note(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    text: str,
    *,
    actor_id: int,
    now: datetime,
) -> Change:
    """A note the family (and subscribed monitors of a public case) will read."""
    sent = await send_note(session, cipher, code, text, monitors=True, actor_id=actor_id, now=now)
    case = await _case(session, code)
    cipher = await case_cipher(session, cipher, case.id)
    return Change(case.code, case.status, case.status, sent.event_id, sent.family + sent.monitors)


async def add_internal_note(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    text: str,
    *,
    actor_id: int,
    now: datetime,
) -> Change:
    """A note for staff only: nobody is notified."""
    case = await _case(session, code)
    cipher = await case_cipher(session, cipher, case.id)
    event = _event(
        session, cipher, case, EventKind.INTERNAL_NOTE, actor_id=actor_id, now=now, body=text
    )
    await session.flush()
    audit.record(
        session, actor_id=actor_id, action="case.internal_note", case_code=case.code, at=now
    )
    return Change(case.code, case.status, case.status, event.id, 0)


async def request_info(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    question: str,
    *,
    actor_id: int,
    now: datetime,
) -> Change:
    """Ask the family a question: the case moves to need_info and waits for their answer."""
    case = await _case(session, code)
    cipher = await case_cipher(session, cipher, case.id)
    old = case.status
    check_transition(old, CaseStatus.NEED_INFO)
    case.status = CaseStatus.NEED_INFO
    event = _event(
        session,
        cipher,
        case,
        EventKind.INFO_REQUESTED,
        actor_id=actor_id,
        now=now,
        old=old,
        new=CaseStatus.NEED_INFO,
        body=question,
    )
    params = {"code": case.code, "question": question}
    queued = await _notify(session, cipher, case, event, T_INFO, params, now=now, monitors=False)
    audit.record(
        session,
        actor_id=actor_id,
        action="case.request_info",
        case_code=case.code,
        detail=f"{old}->{CaseStatus.NEED_INFO}",
        at=now,
    )
    return Change(case.code, old, CaseStatus.NEED_INFO, event.id, queued)


@dataclass(frozen=True)
class MergeSide:
    code: str
    status: str
    region: str
    detention_date: date | None


async def merge_preview(
    session: AsyncSession, code: str, into_code: str
) -> tuple[MergeSide, MergeSide]:
    """Both cases as staff confirm a merge (codes, statuses, no names); raises as `merge_cases`
    would, so a mistyped code is caught before anything changes."""
    case, target = await _merge_pair(session, code, into_code)
    check_transition(case.status, CaseStatus.CLOSED)
    return (
        MergeSide(case.code, case.status, case.region, case.detention_date),
        MergeSide(target.code, target.status, target.region, target.detention_date),
    )


async def _merge_pair(session: AsyncSession, code: str, into_code: str) -> tuple[Case, Case]:
    if code == into_code:
        raise CaseRefused(code, "a case cannot be merged into itself")
    case = await _case(session, code)
    target = await _case(session, into_code)
    if target.status in (CaseStatus.CLOSED, CaseStatus.RETURNED, CaseStatus.DECEASED):
        raise CaseRefused(into_code, "the surviving case is final")
    if case.merged_into_id is not None:
        raise CaseRefused(code, "already merged")
    return case, target


async def merge_cases(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    into_code: str,
    *,
    actor_id: int,
    now: datetime,
) -> Change:
    """Close `code` as a duplicate of `into_code`.

    Its family is not linked to the surviving case: each of them waits for a staff member to
    approve them there (`storage.relatives`, `link_contact`), and none of them is told anything
    about the surviving case meanwhile. Only those already family of both hear of the merge.
    """
    case, target = await _merge_pair(session, code, into_code)
    cipher = await case_cipher(session, cipher, case.id)
    old = case.status
    check_transition(old, CaseStatus.CLOSED)
    case.status = CaseStatus.CLOSED
    case.closed_reason = "duplicate"
    case.merged_into_id = target.id
    event = _event(
        session,
        cipher,
        case,
        EventKind.MERGED,
        actor_id=actor_id,
        now=now,
        old=old,
        new=CaseStatus.CLOSED,
        public=True,
    )
    _event(session, cipher, target, EventKind.MERGED, actor_id=actor_id, now=now, body=None)
    await session.flush()
    already = set(await family_of(session, target))
    params = {"code": case.code, "into": target.code}
    queued = await enqueue(
        session,
        cipher,
        [
            Outgoing(chat, event_key(event.id, chat), T_MERGED, params, event_id=event.id)
            for chat in await family_of(session, case)
            if chat in already
        ],
        now=now,
    )
    audit.record(
        session,
        actor_id=actor_id,
        action="case.merge",
        case_code=case.code,
        detail=f"into {target.code}",
        at=now,
    )
    return Change(case.code, old, CaseStatus.CLOSED, event.id, queued)


async def link_contact(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    user_id: int,
    *,
    actor_id: int,
    now: datetime,
    verified_by: str,
) -> Change:
    """Staff approve someone waiting to be family of the case (`storage.relatives`), having
    compared the reports and verified them by `verified_by` (one of VERIFICATION_METHODS): from
    now on they hear about the case too. Nobody else is told. Refused for anyone not waiting,
    such as a user who has since used /forget."""
    if verified_by not in relatives.VERIFICATION_METHODS:
        raise CaseRefused(code, "unknown verification")
    case = await _case(session, code)
    cipher = await case_cipher(session, cipher, case.id)
    waiting = await relatives.candidate(session, case, user_id)
    if waiting is None:
        raise CaseRefused(code, "not waiting for approval")
    source = await session.get(CaseContact, waiting.contact_id)
    contact = await session.scalar(
        select(CaseContact).where(CaseContact.case_id == case.id, CaseContact.user_id == user_id)
    )
    if contact is None:
        contact = CaseContact(case_id=case.id, user_id=user_id, created_at=now)
        session.add(contact)
    if source is not None and source is not contact:
        # Their details move from their own case's key to this case's.
        theirs = await case_cipher(session, cipher, source.case_id)
        contact.relation = source.relation
        contact.contact_phone = cipher.seal(theirs.open(source.contact_phone))
        contact.telegram_name = cipher.seal(theirs.open(source.telegram_name))
        contact.telegram_username = cipher.seal(theirs.open(source.telegram_username))
    contact.approved = True
    event = _event(session, cipher, case, EventKind.CONTACT_LINKED, actor_id=actor_id, now=now)
    await session.flush()
    queued = await enqueue(
        session,
        cipher,
        [
            Outgoing(
                user_id,
                event_key(event.id, user_id),
                T_LINKED,
                {"code": case.code, "name": await _name(session, cipher, case)},
                event_id=event.id,
            )
        ],
        now=now,
    )
    audit.record(
        session,
        actor_id=actor_id,
        action="case.link_contact",
        case_code=case.code,
        target_user_id=user_id,
        detail=f"verified: {verified_by}"
        + (f", own case {waiting.via_code}" if waiting.via_code else ""),
        at=now,
    )
    return Change(case.code, case.status, case.status, event.id, queued)


def staff_contacts(admin_ids: Iterable[int], group_chat_id: int | None) -> StaffContacts:
    return StaffContacts(frozenset(admin_ids), group_chat_id)


# -- reminders -----------------------------------------------------------------------------------

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
            "name": await _name(session, keyed, case),
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
