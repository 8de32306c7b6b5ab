"""Telegram ids at rest: a keyed index for look-ups, a sealed copy for sending.

The security service knows the Telegram accounts of the relatives it watches. A seized database
must not tell whether one of them talked to the hotline, so no table holds a Telegram id in clear.
Every column that names a user (users.id, case_contacts.user_id, cases.reporter_id, threads,
audit rows, the outbox's chat_id, persistence keys...) holds the **user key** instead:

    user key = 2**62 + (HMAC-SHA256(index key, telegram id) mod 2**62)

The index key is random, made once per database and kept in `meta` sealed with the data key, so
a key rotation only re-seals it and every user key stays the same. User keys are always at least
2**62 while Telegram user ids have at most 52 significant bits, so a number is unambiguously one
or the other; group chat ids (negative) are not personal and are stored as they are.

Where the real id is needed (sending), `users.telegram_id` holds it sealed: the delivery job opens
it as it claims a row. Handlers turn the update's user into the key at one place
(`handlers.middleware.load_profile`); settings (HOTLINE_ADMIN_IDS), the CLI and staff commands
that take a Telegram id convert it at the edge.

Without the data key the keys cannot be computed; with it (a seized server with its
environment) they can, so a forgotten user must leave no row that carries their key
(`storage.privacy.forget_user`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import DataKeyError, FieldCipher
from storage.models import DataKey, Meta, User

INDEX_KEY = "user_index_key"
"""`meta` row: the random key of the user index, sealed with the data key."""
KEY_FLOOR = 1 << 62
"""Every user key is in [2**62, 2**63): never a Telegram id, always a positive BIGINT."""


def is_user_key(value: int) -> bool:
    return value >= KEY_FLOOR


class UserKeys:
    """Turns Telegram ids into user keys, and seals and opens the copy kept for sending."""

    def __init__(self, index_key: bytes, cipher: FieldCipher) -> None:
        if len(index_key) < 32:
            raise DataKeyError("the user index key in meta is damaged")
        self._index_key = index_key
        self._cipher = cipher

    def key(self, telegram_id: int) -> int:
        """The user key of a Telegram user id; a value that already is a user key is returned
        as it is (so staff may type either the id or the number the bot shows them)."""
        if telegram_id <= 0:
            raise ValueError("a Telegram user id is positive")
        if is_user_key(telegram_id):
            return telegram_id
        digest = hmac.new(self._index_key, str(telegram_id).encode("ascii"), hashlib.sha256)
        return KEY_FLOOR + (int.from_bytes(digest.digest()[:8], "big") % KEY_FLOOR)

    def chat_key(self, chat_id: int) -> int:
        """A private chat (a person: positive id) as its user key; a group as it is."""
        return self.key(chat_id) if chat_id > 0 else chat_id

    def keys(self, telegram_ids: Iterable[int]) -> frozenset[int]:
        return frozenset(self.key(each) for each in telegram_ids)

    def seal(self, telegram_id: int) -> bytes:
        sealed = self._cipher.seal(str(telegram_id))
        assert sealed is not None
        return sealed

    def open(self, sealed: bytes | None) -> int | None:
        return open_telegram_id(self._cipher, sealed)


def open_telegram_id(cipher: FieldCipher, sealed: bytes | None) -> int | None:
    text = cipher.open(sealed)
    return None if text is None else int(text)


async def load_user_keys(session: AsyncSession, cipher: FieldCipher) -> UserKeys:
    """The database's user index key, made on the first start (in the caller's transaction)."""
    row = await session.get(Meta, INDEX_KEY)
    if row is None:
        raw = secrets.token_bytes(32)
        sealed = cipher.seal(base64.urlsafe_b64encode(raw).decode("ascii"))
        assert sealed is not None
        session.add(Meta(key=INDEX_KEY, value=sealed))
        await session.flush()
        return UserKeys(raw, cipher)
    opened = cipher.open(row.value)
    assert opened is not None
    return UserKeys(base64.urlsafe_b64decode(opened.encode("ascii")), cipher)


async def seal_telegram_id(
    session: AsyncSession, cipher: FieldCipher, user_key: int, telegram_id: int
) -> bytes:
    """The Telegram id sealed with the user's own data key (made now if they have none; the
    user row must exist): destroyed by /forget, so no copy of the row can be opened later."""
    from storage.data_keys import user_cipher  # it imports the models this module needs too

    sealed = (await user_cipher(session, cipher, user_key)).seal(str(telegram_id))
    assert sealed is not None
    return sealed


def user_key_cipher(
    cipher: FieldCipher, key_id: int | None, sealed_key: bytes | None
) -> FieldCipher:
    """What opens `users.telegram_id`: the user's data key (it also opens values the master key
    sealed: granted before first contact, or converted from an earlier version)."""
    if key_id is None or sealed_key is None:
        return cipher.master
    return cipher.for_data_key(key_id, sealed_key)


async def telegram_ids_of(
    session: AsyncSession, cipher: FieldCipher, chats: Iterable[int]
) -> dict[int, int]:
    """Where to send: each user key's Telegram id (opened from `users.telegram_id`), each group
    chat as it is. Keys whose user is gone or was never seen are left out."""
    wanted = set(chats)
    found = {chat: chat for chat in wanted if chat < 0}
    users = [chat for chat in wanted if chat > 0]
    if users:
        rows = await session.execute(
            select(User.id, User.telegram_id, DataKey.id, DataKey.sealed)
            .outerjoin(DataKey, DataKey.user_id == User.id)
            .where(User.id.in_(users))
        )
        for key, sealed, key_id, sealed_key in rows:
            opener = user_key_cipher(cipher, key_id, sealed_key)
            telegram_id = open_telegram_id(opener, sealed)
            if telegram_id is not None:
                found[key] = telegram_id
    return found


async def telegram_id_of(session: AsyncSession, cipher: FieldCipher, chat: int) -> int | None:
    return (await telegram_ids_of(session, cipher, [chat])).get(chat)


# -- persistence entries ------------------------------------------------------------------------
# PTB keys user data, chat data and conversations by Telegram ids. The row key holds user keys
# instead, and the real key travels inside the sealed value (`envelope`), so loading hands PTB
# the ids it knows.


def persistence_row_key(keys: UserKeys, kind: str, original: object) -> str:
    """The `persistence.key` of an entry: user keys (and group ids) only."""
    if isinstance(original, int):
        return str(keys.chat_key(original))
    if isinstance(original, list | tuple):
        return json.dumps([keys.chat_key(p) if isinstance(p, int) else p for p in original])
    raise TypeError(f"unexpected persistence key for {kind}")


def persistence_owner(row_key: str) -> int | None:
    """The user an entry belongs to, read from its row key: their user data, their private
    chat, their place in a conversation (`[chat, user]`); None for a group's chat data. Kept in
    `persistence.owner` (indexed), so /mydata and /forget find a user's entries without reading
    everyone's."""
    try:
        parsed = json.loads(row_key)
    except ValueError:
        return None
    parts = parsed if isinstance(parsed, list) else [parsed]
    owners = [p for p in parts if type(p) is int and is_user_key(p)]
    return owners[-1] if owners else None


def envelope(original: object, value: object) -> dict[str, Any]:
    return {"k": original, "v": value}


def unwrap(opened: Mapping[str, Any]) -> tuple[Any, Any]:
    return opened["k"], opened["v"]
