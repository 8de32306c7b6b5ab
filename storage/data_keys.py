"""Data keys: envelope encryption and crypto-shredding (issue 12, point 9).

Whatever names a person is sealed with a *data key* of its own, itself sealed by the master key
(`HOTLINE_DATA_KEY`) in the `data_keys` table (see `storage.crypto`):

- a **case's key** seals its personal fields, its contacts' phones and Telegram names, its event
  notes and the outbox payloads about it (alerts to the family, monitors and staff);
- a **user's key** seals that person's conversations with the hotline (every thread message,
  theirs and staff answers) and the outbox rows that carry them;
- each **persistence entry** (a draft of a report) has a key of its own.

Erasing destroys keys: `/forget` destroys the user's key and the keys of their persistence
entries, and gives every case they were part of a new key (`rekey_case`: what remains is
re-sealed, the old key is deleted), so the name, phone and words it erased cannot be read back
from any copy. Retention destroys the key of each draft it purges. After the transaction,
`shred_copies` makes the database forget the deleted key rows themselves: a WAL checkpoint on
SQLite (secure_delete is on), and on PostgreSQL a rewrite of the small `data_keys` table
(`VACUUM FULL`), since VACUUM leaves a deleted row's bytes in the heap page.

Concurrency: on PostgreSQL a writer reads its key `FOR SHARE` and `rekey_case` takes it
`FOR UPDATE`, so nothing is sealed with a key being destroyed. SQLite has one writer at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage import fields
from storage.crypto import FieldCipher
from storage.db import SessionFactory, checkpoint_wal
from storage.enums import OutboxStatus
from storage.models import (
    Case,
    CaseContact,
    CaseEvent,
    CasePersonal,
    DataKey,
    Meta,
    OutboxMessage,
    PersistenceEntry,
    ReportForm,
    Thread,
    ThreadMessage,
    utcnow,
)

log = logging.getLogger(__name__)

PERSONAL_COLUMNS = fields.REGISTRY.columns(fields.PERSONAL)
CONTACT_COLUMNS = ("contact_phone", "telegram_name", "telegram_username")
ENVELOPE_META = "envelope"
"""`meta` row set once the values sealed before envelope encryption were given data keys."""
_UNSENT = (OutboxStatus.PENDING, OutboxStatus.SENDING)


def _locked(query: Select[Any], session: AsyncSession, *, exclusive: bool) -> Select[Any]:
    """PostgreSQL: a writer shares the key row, a destroyer takes it alone."""
    if session.get_bind().dialect.name != "postgresql":
        return query
    return query.with_for_update(read=not exclusive)


async def _owned_key(
    session: AsyncSession,
    *,
    case_id: int | None = None,
    user_id: int | None = None,
    exclusive: bool = False,
) -> DataKey | None:
    query = select(DataKey).where(
        DataKey.case_id == case_id if case_id is not None else DataKey.user_id == user_id
    )
    found: DataKey | None = await session.scalar(_locked(query, session, exclusive=exclusive))
    return found


async def lock_case_keys(session: AsyncSession, case_ids: Iterable[int]) -> None:
    """Take the keys of cases about to be re-keyed before changing anything else (PostgreSQL),
    so a writer holding one of them finishes first and no two wait for each other."""
    ids = sorted(set(case_ids))
    if ids:
        query = select(DataKey).where(DataKey.case_id.in_(ids)).order_by(DataKey.id)
        await session.scalars(_locked(query, session, exclusive=True))


async def new_key(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    case_id: int | None = None,
    user_id: int | None = None,
) -> FieldCipher:
    """A fresh data key for the case, the user, or (neither) a persistence entry."""
    row = DataKey(
        sealed=cipher.new_data_key(),
        case_id=case_id,
        user_id=user_id,
        # the day only: a key made when /forget re-keys a case must not tell the instant
        created_at=utcnow().replace(hour=0, minute=0, second=0, microsecond=0),
    )
    session.add(row)
    await session.flush()
    return cipher.for_data_key(row.id, row.sealed)


async def case_cipher(
    session: AsyncSession, cipher: FieldCipher, case_id: int, *, create: bool = True
) -> FieldCipher:
    """The cipher of the case's data key, made now if the case has none yet (without `create`:
    the master cipher then, which opens what was sealed before envelope encryption)."""
    row = await _owned_key(session, case_id=case_id)
    if row is not None:
        return cipher.for_data_key(row.id, row.sealed)
    return await new_key(session, cipher, case_id=case_id) if create else cipher.master


async def user_cipher(
    session: AsyncSession, cipher: FieldCipher, user_id: int, *, create: bool = True
) -> FieldCipher:
    """The cipher of the user's own data key, made now if they have none yet (without `create`:
    the master cipher)."""
    row = await _owned_key(session, user_id=user_id)
    if row is not None:
        return cipher.for_data_key(row.id, row.sealed)
    return await new_key(session, cipher, user_id=user_id) if create else cipher.master


async def thread_cipher(
    session: AsyncSession, cipher: FieldCipher, thread: Thread, *, create: bool = True
) -> FieldCipher:
    """A thread belongs to the family member who writes in it: their key seals it."""
    return await user_cipher(session, cipher, thread.user_id, create=create)


async def key_cipher(session: AsyncSession, cipher: FieldCipher, key_id: int | None) -> FieldCipher:
    """The cipher a stored `data_key_id` names; the master cipher for None. A destroyed key gives
    a cipher that opens nothing sealed with it (the caller sees a `DataKeyError`)."""
    if key_id is None:
        return cipher.master
    sealed = await session.scalar(select(DataKey.sealed).where(DataKey.id == key_id))
    if sealed is None:
        return cipher.master
    return cipher.for_data_key(key_id, sealed)


def _reseal(old: FieldCipher, new: FieldCipher, token: bytes | None) -> bytes | None:
    return None if token is None else new.seal(old.open(token))


async def rekey_case(
    session: AsyncSession, cipher: FieldCipher, case_id: int, *, drop_delivered: bool = False
) -> int:
    """Give the case a new data key: re-seal what it still holds, then destroy the old key, so
    whatever was erased from it is unreadable in every copy. With `drop_delivered` (the case's
    details were erased), payloads of outbox rows already sent are dropped, not re-sealed:
    they carried the erased name. Returns how many values were re-sealed."""
    old_row = await _owned_key(session, case_id=case_id, exclusive=True)
    old = cipher.for_data_key(old_row.id, old_row.sealed) if old_row is not None else cipher.master
    if old_row is not None:
        old_row.case_id = None  # detached first: the new key takes its place (case_id is unique)
        await session.flush()
    new = await new_key(session, cipher, case_id=case_id)
    count = 0
    personal = await session.get(CasePersonal, case_id)
    if personal is not None:
        for name in PERSONAL_COLUMNS:
            token = getattr(personal, name)
            if token is not None:
                setattr(personal, name, _reseal(old, new, token))
                count += 1
    for contact in await session.scalars(select(CaseContact).where(CaseContact.case_id == case_id)):
        for name in CONTACT_COLUMNS:
            token = getattr(contact, name)
            if token is not None:
                setattr(contact, name, _reseal(old, new, token))
                count += 1
    for event in await session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.body.isnot(None))
    ):
        event.body = _reseal(old, new, event.body)
        count += 1
    await session.flush()
    if old_row is not None:
        count += await _move_outbox(session, old, new, drop_delivered=drop_delivered)
        await destroy_keys(session, cipher, [old_row.id])
    return count


async def _move_outbox(
    session: AsyncSession, old: FieldCipher, new: FieldCipher, *, drop_delivered: bool
) -> int:
    rows = (
        await session.execute(
            select(OutboxMessage.id, OutboxMessage.payload, OutboxMessage.status).where(
                OutboxMessage.data_key_id == old.key_id
            )
        )
    ).all()
    for row_id, payload, status in rows:
        if drop_delivered and status not in _UNSENT:
            values: dict[str, object] = {"payload": None, "data_key_id": None}
        else:
            values = {"payload": _reseal(old, new, payload), "data_key_id": new.key_id}
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return len(rows)


async def destroy_keys(session: AsyncSession, cipher: FieldCipher, key_ids: Iterable[int]) -> int:
    """Delete data keys (and the outbox rows, persistence entries and report forms sealed with
    them)."""
    ids = sorted(set(key_ids))
    if not ids:
        return 0
    sealed = list(await session.scalars(select(DataKey.sealed).where(DataKey.id.in_(ids))))
    await session.execute(delete(OutboxMessage).where(OutboxMessage.data_key_id.in_(ids)))
    await session.execute(delete(PersistenceEntry).where(PersistenceEntry.data_key_id.in_(ids)))
    await session.execute(delete(ReportForm).where(ReportForm.data_key_id.in_(ids)))
    await session.execute(delete(DataKey).where(DataKey.id.in_(ids)))
    for token in sealed:
        cipher.forget_data_key(token)
    return len(sealed)


async def destroy_user_key(session: AsyncSession, cipher: FieldCipher, user_id: int) -> int:
    key_id = await session.scalar(select(DataKey.id).where(DataKey.user_id == user_id))
    return await destroy_keys(session, cipher, [key_id] if key_id is not None else [])


async def shred_copies(engine: AsyncEngine) -> None:
    """After destroying keys (and committing): make the database drop its own copies of them.

    SQLite: `secure_delete` zeroed the deleted rows in the file, but the WAL still holds page
    images from before; `wal_checkpoint(TRUNCATE)` copies the WAL back and empties it (retried
    when a reader is in the way; the periodic checkpoint of `jobs.sqlite_maintenance` catches
    up otherwise). PostgreSQL: VACUUM leaves a deleted row's bytes in its page, so `data_keys`
    is rewritten whole (`VACUUM FULL`, a moment's lock on a small table) and its old file
    unlinked. What remains (PostgreSQL's WAL segments, the file system's free blocks, backups
    taken before) is listed in SECURITY.md."""
    if engine.dialect.name == "sqlite":
        for _ in range(5):
            result = await checkpoint_wal(engine)
            if result is None or result[0] == 0:
                return
        log.warning("wal checkpoint after destroying data keys was busy; the periodic one follows")
        return
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql(f"VACUUM FULL {DataKey.__tablename__}")


# -- values sealed before envelope encryption ----------------------------------------------------


async def _reseal_threads_of(session: AsyncSession, cipher: FieldCipher, user_id: int) -> None:
    own = await user_cipher(session, cipher, user_id)
    messages = await session.scalars(
        select(ThreadMessage)
        .join(Thread, Thread.id == ThreadMessage.thread_id)
        .where(Thread.user_id == user_id)
    )
    for message in messages:
        if message.body is not None and not own.is_sealed_with_primary(message.body):
            message.body = _reseal(own, own, message.body)
        if message.file_id is not None and not own.is_sealed_with_primary(message.file_id):
            message.file_id = _reseal(own, own, message.file_id)


async def give_existing_data_keys(sessions: SessionFactory, cipher: FieldCipher) -> int:
    """At start, once per database: cases and threads written before envelope encryption get
    their data keys, and their values are re-sealed with them. Returns how many cases.
    (Persistence entries get theirs at their next write; old outbox rows go with retention.)"""
    async with sessions() as session:
        if await session.get(Meta, ENVELOPE_META) is not None:
            return 0
        keyed = select(DataKey.case_id).where(DataKey.case_id.isnot(None))
        cases = list(await session.scalars(select(Case.id).where(Case.id.not_in(keyed))))
        writers = list(await session.scalars(select(Thread.user_id).distinct()))
    for case_id in cases:
        async with sessions() as session, session.begin():
            await rekey_case(session, cipher, case_id)
    for user_id in writers:
        async with sessions() as session, session.begin():
            await _reseal_threads_of(session, cipher, user_id)
    async with sessions() as session, session.begin():
        session.add(Meta(key=ENVELOPE_META, value=b"1"))
    return len(cases)
