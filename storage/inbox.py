"""The durable inbox: updates from Telegram, stored before they are confirmed (`bot/inbox.py`).

An update is personal data (a family's words, their Telegram id), so each is sealed with a data
key of its own (`storage.data_keys`). Once handled, its payload and its key are destroyed in one
transaction; the row keeps only `update_id`, for a day, so a copy Telegram delivers again (it
was stored, but the confirmation was lost with a crash) is recognised and not handled twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningDelete
from sqlalchemy.sql.elements import BindParameter

from storage.crypto import DataKeyError, FieldCipher
from storage.models import DataKey, InboxUpdate

log = logging.getLogger(__name__)

# Core statements, not the ORM's unit of work: an update's store and mark run on every update.
_INBOX = cast(Table, InboxUpdate.__table__)
_KEYS = cast(Table, DataKey.__table__)
KEEP_HANDLED = timedelta(days=1)
"""How long a handled update's `update_id` is remembered: Telegram keeps an unconfirmed update
(and retries a webhook) for at most a day."""


@dataclass(frozen=True)
class StoredUpdate:
    update_id: int
    data: str | None
    """The update's JSON; None when it can no longer be opened (its key was destroyed)."""


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


async def store(
    session: AsyncSession,
    cipher: FieldCipher,
    updates: Sequence[tuple[int, str]],
    *,
    now: datetime,
) -> list[int]:
    """Store (update_id, JSON) pairs not seen before, each sealed with a data key of its own.

    Returns the update ids that now wait to be handled, in the order given: the new ones, and
    those already stored but not yet handled (a commit whose answer was lost, a copy delivered
    again). An update handled lately is not stored again."""
    if not updates:
        return []
    given: dict[int, str] = {}  # the first copy of each update_id, in the order given
    for update_id, data in updates:
        given.setdefault(update_id, data)
    sealed = {update_id: cipher.new_data_key_sealing(data) for update_id, data in given.items()}
    day = _day(now)
    key_ids = list(
        await session.scalars(
            _NEW_KEYS, [{"sealed": key, "created_at": day} for key, _ in sealed.values()]
        )
    )
    stored = set(
        await session.scalars(
            _new_rows(session.get_bind().dialect.name),
            [
                {
                    "update_id": update_id,
                    "payload": payload,
                    "data_key_id": key_id,
                    "received_at": now,
                }
                for (update_id, (_, payload)), key_id in zip(sealed.items(), key_ids, strict=True)
            ],
        )
    )
    waiting = set(stored)
    if len(stored) < len(given):  # seen before: their new keys go, and are they handled yet?
        unused = [
            key for update_id, key in zip(sealed, key_ids, strict=True) if update_id not in stored
        ]
        await session.execute(delete(_KEYS).where(_KEYS.c.id.in_(unused)))
        waiting |= set(
            await session.scalars(
                select(_INBOX.c.update_id).where(
                    _INBOX.c.update_id.in_(set(given) - stored), _INBOX.c.payload.isnot(None)
                )
            )
        )
    return [update_id for update_id in dict.fromkeys(i for i, _ in updates) if update_id in waiting]


async def pending(session: AsyncSession, cipher: FieldCipher) -> list[StoredUpdate]:
    """The updates not yet handled, in the order they arrived."""
    rows = await session.execute(
        select(InboxUpdate.update_id, InboxUpdate.payload, DataKey.id, DataKey.sealed)
        .outerjoin(DataKey, DataKey.id == InboxUpdate.data_key_id)
        .where(InboxUpdate.payload.isnot(None))
        .order_by(InboxUpdate.id)
    )
    found = []
    for update_id, payload, key_id, sealed_key in rows:
        data = None
        if key_id is not None:
            try:
                data = cipher.for_data_key(key_id, sealed_key).open(payload)
            except DataKeyError:
                data = None
        found.append(StoredUpdate(update_id, data))
    return found


async def mark_handled(
    session: AsyncSession, cipher: FieldCipher, update_ids: Sequence[int]
) -> int:
    """Destroy the payloads and keys of handled updates; their `update_id`s stay. Returns how
    many keys were destroyed (one per update still waiting)."""
    if not update_ids:
        return 0
    destroyed: list[bytes] = list(await session.scalars(_DESTROY_KEYS, _ids(update_ids)))
    await session.execute(_CLEAR, _ids(update_ids))
    for token in destroyed:
        cipher.forget_data_key(token)
    return len(destroyed)


def mark_handled_in(session: Session, update_ids: Sequence[int]) -> list[bytes]:
    """`mark_handled` inside a synchronous session (a commit hook, `bot.inbox_mark`); returns the
    destroyed keys, sealed, for the caller to drop from the cipher's memory after the commit."""
    if not update_ids:
        return []
    destroyed: list[bytes] = list(session.scalars(_DESTROY_KEYS, _ids(update_ids)))
    session.execute(_CLEAR, _ids(update_ids))
    return destroyed


# Built once, the ids bound at execution: building these on every update made a store and a mark
# each a fifth to a quarter dearer (`benchmarks.inbox_cost`, alternating runs).
_IDS: BindParameter[list[int]] = bindparam("update_ids", expanding=True)
_NEW_KEYS = insert(_KEYS).returning(_KEYS.c.id, sort_by_parameter_order=True)
_DESTROY_KEYS: ReturningDelete[Any] = (
    delete(_KEYS)
    .where(_KEYS.c.id.in_(select(_INBOX.c.data_key_id).where(_INBOX.c.update_id.in_(_IDS))))
    .returning(_KEYS.c.sealed)
)
"""The updates' keys go; the rows' `data_key_id` with them (ON DELETE SET NULL)."""
_CLEAR: Update = (
    update(_INBOX)
    .where(_INBOX.c.update_id.in_(_IDS), _INBOX.c.payload.isnot(None))
    .values(payload=None, data_key_id=None)
)
_NEW_ROWS = {
    dialect: insert_of(_INBOX)
    .on_conflict_do_nothing(index_elements=["update_id"])
    .returning(_INBOX.c.update_id)
    for dialect, insert_of in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def _new_rows(dialect: str) -> Any:
    """INSERT of updates not stored before (ON CONFLICT DO NOTHING), returning those stored."""
    return _NEW_ROWS["postgresql" if dialect == "postgresql" else "sqlite"]


def _ids(update_ids: Sequence[int]) -> dict[str, list[int]]:
    return {"update_ids": list(update_ids)}


async def forget_handled(session: AsyncSession, *, now: datetime) -> int:
    """Drop the `update_id`s of updates handled more than `KEEP_HANDLED` ago."""
    result = await session.execute(
        delete(InboxUpdate).where(
            InboxUpdate.payload.is_(None), InboxUpdate.received_at < now - KEEP_HANDLED
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def count_pending(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(InboxUpdate).where(InboxUpdate.payload.isnot(None))
        )
        or 0
    )
