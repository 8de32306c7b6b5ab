"""What a new leader takes over from the one before it (`bot/leadership.py`).

The leader's delivery loop names itself `leader:<random>`. Only one process holds the leader
lock (on SQLite, the file's single-instance lock) at a time, so when a process becomes the
leader, every row another `leader:` owner still holds in `sending` was left by a leader that is
gone (killed, or stopped after losing the lock): it is due again at once rather than after its
lease. Rows held by other owners (`python -m bot deliver` workers, alive or not) are left to
their leases.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import OutboxStatus
from storage.models import OutboxMessage

LEADER_OWNER_PREFIX = "leader:"


def leader_owner(owner: str) -> str:
    """The delivery owner name of the leader's loop, from the loop's own random id."""
    return owner if owner.startswith(LEADER_OWNER_PREFIX) else LEADER_OWNER_PREFIX + owner


async def requeue_former_leaders_rows(session: AsyncSession, *, own_owner: str) -> int:
    """Make pending again the rows an earlier leader's delivery loop still holds; returns how
    many. Run by a new leader before its own delivery starts."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.SENDING,
            OutboxMessage.owner.startswith(LEADER_OWNER_PREFIX, autoescape=True),
            OutboxMessage.owner != own_owner,
        )
        .values(status=OutboxStatus.PENDING, owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
