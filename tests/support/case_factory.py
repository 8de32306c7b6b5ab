"""Cases written straight into the database, for tests of what staff do with them.

The intake conversation (another module) is the real way cases are born; tests of staff actions
and delivery only need a case row, its sealed personal fields and its family.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.codes import new_case_code
from storage.crypto import FieldCipher
from storage.enums import CaseStatus, EventKind, Region, Visibility
from storage.models import Case, CaseContact, CaseEvent, CasePersonal, User, utcnow


async def ensure_user(session: AsyncSession, user_id: int, language: str | None = "uk") -> None:
    if await session.get(User, user_id) is None:
        session.add(User(id=user_id, language=language))
        await session.flush()


async def make_case(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    reporter_id: int,
    status: CaseStatus = CaseStatus.NEW,
    name: str = "Ivan Petrenko",
    region: Region = Region.CRIMEA,
    visibility: Visibility = Visibility.STAFF_ONLY,
    language: str | None = "uk",
    contacts: Iterable[int] = (),
    created_at: datetime | None = None,
) -> str:
    """A case reported by `reporter_id` (created as a user if needed); returns its code."""
    when = created_at or utcnow()
    await ensure_user(session, reporter_id, language)
    code = new_case_code()
    case = Case(
        code=code,
        status=status,
        visibility=visibility,
        region=region,
        reporter_id=reporter_id,
        created_at=when,
        updated_at=when,
    )
    session.add(case)
    await session.flush()
    session.add(CasePersonal(case_id=case.id, detainee_name=cipher.seal(name)))
    session.add(CaseContact(case_id=case.id, user_id=reporter_id, is_reporter=True, approved=True))
    for user_id in contacts:
        await ensure_user(session, user_id, language)
        session.add(CaseContact(case_id=case.id, user_id=user_id, approved=True))
    session.add(
        CaseEvent(case_id=case.id, kind=EventKind.CREATED, new_status=status, created_at=when)
    )
    await session.flush()
    return code
