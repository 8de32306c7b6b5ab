"""Who hears what about a case: the family, the monitors who follow it, the staff.

- the family (the reporter and the contacts staff approved, who can still be reached): status
  changes, notes for them, questions, merges, and the return home;
- subscribed monitors (`storage.subscriptions.monitor_recipients`): status changes and public
  notes of cases that are not staff-only, with the detainee's name only if the case is public;
- every staff member and admin: a move to a status that alerts all staff (`storage.statuses`,
  today the return home); routine notices go to the staff desk (the group, or the admins).

`notify` queues one outbox row per recipient inside the caller's transaction; the operations of
`storage.cases` call it. (A family's own messages, answers to questions included, are
`storage.threads`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.case_views import find_case
from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import EventKind, OutboxKind, Role
from storage.models import Case, CaseContact, CaseEvent, CasePersonal, User
from storage.outbox import PRIORITY_CASE_ALERT, Outgoing, enqueue, event_key
from storage.subscriptions import monitor_alerts, monitor_may_hear, monitor_recipients
from storage.users import users_with_role


@dataclass(frozen=True)
class StaffContacts:
    """Where staff hear things: admins (from settings) and the staff group chat, if any."""

    admin_ids: frozenset[int] = frozenset()
    group_chat_id: int | None = None


NO_STAFF = StaffContacts()


def staff_contacts(admin_ids: Iterable[int], group_chat_id: int | None) -> StaffContacts:
    return StaffContacts(frozenset(admin_ids), group_chat_id)


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


async def detainee_name(session: AsyncSession, cipher: FieldCipher, case: Case) -> str | None:
    personal = await session.get(CasePersonal, case.id)
    if personal is None or personal.detainee_name is None:
        return None
    return (await case_cipher(session, cipher, case.id)).open(personal.detainee_name)


async def notify(
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
    """Queue the event to the family (with the name, in `template`), the monitors who follow the
    case (name only if public), and the `staff` chats (in `staff_template`, code and status only:
    an alert every staff member must see, so it goes out first)."""
    await session.flush()
    messages: list[Outgoing] = []
    name = await detainee_name(session, cipher, case)
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
            priority=PRIORITY_CASE_ALERT,
            event_id=event.id,
        )
        for chat in staff
    ]
    return await enqueue(session, cipher, messages, now=now)


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
    case = await find_case(session, code)
    family = len(await family_of(session, case))
    followers = 0
    if monitors and monitors_may_read_notes(case.visibility):
        kind = EventKind.STATUS_CHANGED if new_status else EventKind.PUBLIC_NOTE
        probe = CaseEvent(case_id=case.id, kind=kind, new_status=new_status)
        followers = len(await monitor_recipients(session, case, probe))
    return NoteReaders(case.code, family, followers, monitors_may_read_notes(case.visibility))
