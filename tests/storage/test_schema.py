"""Migrations build the schema on SQLite and PostgreSQL, and match the models exactly."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from storage.db import make_engine
from storage.migrate import pending_migrations, upgrade_to_head
from storage.models import Base

REPO = Path(__file__).resolve().parents[2]


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_create_the_models_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert await pending_migrations(engine)
        await upgrade_to_head(engine)
        assert not await pending_migrations(engine)
        await upgrade_to_head(engine)  # idempotent
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_database_url: str) -> None:
    engine = make_engine(sqlite_database_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_cli_migrate_runs_on_the_configured_database(database_url: str) -> None:
    """`HOTLINE_DATABASE_URL=... python -m bot migrate` builds the schema, on either database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATABASE_URL=database_url, PYTHONPATH=str(REPO))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "migrate",
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    assert b"up to date" in out
    engine = make_engine(database_url)
    try:
        assert not await pending_migrations(engine)
    finally:
        await engine.dispose()
