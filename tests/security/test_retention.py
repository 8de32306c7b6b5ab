"""Retention: with a fixed clock, old drafts, old delivered outbox rows and old audit rows go;
newer ones (and pending outbox rows, whatever their age) stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import select

from bot.app import open_services
from bot.settings import Settings
from jobs.retention import JOB_NAME, run_retention
from storage.enums import OutboxKind, OutboxStatus
from storage.models import AuditEntry, OutboxMessage, PersistenceEntry
from tests.support.harness import BotHarness

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _outbox(key: str, status: OutboxStatus, age_days: int) -> OutboxMessage:
    when = NOW - timedelta(days=age_days)
    return OutboxMessage(
        dedupe_key=key,
        chat_id=1,
        kind=OutboxKind.CASE_ALERT,
        template="t",
        status=status,
        not_before=when,
        created_at=when,
    )


async def test_old_rows_go_and_new_rows_stay(database_url: str, data_key: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        database_url=database_url,
        data_key=SecretStr(data_key),
        draft_retention_days=7,
        outbox_retention_days=30,
        audit_retention_days=365,
    )
    services = await open_services(settings)
    services.clock = lambda: NOW
    try:
        async with services.sessions() as session, session.begin():
            for key, age in (("old", 8), ("new", 6)):
                session.add(
                    PersistenceEntry(
                        kind="user",
                        key=key,
                        data=services.cipher.seal("{}") or b"",
                        updated_at=NOW - timedelta(days=age),
                    )
                )
            session.add_all(
                [
                    _outbox("sent-old", OutboxStatus.SENT, 31),
                    _outbox("dead-old", OutboxStatus.DEAD, 40),
                    _outbox("sent-new", OutboxStatus.SENT, 29),
                    _outbox("pending-old", OutboxStatus.PENDING, 90),
                ]
            )
            for action, age in (("old", 366), ("new", 364)):
                session.add(
                    AuditEntry(
                        actor_id=1,
                        action=action,
                        outcome="ok",
                        created_at=NOW - timedelta(days=age),
                    )
                )
        result = await run_retention(services)
        assert sorted(result.drafts) == [("user", "old")]
        assert (result.outbox_rows, result.audit_rows) == (2, 1)
        async with services.sessions() as session:
            assert list(await session.scalars(select(PersistenceEntry.key))) == ["new"]
            outbox = set(await session.scalars(select(OutboxMessage.dedupe_key)))
            assert outbox == {"sent-new", "pending-old"}
            assert list(await session.scalars(select(AuditEntry.action))) == ["new"]
    finally:
        await services.engine.dispose()


async def test_retention_is_scheduled_daily(running_bot: BotHarness) -> None:
    assert running_bot.application is not None and running_bot.application.job_queue is not None
    names = [job.name for job in running_bot.application.job_queue.jobs()]
    assert JOB_NAME in names
