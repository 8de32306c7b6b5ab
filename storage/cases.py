"""What happens when staff change a case: the one place to read it.

A status change, a note, a question to the family, a merge, a relative linked, the family's
consent narrowed: each operation here runs inside the caller's transaction (``async with
sessions() as s, s.begin()``) and writes, together, the case row, a `CaseEvent`, one outbox row
per recipient, and an audit row. So a crash can never leave a change without its notifications,
nor a notification without its change, and the same event can never be queued twice to one chat
(the outbox key is ``event:<event id>:<chat id>``).

What a move to each status means and sets off (its template, whether every staff member is
alerted, whether it needs a question or a reason) is a row of `storage.statuses`; the allowed
moves are `storage.lifecycle`, derived from it. Who hears about what is `storage.recipients`;
reading a case, `storage.case_views`; reminders, `storage.case_reminders`.

Permission checks happen in `handlers.guard` before these functions run (and
`handlers.staff_operation` turns their refusals into words); these functions enforce the
lifecycle and record who did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, relatives
from storage.case_views import find_case
from storage.crypto import FieldCipher
from storage.data_keys import case_cipher, key_cipher
from storage.enums import CaseStatus, CloseReason, EventKind, OutboxStatus, Visibility
from storage.lifecycle import FINAL, check_transition
from storage.models import Case, CaseContact, CaseEvent, CasePersonal, OutboxMessage
from storage.outbox import Outgoing, enqueue, event_key, open_params, seal_params
from storage.recipients import (
    NO_STAFF,
    NoteReaders,
    StaffContacts,
    all_staff,
    detainee_name,
    family_of,
    monitors_may_read_notes,
    notify,
)
from storage.statuses import STATUSES, CardFlow
from storage.subscriptions import T_MONITOR_ALERT, monitor_alerts, monitor_may_hear

T_NOTE = "cases.public_note"
T_INFO = "cases.info_requested"
T_MERGED = "cases.merged"
T_LINKED = "cases.contact_linked"
# How narrow each level of consent is: a move to a higher number narrows it.
_NARROWNESS = {Visibility.PUBLIC: 0, Visibility.ANONYMOUS: 1, Visibility.STAFF_ONLY: 2}


class CaseRefusal(StrEnum):
    """Why an operation that is not a lifecycle move is refused (`handlers.staff_operation`
    says each in words)."""

    SELF_MERGE = "self_merge"
    TARGET_FINAL = "target_final"
    ALREADY_MERGED = "already_merged"
    NOT_WAITING = "not_waiting"
    UNKNOWN_VERIFICATION = "unknown_verification"
    NEEDS_REASON = "needs_reason"
    NEEDS_QUESTION = "needs_question"
    NO_PERSONAL_DATA = "no_personal_data"


class CaseRefused(ValueError):
    """An operation that is not possible on this case (merge into itself...). No personal data."""

    def __init__(self, code: str, reason: CaseRefusal) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


@dataclass(frozen=True)
class Change:
    """What an operation did, for the handler's answer."""

    code: str
    old_status: str
    new_status: str
    event_id: int
    queued: int


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


async def change_status(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    new_status: CaseStatus,
    *,
    actor_id: int,
    now: datetime,
    staff: StaffContacts = NO_STAFF,
    public_note: str | None = None,
    closed_reason: str | None = None,
    action: str = "case.status",
) -> Change:
    """Move a case along the lifecycle (`TransitionRefused` outside it) and tell everyone who
    should know, as the status's row says (`storage.statuses`): the family in its template, the
    monitors who follow the case, and every staff member too for a status that alerts them all.

    A status reached by a question (need_info) is refused here (`request_info` asks it), and one
    that needs a reason (closed) takes `closed_reason`, one of `CloseReason`."""
    case = await find_case(session, code)
    cipher = await case_cipher(session, cipher, case.id)
    old = case.status
    check_transition(old, new_status)
    row = STATUSES[CaseStatus(new_status)]
    if row.flow == CardFlow.QUESTION:
        raise CaseRefused(case.code, CaseRefusal.NEEDS_QUESTION)
    if row.flow == CardFlow.REASON and closed_reason not in set(CloseReason):
        raise CaseRefused(case.code, CaseRefusal.NEEDS_REASON)
    case.status = new_status
    case.closed_reason = closed_reason if row.flow == CardFlow.REASON else None
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
    params = {"code": case.code, "old": old, "new": str(new_status), "note": public_note}
    queued = await notify(
        session,
        cipher,
        case,
        event,
        row.family_template,
        params,
        now=now,
        staff=await all_staff(session, staff) if row.alerts_all_staff else (),
        staff_template=row.staff_alert,
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
    """Close the case for `reason` (a `CloseReason`); the family is told like any change."""
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


async def keep_for_case(
    session: AsyncSession, code: str, keep: bool, *, actor_id: int, now: datetime
) -> str:
    """Staff mark the detainee's details as needed for the case, so they survive the reporter's
    /forget (without the reporter's identity); unmarking lets /forget erase them again."""
    case = await find_case(session, code)
    personal = await session.get(CasePersonal, case.id)
    if personal is None:
        raise CaseRefused(case.code, CaseRefusal.NO_PERSONAL_DATA)
    personal.kept_for_case = keep
    audit.record(
        session,
        actor_id=actor_id,
        action="case.keep" if keep else "case.unkeep",
        case_code=case.code,
        at=now,
    )
    return case.code


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
    case = await find_case(session, code)
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
    name = await detainee_name(session, cipher, case)
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
    case = await find_case(session, code)
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
    case = await find_case(session, code)
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
    queued = await notify(session, cipher, case, event, T_INFO, params, now=now, monitors=False)
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
        raise CaseRefused(code, CaseRefusal.SELF_MERGE)
    case = await find_case(session, code)
    target = await find_case(session, into_code)
    if target.status in FINAL:
        raise CaseRefused(into_code, CaseRefusal.TARGET_FINAL)
    if case.merged_into_id is not None:
        raise CaseRefused(code, CaseRefusal.ALREADY_MERGED)
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
    case.closed_reason = CloseReason.DUPLICATE
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
        raise CaseRefused(code, CaseRefusal.UNKNOWN_VERIFICATION)
    case = await find_case(session, code)
    cipher = await case_cipher(session, cipher, case.id)
    waiting = await relatives.candidate(session, case, user_id)
    if waiting is None:
        raise CaseRefused(code, CaseRefusal.NOT_WAITING)
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
                {"code": case.code, "name": await detainee_name(session, cipher, case)},
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


@dataclass(frozen=True)
class VisibilityChange:
    code: str
    old: str
    new: str
    event_id: int
    rewritten: int
    cancelled: int


async def change_visibility(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    new_visibility: Visibility,
    *,
    actor_id: int,
    now: datetime,
) -> VisibilityChange:
    """Record what the family now allows, and make monitor alerts still waiting in the outbox
    follow it: narrowed to anonymous, they lose the name and note (a note alert is cancelled);
    narrowed to staff-only, they are cancelled. All in the caller's transaction, with a
    VISIBILITY_CHANGED event and an audit row. Nothing is queued: a family narrowing its
    consent is not news to anyone."""
    case = await find_case(session, code)
    old = case.visibility
    case.visibility = new_visibility
    event = CaseEvent(
        case_id=case.id,
        kind=EventKind.VISIBILITY_CHANGED,
        old_status=case.status,
        new_status=case.status,
        actor_id=actor_id,
        created_at=now,
    )
    session.add(event)
    case.updated_at = now
    await session.flush()
    rewritten = cancelled = 0
    if _NARROWNESS[Visibility(new_visibility)] > _NARROWNESS[Visibility(old)]:
        rewritten, cancelled = await _narrow_pending_alerts(session, cipher, case)
    audit.record(
        session,
        actor_id=actor_id,
        action="case.visibility",
        case_code=case.code,
        detail=f"{old}->{new_visibility}; pending alerts {rewritten} rewritten {cancelled} cut",
        at=now,
    )
    return VisibilityChange(case.code, old, new_visibility, event.id, rewritten, cancelled)


async def _narrow_pending_alerts(
    session: AsyncSession, cipher: FieldCipher, case: Case
) -> tuple[int, int]:
    """Rewrite or cancel the case's monitor alerts that are still pending (not yet claimed)."""
    pending = list(
        await session.scalars(
            select(OutboxMessage)
            .join(CaseEvent, CaseEvent.id == OutboxMessage.event_id)
            .where(
                CaseEvent.case_id == case.id,
                OutboxMessage.template == T_MONITOR_ALERT,
                OutboxMessage.status == OutboxStatus.PENDING,
            )
            .with_for_update()
        )
    )
    cancel: list[int] = []
    rewritten = 0
    cipher = await case_cipher(session, cipher, case.id)
    for row in pending:
        params = open_params(await key_cipher(session, cipher, row.data_key_id), row.payload)
        if not monitor_may_hear(case.visibility, str(params.get("kind"))):
            cancel.append(row.id)
            continue
        params.update(name=None, note=None)
        row.payload = seal_params(cipher, params)
        row.data_key_id = cipher.key_id
        rewritten += 1
    if cancel:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(cancel))
            .values(status=OutboxStatus.CANCELLED, last_error="consent narrowed")
        )
    return rewritten, len(cancel)
