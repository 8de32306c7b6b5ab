"""Who talked to the hotline is secret too (issue 12, point 10).

The security service knows the Telegram accounts of the relatives it watches and may seize the
server. No table holds a Telegram id in clear (users and every column naming a user hold a keyed
index, the id itself is sealed for sending); a forgotten user leaves no id at all, not even the
key; what /forget writes does not share an instant that would tie the user to the erased case;
a relative's `contact_linked` words are erased like their report and answers.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from pydantic import SecretStr
from sqlalchemy import DateTime, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import open_services
from bot.callbacks import FORGET
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.settings import Settings
from jobs.deletions import delete_due
from jobs.retention import run_retention
from storage.crypto import DataKeyError, FieldCipher
from storage.db import SessionFactory, is_sqlite
from storage.enums import EventKind, OutboxStatus
from storage.identity import KEY_FLOOR
from storage.models import (
    AuditEntry,
    Base,
    Case,
    CaseEvent,
    DataKey,
    Meta,
    OutboxMessage,
    PersistenceEntry,
    User,
    UTCDateTime,
    utcnow,
)
from storage.persistence import DatabasePersistence
from storage.privacy import forget_user
from tests.handlers import report_flow
from tests.security.test_crypto_shredding import _seize, everything_readable
from tests.support.case_factory import make_case
from tests.support.databases import Db
from tests.support.harness import BotHarness, harness_settings
from tests.support.waiting import settled

FAMILY = 5_273_019_468
"""A relative's Telegram id, as the security service knows it."""
ADMIN = 9001


def _forms(number: int) -> list[bytes]:
    """How an integer can sit in a file: decimal text, SQLite's big-endian 6 and 8 bytes,
    PostgreSQL's little-endian int8."""
    return [
        str(number).encode("ascii"),
        number.to_bytes(6, "big"),
        number.to_bytes(8, "big"),
        number.to_bytes(8, "little"),
    ]


async def _cells(sessions: SessionFactory, cipher: FieldCipher | None) -> list[tuple[str, object]]:
    """Every value of every table, sealed columns opened with the data key (what a seizure of
    the server with its environment reads); as stored when `cipher` is None."""
    found: list[tuple[str, object]] = []
    async with sessions() as session:
        keys = (await session.execute(select(DataKey.id, DataKey.sealed))).all()
        openers = [] if cipher is None else [cipher.master]
        openers += [cipher.for_data_key(key_id, sealed) for key_id, sealed in keys if cipher]

        def opened(token: bytes) -> str | None:
            for opener in openers:
                try:
                    return opener.open(token)
                except DataKeyError:
                    continue
            return None

        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                for column in table.columns:
                    value = row[column.name]
                    skip = (Meta.__tablename__, DataKey.__tablename__)
                    if isinstance(value, bytes) and cipher and table.name not in skip:
                        value = opened(value)
                    found.append((f"{table.name}.{column.name}", value))
    return found


def _naming(cells: list[tuple[str, object]], number: int) -> list[str]:
    """The cells that hold `number`: as the value, or in a text (keys, dedupe keys, JSON)."""
    return sorted(
        {
            where
            for where, value in cells
            if value == number or (isinstance(value, str) and str(number) in value)
        }
    )


async def _raw_bytes(url: str) -> bytes:
    """The SQLite file and its WAL; or a dump of every PostgreSQL table plus the raw heap
    pages of every table after VACUUM (read by the server: pg_read_binary_file)."""
    if is_sqlite(url):
        path = Path(url.split(":///", 1)[1])
        parts = [path, path.with_name(path.name + "-wal")]
        return b"".join(p.read_bytes() for p in parts if p.exists())
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        dump = io.BytesIO()
        for table in Base.metadata.sorted_tables:
            await connection.copy_from_table(table.name, output=dump, format="binary")
        await connection.execute("VACUUM")
        await connection.execute("CHECKPOINT")  # the pages on disk are the pages in memory
        pages = b""
        for table in Base.metadata.sorted_tables:
            paths = await connection.fetchrow(
                "SELECT pg_relation_filepath(oid), pg_relation_filepath(NULLIF(reltoastrelid, 0))"
                " FROM pg_class WHERE oid = $1::regclass",
                table.name,
            )
            for path in paths:
                if path is None:
                    continue
                pages += await connection.fetchval("SELECT pg_read_binary_file($1)", path) or b""
        assert pages, "no heap pages read"
        return dump.getvalue() + pages
    finally:
        await connection.close()


async def _family_talks(bot: BotHarness) -> str:
    """A relative files a report, writes to the hotline, reads /mydata; returns the case code."""
    sandbox = bot.sandbox
    sandbox.user(ADMIN)
    sandbox.add_user(user_id=FAMILY, language_code="en")
    await sandbox.send_text(FAMILY, "/start")
    await sandbox.next_message(FAMILY)
    reply = await report_flow.file(sandbox, FAMILY)
    code = reply.plain.split("code is", 1)[1].split()[0].strip(".")
    await sandbox.send_text(FAMILY, "Is there news about my son?")
    await sandbox.next_message(FAMILY)
    await sandbox.send_text(FAMILY, "/mydata")
    await sandbox.next_message(FAMILY)
    await settled(bot)
    return code


async def test_no_table_holds_a_family_members_telegram_id_while_they_use_the_bot(
    harness: BotHarness,
) -> None:
    await harness.start()
    await _family_talks(harness)
    services = harness.services
    assert services is not None
    assert _naming(await _cells(services.sessions, None), FAMILY) == []  # nowhere in clear
    cells = await _cells(services.sessions, services.cipher)
    # Sealed, it is kept for sending, and inside PTB's sealed entries (which /forget erases).
    assert _naming(cells, FAMILY) == ["persistence.data", "users.telegram_id"]
    key = harness.key(FAMILY)
    assert key >= KEY_FLOOR
    assert {"users.id", "case_contacts.user_id", "cases.reporter_id", "threads.user_id"} <= set(
        _naming(cells, key)
    )  # the scan is real: the key is where the id used to be
    await harness.stop()
    raw = await _raw_bytes(harness.settings.database_url)
    for form in _forms(FAMILY):
        assert form not in raw, form


async def test_a_seized_database_after_forget_and_retention_holds_no_telegram_id(
    sandbox: SandboxServer, database_url: str, data_key: str, i18n: I18n
) -> None:
    bot = BotHarness(sandbox, harness_settings(sandbox, database_url, data_key), i18n)
    try:
        await bot.start()
        await _family_talks(bot)
        services = bot.services
        assert services is not None
        key = bot.key(FAMILY)
        await sandbox.send_text(FAMILY, "/forget")
        question = await sandbox.next_message(FAMILY)
        await sandbox.press(FAMILY, question.message_id, FORGET.build("yes"))
        await sandbox.wait_for_edit(FAMILY, question.message_id)
        await settled(bot)

        cells = await _cells(services.sessions, services.cipher)
        assert _naming(cells, FAMILY) == []  # not in clear, not sealed
        _nothing_readable(data_key, await _seize(database_url))  # nor in any copy
        # Their key (computable with the data key) is left only on the ids of messages that
        # "Hide this chat" may still delete, for Telegram's 48 hours (SECURITY.md).
        assert _naming(cells, key) == ["sensitive_messages.chat_id"]

        later = utcnow() + timedelta(days=40)
        services.clock = lambda: later
        assert bot.application is not None
        await delete_due(bot.application)
        await run_retention(services)
        cells = await _cells(services.sessions, services.cipher)
        assert _naming(cells, FAMILY) == [] and _naming(cells, key) == []
        await bot.stop()
        raw = await _raw_bytes(database_url)
        for form in _forms(FAMILY):
            assert form not in raw, form
        _nothing_readable(data_key, await _seize(database_url))
    finally:
        await bot.close()


def _nothing_readable(master_key: str, raw: bytes) -> None:
    """Every sealed token in the seized bytes (live rows, WAL, dead heap tuples), opened with
    the master key and every data key it opens: the Telegram id is in none of them."""
    for form in _forms(FAMILY):
        assert form not in raw, form
    for plain in everything_readable(master_key, raw):
        assert str(FAMILY).encode() not in plain, plain


# -- what /forget writes --------------------------------------------------------------------------

USER = KEY_FLOOR + 12_345
T0 = datetime(2026, 3, 2, 9, 15, 7, 123456, tzinfo=UTC)
FORGET_AT = datetime(2026, 5, 14, 16, 41, 53, 654321, tzinfo=UTC)


async def _datetimes(session: AsyncSession) -> set[datetime]:
    found: set[datetime] = set()
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, UTCDateTime | DateTime):
                found |= {v for v in await session.scalars(select(column)) if v is not None}
    return found


async def test_forget_writes_no_instant_that_ties_the_user_to_the_erased_case(db: Db) -> None:
    """Today's bug: the user's `forgotten_at`, the case's `updated_at` and the audit row were
    the same instant. Nothing /forget writes may carry that instant; the erased case keeps its
    `updated_at`; a frozen account's dates say only the day."""
    for frozen in (False, True):
        async with db.sessions() as session, session.begin():
            user = USER + frozen
            code = await make_case(session, db.cipher, reporter_id=user, created_at=T0)
            if frozen:
                stored = await session.get(User, user)
                assert stored is not None
                stored.frozen_at = T0
            await forget_user(session, db.cipher, user, now=FORGET_AT)
        async with db.sessions() as session:
            times = await _datetimes(session)
            case = await session.scalar(select(Case).where(Case.code == code))
            audit = (
                await session.scalars(select(AuditEntry).where(AuditEntry.action == "forget_user"))
            ).all()
            kept = await session.get(User, user)
        assert FORGET_AT not in times
        assert case is not None and case.updated_at == T0 and case.reporter_id is None
        assert {a.created_at for a in audit} == {datetime(2026, 5, 14, tzinfo=UTC)}
        if frozen:  # the one row that stays: no Telegram id, no instant of its own
            assert kept is not None and kept.telegram_id is None
            assert kept.forgotten_at == datetime(2026, 5, 14, tzinfo=UTC)
        else:
            assert kept is None


async def test_forget_cleans_contact_linked_events_like_created_and_info_received(
    db: Db,
) -> None:
    """Older versions wrote a `contact_linked` event with the joining relative as actor and
    their report's summary as body: /forget erases both, as for their report and answers."""
    async with db.sessions() as session, session.begin():
        code = await make_case(session, db.cipher, reporter_id=USER + 7)
        case_id = await session.scalar(select(Case.id).where(Case.code == code))
        for kind in (EventKind.CONTACT_LINKED, EventKind.INFO_RECEIVED):
            session.add(
                CaseEvent(
                    case_id=case_id,
                    kind=kind,
                    actor_id=USER,
                    body=db.cipher.seal("my brother, taken in Bakhchysarai"),
                )
            )
        await session.flush()
        await forget_user(session, db.cipher, USER, now=FORGET_AT)
    async with db.sessions() as session:
        events = (
            await session.execute(
                select(CaseEvent.kind, CaseEvent.actor_id, CaseEvent.body).where(
                    CaseEvent.kind.in_((EventKind.CONTACT_LINKED, EventKind.INFO_RECEIVED))
                )
            )
        ).all()
    assert sorted(events) == [
        (EventKind.CONTACT_LINKED, None, None),
        (EventKind.INFO_RECEIVED, None, None),
    ]


# -- a database written by an earlier version -----------------------------------------------------


async def test_ids_stored_by_an_earlier_version_become_keys_at_start(
    database_url: str, data_key: str
) -> None:
    """A database with Telegram ids in clear (users, contacts, cases, the outbox and its dedupe
    keys, the audit, persistence) is converted once, in one transaction, at start."""
    cipher = FieldCipher.from_setting(data_key)
    settings = Settings(database_url=database_url, data_key=SecretStr(data_key))  # type: ignore[call-arg]
    services = await open_services(settings)  # the schema, and the key check
    async with services.sessions() as session, session.begin():
        await session.execute(text("DELETE FROM meta WHERE key IN ('telegram_ids')"))
        session.add(User(id=FAMILY, language="en"))
        await session.flush()
        code = await make_case(session, cipher, reporter_id=FAMILY)
        event = await session.scalar(select(CaseEvent.id))
        session.add(
            OutboxMessage(
                dedupe_key=f"event:{event}:{FAMILY}",
                chat_id=FAMILY,
                kind="case_alert",
                template="cases.public_note",
                payload=cipher.seal("{}"),
                status=OutboxStatus.SENT,
            )
        )
        session.add(AuditEntry(actor_id=FAMILY, action="report.file", outcome="ok"))
        for kind, key in (("user", str(FAMILY)), ("conv:report", json.dumps([FAMILY, FAMILY]))):
            session.add(
                PersistenceEntry(kind=kind, key=key, data=cipher.seal(json.dumps({"step": 3})))
            )
    await services.engine.dispose()

    services = await open_services(settings)
    try:
        key = services.keys.key(FAMILY)
        assert _naming(await _cells(services.sessions, None), FAMILY) == []
        cells = await _cells(services.sessions, services.cipher)
        assert _naming(cells, FAMILY) == ["persistence.data", "users.telegram_id"]  # sealed
        assert {
            "users.id",
            "cases.reporter_id",
            "case_contacts.user_id",
            "outbox.chat_id",
            "outbox.dedupe_key",
            "audit_log.actor_id",
            "persistence.key",
        } <= set(_naming(cells, key))
        async with services.sessions() as session:
            user = await session.get(User, key)
            case = await session.scalar(select(Case).where(Case.code == code))
        assert user is not None and cipher.open(user.telegram_id) == str(FAMILY)
        assert case is not None and case.reporter_id == key
        persistence = DatabasePersistence(services.sessions, services.cipher, services.keys)
        user_data: dict[str, object] = {}  # read when the user's update arrives
        await persistence.refresh_user_data(FAMILY, user_data)
        assert user_data == {"step": 3}
        assert await persistence.get_conversations("report") == {(FAMILY, FAMILY): {"step": 3}}
    finally:
        await services.engine.dispose()
    again = await open_services(settings)  # once only
    await again.engine.dispose()
