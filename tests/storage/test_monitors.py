"""Monitor access requests on SQLite and PostgreSQL: filed to admins sealed, decided only by an
admin, audited either way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storage import monitors
from storage.crypto import FieldCipher
from storage.db import SessionFactory, make_engine, make_session_factory
from storage.enums import AuditOutcome, MonitorStatus, Role
from storage.migrate import upgrade_to_head
from storage.models import AuditEntry, MonitorRequest, OutboxMessage, User
from storage.outbox import open_params

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ASKER, ADMINS = 800, frozenset({9001, 9002})


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(database_url)
    await upgrade_to_head(engine)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


async def test_request_approve_and_refuse(sessions: SessionFactory, data_key: str) -> None:
    cipher = FieldCipher.from_setting(data_key)
    async with sessions() as session, session.begin():
        request_id = await monitors.request_access(
            session, cipher, ASKER, "Crimea Watch", "documenting", admin_ids=ADMINS, now=NOW
        )
    async with sessions() as session, session.begin():
        with pytest.raises(monitors.RequestRefused, match="pending"):
            await monitors.request_access(
                session, cipher, ASKER, "x", "y", admin_ids=ADMINS, now=NOW
            )
    async with sessions() as session:
        stored = await session.get(MonitorRequest, request_id)
        assert stored is not None and b"Crimea Watch" not in (stored.organisation or b"")
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.chat_id)))
        assert [r.chat_id for r in rows] == sorted(ADMINS)
        assert open_params(cipher, rows[0].payload)["organisation"] == "Crimea Watch"
        (pending,) = await monitors.pending_requests(session, cipher)
        assert (pending.user_id, pending.purpose) == (ASKER, "documenting")

    async with sessions() as session, session.begin():
        with pytest.raises(monitors.RequestRefused, match="denied"):
            await monitors.decide_request(
                session,
                cipher,
                request_id,
                approve=True,
                actor_id=555,
                actor_role=Role.STAFF,
                now=NOW,
            )
    async with sessions() as session, session.begin():
        decision = await monitors.decide_request(
            session,
            cipher,
            request_id,
            approve=True,
            actor_id=9001,
            actor_role=Role.ADMIN,
            now=NOW,
        )
    assert decision.approved and decision.user_id == ASKER
    async with sessions() as session, session.begin():
        with pytest.raises(monitors.RequestRefused, match="decided"):
            await monitors.decide_request(
                session,
                cipher,
                request_id,
                approve=False,
                actor_id=9001,
                actor_role=Role.ADMIN,
                now=NOW,
            )
    async with sessions() as session:
        user = await session.get(User, ASKER)
        assert user is not None
        assert (user.role, user.monitor_status) == (Role.MONITOR, MonitorStatus.APPROVED)
        audits = [
            (a.actor_id, a.action, a.outcome)
            for a in await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
        outcome = await session.scalar(select(OutboxMessage).where(OutboxMessage.chat_id == ASKER))
        assert outcome is not None and open_params(cipher, outcome.payload) == {"approved": True}
    assert audits == [
        (ASKER, "monitor.request", AuditOutcome.OK),
        (555, "monitor.approve", AuditOutcome.DENIED),
        (9001, "monitor.approve", AuditOutcome.OK),
        (9001, "monitor.refuse", AuditOutcome.REFUSED),
    ]

    async with sessions() as session, session.begin():
        other = await monitors.request_access(
            session, cipher, 801, "Org", "why", admin_ids=ADMINS, now=NOW
        )
        await monitors.decide_request(
            session, cipher, other, approve=False, actor_id=9001, actor_role=Role.ADMIN, now=NOW
        )
        refused = await session.get(User, 801)
        assert refused is not None and refused.role == Role.FAMILY
        assert refused.monitor_status == MonitorStatus.REFUSED
