"""Telegram ids in tests: storage holds user keys (`storage.identity`), tests speak of people by
their Telegram (sandbox) ids. One helper turns an id into the key every table holds, one makes a
user row as the bot would on first contact (key, sealed id)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import Role
from storage.identity import UserKeys
from storage.models import User
from storage.users import set_role


class HasKeys(Protocol):
    @property
    def keys(self) -> UserKeys: ...


def key_of(services: HasKeys | None, telegram_id: int) -> int:
    """The user key the database holds for a Telegram id."""
    assert services is not None, "start the bot (or open services) first"
    return services.keys.key(telegram_id)


async def known_user(
    session: AsyncSession,
    keys: UserKeys,
    telegram_id: int,
    language: str | None = "uk",
    **values: object,
) -> int:
    """The user row of `telegram_id` (made as on first contact if missing); returns its key."""
    key = keys.key(telegram_id)
    user = await session.get(User, key)
    if user is None:
        session.add(User(id=key, telegram_id=keys.seal(telegram_id), language=language, **values))
        await session.flush()
    else:  # as `session.merge` would: the values given win
        user.language = language
        for name, value in values.items():
            setattr(user, name, value)
    return key


async def grant(session: AsyncSession, keys: UserKeys, telegram_id: int, role: Role) -> int:
    """`python -m bot staff add <telegram id>` (or monitor); returns the user key."""
    key = keys.key(telegram_id)
    await set_role(session, key, role, sealed_telegram_id=keys.seal(telegram_id))
    return key
