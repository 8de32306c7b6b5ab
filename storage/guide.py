"""Imported versions of the "what to do" guide: stored, audited, the newest one read back.

`python -m bot guide import` checks the files (bot.guide) and stores the whole guide, every
language, as one new `GuideVersion` row with an audit row, in one transaction. The bot looks up
the newest version's id when someone opens the guide and reloads only when it changed, so an
import takes effect without a restart. With no row, the files under locales/guide/ are the guide.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.models import GuideVersion, utcnow


async def store_version(
    session: AsyncSession,
    sources: Mapping[str, str],
    *,
    actor_id: int,
    changed: list[str],
    now: datetime | None = None,
) -> int:
    """A new version of the whole guide (already checked), with its audit row; its id."""
    when = now or utcnow()
    version = GuideVersion(sources=dict(sources), created_at=when)
    session.add(version)
    await session.flush()
    audit.record(
        session,
        actor_id=actor_id,
        action="guide.import",
        detail=f"guide version {version.id}: {','.join(changed) or 'no change'}",
        at=when,
    )
    return version.id


async def latest_version_id(session: AsyncSession) -> int | None:
    return await session.scalar(select(func.max(GuideVersion.id)))


async def version_sources(session: AsyncSession, version_id: int) -> dict[str, str] | None:
    version = await session.get(GuideVersion, version_id)
    if version is None:
        return None
    return {str(language): str(source) for language, source in version.sources.items()}
