"""Prepared staff answers: a short list kept by admins, one text per language under one key.

Staff pick a key; the family receives the text in their own language (or the hotline's default
language when that one is missing).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.models import PreparedAnswer

KEY_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")
TEXT_LIMIT = 2000


class BadPreparedAnswer(ValueError):
    """The key or the text cannot be stored (the message is a fixed word)."""


async def set_answer(
    session: AsyncSession, key: str, language: str, text: str, *, actor_id: int, now: datetime
) -> None:
    """Add or replace the text of `key` in `language`."""
    key = key.lower()
    if not KEY_PATTERN.match(key):
        raise BadPreparedAnswer("key")
    text = text.strip()
    if not text or len(text) > TEXT_LIMIT:
        raise BadPreparedAnswer("text")
    row = await session.scalar(
        select(PreparedAnswer).where(PreparedAnswer.key == key, PreparedAnswer.language == language)
    )
    if row is None:
        row = PreparedAnswer(key=key, language=language)
        session.add(row)
    row.text = text
    row.updated_by = actor_id
    row.updated_at = now
    audit.record(
        session, actor_id=actor_id, action="prepared.set", detail=f"{key}/{language}", at=now
    )


async def remove_answer(session: AsyncSession, key: str, *, actor_id: int, now: datetime) -> int:
    """Remove every language of `key`; returns how many texts were removed."""
    result = await session.execute(delete(PreparedAnswer).where(PreparedAnswer.key == key.lower()))
    removed = int(getattr(result, "rowcount", 0) or 0)
    audit.record(session, actor_id=actor_id, action="prepared.remove", detail=key[:32], at=now)
    return removed


async def all_answers(session: AsyncSession) -> dict[str, dict[str, str]]:
    """key -> language -> text, keys in alphabetical order."""
    answers: dict[str, dict[str, str]] = {}
    rows = await session.scalars(
        select(PreparedAnswer).order_by(PreparedAnswer.key, PreparedAnswer.language)
    )
    for row in rows:
        answers.setdefault(row.key, {})[row.language] = row.text
    return answers


async def answer_in(
    session: AsyncSession, key: str, language: str | None, default_language: str
) -> str | None:
    """The text of `key` in the family's language, else in the default language, else None."""
    texts = (await all_answers(session)).get(key, {})
    return texts.get(language or default_language) or texts.get(default_language)
