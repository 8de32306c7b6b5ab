"""The transactional outbox: messages are queued in the same transaction as the change that causes
them, and the delivery job (`jobs/delivery.py`) sends them later.

Queuing is idempotent: each row has a `dedupe_key` such as ``event:42:123456`` (one event, one
recipient), and queuing an existing key does nothing, so a monitor who follows both a case and its
region gets one alert per event. Parameters are sealed: they may carry a detainee's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import FieldCipher
from storage.enums import OutboxKind, OutboxStatus
from storage.models import OutboxMessage, utcnow

PRIORITY_CASE_ALERT = 0
PRIORITY_STAFF = 10
PRIORITY_DIGEST = 50
PRIORITY_BROADCAST = 100
INSERT_BATCH = 500


@dataclass(frozen=True)
class Outgoing:
    """One message to queue: to whom, what template, with which parameters."""

    chat_id: int
    dedupe_key: str
    template: str
    params: Mapping[str, Any]
    kind: OutboxKind = OutboxKind.CASE_ALERT
    priority: int = PRIORITY_CASE_ALERT
    event_id: int | None = None
    broadcast_id: int | None = None
    not_before: datetime | None = None


def event_key(event_id: int, chat_id: int) -> str:
    return f"event:{event_id}:{chat_id}"


def seal_params(cipher: FieldCipher, params: Mapping[str, Any]) -> bytes | None:
    return cipher.seal(json.dumps(dict(params), ensure_ascii=False, sort_keys=True))


def open_params(cipher: FieldCipher, payload: bytes | None) -> dict[str, Any]:
    text = cipher.open(payload)
    return {} if text is None else dict(json.loads(text))


async def enqueue(
    session: AsyncSession,
    cipher: FieldCipher,
    messages: Iterable[Outgoing],
    *,
    now: datetime | None = None,
) -> int:
    """Queue messages in the caller's transaction; existing dedupe keys are skipped.

    Returns how many rows were new. Uses INSERT ... ON CONFLICT DO NOTHING in batches, which is
    what lets one status change queue thousands of monitor alerts quickly.
    """
    when = now or utcnow()
    rows = [
        {
            "dedupe_key": message.dedupe_key,
            "chat_id": message.chat_id,
            "kind": message.kind,
            "priority": message.priority,
            "template": message.template,
            "payload": seal_params(cipher, message.params),
            "event_id": message.event_id,
            "broadcast_id": message.broadcast_id,
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "not_before": message.not_before or when,
            "created_at": when,
        }
        for message in messages
    ]
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    added = 0
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start : start + INSERT_BATCH]
        statement = (
            insert(OutboxMessage)
            .values(batch)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(OutboxMessage.id)
        )
        added += len((await session.execute(statement)).all())
    session.info["outbox_queued"] = session.info.get("outbox_queued", 0) + added
    return added


async def pending_for_chat(session: AsyncSession, chat_id: int) -> list[OutboxMessage]:
    result = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == OutboxStatus.PENDING)
        .order_by(OutboxMessage.id)
    )
    return list(result)
