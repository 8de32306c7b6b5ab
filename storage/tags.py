"""Tags: a short list admins define, which staff put on cases; /find and /stats filter by them.

A tag names a group of cases (a profession, a movement, a campaign), never a person: names are
lower-cased, 2 to 32 letters, digits, spaces or dashes, and at most `MAX_TAGS` exist. Each change
is one transaction with its audit row (who tagged what is kept there, not on the tag).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.models import Case, CaseTag, Tag

MAX_TAGS = 40
_NAME = re.compile(r"^[^\W_][\w\- ]{1,31}$")


class TagRefused(ValueError):
    """The name is malformed, the list is full, or the tag already exists."""


class UnknownTag(LookupError):
    pass


class UnknownCase(LookupError):
    pass


@dataclass(frozen=True)
class TagCount:
    name: str
    cases: int


def normalise_tag(text: str) -> str | None:
    """The stored form of a tag name, or None when it is not a valid one."""
    name = " ".join(text.split()).lower()
    return name if _NAME.match(name) else None


async def list_tags(session: AsyncSession) -> list[TagCount]:
    rows = await session.execute(
        select(Tag.name, func.count(CaseTag.case_id))
        .outerjoin(CaseTag, CaseTag.tag_id == Tag.id)
        .group_by(Tag.id, Tag.name)
        .order_by(Tag.name)
    )
    return [TagCount(name, int(count)) for name, count in rows]


async def define_tag(session: AsyncSession, text: str, *, actor_id: int, now: datetime) -> str:
    name = normalise_tag(text)
    if name is None:
        raise TagRefused("name")
    if await session.scalar(select(Tag.id).where(Tag.name == name)) is not None:
        raise TagRefused("exists")
    if int(await session.scalar(select(func.count()).select_from(Tag)) or 0) >= MAX_TAGS:
        raise TagRefused("full")
    session.add(Tag(name=name, created_at=now))
    audit.record(session, actor_id=actor_id, action="tag.define", detail=name, at=now)
    return name


async def remove_tag(session: AsyncSession, text: str, *, actor_id: int, now: datetime) -> int:
    """Delete a tag and take it off every case; returns how many cases had it."""
    tag = await _tag(session, text)
    count = await session.scalar(
        select(func.count()).select_from(CaseTag).where(CaseTag.tag_id == tag.id)
    )
    await session.execute(delete(CaseTag).where(CaseTag.tag_id == tag.id))
    await session.delete(tag)
    audit.record(
        session, actor_id=actor_id, action="tag.remove", detail=f"{tag.name}: {count}", at=now
    )
    return int(count or 0)


async def _tag(session: AsyncSession, text: str) -> Tag:
    name = normalise_tag(text)
    tag = None if name is None else await session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        raise UnknownTag(text)
    return tag


async def _case(session: AsyncSession, code: str) -> Case:
    case = await session.scalar(select(Case).where(Case.code == code))
    if case is None or case.merged_into_id is not None:
        raise UnknownCase(code)
    return case


async def set_tag(
    session: AsyncSession, code: str, text: str, on: bool, *, actor_id: int, now: datetime
) -> bool:
    """Put a tag on a case (`on`) or take it off; False when nothing changed."""
    case, tag = await _case(session, code), await _tag(session, text)
    existing = await session.get(CaseTag, (case.id, tag.id))
    if on == (existing is not None):
        return False
    if on:
        session.add(CaseTag(case_id=case.id, tag_id=tag.id, created_at=now))
    else:
        await session.delete(existing)
    action = "case.tag" if on else "case.untag"
    audit.record(
        session, actor_id=actor_id, action=action, case_code=case.code, detail=tag.name, at=now
    )
    return True


async def tags_of_case(session: AsyncSession, code: str) -> list[str]:
    case = await _case(session, code)
    rows = await session.scalars(
        select(Tag.name).join(CaseTag, CaseTag.tag_id == Tag.id).where(CaseTag.case_id == case.id)
    )
    return sorted(rows)
