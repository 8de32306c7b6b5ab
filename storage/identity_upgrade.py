"""Once per database, at start: Telegram ids stored by earlier versions become user keys.

Converting needs the index key (sealed with the data key), so it cannot be an Alembic step; it
runs from `bot.app.open_services` in ONE transaction, and `meta` remembers it was done. Order
matters for the foreign keys (no cascade may fire): a keyed copy of each user row is inserted
first, every column naming a user is moved to the keys, then the old rows are deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import Column, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import FieldCipher
from storage.identity import (
    KEY_FLOOR,
    UserKeys,
    envelope,
    persistence_owner,
    persistence_row_key,
)
from storage.models import (
    AuditEntry,
    Broadcast,
    Case,
    CaseContact,
    CaseEvent,
    DataKey,
    DigestSetting,
    Meta,
    MonitorRequest,
    OnCall,
    OnCallShift,
    OutboxMessage,
    PersistenceEntry,
    PreparedAnswer,
    ReportForm,
    SensitiveMessage,
    SignOfLifeEntry,
    Subscription,
    Thread,
    ThreadMessage,
    UnreachableChat,
    UrgentCase,
    User,
)

DONE = "telegram_ids"
DONE_VALUE = b"keyed-1"

USER_COLUMNS: tuple[Column[int] | object, ...] = (
    Case.__table__.c.reporter_id,
    CaseContact.__table__.c.user_id,
    CaseEvent.__table__.c.actor_id,
    Thread.__table__.c.user_id,
    Thread.__table__.c.assigned_to,
    ThreadMessage.__table__.c.author_id,
    PreparedAnswer.__table__.c.updated_by,
    MonitorRequest.__table__.c.user_id,
    MonitorRequest.__table__.c.decided_by,
    Subscription.__table__.c.user_id,
    DigestSetting.__table__.c.user_id,
    Broadcast.__table__.c.author_id,
    Broadcast.__table__.c.progress_chat_id,
    OutboxMessage.__table__.c.chat_id,
    SensitiveMessage.__table__.c.chat_id,
    AuditEntry.__table__.c.actor_id,
    AuditEntry.__table__.c.target_user_id,
    DataKey.__table__.c.user_id,
    SignOfLifeEntry.__table__.c.logged_by,
    ReportForm.__table__.c.user_id,
    UnreachableChat.__table__.c.chat_id,
    UrgentCase.__table__.c.taken_by,
    OnCall.__table__.c.user_id,
    OnCallShift.__table__.c.user_id,
)
"""Every column that names a user (or a private chat, which is the same id)."""

DEDUPE_USER_SEGMENT = {
    "event": -1,
    "thread": -1,
    "broadcast": -1,
    "remind": -1,
    "stale": -1,
    "dead": -1,
    "monreq": -1,
    "digest": 2,
    "pinfreeze": 1,
    "frozenwrote": 1,
    "urgent": -1,
    "urgtaken": -1,
}
"""Where outbox dedupe keys (``event:42:<chat>``) carry a chat id."""


async def key_telegram_ids(session: AsyncSession, keys: UserKeys, cipher: FieldCipher) -> int:
    """Convert every stored Telegram id to its user key, unless done already; returns how many
    users were converted. Run it in its own transaction."""
    if await session.get(Meta, DONE) is not None:
        return 0
    old_users = list(await session.scalars(select(User).where(User.id > 0, User.id < KEY_FLOOR)))
    columns = [c.name for c in User.__table__.columns]
    for user in old_users:
        values = {name: getattr(user, name) for name in columns}
        values["id"] = keys.key(user.id)
        values["telegram_id"] = keys.seal(user.id)
        await session.execute(insert(User).values(**values))
    for column in USER_COLUMNS:
        await _rekey_column(session, column, keys.key)  # type: ignore[arg-type]
    await _rekey_dedupe_keys(session, keys.key)
    await _rekey_persistence(session, keys, cipher)
    if old_users:
        session.expunge_all()
        await session.execute(delete(User).where(User.id > 0, User.id < KEY_FLOOR))
    session.add(Meta(key=DONE, value=DONE_VALUE))
    await session.flush()
    return len(old_users)


async def _rekey_column(
    session: AsyncSession, column: Column[int], key: Callable[[int], int]
) -> None:
    table = column.table
    found = await session.scalars(select(column).distinct().where(column > 0, column < KEY_FLOOR))
    for value in list(found):
        await session.execute(
            update(table).where(column == value).values({column.name: key(int(value))})
        )


def rekeyed_dedupe_key(dedupe_key: str, key: Callable[[int], int]) -> str:
    parts = dedupe_key.split(":")
    position = DEDUPE_USER_SEGMENT.get(parts[0])
    if position is None or len(parts) < 2 or position >= len(parts):
        return dedupe_key
    segment = parts[position]
    if segment.isdigit() and 0 < int(segment) < KEY_FLOOR:
        parts[position] = str(key(int(segment)))
    return ":".join(parts)


async def _rekey_dedupe_keys(session: AsyncSession, key: Callable[[int], int]) -> None:
    rows = await session.execute(select(OutboxMessage.id, OutboxMessage.dedupe_key))
    for row_id, dedupe_key in list(rows):
        new = rekeyed_dedupe_key(dedupe_key, key)
        if new != dedupe_key:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row_id).values(dedupe_key=new)
            )


async def _rekey_persistence(session: AsyncSession, keys: UserKeys, cipher: FieldCipher) -> None:
    """Rows were keyed by Telegram ids and held the bare value: key them by user keys and move
    the real key inside the sealed value (`storage.persistence`)."""
    rows = list(await session.execute(select(PersistenceEntry)))
    for (entry,) in rows:
        original: object = (
            int(entry.key) if entry.key.lstrip("-").isdigit() else json.loads(entry.key)
        )
        if isinstance(original, list):
            original = [int(part) if isinstance(part, int) else part for part in original]
        value = json.loads(cipher.open(entry.data) or "null")
        if isinstance(value, dict) and set(value) == {"k", "v"}:
            continue  # written by this version already
        sealed = cipher.seal(
            json.dumps(envelope(original, value), ensure_ascii=False, sort_keys=True)
        )
        assert sealed is not None
        await session.execute(
            update(PersistenceEntry)
            .where(PersistenceEntry.kind == entry.kind, PersistenceEntry.key == entry.key)
            .values(
                key=(row_key := persistence_row_key(keys, entry.kind, original)),
                data=sealed,
                owner=persistence_owner(row_key),
            )
        )
