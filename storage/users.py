"""Users: first contact, language, roles and the blocked flag.

`user_id` everywhere here is the user key (`storage.identity`), never a Telegram id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import MonitorStatus, Role
from storage.models import DataKey, User, utcnow


def _day(now: datetime | None) -> datetime:
    return (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class UserProfile:
    """What handlers need to know about the user behind an update."""

    id: int
    language: str | None
    role: Role
    monitor_status: MonitorStatus
    blocked: bool
    is_new: bool = False
    frozen: bool = False
    """Staff froze the account (a seized phone): no details, no updates (storage/safety.py)."""
    has_pin: bool = False
    discreet: bool = True

    @property
    def is_approved_monitor(self) -> bool:
        return self.role == Role.ADMIN or self.monitor_status == MonitorStatus.APPROVED


def effective_role(stored: str, user_id: int, admin_ids: Iterable[int]) -> Role:
    """Admins are named in settings; everyone else has the role stored for them."""
    if user_id in admin_ids:
        return Role.ADMIN
    try:
        role = Role(stored)
    except ValueError:
        return Role.FAMILY
    return Role.FAMILY if role == Role.ADMIN else role


_USERS = cast(Table, User.__table__)
_KNOWN = select(
    _USERS.c.language,
    _USERS.c.role,
    _USERS.c.monitor_status,
    _USERS.c.blocked,
    _USERS.c.frozen_at.isnot(None).label("frozen"),
    _USERS.c.pin_hash.isnot(None).label("has_pin"),
    _USERS.c.discreet,
    _USERS.c.telegram_id.isnot(None).label("has_telegram_id"),
).where(_USERS.c.id == bindparam("user_id"))
"""Built once: every update reads one row with it."""


async def known_profile(
    session: AsyncSession,
    user_id: int,
    *,
    first_language: str | None,
    admin_ids: Iterable[int] = (),
) -> UserProfile | None:
    """The profile of a known user, when loading it changes nothing (almost every update): one
    prebuilt read of the columns a profile needs, no ORM object (the ORM's load of the whole
    row made the read 1.39x an empty read transaction; this one is 0.96x). None when
    `touch_user` has something to write: first contact, no sealed Telegram id yet, no language
    yet, or the blocked flag set."""
    row = (await session.execute(_KNOWN, {"user_id": user_id})).first()
    if row is None or row.blocked or not row.has_telegram_id:
        return None
    if row.language is None and first_language is not None:
        return None
    return UserProfile(
        id=user_id,
        language=row.language,
        role=effective_role(row.role, user_id, admin_ids),
        monitor_status=MonitorStatus(row.monitor_status),
        blocked=False,
        frozen=bool(row.frozen),
        has_pin=bool(row.has_pin),
        discreet=row.discreet is not False,
    )


async def touch_user(
    session: AsyncSession,
    user_id: int,
    *,
    first_language: str | None,
    admin_ids: Iterable[int] = (),
    now: datetime | None = None,
    sealed_telegram_id: Callable[[AsyncSession], Awaitable[bytes]] | None = None,
    new_user_sealing: Callable[[], tuple[bytes, bytes]] | None = None,
) -> UserProfile:
    """Load the user, creating them on first contact with the language Telegram suggested.

    The Telegram id is sealed with the user's own data key: on first contact
    `new_user_sealing` gives a new data key (sealed) and the id sealed with it, written with
    the row in one flush; a known row without it gets it from `sealed_telegram_id`. Sealing is
    not free: it is asked for only then."""
    user = await session.get(User, user_id)
    is_new = user is None
    if user is None:
        user = User(id=user_id, language=first_language, created_at=now or utcnow())
        session.add(user)
        if new_user_sealing is not None:
            sealed_key, user.telegram_id = new_user_sealing()
            await session.flush()  # the row first: the key refers to it
            session.add(DataKey(sealed=sealed_key, user_id=user_id, created_at=_day(now)))
        await session.flush()
    if user.telegram_id is None and sealed_telegram_id is not None:
        user.telegram_id = await sealed_telegram_id(session)
    elif user.language is None and first_language is not None:
        # A row made before the first message (a role granted in advance) has no language yet.
        user.language = first_language
    if user.blocked:
        # A user who writes to the bot has evidently unblocked it.
        user.blocked = False
    return UserProfile(
        id=user.id,
        language=user.language,
        role=effective_role(user.role, user.id, admin_ids),
        monitor_status=MonitorStatus(user.monitor_status),
        blocked=user.blocked,
        is_new=is_new,
        frozen=user.frozen_at is not None,
        has_pin=user.pin_hash is not None,
        discreet=user.discreet is not False,
    )


async def set_language(session: AsyncSession, user_id: int, language: str) -> None:
    await session.execute(update(User).where(User.id == user_id).values(language=language))


async def set_role(
    session: AsyncSession, user_id: int, role: Role, *, sealed_telegram_id: bytes | None = None
) -> None:
    """Grant a stored role (admins come from settings and are never stored)."""
    if role == Role.ADMIN:
        raise ValueError("admins are named in HOTLINE_ADMIN_IDS, not stored")
    user = await session.get(User, user_id)
    if user is None:
        user = User(id=user_id, role=role, telegram_id=sealed_telegram_id)
        session.add(user)
    elif user.telegram_id is None and sealed_telegram_id is not None:
        user.telegram_id = sealed_telegram_id
    user.role = role
    if role == Role.MONITOR:
        user.monitor_status = MonitorStatus.APPROVED


async def users_with_role(session: AsyncSession, role: Role) -> list[int]:
    result = await session.scalars(select(User.id).where(User.role == role).order_by(User.id))
    return list(result)


async def language_of(session: AsyncSession, user_id: int) -> str | None:
    return await session.scalar(select(User.language).where(User.id == user_id))


async def staff_members(
    session: AsyncSession, admin_ids: Iterable[int]
) -> list[tuple[int, str | None, Role]]:
    """(id, language, role) of every staff member and admin, for their own command menus."""
    admins = set(admin_ids)
    rows = await session.execute(
        select(User.id, User.language).where((User.role == Role.STAFF) | User.id.in_(admins))
    )
    known = {user_id: language for user_id, language in rows}
    members = [(user_id, known.get(user_id), Role.ADMIN) for user_id in sorted(admins)]
    members += [
        (user_id, language, Role.STAFF)
        for user_id, language in known.items()
        if user_id not in admins
    ]
    return members


async def mark_blocked(session: AsyncSession, user_id: int) -> None:
    await session.execute(update(User).where(User.id == user_id).values(blocked=True))
