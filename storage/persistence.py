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

A user's data (and their chat's) is read when their update arrives, not at start: PTB asks
`refresh_chat_data` / `refresh_user_data` before the first handler of every update, and the
entry is read then, by its key, once (the private chat's and the user's in one query). Start-up
and memory no longer grow with the number of users who ever wrote: `release_idle` hands back the
least recently seen users' data beyond `resident_users` once it is written (an update of theirs
in flight, or changes not yet written, keep it). Conversation states are still read at start:
there is a row only for a conversation in progress (an ended one is deleted, an abandoned one
goes with retention).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Collection, MutableMapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from storage.crypto import FieldCipher
from storage.data_keys import destroy_keys, new_key
from storage.db import SessionFactory
from storage.identity import UserKeys, envelope, persistence_owner, persistence_row_key, unwrap
from storage.models import DataKey, PersistenceEntry, utcnow
from storage.outbox import row_cipher

USER = "user"
CHAT = "chat"
CONVERSATION_PREFIX = "conv:"
RESIDENT_USERS = 10_000
"""Users whose data stays in memory after their update (the most recently seen)."""

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
        resident_users: int = RESIDENT_USERS,
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
        self.resident_users = resident_users
        # Ids whose entries were read (or found missing) since start, least recently used first:
        # PTB's copy is the truth for these. Group chats are few and shared: never handed back.
        self._users: OrderedDict[int, None] = OrderedDict()
        self._chats: OrderedDict[int, None] = OrderedDict()
        self._entry_keys: dict[tuple[str, str], FieldCipher] = {}
        """Each resident user or chat entry's data key, opened: a write needs no look-up."""
        self._read_ahead: dict[int, Any] = {}
        """A user's entry read with their private chat's, until refresh_user_data takes it."""
        self.entries_read = 0
        """Rows of user and chat data read since start (what start-up does not do)."""

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

    async def _load_entries(self, key: str, kinds: tuple[str, ...]) -> dict[str, Any]:
        """The values of the entries of `kinds` stored under one row key, by primary key."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(PersistenceEntry.kind, PersistenceEntry.data, DataKey.id, DataKey.sealed)
                .outerjoin(DataKey, DataKey.id == PersistenceEntry.data_key_id)
                .where(PersistenceEntry.key == key, PersistenceEntry.kind.in_(kinds))
            )
            found: dict[str, Any] = {}
            for kind, data, key_id, sealed_key in rows:
                cipher = row_cipher(self._cipher, key_id, sealed_key)
                text = cipher.open(data) or "null"
                self._written[(kind, key)] = _digest(text)
                if key_id is not None:
                    self._entry_keys[(kind, key)] = cipher
                found[kind] = unwrap(json.loads(text))[1]
                self.entries_read += 1
            return found

    async def get_user_data(self) -> dict[int, JSONDict]:
        return {}  # read per user as their updates arrive: refresh_user_data

    async def get_chat_data(self) -> dict[int, JSONDict]:
        return {}  # read per chat as its updates arrive: refresh_chat_data

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
        known = self._entry_keys.get((kind, key))
        try:
            cipher = await self._write(kind, key, text, known)
        except IntegrityError:
            if known is None:
                raise
            # The remembered key was destroyed meanwhile (retention): look it up again.
            self._entry_keys.pop((kind, key), None)
            cipher = await self._write(kind, key, text, None)
        self._written[(kind, key)] = digest
        if kind in (USER, CHAT):
            self._entry_keys[(kind, key)] = cipher

    async def _write(
        self, kind: str, key: str, text: str, cipher: FieldCipher | None
    ) -> FieldCipher:
        """Upsert one entry sealed with its own data key: `cipher` when known (the entry was
        read or written since it was last handed back), else looked up, or made for a new one."""
        async with self._sessions() as session, session.begin():
            if cipher is None:
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
                "owner": persistence_owner(key),
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
                    "owner": statement.excluded.owner,
                },
            )
            await session.execute(statement)
        return cipher

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
        self._entry_keys.pop((kind, key), None)

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

    async def refresh_chat_data(self, chat_id: int, chat_data: JSONDict) -> None:
        """Before an update's handlers (PTB asks for the chat, then the user): the chat's stored
        entry, read once; a private chat's user entry comes in the same query."""
        if chat_id in self._chats:
            self._chats.move_to_end(chat_id)
            return
        private = chat_id > 0  # a private chat's id is its user's
        kinds = (CHAT, USER) if private and chat_id not in self._users else (CHAT,)
        found = await self._load_entries(self.row_key(CHAT, chat_id), kinds)
        if chat_id in self._chats:  # read meanwhile for another update (a group's)
            return
        _merge(chat_data, found.get(CHAT))
        self._chats[chat_id] = None
        if USER in kinds:
            self._read_ahead[chat_id] = found.get(USER)

    async def refresh_user_data(self, user_id: int, user_data: JSONDict) -> None:
        if user_id in self._users:
            self._users.move_to_end(user_id)
            self._read_ahead.pop(user_id, None)
            return
        if user_id in self._read_ahead:
            value = self._read_ahead.pop(user_id)
        else:
            value = (await self._load_entries(self.row_key(USER, user_id), (USER,))).get(USER)
        _merge(user_data, value)
        self._users[user_id] = None

    def release_idle(
        self,
        user_data: MutableMapping[int, Any],
        chat_data: MutableMapping[int, Any],
        *,
        busy: Callable[[int], bool],
        unwritten: Collection[int] = (),
    ) -> int:
        """Hand back the least recently seen users' data (and their private chats') beyond
        `resident_users`: from PTB's mappings and from here, so their next update reads it
        again. A user with an update in flight (`busy`) or changes not yet written
        (`unwritten`) stays. Returns how many were released. O(1) amortised per update."""
        released = 0
        skipped: list[int] = []
        while len(self._users) > self.resident_users:
            user_id, _ = self._users.popitem(last=False)
            if busy(user_id) or user_id in unwritten:
                skipped.append(user_id)
                continue
            user_data.pop(user_id, None)
            self._read_ahead.pop(user_id, None)
            self._forget_entry(USER, user_id)
            if user_id in self._chats:
                del self._chats[user_id]
                chat_data.pop(user_id, None)
                self._forget_entry(CHAT, user_id)
            released += 1
        for user_id in skipped:  # back at the front, in the order they were
            self._users[user_id] = None
            self._users.move_to_end(user_id, last=False)
        while len(self._chats) > self.resident_users * 2:  # private chats of users never seen
            chat_id = next(iter(self._chats))
            if chat_id < 0 or busy(chat_id) or chat_id in unwritten:
                self._chats.move_to_end(chat_id)
                break
            del self._chats[chat_id]
            chat_data.pop(chat_id, None)
            self._forget_entry(CHAT, chat_id)
        return released

    def _forget_entry(self, kind: str, original: int) -> None:
        key = self.row_key(kind, original)
        self._written.pop((kind, key), None)
        self._entry_keys.pop((kind, key), None)

    def resident(self) -> int:
        """How many users' data is held in memory."""
        return len(self._users)

    async def refresh_bot_data(self, bot_data: JSONDict) -> None:
        return None

    async def flush(self) -> None:
        return None


def _merge(data: JSONDict, stored: Any) -> None:
    """Put what was stored under what PTB holds already (nothing, unless something wrote to the
    mapping before the update's first handler)."""
    if isinstance(stored, dict):
        for name, value in stored.items():
            data.setdefault(name, value)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
