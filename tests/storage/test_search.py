"""The keyed name index (storage/search.py) on both databases: made for cases filed before it
existed, gone with the data key that sealed the name (an erasure by /forget), made again only
from what the new key holds; a new master key remakes every row."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from storage import search
from storage.crypto import FieldCipher, generate_key
from storage.models import CaseNameIndex
from storage.privacy import forget_user
from tests.support.case_factory import make_case
from tests.support.databases import Db

NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
NAME = "Server Mustafayev"


async def found(db: Db, cipher: FieldCipher, name: str) -> list[str]:
    async with db.sessions() as session, session.begin():
        page = await search.find_cases(
            session, search.by_name(cipher, search.CaseFilter(), name, None), actor_id=1, now=NOW
        )
    return [item.code for item in page.items]


async def test_index_is_made_erased_with_the_key_and_remade_for_a_new_master_key(db: Db) -> None:
    async with db.sessions() as session, session.begin():
        code = await make_case(session, db.cipher, reporter_id=11, name=NAME)
        other = await make_case(session, db.cipher, reporter_id=12, name="Emir Kuku")
    assert await found(db, db.cipher, NAME) == []  # not indexed yet
    assert await search.refresh_name_indexes(db.sessions, db.cipher) == 2
    assert await search.refresh_name_indexes(db.sessions, db.cipher) == 0
    assert await found(db, db.cipher, "server  MUSTAFAYEV") == [code]
    assert await found(db, db.cipher, "Sеrvеr Mustafayev") == [code]  # Cyrillic "е"

    async with db.sessions() as session, session.begin():
        await forget_user(session, db.cipher, 11, now=NOW)
    assert await found(db, db.cipher, NAME) == []
    assert await search.refresh_name_indexes(db.sessions, db.cipher) == 1
    async with db.sessions() as session:
        rows = {row.case_id: row.name_index for row in await session.scalars(select(CaseNameIndex))}
    assert len(rows) == 2 and None in rows.values()  # the erased case holds no name any more
    assert await found(db, db.cipher, NAME) == []
    assert await found(db, db.cipher, "Emir Kuku") == [other]

    rotated = FieldCipher.from_setting(generate_key())  # another master key: nothing matches
    assert await found(db, rotated, "Emir Kuku") == []
