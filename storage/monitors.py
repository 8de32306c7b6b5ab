"""Monitor access: a user asks (organisation, purpose), an admin approves or refuses.

The request, its notice to every admin and the audit row commit together; so do the decision,
the requester's answer and its audit row. Organisation and purpose are sealed: they can identify
the person asking. Whether the decider is an admin is checked by the handler (`storage.access`)
and again here, because a forged button must not be able to approve anyone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.access import Permission, can
from storage.crypto import FieldCipher
from storage.enums import AuditOutcome, MonitorStatus, OutboxKind, Role
from storage.models import MonitorRequest, User
from storage.outbox import PRIORITY_STAFF, Outgoing, enqueue

T_ACCESS_REQUEST = "monitors.access_request"
T_ACCESS_OUTCOME = "monitors.access_outcome"
ORGANISATION_LIMIT = 200
PURPOSE_LIMIT = 1000


class RequestRefused(ValueError):
    """The request cannot be made or decided; `reason` is a short word for the handler."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class PendingRequest:
    id: int
    user_id: int
    organisation: str | None
    purpose: str | None
    created_at: datetime


@dataclass(frozen=True)
class Decision:
    request_id: int
    user_id: int
    approved: bool


async def request_access(
    session: AsyncSession,
    cipher: FieldCipher,
    user_id: int,
    organisation: str,
    purpose: str,
    *,
    admin_ids: Iterable[int],
    now: datetime,
) -> int:
    """File a request and tell every admin (with Approve/Refuse buttons); returns its id.

    Refused ("approved") for a monitor already approved and ("pending") while one is waiting.
    """
    user = await session.get(User, user_id)
    if user is None:
        user = User(id=user_id, created_at=now)
        session.add(user)
        await session.flush()
    if user.monitor_status == MonitorStatus.APPROVED:
        raise RequestRefused("approved")
    if user.monitor_status == MonitorStatus.PENDING:
        raise RequestRefused("pending")
    user.monitor_status = MonitorStatus.PENDING
    request = MonitorRequest(
        user_id=user_id,
        organisation=cipher.seal(organisation[:ORGANISATION_LIMIT]),
        purpose=cipher.seal(purpose[:PURPOSE_LIMIT]),
        created_at=now,
    )
    session.add(request)
    await session.flush()
    params = {
        "request_id": request.id,
        "user_id": user_id,
        "organisation": organisation[:ORGANISATION_LIMIT],
        "purpose": purpose[:PURPOSE_LIMIT],
    }
    await enqueue(
        session,
        cipher,
        [
            Outgoing(
                admin,
                f"monreq:{request.id}:{admin}",
                T_ACCESS_REQUEST,
                params,
                kind=OutboxKind.STAFF_ALERT,
                priority=PRIORITY_STAFF,
            )
            for admin in sorted(set(admin_ids))
        ],
        now=now,
    )
    audit.record(session, actor_id=user_id, action="monitor.request", at=now)
    return request.id


async def pending_requests(session: AsyncSession, cipher: FieldCipher) -> list[PendingRequest]:
    rows = await session.scalars(
        select(MonitorRequest)
        .where(MonitorRequest.status == MonitorStatus.PENDING)
        .order_by(MonitorRequest.id)
    )
    return [
        PendingRequest(
            r.id, r.user_id, cipher.open(r.organisation), cipher.open(r.purpose), r.created_at
        )
        for r in rows
    ]


async def decide_request(
    session: AsyncSession,
    cipher: FieldCipher,
    request_id: int,
    *,
    approve: bool,
    actor_id: int,
    actor_role: Role | str,
    now: datetime,
) -> Decision:
    """Approve (role MONITOR, status APPROVED) or refuse a pending request, audited either way.

    A decider without the permission gets RequestRefused("denied") and a DENIED audit row, which
    the caller must commit (the row is the record of the attempt)."""
    action = "monitor.approve" if approve else "monitor.refuse"
    if not can(actor_role, Permission.DECIDE_MONITOR_REQUESTS):
        audit.record(
            session,
            actor_id=actor_id,
            action=action,
            outcome=AuditOutcome.DENIED,
            detail=f"request {request_id}",
            at=now,
        )
        raise RequestRefused("denied")
    request = await session.get(MonitorRequest, request_id, with_for_update=True)
    if request is None or request.status != MonitorStatus.PENDING:
        audit.record(
            session,
            actor_id=actor_id,
            action=action,
            outcome=AuditOutcome.REFUSED,
            detail=f"request {request_id} not pending",
            at=now,
        )
        raise RequestRefused("decided")
    request.status = MonitorStatus.APPROVED if approve else MonitorStatus.REFUSED
    request.decided_by = actor_id
    request.decided_at = now
    user = await session.get(User, request.user_id)
    if user is not None:
        user.monitor_status = request.status
        if approve and user.role == Role.FAMILY:
            user.role = Role.MONITOR
    await enqueue(
        session,
        cipher,
        [
            Outgoing(
                request.user_id,
                f"monreq:{request.id}:outcome",
                T_ACCESS_OUTCOME,
                {"approved": approve},
            )
        ],
        now=now,
    )
    audit.record(
        session,
        actor_id=actor_id,
        action=action,
        target_user_id=request.user_id,
        detail=f"request {request.id}",
        at=now,
    )
    return Decision(request.id, request.user_id, approve)
