"""The audit log: every staff action and every refused attempt, without personal data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import AuditOutcome
from storage.models import AuditEntry, utcnow


def record(
    session: AsyncSession,
    *,
    actor_id: int,
    action: str,
    outcome: AuditOutcome = AuditOutcome.OK,
    case_code: str | None = None,
    target_user_id: int | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add an audit row to the caller's transaction (so it commits with the action it records)."""
    entry = AuditEntry(
        actor_id=actor_id,
        action=action[:48],
        outcome=outcome,
        case_code=case_code,
        target_user_id=target_user_id,
        detail=detail[:120] if detail else None,
        created_at=at or utcnow(),
    )
    session.add(entry)
    return entry
