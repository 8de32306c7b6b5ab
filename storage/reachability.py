"""Staff chats Telegram cannot reach: told once, listed, forgotten when they write.

A new-report notice to an admin who never opened the bot is refused with `chat not found`; so is
every notice to a staff group the bot is not in. Each such notice is given up (the delivery job
marks it dead), but nobody would know that someone misses every report. The first refusal is
recorded here and the other staff are told once (`reachability.staff_unreachable`, which names no
one: the staff group is read on many phones; `python -m bot staff list` on the server shows who
it is); later refusals change nothing. When that person opens the bot (/start), or anything
comes from the staff group, the record goes (`mark_reachable`): a later refusal is told again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import FieldCipher
from storage.enums import OutboxKind
from storage.models import UnreachableChat
from storage.outbox import PRIORITY_STAFF, Outgoing, enqueue
from storage.recipients import StaffContacts, all_staff

CHAT_NOT_FOUND = "chat_not_found"
TEMPLATE = "reachability.staff_unreachable"


async def record_unreachable(
    session: AsyncSession,
    cipher: FieldCipher,
    chat_id: int,
    *,
    staff: StaffContacts,
    now: datetime,
    reason: str = CHAT_NOT_FOUND,
) -> bool:
    """Record that staff notices cannot reach `chat_id` (a user key, or the staff group) and,
    the first time, queue one notice to the other staff. Returns whether this was the first
    time; in the caller's transaction."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(UnreachableChat)
        .values(chat_id=chat_id, reason=reason[:32], since=now)
        .on_conflict_do_nothing(index_elements=["chat_id"])
        .returning(UnreachableChat.id)
    )
    episode = (await session.execute(statement)).scalar_one_or_none()
    if episode is None:
        return False
    unreachable = await unreachable_chats(session)
    is_group = chat_id == staff.group_chat_id
    group = staff.group_chat_id
    if group is not None and not is_group and group not in unreachable:
        told = [group]
    else:  # no group, or the group is what cannot be reached: each staff member and admin
        told = [chat for chat in await all_staff(session, staff) if chat not in unreachable]
        told = [chat for chat in told if chat != group]
    await enqueue(
        session,
        cipher,
        [
            Outgoing(
                chat,
                f"unreachable:{episode}:{chat}",
                TEMPLATE,
                {"group": is_group},
                kind=OutboxKind.STAFF_ALERT,
                priority=PRIORITY_STAFF,
            )
            for chat in told
        ],
        now=now,
    )
    return True


async def unreachable_chats(session: AsyncSession, among: Iterable[int] | None = None) -> set[int]:
    """The chats recorded as unreachable (of `among`, when given)."""
    query = select(UnreachableChat.chat_id)
    if among is not None:
        query = query.where(UnreachableChat.chat_id.in_(list(among)))
    return set(await session.scalars(query))


async def mark_reachable(session: AsyncSession, chat_id: int) -> None:
    """The chat wrote to the bot, so it exists: forget that it could not be reached. A read
    first, so the usual case (nothing recorded) takes no write lock."""
    found = await session.scalar(
        select(UnreachableChat.id).where(UnreachableChat.chat_id == chat_id)
    )
    if found is not None:
        await session.execute(delete(UnreachableChat).where(UnreachableChat.id == found))
