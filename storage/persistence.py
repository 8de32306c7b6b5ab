"""PTB persistence on the bot's own database, sealed with the data key.

A relative half-way through a report must not lose their answers when the bot restarts, and those
answers are personal data, so user data, chat data and conversation states are stored as sealed JSON
in the `persistence` table. Unchanged entries are not written again (PTB hands over every entry it
touched), which keeps the per-update flush cheap. Bot data and callback data are not stored: the
bot keeps its services in `bot_data`, and callback data are plain strings checked on the server.

Each entry is sealed with a data key of its own (`storage.data_keys`), destroyed with the entry
(a dropped conversation, retention, /forget): an abandoned draft's copies left in the WAL or a
backup cannot be opened afterwards, even with the master key.

PTB keys entries by Telegram ids; no row key holds one: users and private chats are stored under
their user key (`storage.identity`), and the real key is sealed inside the value (an envelope
``{"k": key, "v": value}``), so loading hands PTB the ids it knows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from storage.crypto import FieldCipher
from storage.data_keys import destroy_keys, new_key
from storage.db import SessionFactory
from storage.identity import UserKeys, envelope, persistence_row_key, unwrap
from storage.models import DataKey, PersistenceEntry, utcnow
from storage.outbox import row_cipher

USER = "user"
CHAT = "chat"
CONVERSATION_PREFIX = "conv:"

JSONDict = dict[str, Any]


class DatabasePersistence(BasePersistence[JSONDict, JSONDict, JSONDict]):
    """Stores user data, chat data and conversation states; everything must be JSON-serialisable."""

    def __init__(
        self,
        sessions: SessionFactory,
        cipher: FieldCipher,
        keys: UserKeys,
        *,
        update_interval: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(
            store_data=PersistenceInput(bot_data=False, callback_data=False),
            update_interval=update_interval,
        )
        self._sessions = sessions
        self._cipher = cipher
        self._keys = keys
        self._clock = clock
        self._written: dict[tuple[str, str], bytes] = {}

    # -- reading -------------------------------------------------------------------------------

    async def _load(self, kind: str) -> list[tuple[Any, Any]]:
        """(PTB's key, value) of every entry of `kind`."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(PersistenceEntry.key, PersistenceEntry.data, DataKey.id, DataKey.sealed)
                .outerjoin(DataKey, DataKey.id == PersistenceEntry.data_key_id)
                .where(PersistenceEntry.kind == kind)
            )
            loaded: list[tuple[Any, Any]] = []
            for key, data, key_id, sealed_key in rows:
                cipher = row_cipher(self._cipher, key_id, sealed_key)
                text = cipher.open(data) or "null"
                self._written[(kind, key)] = _digest(text)
                loaded.append(unwrap(json.loads(text)))
            return loaded

    async def get_user_data(self) -> dict[int, JSONDict]:
        return {int(key): value for key, value in await self._load(USER)}

    async def get_chat_data(self) -> dict[int, JSONDict]:
        return {int(key): value for key, value in await self._load(CHAT)}

    async def get_bot_data(self) -> JSONDict:
        return {}

    async def get_callback_data(self) -> CDCData | None:
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        loaded = await self._load(CONVERSATION_PREFIX + name)
        return {tuple(key): state for key, state in loaded}

    # -- writing -------------------------------------------------------------------------------

    def row_key(self, kind: str, original: object) -> str:
        """The row key of PTB's `original` key: user keys, never a Telegram id."""
        return persistence_row_key(self._keys, kind, original)

    async def _store(self, kind: str, original: object, value: object) -> None:
        key = self.row_key(kind, original)
        text = json.dumps(envelope(original, value), ensure_ascii=False, sort_keys=True)
        digest = _digest(text)
        if self._written.get((kind, key)) == digest:
            return
        async with self._sessions() as session, session.begin():
            found = (
                await session.execute(
                    select(DataKey.id, DataKey.sealed)
                    .join(PersistenceEntry, PersistenceEntry.data_key_id == DataKey.id)
                    .where(PersistenceEntry.kind == kind, PersistenceEntry.key == key)
                )
            ).first()
            if found is None:  # a new entry (or one sealed before data keys): a key of its own
                cipher = await new_key(session, self._cipher)
            else:
                cipher = self._cipher.for_data_key(found[0], found[1])
            sealed = cipher.seal(text)
            assert sealed is not None
            row = {
                "kind": kind,
                "key": key,
                "data": sealed,
                "updated_at": self._clock(),
                "data_key_id": cipher.key_id,
            }
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            statement = insert(PersistenceEntry).values(**row)
            statement = statement.on_conflict_do_update(
                index_elements=["kind", "key"],
                set_={
                    "data": statement.excluded.data,
                    "updated_at": statement.excluded.updated_at,
                    "data_key_id": statement.excluded.data_key_id,
                },
            )
            await session.execute(statement)
        self._written[(kind, key)] = digest

    async def _drop(self, kind: str, original: object) -> None:
        key = self.row_key(kind, original)
        async with self._sessions() as session, session.begin():
            found = await session.execute(
                delete(PersistenceEntry)
                .where(PersistenceEntry.kind == kind, PersistenceEntry.key == key)
                .returning(PersistenceEntry.data_key_id)
            )
            await destroy_keys(session, self._cipher, [k for (k,) in found if k is not None])
        self._written.pop((kind, key), None)

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        kind, entry_key = CONVERSATION_PREFIX + name, list(key)
        if new_state is None:
            await self._drop(kind, entry_key)
        else:
            await self._store(kind, entry_key, new_state)

    async def update_user_data(self, user_id: int, data: JSONDict) -> None:
        if data:
            await self._store(USER, user_id, data)
        elif (USER, self.row_key(USER, user_id)) in self._written:
            await self._drop(USER, user_id)

    async def update_chat_data(self, chat_id: int, data: JSONDict) -> None:
        if data:
            await self._store(CHAT, chat_id, data)
        elif (CHAT, self.row_key(CHAT, chat_id)) in self._written:
            await self._drop(CHAT, chat_id)

    async def update_bot_data(self, data: JSONDict) -> None:
        return None

    async def update_callback_data(self, data: CDCData) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._drop(CHAT, chat_id)

    async def drop_user_data(self, user_id: int) -> None:
        await self._drop(USER, user_id)

    async def refresh_user_data(self, user_id: int, user_data: JSONDict) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: JSONDict) -> None:
        return None

    async def refresh_bot_data(self, bot_data: JSONDict) -> None:
        return None

    async def flush(self) -> None:
        return None


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
