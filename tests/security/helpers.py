"""Data written straight through storage for the security tests (the intake flow is elsewhere)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.codes import new_case_code
from storage.crypto import FieldCipher
from storage.enums import CaseStatus, EventKind, Region
from storage.identity import UserKeys
from storage.models import Case, CaseContact, CaseEvent, CasePersonal, User, utcnow
from storage.reports import person_index_from_stored

NAME = "Ескендер Бариєв"
BIRTH = "1985-03-14"
PHONE = "+380 67 555 12 34"


async def seed_case(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    reporter_id: int,
    name: str = NAME,
    birth_date: str = BIRTH,
    phone: str | None = PHONE,
    kept_for_case: bool = False,
    now: datetime | None = None,
    keys: UserKeys | None = None,
) -> str:
    """A case as the intake flow stores it: sealed personal fields, blind index, reporter.
    With `keys` (the bot's), `reporter_id` is a Telegram id, stored as the bot stores it."""
    when = now or utcnow()
    sealed = None if keys is None else keys.seal(reporter_id)
    reporter_id = reporter_id if keys is None else keys.key(reporter_id)
    if await session.get(User, reporter_id) is None:
        session.add(User(id=reporter_id, language="en", created_at=when, telegram_id=sealed))
        await session.flush()
    code = new_case_code()
    case = Case(
        code=code,
        status=CaseStatus.NEW,
        region=Region.CRIMEA,
        reporter_id=reporter_id,
        person_index=person_index_from_stored(cipher, name, birth_date),
        created_at=when,
        updated_at=when,
    )
    session.add(case)
    await session.flush()
    session.add(
        CasePersonal(
            case_id=case.id,
            detainee_name=cipher.seal(name),
            birth_date=cipher.seal(birth_date),
            arrest_place=cipher.seal("Бахчисарай"),
            health=cipher.seal("астма"),
            kept_for_case=kept_for_case,
        )
    )
    session.add(
        CaseContact(
            case_id=case.id,
            user_id=reporter_id,
            is_reporter=True,
            approved=True,
            contact_phone=cipher.seal(phone),
        )
    )
    session.add(
        CaseEvent(
            case_id=case.id,
            kind=EventKind.INFO_RECEIVED,
            actor_id=reporter_id,
            body=cipher.seal(f"{name} has asthma"),
            created_at=when,
        )
    )
    await session.flush()
    return code


async def sqlite_consistency(session: AsyncSession) -> list[str]:
    """Problems SQLite itself sees (empty list when clean)."""
    problems: list[str] = []
    integrity = (await session.execute(text("PRAGMA integrity_check"))).scalars().all()
    if integrity != ["ok"]:
        problems.extend(str(row) for row in integrity)
    problems.extend(str(tuple(r)) for r in await session.execute(text("PRAGMA foreign_key_check")))
    return problems
