"""Encryption at rest: the database (file, WAL, PostgreSQL dump) reveals no name; keys are
checked at start; rotation re-seals everything while the bot keeps answering."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import open_services
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.settings import Settings
from storage.crypto import DataKeyError, FieldCipher, generate_key
from storage.db import is_sqlite
from storage.keys import ciphers_for_rotation, rotate_data_key, sealed_tables
from storage.models import Base, Case, CaseContact, CaseEvent, CasePersonal
from storage.reports import person_index_from_stored
from tests.security.helpers import BIRTH, NAME, PHONE, seed_case
from tests.support.harness import BotHarness, harness_settings

SECRETS = (NAME, "Бариєв", PHONE, "астма", "Бахчисарай")


def _settings(url: str, key: str) -> Settings:
    return Settings(database_url=url, data_key=SecretStr(key))  # type: ignore[call-arg]


def _needles() -> list[bytes]:
    found: list[bytes] = []
    for secret in SECRETS:
        found += [secret.encode("utf-8"), secret.encode("utf-16-le"), secret.encode("cp1251")]
    return found


async def _raw_bytes(url: str) -> bytes:
    """Every byte the database keeps: the SQLite file and its WAL, or a PostgreSQL data dump."""
    if is_sqlite(url):
        path = Path(url.split(":///", 1)[1])
        parts = [path, path.with_name(path.name + "-wal")]
        return b"".join(p.read_bytes() for p in parts if p.exists())
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        dump = io.BytesIO()
        for table in Base.metadata.sorted_tables:
            await connection.copy_from_table(table.name, output=dump, format="text")
        return dump.getvalue()
    finally:
        await connection.close()


async def test_no_name_in_the_raw_database(database_url: str, data_key: str) -> None:
    services = await open_services(_settings(database_url, data_key))
    try:
        async with services.sessions() as session, session.begin():
            code = await seed_case(session, services.cipher, keys=services.keys, reporter_id=501)
        raw = await _raw_bytes(database_url)
        assert code.encode() in raw  # the dump is real: it holds the plain case code
        for needle in _needles():
            assert needle not in raw
        async with services.sessions() as session:
            personal = await session.scalar(select(CasePersonal))
        assert personal is not None and services.cipher.open(personal.detainee_name) == NAME
    finally:
        await services.engine.dispose()


async def test_every_personal_column_is_sealed() -> None:
    """A new personal column must be bytes (sealed); rotation finds sealed columns by that type."""
    sealed = {(t.table.name, c.name) for t in sealed_tables() for c in t.columns}
    for table, column in [
        ("case_personal", "detainee_name"),
        ("case_personal", "health"),
        ("case_contacts", "contact_phone"),
        ("case_contacts", "telegram_name"),
        ("case_contacts", "telegram_username"),
        ("case_events", "body"),
        ("outbox", "payload"),
        ("persistence", "data"),
        ("monitor_requests", "organisation"),
        ("broadcasts", "text"),
    ]:
        assert (table, column) in sealed


async def test_wrong_key_fails_at_start_naming_the_variable(sqlite_database_url: str) -> None:
    services = await open_services(_settings(sqlite_database_url, generate_key()))
    await services.engine.dispose()
    with pytest.raises(DataKeyError, match="HOTLINE_DATA_KEY"):
        await open_services(_settings(sqlite_database_url, generate_key()))


async def _seed_many(url: str, key: str, count: int) -> list[str]:
    services = await open_services(_settings(url, key))
    try:
        async with services.sessions() as session, session.begin():
            return [
                await seed_case(
                    session,
                    services.cipher,
                    keys=services.keys,
                    reporter_id=700 + i,
                    name=f"{NAME} {i}",
                )
                for i in range(count)
            ]
    finally:
        await services.engine.dispose()


async def test_rotation_while_the_bot_answers(
    database_url: str, sandbox: SandboxServer, i18n: I18n
) -> None:
    old, new = generate_key(), generate_key()
    codes = await _seed_many(database_url, old, 60)
    harness = BotHarness(
        sandbox=sandbox,
        settings=harness_settings(sandbox, database_url, f"{new},{old}", messages_per_minute=1000),
        i18n=i18n,
    )
    await harness.start()
    try:
        assert harness.services is not None
        cipher, old_ciphers = ciphers_for_rotation(f"{new},{old}")
        user = sandbox.add_user(language_code="en")
        rotation = asyncio.create_task(
            rotate_data_key(harness.services.sessions, cipher, old_ciphers, batch_size=10)
        )
        answered = 0
        while not rotation.done() or answered < 3:
            await sandbox.send_text(user.id, "/mydata")
            await sandbox.next_message(user.id, timeout=10)
            answered += 1
            async with harness.services.sessions() as session:
                names = await session.scalars(select(CasePersonal.detainee_name))
                assert all(harness.services.cipher.open(n) for n in names)
        report = await rotation
        assert answered >= 3
        assert report.left_on_old_key == 0
        assert report.indexes_recomputed == len(codes) and report.indexes_unmatched == 0
        assert report.resealed["case_personal"] >= len(codes) * 4
    finally:
        await harness.close()

    with pytest.raises(DataKeyError, match="HOTLINE_DATA_KEY"):
        await open_services(_settings(database_url, old))
    services = await open_services(_settings(database_url, new))
    try:
        only_new = FieldCipher([new])
        async with services.sessions() as session:
            for column in (
                CasePersonal.detainee_name,
                CasePersonal.birth_date,
                CaseContact.contact_phone,
                CaseEvent.body,
            ):
                for token in await session.scalars(select(column)):
                    assert only_new.open(token)
            case = await session.scalar(select(Case).where(Case.code == codes[7]))
        assert case is not None
        # duplicate detection: the same person reported again matches under the new key only
        assert case.person_index == person_index_from_stored(only_new, f"{NAME} 7", BIRTH)
        assert case.person_index != person_index_from_stored(FieldCipher([old]), f"{NAME} 7", BIRTH)
    finally:
        await services.engine.dispose()


def test_rotate_key_needs_new_and_old() -> None:
    with pytest.raises(DataKeyError, match="HOTLINE_DATA_KEY"):
        ciphers_for_rotation(generate_key())
