"""Upgrading a database that holds data keeps every row, and so does going back.

On SQLite, Alembic's batch mode copies a table into a new one and drops the old; with foreign keys
on, dropping a parent table deletes its children (outbox rows of a broadcast, contacts of a case).
This runs 0001 -> head -> 0001 on a database with a case, its family, a broadcast and outbox rows,
on SQLite and PostgreSQL, and counts the rows at each step.
"""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, text

from storage.db import make_engine
from storage.migrate import alembic_config

TABLES = ("users", "cases", "case_personal", "case_contacts", "case_events", "broadcasts", "outbox")


def _migrate(connection: Connection, url: str, revision: str, *, down: bool = False) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


def _seed(connection: Connection) -> None:
    statements = [
        "INSERT INTO users (id, role, monitor_status, blocked, created_at, last_seen_at)"
        " VALUES (501, 'family', 'none', false, '2026-01-01', '2026-01-01')",
        "INSERT INTO cases (id, code, status, visibility, region, reporter_id, created_at,"
        " updated_at) VALUES (1, 'AAAA-BBBB', 'new', 'staff_only', 'crimea', 501, '2026-01-01',"
        " '2026-01-01')",
        "INSERT INTO case_personal (case_id, kept_for_case) VALUES (1, false)",
        "INSERT INTO case_contacts (case_id, user_id, is_reporter, approved, created_at)"
        " VALUES (1, 501, true, true, '2026-01-01')",
        "INSERT INTO case_events (id, case_id, kind, public, created_at)"
        " VALUES (1, 1, 'created', false, '2026-01-01')",
        "INSERT INTO broadcasts (id, author_id, audience, text, status, total, created_at)"
        " VALUES (1, 9001, 'all', 'hello', 'sending', 1, '2026-01-01')",
        "INSERT INTO outbox (dedupe_key, chat_id, kind, priority, template, status, attempts,"
        " not_before, created_at, broadcast_id) VALUES ('b:1:501', 501, 'broadcast', 100,"
        " 'broadcasts.announcement', 'pending', 0, '2026-01-01', '2026-01-01', 1)",
        "INSERT INTO outbox (dedupe_key, chat_id, kind, priority, template, status, attempts,"
        " not_before, created_at, event_id) VALUES ('event:1:501', 501, 'case_alert', 0,"
        " 'cases.status_changed', 'pending', 0, '2026-01-01', '2026-01-01', 1)",
    ]
    for statement in statements:
        connection.execute(text(statement))


def _counts(connection: Connection) -> dict[str, int]:
    return {
        table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
        for table in TABLES
    }


async def test_upgrade_and_downgrade_keep_every_row(database_url: str) -> None:
    engine = make_engine(database_url)
    url = engine.url.render_as_string(hide_password=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate, url, "0001")
            await connection.run_sync(_seed)
            before = await connection.run_sync(_counts)
        async with engine.begin() as connection:
            await connection.run_sync(_migrate, url, "head")
            assert await connection.run_sync(_counts) == before
        async with engine.begin() as connection:
            await connection.run_sync(_migrate, url, "0001", down=True)
            assert await connection.run_sync(_counts) == before
    finally:
        await engine.dispose()
