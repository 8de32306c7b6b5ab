"""The figures an operator watches (`bot/health.py`, `bot/metrics.py`): queues, dead rows, backlog.

Counts only, never a row's content: no chat, user or case appears here. Each query reads an
index whose first column is the status (or the small set of open rows), so the cost follows
the rows waiting, not the delivered history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import OutboxStatus
from storage.models import InboxUpdate, Meta, OutboxMessage

OPEN_STATUSES = (OutboxStatus.PENDING, OutboxStatus.SENDING)


@dataclass(frozen=True)
class Figures:
    """One reading of the database."""

    queue: dict[tuple[str, str], int] = field(default_factory=dict)
    """Open outbox rows by (kind, status), status pending or sending."""
    dead: int = 0
    """Dead rows still in the table (retention removes them with the rest)."""
    dead_unreported: int = 0
    """Dead rows staff have not yet had in a summary."""
    outbox_oldest_due_seconds: float = 0.0
    """How long the longest-waiting due row has been due; 0 when none is."""
    inbox_waiting: int = 0
    """Updates stored and not yet handled."""
    inbox_oldest_seconds: float = 0.0
    """How long the oldest of them has waited; 0 when none does."""


def _age(moment: datetime | None, now: datetime) -> float:
    if moment is None:
        return 0.0
    return max(0.0, (now - moment).total_seconds())


async def read_figures(session: AsyncSession, *, now: datetime) -> Figures:
    """Five small queries in one read-only transaction."""
    open_rows = await session.execute(
        select(OutboxMessage.kind, OutboxMessage.status, func.count())
        .where(OutboxMessage.status.in_(OPEN_STATUSES))
        .group_by(OutboxMessage.kind, OutboxMessage.status)
    )
    queue = {(str(kind), str(status)): int(count) for kind, status, count in open_rows}
    dead = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.DEAD)
    )
    unreported = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.DEAD, OutboxMessage.dead_reported_at.is_(None))
    )
    first_due = await session.scalar(
        select(func.min(OutboxMessage.not_before)).where(
            OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= now
        )
    )
    inbox = (
        await session.execute(
            select(func.count(), func.min(InboxUpdate.received_at)).where(
                InboxUpdate.payload.isnot(None)
            )
        )
    ).one()
    return Figures(
        queue=queue,
        dead=int(dead or 0),
        dead_unreported=int(unreported or 0),
        outbox_oldest_due_seconds=_age(first_due, now),
        inbox_waiting=int(inbox[0] or 0),
        inbox_oldest_seconds=_age(inbox[1], now),
    )


async def ping(session: AsyncSession) -> None:
    """A read of one of the bot's own tables: raises if the database cannot answer it (a
    server gone, a database dropped, a SQLite file replaced by an empty one)."""
    await session.scalar(select(literal(1)).select_from(Meta).limit(1))
