"""The profile read on every update (`known_profile`) gives what `touch_user` gives, and steps
aside whenever `touch_user` has something to write."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from storage.enums import MonitorStatus, Role
from storage.models import User
from storage.users import UserProfile, known_profile, touch_user
from tests.support.databases import Db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USER = 4_242
ADMIN = 777


async def _touch(db: Db, user_id: int, first_language: str | None = "uk") -> UserProfile:
    async def sealed(_: object) -> bytes:
        return b"sealed later"

    async with db.sessions() as session, session.begin():
        return await touch_user(
            session,
            user_id,
            first_language=first_language,
            admin_ids=[ADMIN],
            now=NOW,
            sealed_telegram_id=sealed,
            new_user_sealing=lambda: db.cipher.new_data_key_sealing(str(user_id)),
        )


async def _known(db: Db, user_id: int, first_language: str | None = "uk") -> UserProfile | None:
    async with db.sessions() as session:
        return await known_profile(
            session, user_id, first_language=first_language, admin_ids=[ADMIN]
        )


async def _set(db: Db, user_id: int, **values: object) -> None:
    async with db.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == user_id).values(**values))


async def test_a_known_user_reads_as_touch_user_loads_them(db: Db) -> None:
    assert await _known(db, USER) is None  # first contact: touch_user creates the row
    created = await _touch(db, USER)
    assert created.is_new
    await _set(
        db,
        USER,
        role=Role.MONITOR,
        monitor_status=MonitorStatus.APPROVED,
        frozen_at=NOW,
        pin_hash=b"scrypt",
        discreet=False,
        language="crh",
    )
    known = await _known(db, USER)
    touched = await _touch(db, USER)
    assert known == touched and not touched.is_new
    assert (known.role, known.monitor_status, known.language) == (
        Role.MONITOR,
        MonitorStatus.APPROVED,
        "crh",
    )
    assert known.frozen and known.has_pin and not known.discreet


async def test_admins_come_from_settings_and_a_stored_admin_role_is_not_trusted(db: Db) -> None:
    await _touch(db, ADMIN)
    await _touch(db, USER)
    await _set(db, USER, role=Role.ADMIN)
    admin, other = await _known(db, ADMIN), await _known(db, USER)
    assert admin is not None and admin.role == Role.ADMIN
    assert other is not None and other.role == Role.FAMILY


async def test_whenever_touch_user_would_write_it_steps_aside(db: Db) -> None:
    await _touch(db, USER)
    await _set(db, USER, blocked=True)  # writing again unblocks them
    assert await _known(db, USER) is None
    assert not (await _touch(db, USER)).blocked
    assert await _known(db, USER) is not None

    await _set(db, USER, language=None)  # a row made before the first message
    assert await _known(db, USER) is None
    assert await _known(db, USER, first_language=None) is not None  # nothing to fill in
    assert (await _touch(db, USER)).language == "uk"

    await _set(db, USER, telegram_id=None)  # made before ids were sealed
    assert await _known(db, USER) is None
    await _touch(db, USER)
    assert await _known(db, USER) is not None
