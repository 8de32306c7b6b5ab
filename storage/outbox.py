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
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    event,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from storage.crypto import DataKeyError, FieldCipher
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
#
# Ownership. A row is claimed by moving it from `pending` to `sending` in one UPDATE that names
# its `owner` (one delivery loop) and re-checks `status = 'pending'`, so of two loops racing for
# a row exactly one gets it (on PostgreSQL the candidates are also locked with SKIP LOCKED, so
# loops do not even try the same rows). The owner renews `lease_until` while it lives
# (`renew_leases`); a row whose lease ran out belongs to a loop that is gone, and is due again.

_OPEN = (OutboxStatus.PENDING, OutboxStatus.SENDING)
ANONYMOUS_OWNER = "-"
CLAIM_PAGES = 8
"""How many pages of due rows a claim reads at most looking for the heads of their chats."""
MAX_SEEN_CHATS = 8000
"""Chats a claim skips on later pages at most (they are bound parameters of its query)."""


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
    failing_since: datetime | None = None
    """Set while the row is in a run of network errors (see `reschedule`)."""


def _earlier_open_row_of_its_chat() -> ColumnElement[bool]:
    """An unsent row of the same chat comes before this one (lower priority, then lower id).

    This is what keeps one chat's messages in the order they were queued: a later row waits
    while an earlier one is pending, backing off, or in flight.
    """
    earlier = aliased(OutboxMessage)
    return exists().where(
        earlier.chat_id == OutboxMessage.chat_id,
        earlier.status.in_(_OPEN),
        or_(
            earlier.priority < OutboxMessage.priority,
            and_(earlier.priority == OutboxMessage.priority, earlier.id < OutboxMessage.id),
        ),
    )


async def _due_heads(session: AsyncSession, *, now: datetime, limit: int, lock: bool) -> list[int]:
    """The first `limit` due pending rows (by priority, then age) that head their chat.

    Reads due rows page by page along the partial index `ix_outbox_pending` (pending rows only,
    in claim order, with the chat and due time in the index), checking "first in its chat" for
    that page's rows alone in the same query: the cost follows the rows looked at, never the
    size of the table or fresh statistics. A chat met once is skipped on later pages, so one
    chat with thousands of rows queued does not hide the others.
    """
    page = min(max(limit * 4, 64), 2000)
    heads: list[int] = []
    seen: set[int] = set()
    after: tuple[int, int] | None = None
    for _ in range(CLAIM_PAGES):
        query = select(
            OutboxMessage.id,
            OutboxMessage.priority,
            OutboxMessage.chat_id,
            _earlier_open_row_of_its_chat().label("blocked"),
        ).where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= now)
        if after is not None:
            priority, row_id = after
            query = query.where(
                or_(
                    OutboxMessage.priority > priority,
                    and_(OutboxMessage.priority == priority, OutboxMessage.id > row_id),
                )
            )
        if seen:
            query = query.where(OutboxMessage.chat_id.not_in(seen))
        query = query.order_by(OutboxMessage.priority, OutboxMessage.id).limit(page)
        if lock:  # PostgreSQL: rows another claim is taking right now are simply skipped
            query = query.with_for_update(skip_locked=True)
        found = (await session.execute(query)).all()
        for row_id, _, chat_id, blocked in found:
            if chat_id not in seen:  # only a chat's first row on the page can head it
                seen.add(chat_id)
                if not blocked:
                    heads.append(row_id)
        if len(heads) >= limit or len(found) < page or len(seen) > MAX_SEEN_CHATS:
            break
        after = (found[-1][1], found[-1][0])
    return heads[:limit]


async def claim(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    owner: str = ANONYMOUS_OWNER,
    recover: bool = True,
) -> list[ClaimedMessage]:
    """Take up to `limit` due rows (case alerts first, then by age, each the first unsent row of
    its chat) for `owner`, leased until `now + lease`; run it in its own short transaction.

    A row is taken by an UPDATE that re-checks it is still pending, so two loops on one database
    never both get it. With `recover`, rows whose lease expired (their owner is gone) are made
    pending first."""
    if limit <= 0:
        return []
    if recover:
        await requeue_expired_leases(session, now=now)
    postgres = session.get_bind().dialect.name == "postgresql"
    heads = await _due_heads(session, now=now, limit=limit, lock=postgres)
    if not heads:
        return []
    taken = set(
        (
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(heads),
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.not_before <= now,
                )
                .values(status=OutboxStatus.SENDING, owner=owner, lease_until=now + lease)
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
        ).scalars()
    )
    if not taken:
        return []
    rows = await _claimed_rows(session, taken)
    withheld = await _withhold_from_former_monitors(session, [found[0] for found in rows])
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
            failing_since=row.failing_since,
        )
        for row, language, discreet, frozen_at, sealed_key, telegram_id, key_id, user_key in rows
        if row.id not in withheld
    ]


async def _claimed_rows(session: AsyncSession, ids: Iterable[int]) -> list[Any]:
    """The claimed rows with what sending needs: the recipient's language, choices, Telegram id
    and the keys that open the payload and the id."""
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
        .where(OutboxMessage.id.in_(list(ids)))
        .order_by(OutboxMessage.priority, OutboxMessage.id)
    )
    return list((await session.execute(query)).all())


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
            .values(
                status=OutboxStatus.CANCELLED,
                owner=None,
                lease_until=None,
                last_error=NOT_A_MONITOR,
            )
        )
    return withheld


def _held_by(message_id: int, owner: str | None) -> ColumnElement[bool]:
    """This row, and (with an owner) only while that owner still holds it."""
    if owner is None:
        return OutboxMessage.id == message_id
    return and_(
        OutboxMessage.id == message_id,
        OutboxMessage.owner == owner,
        OutboxMessage.status == OutboxStatus.SENDING,
    )


async def mark_sent(
    session: AsyncSession, message_id: int, *, telegram_message_id: int | None, now: datetime
) -> None:
    """The message is out: recorded whoever holds the row now (it must never go out again)."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            status=OutboxStatus.SENT,
            telegram_message_id=telegram_message_id,
            sent_at=now,
            owner=None,
            lease_until=None,
            last_error=None,
            failing_since=None,
        )
    )


async def mark_sent_many(
    session: AsyncSession, sent: Iterable[tuple[int, int | None, datetime]]
) -> int:
    """`mark_sent` for many rows in one statement executed for each (row id, Telegram message
    id, when it went out): the delivery job records its sends in batches."""
    table = cast(Table, OutboxMessage.__table__)
    rows = [{"row_id": row_id, "mid": mid, "at": at} for row_id, mid, at in sent]
    if not rows:
        return 0
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            status=OutboxStatus.SENT,
            telegram_message_id=bindparam("mid"),
            sent_at=bindparam("at", type_=table.c.sent_at.type),
            owner=None,
            lease_until=None,
            last_error=None,
            failing_since=None,
        )
    )
    connection = await session.connection()
    await connection.execute(statement, rows)
    return len(rows)


async def reschedule(
    session: AsyncSession,
    message_id: int,
    *,
    not_before: datetime,
    error: str | None = None,
    count_attempt: bool = True,
    failing_since: datetime | None = None,
    owner: str | None = None,
) -> None:
    """Back to pending until `not_before`; a 429 is not a failed attempt, a network error is.

    `failing_since` starts a run of network errors (kept if one is already running), which
    `delivery_horizon_hours` measures from. With `owner`, nothing happens unless that owner
    still holds the row."""
    values: dict[str, Any] = {
        "status": OutboxStatus.PENDING,
        "not_before": not_before,
        "owner": None,
        "lease_until": None,
    }
    if error is not None:
        values["last_error"] = error[:200]
    if count_attempt:
        values["attempts"] = OutboxMessage.attempts + 1
    if failing_since is not None:
        values["failing_since"] = func.coalesce(OutboxMessage.failing_since, failing_since)
    await session.execute(update(OutboxMessage).where(_held_by(message_id, owner)).values(**values))


async def last_error(session: AsyncSession, message_id: int) -> str | None:
    """The row's `last_error` (the delivery job tells a send that timed out twice from once)."""
    result: str | None = await session.scalar(
        select(OutboxMessage.last_error).where(OutboxMessage.id == message_id)
    )
    return result


async def mark_dead(
    session: AsyncSession,
    message_id: int,
    *,
    reason: str,
    now: datetime | None = None,
    owner: str | None = None,
) -> None:
    """Give up on one row; `reason` names an error type or code, never message text. Staff hear
    of it in the next summary (`unreported_dead`)."""
    await session.execute(
        update(OutboxMessage)
        .where(_held_by(message_id, owner))
        .values(
            status=OutboxStatus.DEAD,
            owner=None,
            lease_until=None,
            last_error=reason[:200],
            attempts=OutboxMessage.attempts + 1,
            dead_at=now or utcnow(),
        )
    )


async def mark_withheld(
    session: AsyncSession, message_id: int, *, reason: str, owner: str | None = None
) -> None:
    """Not sent on purpose (the recipient is frozen): cancelled, not a delivery failure."""
    await session.execute(
        update(OutboxMessage)
        .where(_held_by(message_id, owner))
        .values(
            status=OutboxStatus.CANCELLED, owner=None, lease_until=None, last_error=reason[:200]
        )
    )


async def mark_chat_dead(
    session: AsyncSession, chat_id: int, *, reason: str, now: datetime | None = None
) -> int:
    """Give up on every unsent row to a chat (the user blocked the bot); returns how many."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status.in_(_OPEN))
        .values(
            status=OutboxStatus.DEAD,
            owner=None,
            lease_until=None,
            last_error=reason[:200],
            dead_at=now or utcnow(),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def requeue_expired_leases(session: AsyncSession, *, now: datetime) -> int:
    """Rows whose owner stopped renewing their lease (it died) are pending again; returns how
    many. A live owner's rows are never touched, however long they wait."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until < now)
        .values(status=OutboxStatus.PENDING, owner=None, lease_until=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def renew_leases(
    session: AsyncSession, *, owner: str, ids: Iterable[int], until: datetime
) -> set[int]:
    """Extend to `until` the leases `owner` still holds among `ids` (the rows it is working on;
    a row it forgot, say after an error, is left to expire and go out again); returns the ids
    it still holds. A row missing from them was taken back after its lease ran out: it must
    not be sent by this owner."""
    wanted = list(ids)
    still: set[int] = set()
    for start in range(0, len(wanted), 500):
        result = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(wanted[start : start + 500]),
                OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.owner == owner,
            )
            .values(lease_until=until)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        still.update(result.scalars())
    return still


async def release(session: AsyncSession, ids: Iterable[int], *, owner: str) -> int:
    """Give rows back unsent (a clean stop): pending again at once, for whoever runs next."""
    wanted = list(ids)
    if not wanted:
        return 0
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(wanted),
            OutboxMessage.owner == owner,
            OutboxMessage.status == OutboxStatus.SENDING,
        )
        .values(status=OutboxStatus.PENDING, owner=None, lease_until=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def retry_failing_now(session: AsyncSession, *, now: datetime) -> int:
    """Telegram answers again after an outage: rows backing off from network errors are due now
    rather than at the end of their (up to five-minute) backoff; returns how many."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.failing_since.is_not(None),
            OutboxMessage.not_before > now,
        )
        .values(not_before=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- dead rows: one summary for staff -------------------------------------------------------------


@dataclass(frozen=True)
class DeadRow:
    """A row that will never be sent, for the staff summary: why, and the case code if any."""

    id: int
    template: str
    reason: str
    code: str | None


async def unreported_dead(
    session: AsyncSession, cipher: FieldCipher, *, died_before: datetime, limit: int = 2000
) -> list[DeadRow]:
    """Every dead row staff have not been told of, once the oldest of them died before
    `died_before` (so a burst is gathered into one summary); else nothing."""
    unreported = and_(
        OutboxMessage.status == OutboxStatus.DEAD, OutboxMessage.dead_reported_at.is_(None)
    )
    oldest = await session.scalar(select(func.min(OutboxMessage.dead_at)).where(unreported))
    if oldest is None or oldest > died_before:
        return []
    query = (
        select(OutboxMessage, DataKey.sealed)
        .outerjoin(DataKey, DataKey.id == OutboxMessage.data_key_id)
        .where(unreported)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    found = []
    for row, sealed_key in (await session.execute(query)).all():
        try:
            params = open_params(row_cipher(cipher, row.data_key_id, sealed_key), row.payload)
        except (DataKeyError, ValueError):  # unreadable: it still counts, without its code
            params = {}
        code = params.get("code")
        found.append(
            DeadRow(row.id, row.template, row.last_error or "", str(code) if code else None)
        )
    return found


async def mark_dead_reported(session: AsyncSession, ids: Iterable[int], *, now: datetime) -> None:
    wanted = list(ids)
    for start in range(0, len(wanted), 500):
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(wanted[start : start + 500]))
            .values(dead_reported_at=now)
        )


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
