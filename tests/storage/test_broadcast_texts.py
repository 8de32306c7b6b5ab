"""A broadcast's texts per language, in storage (SQLite and PostgreSQL): each sealed on its own,
carried by every row for the renderer to choose, counted per text, refused when malformed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from storage import broadcasts, outbox
from storage.broadcasts import BadTexts
from storage.enums import OutboxStatus
from storage.models import AuditEntry, Broadcast, BroadcastText, OutboxMessage, User
from tests.support.databases import Db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STAFF = 500
TEXTS = {"uk": "Години роботи", "en": "Opening hours", "crh": "İş saatleri"}


@pytest.fixture
async def people(db: Db) -> Db:
    """Readers of uk (2), ru (no text: reads uk), en, crh, a stray code and none (reads uk)."""
    async with db.sessions() as session, session.begin():
        session.add_all(
            [
                User(id=1, language="uk"),
                User(id=2, language="uk"),
                User(id=3, language="ru"),
                User(id=4, language="en"),
                User(id=5, language="crh"),
                User(id=6, language="de"),
                User(id=7, language=None),
            ]
        )
    return db


async def send(db: Db, texts: dict[str, str]) -> int:
    async with db.sessions() as session, session.begin():
        view = await broadcasts.queue_broadcast(
            session,
            db.cipher,
            author_id=STAFF,
            audience="everyone",
            audience_arg=None,
            text=texts["uk"],
            translations={code: text for code, text in texts.items() if code != "uk"},
            now=NOW,
        )
    return view.id


async def test_each_text_sealed_and_each_row_carries_its_readers_text(people: Db) -> None:
    broadcast_id = await send(people, TEXTS)
    async with people.sessions() as session:
        rows = list(await session.scalars(select(BroadcastText)))
        queued = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.broadcast_id == broadcast_id)
            )
        )
        view = await broadcasts.view(session, broadcast_id)
        opened = await broadcasts.texts_of(session, people.cipher, broadcast_id)
        detail = await session.scalar(select(AuditEntry.detail))
    assert {row.language: people.cipher.open(row.text) for row in rows} == {
        "en": "Opening hours",
        "crh": "İş saatleri",
    }
    assert all(b"Opening" not in row.text for row in rows)
    assert opened == {"uk": "Години роботи", "crh": "İş saatleri", "en": "Opening hours"}
    assert view.languages == ("uk", "crh", "en")
    read = {row.chat_id: outbox.open_params(people.cipher, row.payload)["text"] for row in queued}
    uk, en, crh = TEXTS["uk"], TEXTS["en"], TEXTS["crh"]
    assert read == {1: uk, 2: uk, 3: uk, 4: en, 5: crh, 6: uk, 7: uk}  # ru, de, none: uk
    assert len({row.payload for row in queued}) == 3  # one sealed payload per text
    assert detail is not None and detail.endswith("(uk,crh,en)") and "hours" not in detail


async def test_readers_and_counts_per_text(people: Db) -> None:
    async with people.sessions() as session:
        readers = await broadcasts.audience_by_language(
            session, "everyone", None, ["uk", "en", "crh"], default_language="uk"
        )
    assert readers == {"uk": 5, "crh": 1, "en": 1}
    broadcast_id = await send(people, TEXTS)
    async with people.sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id.in_([1, 4]))
            .values(status=OutboxStatus.SENT)
        )
    async with people.sessions() as session:
        found = await broadcasts.counts_by_language(
            session, broadcast_id, ("uk", "crh", "en"), default_language="uk"
        )
    assert {code: (n.delivered, n.total) for code, n in found.items()} == {
        "uk": (1, 5),
        "crh": (0, 1),
        "en": (1, 1),
    }


async def test_a_ukrainian_only_broadcast_has_no_translations(people: Db) -> None:
    broadcast_id = await send(people, {"uk": "Лише українською"})
    async with people.sessions() as session:
        view = await broadcasts.view(session, broadcast_id)
        payload = await session.scalar(select(OutboxMessage.payload).limit(1))
        translations = await session.scalar(select(func.count()).select_from(BroadcastText))
    assert view.languages == ("uk",) and translations == 0
    assert outbox.open_params(people.cipher, payload)["text"] == "Лише українською"


@pytest.mark.parametrize(
    "texts",
    [
        {"uk": "Так", "de": "Ja"},
        {"uk": "Так", "en": "  "},
        {"uk": " ", "en": "Yes"},
    ],
)
async def test_malformed_texts_queue_nothing(people: Db, texts: dict[str, str]) -> None:
    with pytest.raises(BadTexts):
        await send(people, texts)
    async with people.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


async def test_key_rotation_reseals_every_text(people: Db, data_key: str) -> None:
    """`rotate-key` finds sealed columns by type: the translations' too, then only the new key
    opens them."""
    from storage.crypto import FieldCipher, generate_key
    from storage.keys import ciphers_for_rotation, rotate_data_key

    await send(people, TEXTS)
    new_key = generate_key()
    cipher, old = ciphers_for_rotation(f"{new_key},{data_key}")
    report = await rotate_data_key(people.sessions, cipher, old)
    assert report.resealed.get("broadcast_texts") == 2
    only_new = FieldCipher.from_setting(new_key)
    async with people.sessions() as session:
        rows = list(await session.scalars(select(BroadcastText)))
    assert {only_new.open(row.text) for row in rows} == {"Opening hours", "İş saatleri"}
