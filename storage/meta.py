"""Facts about the database itself; today, the sealed key check that catches a wrong data key."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import FieldCipher
from storage.models import Meta

KEY_CHECK = "key_check"


async def verify_or_store_key_check(session: AsyncSession, cipher: FieldCipher) -> None:
    """The first start stores a sealed check value; later starts must be able to open it.

    Raises `DataKeyError` when the configured key does not open this database's data.
    """
    row = await session.get(Meta, KEY_CHECK)
    if row is None:
        session.add(Meta(key=KEY_CHECK, value=cipher.key_check()))
        return
    cipher.verify_key_check(row.value)


async def replace_key_check(session: AsyncSession, cipher: FieldCipher) -> None:
    row = await session.get(Meta, KEY_CHECK)
    if row is None:
        session.add(Meta(key=KEY_CHECK, value=cipher.key_check()))
    else:
        row.value = cipher.key_check()
