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
from storage.identity import UserKeys
from storage.models import Case, CaseContact, CaseEvent, CasePersonal, User, utcnow


async def ensure_user(
    session: AsyncSession, user_id: int, language: str | None = "uk", keys: UserKeys | None = None
) -> int:
    """The user row; with `keys`, `user_id` is a Telegram id (stored as its key, sealed for
    sending), else it is the key itself. Returns the key."""
    key = keys.key(user_id) if keys is not None else user_id
    if await session.get(User, key) is None:
        sealed = keys.seal(user_id) if keys is not None else None
        session.add(User(id=key, language=language, telegram_id=sealed))
        await session.flush()
    return key


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
    keys: UserKeys | None = None,
) -> str:
    """A case reported by `reporter_id` (created as a user if needed); returns its code.
    With `keys` (the running bot's), `reporter_id` and `contacts` are Telegram ids."""
    when = created_at or utcnow()
    reporter_id = await ensure_user(session, reporter_id, language, keys)
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
    for contact in contacts:
        user_id = await ensure_user(session, contact, language, keys)
        session.add(CaseContact(case_id=case.id, user_id=user_id, approved=True))
    session.add(
        CaseEvent(case_id=case.id, kind=EventKind.CREATED, new_status=status, created_at=when)
    )
    await session.flush()
    return code
