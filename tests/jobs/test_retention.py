"""Retention over many rows (SQLite and PostgreSQL): the outbox and audit rows left are exactly
those a single DELETE would leave, and they went in batches of at most `batch` rows, each batch
its own DELETE (counted on the engine, not timed)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import event, insert, select

from bot.app import open_services
from bot.settings import Settings
from jobs.retention import run_retention
from storage.enums import OutboxKind, OutboxStatus
from storage.models import AuditEntry, OutboxMessage

NOW = datetime(2026, 6, 1, 3, 17, tzinfo=UTC)
STATUSES = (
    OutboxStatus.SENT,
    OutboxStatus.DEAD,
    OutboxStatus.CANCELLED,
    OutboxStatus.PENDING,
    OutboxStatus.SENT,
    OutboxStatus.SENDING,
)
DONE = (OutboxStatus.SENT, OutboxStatus.DEAD, OutboxStatus.CANCELLED)


def _outbox(number: int) -> dict[str, Any]:
    """Old and new, done and open rows interleaved, so the expired ids are not one run."""
    status = STATUSES[number % len(STATUSES)]
    age = timedelta(days=31 + number % 7) if number % 11 else timedelta(days=29)
    when = NOW - age
    return {
        "dedupe_key": f"row:{number}",
        "chat_id": 1 + number % 5,
        "kind": OutboxKind.CASE_ALERT,
        "priority": 0,
        "template": "t",
        "status": status,
        "attempts": 0,
        "not_before": when,
        "created_at": when,
    }


def _expired(row: dict[str, Any]) -> bool:
    return row["status"] in DONE and row["created_at"] < NOW - timedelta(days=30)


async def test_many_rows_go_in_batches_and_the_rest_stays(database_url: str, data_key: str) -> None:
    settings = Settings(
        database_url=database_url,
        data_key=SecretStr(data_key),
        outbox_retention_days=30,
        audit_retention_days=365,
    )
    services = await open_services(settings)
    services.clock = lambda: NOW
    outbox = [_outbox(number) for number in range(1500)]
    audit: list[dict[str, Any]] = [
        {
            "actor_id": 1,
            "action": f"a{number}",
            "outcome": "ok",
            "created_at": NOW - timedelta(days=366 if number % 4 else 10),
        }
        for number in range(420)
    ]
    deletes: dict[str, list[int]] = {"outbox": [], "audit_log": []}

    def count(_c: Any, cursor: Any, statement: str, *_rest: Any) -> None:
        for table, counts in deletes.items():
            if statement.lstrip().upper().startswith(f"DELETE FROM {table.upper()} "):
                counts.append(cursor.rowcount)

    try:
        async with services.sessions() as session, session.begin():
            await session.execute(insert(OutboxMessage), outbox)
            await session.execute(insert(AuditEntry), audit)
        event.listen(services.engine.sync_engine, "after_cursor_execute", count)
        result = await run_retention(services, batch=100, pause=0, target=None)
        event.remove(services.engine.sync_engine, "after_cursor_execute", count)

        old_outbox = sum(_expired(row) for row in outbox)
        old_audit = sum(row["created_at"] < NOW - timedelta(days=365) for row in audit)
        assert old_outbox > 500 and (result.outbox_rows, result.audit_rows) == (
            old_outbox,
            old_audit,
        )
        async with services.sessions() as session:
            kept = set(await session.scalars(select(OutboxMessage.dedupe_key)))
            kept_audit = set(await session.scalars(select(AuditEntry.action)))
        assert kept == {row["dedupe_key"] for row in outbox if not _expired(row)}
        assert kept_audit == {
            row["action"] for row in audit if row["created_at"] > NOW - timedelta(days=365)
        }
        # in batches: one DELETE per 100 rows, none larger
        assert len(deletes["outbox"]) == math.ceil(old_outbox / 100)
        assert len(deletes["audit_log"]) == math.ceil(old_audit / 100)
        assert max(deletes["outbox"] + deletes["audit_log"]) <= 100
        assert sum(deletes["outbox"]) == old_outbox
        assert result.batches == len(deletes["outbox"]) + len(deletes["audit_log"])

        assert (
            await run_retention(services, batch=100, pause=0, target=None)
        ).batches == 0  # nothing left
    finally:
        await services.engine.dispose()
