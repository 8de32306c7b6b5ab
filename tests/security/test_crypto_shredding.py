"""Crypto-shredding (issue 12, point 9): after /forget and after retention, a seized database
gives back no name and no phone, even to someone holding the master key.

The adversary takes everything: a backup of every table made before the erasure (except the
data-key table, which the operator keeps apart: SECURITY.md), then, after the erasure, the live
SQLite file and its WAL, or a PostgreSQL COPY of every table and the raw pages of every relation
after VACUUM (what a disk image of the data directory holds). Every Fernet token found anywhere
is tried with the master key and with every data key the master key opens there.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet, InvalidToken

from bot.callbacks import FORGET
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from jobs.retention import forget_in_memory, run_retention
from storage.db import is_sqlite
from tests.handlers import report_flow
from tests.support.harness import BotHarness, harness_settings
from tests.support.waiting import settled, wait_until_idle

REPORTED = dict(report_flow.FULL)
"""Filed, then erased by the reporter's /forget."""
DRAFTED = {
    **report_flow.FULL,
    "name": "Osmanov Server Enverovych",
    "phone": "+380 50 765 43 21",
}
"""Typed into a report that is never sent, then erased by retention."""
SECRETS = (
    "Petrenko",
    "Mykolaiovych",
    "123 45 67",
    "1234567",
    "Osmanov",
    "Enverovych",
    "765 43 21",
    "7654321",
)
TOKEN_START = re.compile(rb"gAAAAA")
BASE64_RUN = re.compile(rb"[A-Za-z0-9_\-]+=*")
KEY_TABLE = "data_keys"


# -- what the adversary takes -----------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    return Path(url.split(":///", 1)[1])


def _sqlite_backup(url: str) -> bytes:
    """Every value of every table but the key table, as a logical backup holds them."""
    connection = sqlite3.connect(_sqlite_path(url))
    try:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if name != KEY_TABLE
        ]
        out = bytearray()
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    out += value if isinstance(value, bytes) else str(value).encode() + b"\n"
                    out += b"\n"
        return bytes(out)
    finally:
        connection.close()


def _sqlite_files(url: str) -> bytes:
    path = _sqlite_path(url)
    parts = [path, path.with_name(path.name + "-wal")]
    return b"\n".join(p.read_bytes() for p in parts if p.exists())


def _plain_pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg_tables(connection: asyncpg.Connection) -> list[str]:
    rows = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    return [row["tablename"] for row in rows]


def _unhex_bytea(dump: bytes) -> bytes:
    """COPY's text format writes bytea as \\x<hex>: turn each back into its bytes."""
    return re.sub(rb"\\\\x([0-9a-f]+)", lambda m: binascii.unhexlify(m.group(1)), dump)


async def _pg_copy(url: str, *, skip: tuple[str, ...] = ()) -> bytes:
    connection = await asyncpg.connect(_plain_pg(url))
    try:
        out = bytearray()
        for table in await _pg_tables(connection):
            if table in skip:
                continue
            chunks: list[bytes] = []

            async def sink(chunk: bytes, chunks: list[bytes] = chunks) -> None:
                chunks.append(chunk)

            await connection.copy_from_table(table, output=sink, format="text")
            out += _unhex_bytea(b"".join(chunks)) + b"\n"
        return bytes(out)
    finally:
        await connection.close()


async def _pg_raw_pages(url: str) -> bytes:
    """VACUUM every table, then every page of every relation (tables, TOAST, indexes) as it is
    on disk, through pageinspect: free space inside a page is not zeroed by VACUUM."""
    connection = await asyncpg.connect(_plain_pg(url))
    try:
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        except asyncpg.PostgresError as error:  # pragma: no cover - depends on the server
            pytest.skip(f"pageinspect is not available on this PostgreSQL ({error})")
        for table in await _pg_tables(connection):
            await connection.execute(f'VACUUM "{table}"')
        relations = await connection.fetch(
            """
            SELECT c.oid::regclass::text AS name, pg_relation_size(c.oid) AS size
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't', 'i')
            """
        )
        out = bytearray()
        for relation in relations:
            for page in range(relation["size"] // 8192):
                out += await connection.fetchval(
                    "SELECT get_raw_page($1, $2)", relation["name"], page
                )
        return bytes(out)
    finally:
        await connection.close()


async def _backup(url: str) -> bytes:
    return _sqlite_backup(url) if is_sqlite(url) else await _pg_copy(url, skip=(KEY_TABLE,))


async def _seize(url: str) -> bytes:
    if is_sqlite(url):
        return _sqlite_files(url)
    return await _pg_copy(url) + await _pg_raw_pages(url)


# -- what the adversary does with it ---------------------------------------------------------


def fernet_tokens(raw: bytes) -> set[bytes]:
    """Every Fernet token in `raw`, also when two sealed values lie side by side in a record: a
    token is 0x80 + 8 + 16 + 16k + 32 bytes, so each length a run of base64 allows is tried."""
    found: set[bytes] = set()
    for start in TOKEN_START.finditer(raw):
        run = BASE64_RUN.match(raw, start.start())
        if run is None:
            continue
        text = run.group(0).rstrip(b"=")
        for blocks in range(1, len(text) // 21 + 2):
            size = 57 + 16 * blocks
            chars = (size * 4 + 2) // 3
            if chars > len(text):
                break
            candidate = text[:chars]
            candidate += b"=" * (-len(candidate) % 4)
            found.add(candidate)
    return found


def _is_fernet_key(plain: bytes) -> bool:
    try:
        return len(plain) == 44 and len(base64.urlsafe_b64decode(plain)) == 32
    except (binascii.Error, ValueError):
        return False


def everything_readable(master_key: str, raw: bytes) -> list[bytes]:
    """The plaintext of every token the master key opens, or any data key it opens does."""
    tokens = fernet_tokens(raw)
    keys = [Fernet(master_key.encode())]
    opened: list[bytes] = []
    seen_keys: set[bytes] = set()
    changed = True
    while changed:  # a data key may open further keys
        changed = False
        for token in tokens:
            for key in keys:
                try:
                    plain = key.decrypt(token)
                except InvalidToken:
                    continue
                opened.append(plain)
                if _is_fernet_key(plain) and plain not in seen_keys:
                    seen_keys.add(plain)
                    keys.append(Fernet(plain))
                    changed = True
    return opened


def _needles() -> list[bytes]:
    return [form for s in SECRETS for form in (s.encode(), s.encode("utf-16-le"))]


def assert_nothing_readable(master_key: str, raw: bytes, moment: str) -> int:
    for needle in _needles():
        assert needle not in raw, f"{needle!r} in plain bytes {moment}"
    opened = everything_readable(master_key, raw)
    for plain in opened:
        for needle in _needles():
            assert needle not in plain, f"{needle!r} decrypted with the master key {moment}"
    return len(opened)


# -- the test --------------------------------------------------------------------------------


async def _abandon_a_report(sandbox: SandboxServer, user: int) -> None:
    """Everything up to and with the phone, then nothing more: an abandoned draft."""
    question = await report_flow.begin(sandbox, user)
    for key in report_flow.ORDER[: report_flow.ORDER.index("phone") + 1]:
        question = await report_flow.answer(sandbox, user, question, key, DRAFTED[key])


async def test_a_seized_database_reveals_nothing_erased_even_with_the_master_key(
    database_url: str, sandbox: SandboxServer, data_key: str, i18n: I18n
) -> None:
    harness = BotHarness(
        sandbox=sandbox,
        settings=harness_settings(sandbox, database_url, data_key, messages_per_minute=1000),
        i18n=i18n,
    )
    await harness.start()
    try:
        services, application = harness.services, harness.application
        assert services is not None and application is not None
        reporter = sandbox.add_user(language_code="en")
        drafter = sandbox.add_user(language_code="en")

        reply = await report_flow.file(sandbox, reporter.id, REPORTED)
        assert "code is" in reply.plain
        await sandbox.send_text(reporter.id, "Petrenko has asthma, call me at +380 67 123 45 67")
        await sandbox.next_message(reporter.id)
        await _abandon_a_report(sandbox, drafter.id)
        await wait_until_idle(harness)
        await settled(harness)

        backup = await _backup(database_url)
        readable_before = everything_readable(data_key, backup + await _seize(database_url))
        assert any(b"Petrenko" in plain for plain in readable_before)  # the data was there
        assert any(b"Osmanov" in plain for plain in readable_before)

        # The reporter erases their data; their case is not one staff kept.
        await sandbox.send_text(reporter.id, "/forget")
        question = await sandbox.next_message(reporter.id)
        await sandbox.press(reporter.id, question.message_id, FORGET.build("yes"))
        await sandbox.wait_for_edit(reporter.id, question.message_id)
        await wait_until_idle(harness)
        after_forget = await _seize(database_url)
        for needle in (b"Osmanov", b"Enverovych"):  # the draft is not erased yet: the key is
            assert any(needle in plain for plain in everything_readable(data_key, after_forget))
        for secret in ("Petrenko", "Mykolaiovych", "123 45 67", "1234567"):
            for plain in everything_readable(data_key, backup + after_forget):
                assert secret.encode() not in plain, f"{secret} readable after /forget"

        # Eight days later the abandoned draft goes with retention.
        real_clock = services.clock
        services.clock = lambda: real_clock() + timedelta(days=8)
        try:
            forget_in_memory(application, await run_retention(services), services.keys)
        finally:
            services.clock = real_clock
        await wait_until_idle(harness)
        opened = assert_nothing_readable(
            data_key, backup + await _seize(database_url), "after retention"
        )
        assert opened  # the rest of the database is still readable with the keys
    finally:
        await harness.close()


def test_token_extraction_finds_tokens_side_by_side() -> None:
    fernet = Fernet(Fernet.generate_key())
    first, second = fernet.encrypt(b"a" * 5), fernet.encrypt(b"b" * 40)
    assert {first, second} <= fernet_tokens(b"\x00\x01" + first + second + b"\x02")
