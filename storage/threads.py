"""A family's conversation with the hotline: what happens when a family writes and staff answer.

Every message a family member sends outside a form becomes a sealed `ThreadMessage` in a
`Thread` (their own conversation about one case, or a general one without a case), and the staff
desk is told through the outbox, all in one transaction, before the family gets the
acknowledgement: a crash after the reply can lose nothing. Staff answers go out through the
outbox too (ordered, retried, never twice), to the one person who owns the thread.

Staff notices carry neither the detainee's name nor the family's text: only the case code, the
kind of message and buttons. The text is read in the thread view, in a private chat with staff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.crypto import FieldCipher
from storage.data_keys import thread_cipher, user_cipher
from storage.enums import CaseStatus, EventKind, OutboxKind
from storage.lifecycle import allowed_next
from storage.models import (
    Case,
    CaseContact,
    CaseEvent,
    OutboxMessage,
    Thread,
    ThreadMessage,
    User,
)
from storage.outbox import PRIORITY_CASE_ALERT, PRIORITY_STAFF, Outgoing, enqueue
from storage.recipients import StaffContacts, all_staff, staff_desk

T_FAMILY_MESSAGE_STAFF = "threads.family_message_staff"
T_STAFF_REPLY = "threads.staff_reply"
TEXT_LIMIT = 4000
VIEW_LIMIT = 20

ThreadFilter = Literal["unread", "unassigned", "mine", "all"]
THREAD_FILTERS: tuple[ThreadFilter, ...] = ("unread", "unassigned", "mine", "all")


class ThreadNotFound(LookupError):
    """No such thread or message (the message is the id only)."""


class ThreadRefused(ValueError):
    """An operation on a thread that cannot be done; `reason` is a short fixed word."""

    def __init__(self, reason: str, *, taken_by: int | None = None) -> None:
        self.reason = reason
        self.taken_by = taken_by
        super().__init__(reason)


@dataclass(frozen=True)
class Incoming:
    """One message as plain values: its kind, its text or caption, the Telegram file id of its
    attachment, and its id in the sender's chat (so hide chat can delete it later)."""

    kind: str
    text: str | None = None
    file_id: str | None = None
    chat_message_id: int | None = None


@dataclass(frozen=True)
class Recorded:
    message_id: int
    thread_id: int
    code: str | None
    notices: int
    answered_question: bool = False


@dataclass(frozen=True)
class Replied:
    message_id: int
    thread_id: int
    code: str | None
    queued: int


@dataclass(frozen=True)
class MessageView:
    id: int
    from_staff: bool
    author_id: int
    kind: str
    text: str | None
    file_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class ThreadSummary:
    id: int
    code: str | None
    user_id: int
    language: str | None
    assigned_to: int | None
    unread: int
    last_message_at: datetime


@dataclass(frozen=True)
class ThreadView:
    summary: ThreadSummary
    messages: list[MessageView]
    total: int


@dataclass(frozen=True)
class ThreadPage:
    items: list[ThreadSummary]
    page: int
    pages: int
    total: int


# -- which thread ----------------------------------------------------------------------------


async def family_cases(session: AsyncSession, user_id: int) -> list[str]:
    """Codes of the cases this person follows as family (reporter or approved), oldest first;
    cases merged into another are left out (the surviving case is in the list)."""
    rows = await session.scalars(
        select(Case.code)
        .join(CaseContact, CaseContact.case_id == Case.id)
        .where(
            CaseContact.user_id == user_id,
            or_(CaseContact.is_reporter.is_(True), CaseContact.approved.is_(True)),
            Case.merged_into_id.is_(None),
        )
        .order_by(Case.id)
    )
    reported = await session.scalars(
        select(Case.code).where(Case.reporter_id == user_id, Case.merged_into_id.is_(None))
    )
    return list(dict.fromkeys([*rows, *reported]))


async def _family_case(session: AsyncSession, user_id: int, code: str) -> Case:
    if code not in await family_cases(session, user_id):
        raise ThreadRefused("not_your_case")
    case = await session.scalar(select(Case).where(Case.code == code))
    assert case is not None
    return case


async def _thread_for(
    session: AsyncSession, user_id: int, case_id: int | None, now: datetime
) -> Thread:
    """The user's thread about this case (or their general one), made on first use. One user's
    updates are handled in order (bot.update_processor), so two cannot race to create it."""
    thread = await session.scalar(
        select(Thread)
        .where(Thread.user_id == user_id, Thread.case_id.is_(None) if case_id is None
               else Thread.case_id == case_id)
        .order_by(Thread.id)
        .limit(1)
    )  # fmt: skip
    if thread is None:
        thread = Thread(
            user_id=user_id, case_id=case_id, unread=0, last_message_at=now, created_at=now
        )
        session.add(thread)
        await session.flush()
    return thread


async def thread_of_sent_message(
    session: AsyncSession, chat_id: int, telegram_message_id: int
) -> int | None:
    """The thread a message the bot sent to `chat_id` belongs to (a desk notice, or a staff
    answer in a family's chat): how a Telegram reply finds its conversation."""
    return await session.scalar(
        select(ThreadMessage.thread_id)
        .join(OutboxMessage, OutboxMessage.thread_message_id == ThreadMessage.id)
        .where(
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.telegram_message_id == telegram_message_id,
        )
        .limit(1)
    )


async def thread_of_message(session: AsyncSession, message_id: int) -> int:
    thread_id = await session.scalar(
        select(ThreadMessage.thread_id).where(ThreadMessage.id == message_id)
    )
    if thread_id is None:
        raise ThreadNotFound(str(message_id))
    return thread_id


# -- the family writes -----------------------------------------------------------------------


def _seal(cipher: FieldCipher, value: str | None) -> bytes | None:
    return cipher.seal(value) if value else None


async def record_family_message(
    session: AsyncSession,
    cipher: FieldCipher,
    user_id: int,
    incoming: Incoming,
    *,
    code: str | None,
    now: datetime,
    staff: StaffContacts,
) -> Recorded:
    """Store what the family sent in their thread about `code` (None: their general thread) and
    tell the staff desk. A message about a case waiting for the family's answer (need_info) is
    also that answer: the case goes back under review."""
    case = await _family_case(session, user_id, code) if code is not None else None
    thread = await _thread_for(session, user_id, case.id if case else None, now)
    cipher = await thread_cipher(session, cipher, thread)
    message = _add_message(session, cipher, thread, incoming, author_id=user_id, now=now)
    thread.unread += 1
    thread.last_message_at = now
    await session.flush()
    answered = case is not None and case.status == CaseStatus.NEED_INFO
    if answered:
        assert case is not None
        _answered_question(session, case, user_id, now)
    notices = await _notify_desk(session, cipher, thread, message, case, now=now, staff=staff)
    audit.record(
        session,
        actor_id=user_id,
        action="thread.family_message",
        case_code=case.code if case else None,
        detail=incoming.kind,
        at=now,
    )
    return Recorded(message.id, thread.id, case.code if case else None, notices, answered)


async def attach_report_documents(
    session: AsyncSession,
    cipher: FieldCipher,
    user_id: int,
    code: str | None,
    documents: Sequence[Incoming],
    *,
    now: datetime,
) -> int:
    """Papers sent with a report (file ids, sealed) join the reporter's thread about the case, in
    the report's own transaction; the new-report notice already tells staff, so none is queued."""
    if not documents:
        return 0
    case = await _family_case(session, user_id, code) if code is not None else None
    thread = await _thread_for(session, user_id, case.id if case else None, now)
    cipher = await thread_cipher(session, cipher, thread)
    for document in documents:
        _add_message(session, cipher, thread, document, author_id=user_id, now=now)
    thread.unread += len(documents)
    thread.last_message_at = now
    return len(documents)


def _answered_question(session: AsyncSession, case: Case, user_id: int, now: datetime) -> None:
    """The family wrote while the case waited for their answer: back under review."""
    if CaseStatus.UNDER_REVIEW not in allowed_next(case.status):
        return
    session.add(
        CaseEvent(
            case_id=case.id,
            kind=EventKind.INFO_RECEIVED,
            old_status=case.status,
            new_status=CaseStatus.UNDER_REVIEW,
            public=False,
            actor_id=user_id,
            created_at=now,
        )
    )
    case.status = CaseStatus.UNDER_REVIEW
    case.updated_at = now


async def _desk_chats(session: AsyncSession, thread: Thread, staff: StaffContacts) -> Sequence[int]:
    """Who hears of a family message: the staff member who took the thread; otherwise the staff
    group, or every staff member and admin when there is no group."""
    if thread.assigned_to is not None:
        return [thread.assigned_to]
    if staff.group_chat_id is not None:
        return staff_desk(staff)
    return await all_staff(session, staff)


async def _notify_desk(
    session: AsyncSession,
    cipher: FieldCipher,
    thread: Thread,
    message: ThreadMessage,
    case: Case | None,
    *,
    now: datetime,
    staff: StaffContacts,
) -> int:
    params = {
        "message": message.id,
        "thread": thread.id,
        "code": case.code if case else None,
        "kind": message.kind,
        "unread": thread.unread,
    }
    return await enqueue(
        session,
        cipher,
        [
            Outgoing(
                chat,
                f"thread:{message.id}:{chat}",
                T_FAMILY_MESSAGE_STAFF,
                params,
                kind=OutboxKind.STAFF_ALERT,
                priority=PRIORITY_STAFF,
                thread_message_id=message.id,
            )
            for chat in await _desk_chats(session, thread, staff)
            if chat != thread.user_id
        ],
        now=now,
    )


async def move_to_case(
    session: AsyncSession, user_id: int, message_id: int, code: str, *, now: datetime
) -> str:
    """The family said which case a message from their general thread is about: move it."""
    message = await session.get(ThreadMessage, message_id)
    source = await session.get(Thread, message.thread_id) if message is not None else None
    if message is None or source is None or source.user_id != user_id or message.from_staff:
        raise ThreadNotFound(str(message_id))
    if source.case_id is not None:
        raise ThreadRefused("already_sorted")
    case = await _family_case(session, user_id, code)
    target = await _thread_for(session, user_id, case.id, now)
    message.thread_id = target.id
    target.unread += 1
    target.last_message_at = max(target.last_message_at, message.created_at)
    source.unread = max(0, source.unread - 1)
    audit.record(session, actor_id=user_id, action="thread.sort", case_code=case.code, at=now)
    return case.code


# -- staff answer ----------------------------------------------------------------------------


async def _thread(session: AsyncSession, thread_id: int) -> Thread:
    thread = await session.get(Thread, thread_id)
    if thread is None:
        raise ThreadNotFound(str(thread_id))
    return thread


async def _code(session: AsyncSession, thread: Thread) -> str | None:
    if thread.case_id is None:
        return None
    return await session.scalar(select(Case.code).where(Case.id == thread.case_id))


async def staff_reply(
    session: AsyncSession,
    cipher: FieldCipher,
    thread_id: int,
    staff_id: int,
    outgoing: Incoming,
    *,
    now: datetime,
) -> Replied:
    """A staff answer: stored in the thread and queued to the family member who owns it (and no
    one else). Answering marks the thread read, and takes it when nobody has."""
    thread = await _thread(session, thread_id)
    user = await session.get(User, thread.user_id)
    if user is None or user.forgotten_at is not None:
        raise ThreadRefused("family_gone")
    if thread.assigned_to is None:
        thread.assigned_to = staff_id
    cipher = await thread_cipher(session, cipher, thread)
    message = _add_message(
        session, cipher, thread, outgoing, author_id=staff_id, now=now, from_staff=True
    )
    thread.unread = 0
    thread.last_message_at = now
    await session.flush()
    code = await _code(session, thread)
    params: dict[str, Any] = {
        "code": code,
        "text": outgoing.text,
        "kind": outgoing.kind,
        "file_id": outgoing.file_id,
    }
    queued = await enqueue(
        session,
        cipher,
        [
            Outgoing(
                thread.user_id,
                f"thread:{message.id}:{thread.user_id}",
                T_STAFF_REPLY,
                params,
                priority=PRIORITY_CASE_ALERT,
                thread_message_id=message.id,
            )
        ],
        now=now,
    )
    audit.record(
        session,
        actor_id=staff_id,
        action="thread.reply",
        case_code=code,
        detail=f"thread {thread.id}, {outgoing.kind}",
        at=now,
    )
    return Replied(message.id, thread.id, code, queued)


async def take(
    session: AsyncSession, thread_id: int, staff_id: int, *, now: datetime, take: bool = True
) -> ThreadSummary:
    """Claim a thread so two people do not answer the same family (or give it back)."""
    thread = await _thread(session, thread_id)
    if take:
        if thread.assigned_to not in (None, staff_id):
            raise ThreadRefused("taken", taken_by=thread.assigned_to)
        thread.assigned_to = staff_id
    else:
        if thread.assigned_to not in (None, staff_id):
            raise ThreadRefused("taken", taken_by=thread.assigned_to)
        thread.assigned_to = None
    code = await _code(session, thread)
    audit.record(
        session,
        actor_id=staff_id,
        action="thread.take" if take else "thread.release",
        case_code=code,
        detail=f"thread {thread.id}",
        at=now,
    )
    return await _summary(session, thread)


async def join_to_case(
    session: AsyncSession, thread_id: int, code: str, *, actor_id: int, now: datetime
) -> str:
    """Staff join a general thread to one of the family member's cases: its messages move to
    their thread about that case. Refused when the person is not family on that case."""
    thread = await _thread(session, thread_id)
    if thread.case_id is not None:
        raise ThreadRefused("already_sorted")
    case = await _family_case(session, thread.user_id, code)
    target = await _thread_for(session, thread.user_id, case.id, now)
    messages = list(
        await session.scalars(select(ThreadMessage).where(ThreadMessage.thread_id == thread.id))
    )
    for message in messages:
        message.thread_id = target.id
    target.unread += thread.unread
    target.last_message_at = max(target.last_message_at, thread.last_message_at)
    target.assigned_to = target.assigned_to or thread.assigned_to
    await session.flush()
    await session.delete(thread)
    audit.record(
        session,
        actor_id=actor_id,
        action="thread.join",
        case_code=case.code,
        detail=f"thread {thread_id} -> {target.id}",
        at=now,
    )
    return case.code


# -- reading ---------------------------------------------------------------------------------


async def _summary(session: AsyncSession, thread: Thread) -> ThreadSummary:
    language = await session.scalar(select(User.language).where(User.id == thread.user_id))
    return ThreadSummary(
        id=thread.id,
        code=await _code(session, thread),
        user_id=thread.user_id,
        language=language,
        assigned_to=thread.assigned_to,
        unread=thread.unread,
        last_message_at=thread.last_message_at,
    )


async def summary_of(session: AsyncSession, thread_id: int) -> ThreadSummary:
    return await _summary(session, await _thread(session, thread_id))


async def open_thread(
    session: AsyncSession,
    cipher: FieldCipher,
    thread_id: int,
    *,
    staff_id: int,
    now: datetime,
    limit: int = VIEW_LIMIT,
) -> ThreadView:
    """The latest messages of a thread, opened for staff; opening marks it read (audited)."""
    thread = await _thread(session, thread_id)
    total = int(
        await session.scalar(
            select(func.count())
            .select_from(ThreadMessage)
            .where(ThreadMessage.thread_id == thread.id)
        )
        or 0
    )
    rows = list(
        await session.scalars(
            select(ThreadMessage)
            .where(ThreadMessage.thread_id == thread.id)
            .order_by(ThreadMessage.id.desc())
            .limit(limit)
        )
    )
    summary = await _summary(session, thread)
    cipher = await thread_cipher(session, cipher, thread, create=False)
    thread.unread = 0
    audit.record(
        session,
        actor_id=staff_id,
        action="thread.view",
        case_code=summary.code,
        detail=f"thread {thread.id}",
        at=now,
    )
    messages = [_opened(cipher, row) for row in reversed(rows)]
    return ThreadView(summary=summary, messages=messages, total=total)


def _filter(kind: ThreadFilter, staff_id: int) -> Any:
    if kind == "unread":
        return Thread.unread > 0
    if kind == "unassigned":
        return and_(Thread.assigned_to.is_(None), Thread.unread > 0)
    if kind == "mine":
        return Thread.assigned_to == staff_id
    return Thread.id.is_not(None)


async def thread_counts(session: AsyncSession, staff_id: int) -> dict[ThreadFilter, int]:
    counts: dict[ThreadFilter, int] = {}
    for kind in THREAD_FILTERS:
        counts[kind] = int(
            await session.scalar(
                select(func.count()).select_from(Thread).where(_filter(kind, staff_id))
            )
            or 0
        )
    return counts


async def list_threads(
    session: AsyncSession,
    kind: ThreadFilter,
    *,
    staff_id: int,
    page: int = 0,
    page_size: int = 8,
) -> ThreadPage:
    """Threads for the desk, newest message first."""
    where = _filter(kind, staff_id)
    total = int(await session.scalar(select(func.count()).select_from(Thread).where(where)) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)
    rows = await session.execute(
        select(Thread, Case.code, User.language)
        .outerjoin(Case, Case.id == Thread.case_id)
        .join(User, User.id == Thread.user_id)
        .where(where)
        .order_by(Thread.last_message_at.desc(), Thread.id.desc())
        .offset(page * page_size)
        .limit(page_size)
    )
    items = [
        ThreadSummary(t.id, code, t.user_id, language, t.assigned_to, t.unread, t.last_message_at)
        for t, code, language in rows
    ]
    return ThreadPage(items=items, page=page, pages=pages, total=total)


async def threads_of_case(session: AsyncSession, code: str) -> list[ThreadSummary]:
    """Each family member's thread about the case, for the case card."""
    rows = await session.execute(
        select(Thread, User.language)
        .join(Case, Case.id == Thread.case_id)
        .join(User, User.id == Thread.user_id)
        .where(Case.code == code)
        .order_by(Thread.id)
    )
    return [
        ThreadSummary(t.id, code, t.user_id, language, t.assigned_to, t.unread, t.last_message_at)
        for t, language in rows
    ]


async def family_messages_of(
    session: AsyncSession, cipher: FieldCipher, user_id: int
) -> list[MessageView]:
    """Everything in this person's threads, for /mydata."""
    cipher = await user_cipher(session, cipher, user_id, create=False)
    rows = await session.scalars(
        select(ThreadMessage)
        .join(Thread, Thread.id == ThreadMessage.thread_id)
        .where(Thread.user_id == user_id)
        .order_by(ThreadMessage.id)
    )
    return [_opened(cipher, r) for r in rows]


def _opened(cipher: FieldCipher, row: ThreadMessage) -> MessageView:
    """A stored message with its sealed words and file id opened."""
    return MessageView(
        id=row.id,
        from_staff=row.from_staff,
        author_id=row.author_id,
        kind=row.kind,
        text=cipher.open(row.body),
        file_id=cipher.open(row.file_id),
        created_at=row.created_at,
    )


def _add_message(
    session: AsyncSession,
    cipher: FieldCipher,
    thread: Thread,
    incoming: Incoming,
    *,
    author_id: int,
    now: datetime,
    from_staff: bool = False,
) -> ThreadMessage:
    """One message into the thread, its words and file id sealed with the thread's key."""
    message = ThreadMessage(
        thread_id=thread.id,
        from_staff=from_staff,
        author_id=author_id,
        kind=incoming.kind,
        body=_seal(cipher, (incoming.text or "")[:TEXT_LIMIT]),
        file_id=_seal(cipher, incoming.file_id),
        chat_message_id=None if from_staff else incoming.chat_message_id,
        created_at=now,
    )
    session.add(message)
    return message
