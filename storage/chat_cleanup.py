"""Messages to delete from a family's chat: "Hide this chat", and details that expire by themselves.

A bot may delete messages in a private chat, its own and the user's, for 48 hours after they were
sent. What "Hide this chat" deletes is found in three places: the outbox (every message the
delivery job sent keeps its Telegram id), the family's own thread messages (`chat_message_id`),
and `sensitive_messages` (ids remembered by handlers: details shown by "Show", which also carry the
time they are deleted by themselves, and ids carried over at /forget, which erases the rest).
Only ids are kept here, never content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import OutboxStatus
from storage.models import OutboxMessage, SensitiveMessage, Thread, ThreadMessage

DELETABLE_FOR = timedelta(hours=48)
"""Telegram refuses to delete older messages (in private chats, for bots)."""


async def remember(
    session: AsyncSession,
    chat_id: int,
    message_ids: Mapping[int, datetime] | Iterable[int],
    *,
    sent_at: datetime,
    delete_at: datetime | None = None,
) -> None:
    """Note messages of a chat to delete on "Hide this chat" (and by themselves at `delete_at`).
    `message_ids` may map each id to its own send time; ids already noted stay as they were."""
    times = (
        dict(message_ids)
        if isinstance(message_ids, Mapping)
        else dict.fromkeys(message_ids, sent_at)
    )
    rows = [
        {"chat_id": chat_id, "message_id": message_id, "sent_at": when, "delete_at": delete_at}
        for message_id, when in times.items()
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(SensitiveMessage).on_conflict_do_nothing(
        index_elements=["chat_id", "message_id"]
    )
    await session.execute(statement, rows)


@dataclass(frozen=True)
class DueDeletion:
    chat_id: int
    message_ids: list[int]
    row_ids: list[int]


async def due_deletions(
    session: AsyncSession, *, now: datetime, limit: int = 1000
) -> list[DueDeletion]:
    """Messages whose time to be deleted has come, grouped by chat."""
    rows = await session.execute(
        select(SensitiveMessage.id, SensitiveMessage.chat_id, SensitiveMessage.message_id)
        .where(SensitiveMessage.delete_at.is_not(None), SensitiveMessage.delete_at <= now)
        .order_by(SensitiveMessage.chat_id, SensitiveMessage.id)
        .limit(limit)
    )
    by_chat: dict[int, DueDeletion] = {}
    for row_id, chat_id, message_id in rows:
        due = by_chat.setdefault(chat_id, DueDeletion(chat_id, [], []))
        due.message_ids.append(message_id)
        due.row_ids.append(row_id)
    return list(by_chat.values())


async def expiring_in(session: AsyncSession, chat_id: int) -> DueDeletion:
    """Messages of one chat that are to be deleted by themselves (details shown by "Show"):
    /forget deletes them at once, as the user's Telegram id goes with it."""
    rows = await session.execute(
        select(SensitiveMessage.id, SensitiveMessage.message_id).where(
            SensitiveMessage.chat_id == chat_id, SensitiveMessage.delete_at.is_not(None)
        )
    )
    due = DueDeletion(chat_id, [], [])
    for row_id, message_id in rows:
        due.message_ids.append(message_id)
        due.row_ids.append(row_id)
    return due


async def drop(session: AsyncSession, row_ids: Iterable[int]) -> None:
    ids = list(row_ids)
    if ids:
        await session.execute(delete(SensitiveMessage).where(SensitiveMessage.id.in_(ids)))


async def has_undeletable(session: AsyncSession, *, now: datetime) -> bool:
    found = await session.scalar(
        select(SensitiveMessage.id).where(SensitiveMessage.sent_at < now - DELETABLE_FOR).limit(1)
    )
    return found is not None


async def purge_undeletable(session: AsyncSession, *, now: datetime) -> int:
    """Forget ids Telegram no longer lets us delete (older than 48 hours)."""
    result = await session.execute(
        delete(SensitiveMessage).where(SensitiveMessage.sent_at < now - DELETABLE_FOR)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class HidePlan:
    """What "Hide this chat" deletes: ids still deletable, and whether older ones exist."""

    message_ids: list[int]
    too_old: bool


def _sent_to(chat_id: int) -> tuple[ColumnElement[bool], ...]:
    return (
        OutboxMessage.chat_id == chat_id,
        OutboxMessage.status == OutboxStatus.SENT,
        OutboxMessage.telegram_message_id.is_not(None),
    )


def _family_words_of(chat_id: int) -> tuple[ColumnElement[bool], ...]:
    """The family's own thread messages in their private chat (staff answers are outbox rows;
    their `chat_message_id` may be an id in a staff chat, never to be deleted here)."""
    return (
        Thread.user_id == chat_id,
        ThreadMessage.from_staff.is_(False),
        ThreadMessage.chat_message_id.is_not(None),
    )


async def _deletable(session: AsyncSession, chat_id: int, since: datetime) -> dict[int, datetime]:
    found: dict[int, datetime] = {}
    remembered = await session.execute(
        select(SensitiveMessage.message_id, SensitiveMessage.sent_at).where(
            SensitiveMessage.chat_id == chat_id, SensitiveMessage.sent_at >= since
        )
    )
    sent = await session.execute(
        select(OutboxMessage.telegram_message_id, OutboxMessage.sent_at).where(
            *_sent_to(chat_id), OutboxMessage.sent_at >= since
        )
    )
    written = await session.execute(
        select(ThreadMessage.chat_message_id, ThreadMessage.created_at)
        .join(Thread, Thread.id == ThreadMessage.thread_id)
        .where(*_family_words_of(chat_id), ThreadMessage.created_at >= since)
    )
    for rows in (remembered, sent, written):
        for message_id, when in rows:
            if message_id is not None and when is not None:
                found[int(message_id)] = when
    return found


async def plan_hiding(session: AsyncSession, chat_id: int, *, now: datetime) -> HidePlan:
    since = now - DELETABLE_FOR
    found = await _deletable(session, chat_id, since)
    older_sent = await session.scalar(
        select(OutboxMessage.id).where(*_sent_to(chat_id), OutboxMessage.sent_at < since).limit(1)
    )
    older_remembered = await session.scalar(
        select(SensitiveMessage.id)
        .where(SensitiveMessage.chat_id == chat_id, SensitiveMessage.sent_at < since)
        .limit(1)
    )
    older = older_sent is not None or older_remembered is not None
    return HidePlan(sorted(found), bool(older))


async def forget_chat(session: AsyncSession, chat_id: int) -> None:
    """After hiding: the remembered ids of this chat are done with."""
    await session.execute(delete(SensitiveMessage).where(SensitiveMessage.chat_id == chat_id))


async def keep_through_forget(
    session: AsyncSession, user_id: int, remembered: Iterable[int], *, now: datetime
) -> int:
    """Before /forget erases the outbox rows, threads and conversation data of a user: keep the
    ids of their chat's messages that can still be deleted, so "Hide this chat" works after it.
    Run it in the same transaction, before `storage.privacy.forget_user`."""
    found = dict.fromkeys((int(i) for i in remembered), now)  # send time unknown: recent enough
    found.update(await _deletable(session, user_id, now - DELETABLE_FOR))
    await remember(session, user_id, found, sent_at=now)
    return len(found)
