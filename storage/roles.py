"""Granting and revoking roles: admins only (checked by the handler), always audited.

Admins themselves are named in settings and never stored, so they cannot be granted or revoked.
Revoking a monitor also withdraws their monitor approval, so their subscriptions fall silent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.enums import AuditOutcome, MonitorStatus, Role
from storage.models import User
from storage.users import set_role

GRANTABLE = (Role.STAFF, Role.MONITOR)


async def grant_role(
    session: AsyncSession,
    *,
    actor_id: int,
    user_id: int,
    role: Role,
    now: datetime,
    sealed_telegram_id: bytes | None = None,
) -> None:
    """`user_id` is the user key; `sealed_telegram_id` is kept for sending when the user has
    not written to the bot yet (a role granted in advance)."""
    if role not in GRANTABLE:
        raise ValueError("only staff and monitor roles can be granted")
    await set_role(session, user_id, role, sealed_telegram_id=sealed_telegram_id)
    audit.record(
        session, actor_id=actor_id, action=f"role.grant.{role}", target_user_id=user_id, at=now
    )


async def revoke_role(session: AsyncSession, *, actor_id: int, user_id: int, now: datetime) -> bool:
    """Back to family; False (and a REFUSED audit row) when the user had no granted role."""
    user = await session.get(User, user_id)
    if user is None or (user.role == Role.FAMILY and user.monitor_status != MonitorStatus.APPROVED):
        audit.record(
            session,
            actor_id=actor_id,
            action="role.revoke",
            target_user_id=user_id,
            outcome=AuditOutcome.REFUSED,
            detail="no granted role",
            at=now,
        )
        return False
    previous = user.role
    user.role = Role.FAMILY
    user.monitor_status = MonitorStatus.NONE
    audit.record(
        session,
        actor_id=actor_id,
        action="role.revoke",
        target_user_id=user_id,
        detail=f"was {previous}",
        at=now,
    )
    return True
