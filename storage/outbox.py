"""The transactional outbox: messages are queued in the same transaction as the change that causes
them, and the delivery job (`jobs/delivery.py`) sends them later.

Queuing is idempotent: each row has a `dedupe_key` such as ``event:42:123456`` (one event, one
recipient), and queuing an existing key does nothing, so a monitor who follows both a case and its
region gets one alert per event. Parameters are sealed: they may carry a detainee's name. They are
sealed with the cipher `enqueue` is given: a case's or a user's data key (`storage.data_keys`),
named in `data_key_id`, so erasing the case or the user makes the payload unreadable everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, event, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from storage.crypto import FieldCipher
from storage.enums import OutboxKind, OutboxStatus
from storage.identity import open_telegram_id, user_key_cipher
from storage.models import DataKey, OutboxMessage, User, utcnow

ON_QUEUED_HOOK = "on_outbox_queued"
_QUEUED = "outbox_queued"
"""Session.info key of a callable run after a commit that queued rows (wakes the delivery job)."""

PRIORITY_CASE_ALERT = 0
PRIORITY_STAFF = 10
PRIORITY_DIGEST = 50
PRIORITY_BROADCAST = 100

FOR_MONITORS_ONLY = frozenset({"monitors.alert", "monitors.digest_part"})
"""Templates only an approved monitor (or an admin) may receive. `claim` checks the recipient
again as it takes such a row, so a monitor whose access was revoked after an alert was queued
never receives it: the row is cancelled with the reason `NOT_A_MONITOR`."""
NOT_A_MONITOR = "recipient is no longer a monitor"


@dataclass(frozen=True)
class Outgoing:
    """One message to queue: to whom (a user key, or a group chat id), what template, with
    which parameters."""

    chat_id: int
    dedupe_key: str
    template: str
    params: Mapping[str, Any]
    kind: OutboxKind = OutboxKind.CASE_ALERT
    priority: int = PRIORITY_CASE_ALERT
    event_id: int | None = None
    broadcast_id: int | None = None
    not_before: datetime | None = None
    thread_message_id: int | None = None


def event_key(event_id: int, chat_id: int) -> str:
    return f"event:{event_id}:{chat_id}"


def seal_params(cipher: FieldCipher, params: Mapping[str, Any]) -> bytes | None:
    return cipher.seal(json.dumps(dict(params), ensure_ascii=False, sort_keys=True))


def open_params(cipher: FieldCipher, payload: bytes | None) -> dict[str, Any]:
    text = cipher.open(payload)
    return {} if text is None else dict(json.loads(text))


def row_cipher(cipher: FieldCipher, key_id: int | None, sealed_key: bytes | None) -> FieldCipher:
    """The cipher of an outbox row's payload, from its `data_key_id` and that key's sealed bytes
    (joined from `data_keys`); the master cipher for a row sealed by it."""
    if key_id is None or sealed_key is None:
        return cipher.master
    return cipher.for_data_key(key_id, sealed_key)


async def enqueue(
    session: AsyncSession,
    cipher: FieldCipher,
    messages: Iterable[Outgoing],
    *,
    now: datetime | None = None,
) -> int:
    """Queue messages in the caller's transaction; existing dedupe keys are skipped.

    Returns how many rows were new. Uses INSERT ... ON CONFLICT DO NOTHING in batches, which is
    what lets one status change queue thousands of monitor alerts quickly. Payloads are sealed
    with `cipher`: pass the case's (or user's) data-key cipher for messages about them.
    """
    when = now or utcnow()
    sealed: dict[str, bytes | None] = {}  # a fan-out shares one payload: seal it once
    rows = []
    for message in messages:
        text = json.dumps(dict(message.params), ensure_ascii=False, sort_keys=True)
        if text not in sealed:
            sealed[text] = cipher.seal(text)
        rows.append(
            {
                "dedupe_key": message.dedupe_key,
                "chat_id": message.chat_id,
                "kind": message.kind,
                "priority": message.priority,
                "template": message.template,
                "payload": sealed[text],
                "event_id": message.event_id,
                "broadcast_id": message.broadcast_id,
                "thread_message_id": message.thread_message_id,
                "data_key_id": cipher.key_id,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "not_before": message.not_before or when,
                "created_at": when,
            }
        )
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # One compiled statement, executed for many parameter sets (SQLAlchemy's "insertmanyvalues"
    # batches them into multi-row INSERTs): compiling a 500-row VALUES clause per batch cost
    # 50x the insert itself.
    statement = (
        insert(OutboxMessage)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxMessage.id)
    )
    connection = await session.connection()
    added = len((await connection.execute(statement, rows)).all())
    wake_delivery_after_commit(session, added)
    return added


def wake_delivery_after_commit(session: AsyncSession, rows: int) -> None:
    """Note that this transaction made `rows` rows due, so delivery is woken when it commits."""
    if rows:
        session.info[_QUEUED] = session.info.get(_QUEUED, 0) + rows


@event.listens_for(Session, "after_commit")
def _wake_delivery_after_commit(session: Session) -> None:
    """Rows are only visible once committed: that is the moment to wake the delivery job."""
    queued = session.info.pop(_QUEUED, 0)
    hook = session.info.get(ON_QUEUED_HOOK)
    if queued and callable(hook):
        hook()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_rows(session: Session) -> None:
    session.info.pop(_QUEUED, None)


async def pending_for_chat(session: AsyncSession, chat_id: int) -> list[OutboxMessage]:
    result = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == OutboxStatus.PENDING)
        .order_by(OutboxMessage.id)
    )
    return list(result)


# -- delivery: claim, then record what happened ---------------------------------------------------

_OPEN = (OutboxStatus.PENDING, OutboxStatus.SENDING)


@dataclass(frozen=True)
class ClaimedMessage:
    """An outbox row the delivery job now holds a lease on, with its parameters opened."""

    id: int
    chat_id: int
    kind: str
    priority: int
    template: str
    params: dict[str, Any]
    attempts: int
    language: str | None
    event_id: int | None
    broadcast_id: int | None
    discreet: bool = True
    """The recipient's choice (users.discreet); True when unknown, the safe side."""
    frozen: bool = False
    """The recipient is frozen (a seized phone): the row must not be sent."""
    telegram_chat_id: int | None = None
    """Where to send: the recipient's Telegram id, opened from its sealed copy (`chat_id` is the
    user key), or the group's chat id; None when the recipient is unknown (not to be sent)."""


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= now),
        and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until < now),
    )


def _head_of_its_chat() -> ColumnElement[bool]:
    """No unsent row of the same chat comes before this one (lower priority, then lower id).

    This is what keeps one chat's messages in the order they were queued: a later row waits
    while an earlier one is pending, backing off, or in flight.
    """
    earlier = aliased(OutboxMessage)
    return ~exists().where(
        earlier.chat_id == OutboxMessage.chat_id,
        earlier.status.in_(_OPEN),
        or_(
            earlier.priority < OutboxMessage.priority,
            and_(earlier.priority == OutboxMessage.priority, earlier.id < OutboxMessage.id),
        ),
    )


async def claim(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    exclude_chats: Iterable[int] = (),
) -> list[ClaimedMessage]:
    """Take up to `limit` due rows (case alerts first, then by age) and lease them until
    `now + lease`; run it in its own short transaction. Rows whose lease expired (the process
    died while sending) are due again. `exclude_chats` are chats the caller is still pacing."""
    excluded = list(exclude_chats)
    UserKey = aliased(DataKey)
    query = (
        select(
            OutboxMessage,
            User.language,
            User.discreet,
            User.frozen_at,
            DataKey.sealed,
            User.telegram_id,
            UserKey.id,
            UserKey.sealed,
        )
        .outerjoin(User, User.id == OutboxMessage.chat_id)
        .outerjoin(DataKey, DataKey.id == OutboxMessage.data_key_id)
        .outerjoin(UserKey, UserKey.user_id == User.id)
        .where(_due(now), _head_of_its_chat())
        .order_by(OutboxMessage.priority, OutboxMessage.id)
        .limit(limit)
    )
    if excluded:
        query = query.where(OutboxMessage.chat_id.not_in(excluded))
    rows = (await session.execute(query)).all()
    withheld = await _withhold_from_former_monitors(session, [found[0] for found in rows])
    rows = [found for found in rows if found[0].id not in withheld]
    if not rows:
        return []
    ids = [row.id for row, *_ in rows]
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(status=OutboxStatus.SENDING, lease_until=now + lease)
    )
    return [
        ClaimedMessage(
            id=row.id,
            chat_id=row.chat_id,
            kind=row.kind,
            priority=row.priority,
            template=row.template,
            params=open_params(row_cipher(cipher, row.data_key_id, sealed_key), row.payload),
            attempts=row.attempts,
            language=language,
            event_id=row.event_id,
            broadcast_id=row.broadcast_id,
            discreet=discreet is not False,
            frozen=frozen_at is not None,
            telegram_chat_id=(
                row.chat_id
                if row.chat_id < 0
                else open_telegram_id(user_key_cipher(cipher, key_id, user_key), telegram_id)
            ),
        )
        for row, language, discreet, frozen_at, sealed_key, telegram_id, key_id, user_key in rows
    ]


async def _withhold_from_former_monitors(
    session: AsyncSession, rows: Iterable[OutboxMessage]
) -> set[int]:
    """Cancel the monitor-only rows among `rows` whose recipient is no longer an approved monitor
    (revoked, blocked or forgotten since the row was queued); returns their ids."""
    from storage.subscriptions import reachable_monitor  # it imports this module

    candidates = {row.id: row.chat_id for row in rows if row.template in FOR_MONITORS_ONLY}
    if not candidates:
        return set()
    chats = set(candidates.values())
    still = set(
        await session.scalars(select(User.id).where(User.id.in_(chats), reachable_monitor()))
    )
    withheld = {row_id for row_id, chat in candidates.items() if chat not in still}
    if withheld:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(withheld))
            .values(status=OutboxStatus.CANCELLED, lease_until=None, last_error=NOT_A_MONITOR)
        )
    return withheld


async def mark_sent(
    session: AsyncSession, message_id: int, *, telegram_message_id: int | None, now: datetime
) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            status=OutboxStatus.SENT,
            telegram_message_id=telegram_message_id,
            sent_at=now,
            lease_until=None,
            last_error=None,
        )
    )


async def reschedule(
    session: AsyncSession,
    message_id: int,
    *,
    not_before: datetime,
    error: str | None = None,
    count_attempt: bool = True,
) -> None:
    """Back to pending until `not_before`; a 429 is not a failed attempt, a network error is."""
    values: dict[str, Any] = {
        "status": OutboxStatus.PENDING,
        "not_before": not_before,
        "lease_until": None,
    }
    if error is not None:
        values["last_error"] = error[:200]
    if count_attempt:
        values["attempts"] = OutboxMessage.attempts + 1
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
    )


async def mark_dead(session: AsyncSession, message_id: int, *, reason: str) -> None:
    """Give up on one row; `reason` names an error type or code, never message text."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            status=OutboxStatus.DEAD,
            lease_until=None,
            last_error=reason[:200],
            attempts=OutboxMessage.attempts + 1,
        )
    )


async def mark_withheld(session: AsyncSession, message_id: int, *, reason: str) -> None:
    """Not sent on purpose (the recipient is frozen): cancelled, not a delivery failure."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status=OutboxStatus.CANCELLED, lease_until=None, last_error=reason[:200])
    )


async def mark_chat_dead(session: AsyncSession, chat_id: int, *, reason: str) -> int:
    """Give up on every unsent row to a chat (the user blocked the bot); returns how many."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status.in_(_OPEN))
        .values(status=OutboxStatus.DEAD, lease_until=None, last_error=reason[:200])
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def requeue_expired_leases(session: AsyncSession, *, now: datetime) -> int:
    """Rows left `sending` by a process that died are pending again; returns how many."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until < now)
        .values(status=OutboxStatus.PENDING, lease_until=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def counts(session: AsyncSession) -> dict[OutboxStatus, int]:
    """How many rows are in each status (for /health, the CLI and tests)."""
    rows = await session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    found = {OutboxStatus(status): int(number) for status, number in rows}
    return {status: found.get(status, 0) for status in OutboxStatus}


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the earliest pending row becomes due (to sleep exactly until then)."""
    return await session.scalar(
        select(func.min(OutboxMessage.not_before)).where(
            OutboxMessage.status == OutboxStatus.PENDING
        )
    )
