"""Opening stored values in tests: with envelope encryption (`storage.data_keys`) most values are
sealed by a case's, a user's or an entry's data key, not by the master key. `every_key` gives a
cipher that opens anything the database can still open: the master key and every data key
stored now (a destroyed key is, on purpose, not among them)."""

from __future__ import annotations

import copy

from cryptography.fernet import MultiFernet
from sqlalchemy import select

from storage.crypto import FieldCipher
from storage.db import SessionFactory
from storage.models import DataKey


async def every_key(sessions: SessionFactory, master: FieldCipher) -> FieldCipher:
    async with sessions() as session:
        rows = (await session.execute(select(DataKey.id, DataKey.sealed))).all()
    fernets = list(master.master._fernets)
    for key_id, sealed in rows:
        fernets += master.for_data_key(key_id, sealed)._fernets[:1]
    opener = copy.copy(master.master)
    opener._fernets = fernets
    opener._multi = MultiFernet(fernets)
    return opener
